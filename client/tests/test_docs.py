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
