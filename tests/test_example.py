"""examples/pipeline.py against a live server and a real qcluster."""

from __future__ import annotations

import subprocess
import sys

import pytest
from rest_framework.authtoken.models import Token

from runs.models import IOPointer, Run
from tests.live import ROOT

pytestmark = pytest.mark.live


def test_the_pipeline_example_logs_flags_and_traces(live_server, cluster, django_user_model):
    token = Token.objects.create(user=django_user_model.objects.create(username="example")).key

    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "pipeline.py"),
            "--url",
            live_server.url,
            "--token",
            token,
            "--batches",
            "3",
            "--predictions",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "logged etl run" in out and "3 inference runs" in out
    flagged = IOPointer.objects.get(flag=True).name
    assert f"flagged {flagged}" in out
    # The trace of a prediction goes infer -> train -> etl, each one hop further.
    trace = out.split(f"trace of {flagged}:")[1].split("review of")[0]
    lines = [line for line in trace.splitlines() if "(run " in line]
    assert [line.split(" (run")[0] for line in lines] == ["infer", "    train", "        etl"]
    assert "1 flagged output(s) trace back to etl run" in out
    assert Run.objects.count() == 5
    # The decorators logged what mltrace's decorators log: the variables, the code, the tests.
    etl = Run.objects.get(component__name="etl")
    assert etl.test_results == {"before": {}, "after": {"HasRows": {"testNotEmpty": "passed"}}}
    assert "def clean(source: str)" in etl.code_snapshot
    assert etl.component.description == "Cleans raw events"
    assert set(
        IOPointer.objects.filter(name__startswith="prediction_").values_list("pointer_type", flat=True)
    ) == {"ENDPOINT"}
