"""The embedded default, as `make run` serves it: SQLite, the ORM broker, web and worker together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.factories import run_request_body
from tests.live import ROOT, free_port, http, serves, wait_until

pytestmark = pytest.mark.live


def test_serve_answers_commits_with_the_orm_broker_and_stops_on_ctrl_c(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        MLTRACE_VAR_DIR=str(tmp_path),
        MLTRACE_SWEEP_SECONDS="1",
        DJANGO_SETTINGS_MODULE="mltrace_site.settings",
    )
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, cwd=ROOT, check=True)
    token = subprocess.run(
        [*manage, "create_api_token", "me"], env=env, cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    port = free_port()
    server = subprocess.Popen(
        [*manage, "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Token {token}"}
    try:
        wait_until(lambda: serves(f"{url}/healthz"), timeout=30, what="the server")
        producer = http(
            "POST",
            f"{url}/api/v1/runs/",
            json_body=run_request_body("etl", outputs=["clean.csv"]),
            headers=headers,
        )
        consumer = http(
            "POST",
            f"{url}/api/v1/runs/batch/",
            json_body={"runs": [run_request_body("train", inputs=["clean.csv"], outputs=["model.pkl"])]},
            headers=headers,
        )
        assert (producer.status_code, consumer.status_code) == (202, 202)
        run_id = consumer.json()["runs"][0]["id"]

        def committed():
            body = http("GET", f"{url}/api/v1/runs/{run_id}/", headers=headers).json()
            return body if body["status"] == "committed" else None

        run = wait_until(committed, timeout=30, what="the worker to commit")
        assert run["dependencies"] == [producer.json()["id"]]
        trace = http("GET", f"{url}/api/v1/trace/?output_id=model.pkl", headers=headers).json()
        assert [n["run"]["component"] for n in trace["nodes"]] == ["train", "etl"]
        # OpenLineage on SQLite: a START, then its COMPLETE (the run's row is updated in place).
        job = {"namespace": "nightly", "name": "score"}
        for event_type, minute in (("START", 0), ("COMPLETE", 5)):
            event = {
                "eventType": event_type,
                "eventTime": f"2024-05-01T12:0{minute}:00Z",
                "run": {"runId": "r-1"},
                "job": job,
                "inputs": [{"namespace": "file", "name": "/srv/model.pkl"}] if minute else [],
            }
            answer = http("POST", f"{url}/api/v1/lineage?sync=true", json_body=event, headers=headers)
            assert answer.status_code == 201, answer.json()
        ended = answer.json()["run"]
        assert (ended["state"], ended["start_timestamp"], ended["end_timestamp"]) == (
            "COMPLETE",
            "2024-05-01T12:00:00Z",
            "2024-05-01T12:05:00Z",
        )
        assert [p["name"] for p in ended["inputs"]] == ["file:/srv/model.pkl"]
        assert http("GET", f"{url}/readyz").json() == {"status": "ok", "database": "ok", "broker": "ok"}
    finally:
        # Ctrl-C reaches every process of the terminal's group.
        os.killpg(server.pid, signal.SIGINT)
        code = server.wait(30)
    assert code == 0
    assert (tmp_path / "mltrace.sqlite3").exists()
