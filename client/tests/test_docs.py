"""The Python examples of README.md and client/README.md run, as written, against the server."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from server import REPO

DOCS = [REPO / "README.md", REPO / "client" / "README.md"]
EXAMPLES = [
    pytest.param(block, id=f"{doc.relative_to(REPO)}-{index}")
    for doc in DOCS
    for index, block in enumerate(re.findall(r"```python\n(.*?)```", doc.read_text(), re.S))
]


@pytest.mark.parametrize("code", EXAMPLES)
def test_the_example_runs(server, code, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "MLTRACE_SERVER_URL": server.url, "MLTRACE_TOKEN": server.token},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    if "backtrace" in code:
        # The flagged prediction traces back to its inference run, then to train.
        lines = result.stdout.splitlines()
        assert lines[0].split()[0] == "infer" and lines[1].split()[0] == "train", result.stdout


def test_the_api_references_shell_session_runs_on_a_fresh_server(server, tmp_path):
    """docs/API.md's examples: one shell session, every block in order, each curl -f."""
    blocks = re.findall(r"```sh\n(.*?)```", (REPO / "docs" / "API.md").read_text(), re.S)
    script = "set -euo pipefail\n" + "\n".join(blocks)
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env={**os.environ, "BASE": server.url, "TOKEN": server.token},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    out = result.stdout.replace(" ", "").replace("\n", "")  # streamed answers have spaces
    assert '"stale":["train(ID3)wasrun40daysago."]' in out
    assert out.count('{"id":6,"status":"queued"}') == 2  # the retry got the first answer
    assert '{"end_timestamp":["end_timestampmustnotbeearlierthanstart_timestamp."]}' in out
    assert '"edges":[[5,3],[3,2]]' in out
    # Downstream of clean_data.csv: train (3), then the two inference runs that read its
    # model. (The retrain, 6, is there too once a worker has committed it: MODEL 2.)
    assert '{"output_id":"clean_data.csv","nodes":[{"depth":1,"run":{"id":3,' in out
    assert '"edges":[[4,3],[5,3]],"outputs":{"DATA":0,"MODEL":' in out
    assert '"ENDPOINT":2,"UNKNOWN":0},"next":null}' in out
    assert '{"output_id":"prediction_1","flag":true,"pointers":1}' in out
    # OpenLineage: START queued, COMPLETE committed as run 8, traced; a batch's bad event listed.
    assert '{"id":7,"status":"queued"}' in out
    assert (
        '{"id":8,"status":"committed","outcome":"applied","run":{"run_id":"0190c4d4-4a3c-7a1b-9d2e-5f6a7b8c9d0e"'
        in out
    )
    assert (
        '"root":8,"nodes":[{"depth":0,"run":{"id":8,"status":"committed","error":null,"component":"nightly:score_customers"'
        in out
    )
    assert '"failed_events":[{"index":1,"reason":"run.runId:Thisfieldisrequired.","retriable":false}]' in out
