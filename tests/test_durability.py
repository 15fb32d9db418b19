"""A 202 is never lost: killed workers, stopped clusters, lost Redis, unreachable database.

Every test here runs a real `manage.py qcluster` (3 workers) against the test database and a
private redis-server, and ends by checking that every accepted write was committed exactly
once: each write committed, one run per run write, run counts that match.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg2
import pytest
from django.db.models import Sum
from rest_framework.authtoken.models import Token

from components.models import Component
from ingest.locks import COMMIT_LOCK_KEY
from runs.models import Run, RunInput, RunOutput, Write
from tests.conftest import database_url
from tests.factories import run_request_body
from tests.live import ROOT, Cluster, TcpProxy, free_port, http, serves, wait_until

pytestmark = pytest.mark.live


def post_batch(api, size: int, *, outputs: int = 5, component: str = "infer") -> list[int]:
    runs = [
        run_request_body(
            component,
            inputs=["model.pkl"],
            outputs=[f"pred_{time.monotonic_ns()}_{i}_{j}" for j in range(outputs)],
        )
        for i in range(size)
    ]
    response = api.post("/api/v1/runs/batch/", {"runs": runs}, format="json")
    assert response.status_code == 202, response.content
    return [r["id"] for r in response.json()["runs"]]


def all_committed_exactly_once(accepted: list[int], timeout: float = 90) -> None:
    wait_until(
        lambda: Write.objects.filter(id__in=accepted, status="committed").count() == len(accepted),
        timeout=timeout,
        what=f"{len(accepted)} accepted writes to be committed",
    )
    assert Run.objects.filter(id__in=accepted).count() == len(accepted)
    assert Run.objects.count() == Write.objects.filter(kind="run", status="committed").count()
    # A commit applied twice would have counted its run twice.
    assert Component.objects.aggregate(total=Sum("run_count"))["total"] == Run.objects.count()
    assert not Write.objects.filter(status="failed").exists()


def worker_pids(db: dict, query: str, params: list) -> list[int]:
    """The OS pids of our processes (their application_name ends "pid N") among the
    application names `query` selects from this database."""
    with (
        psycopg2.connect(
            dbname=db["NAME"], user=db["USER"], host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432
        ) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute(query, params)
        names = [row[0] for row in cursor.fetchall()]
    connection.close()
    return [int(name.rsplit(" ", 1)[1]) for name in names if " pid " in name]


def commit_lock_holder(db: dict) -> int | None:
    """The OS pid of the process whose transaction holds the commit lock in this database, if
    any (pg_locks lists every database's: another suite's process must not be the one killed)."""
    pids = worker_pids(
        db,
        """SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.objid = %s AND l.granted
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())""",
        [COMMIT_LOCK_KEY],
    )
    return pids[0] if pids else None


def test_a_worker_killed_mid_commit_loses_nothing(api, live_db, cluster):
    accepted = post_batch(api, 1000) + post_batch(api, 1000)

    holder = wait_until(
        lambda: commit_lock_holder(live_db), timeout=30, interval=0.01, what="a commit in progress"
    )
    os.kill(holder, signal.SIGKILL)
    pending_at_kill = Write.objects.filter(id__in=accepted, status="queued").count()

    assert pending_at_kill > 0
    all_committed_exactly_once(accepted)
    wait_until(
        lambda: "reincarnated worker" in cluster.output(),
        # The guard notices a dead worker within a cycle, but a busy 2-core machine (CI's) can
        # hold it up: ten seconds were missed there.
        timeout=60,
        what="the cluster to replace the worker",
    )


def materializer(db: dict) -> int | None:
    """The OS pid of a worker in the middle of materializing writes in this database, if any:
    its transaction is open, its last statement claimed writes or wrote links or forms, and
    it does not hold the commit lock (a resolver writes links too, of writes it applies whole)."""
    pids = worker_pids(
        db,
        """SELECT a.application_name FROM pg_stat_activity a
           WHERE a.datname = current_database() AND a.xact_start IS NOT NULL
             AND (a.query ILIKE '%%skip locked%%' OR a.query ILIKE '%%runs_runoutput%%'
                  OR a.query ILIKE '%%"materialized" = %%')
             AND NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.granted
                             AND l.locktype = 'advisory' AND l.objid = %s)""",
        [COMMIT_LOCK_KEY],
    )
    return pids[0] if pids else None


def test_a_worker_killed_mid_materialize_loses_nothing_and_leaves_nothing(api, live_db, cluster):
    accepted = post_batch(api, 1000) + post_batch(api, 1000)

    victim = wait_until(
        lambda: materializer(live_db), timeout=30, interval=0.01, what="a materializer at work"
    )
    os.kill(victim, signal.SIGKILL)

    all_committed_exactly_once(accepted)
    # Its claim was rolled back with its connection and taken again: every run has its five
    # outputs and its input once, and no link or form is left over.
    assert RunOutput.objects.filter(run_id__in=accepted).count() == 5 * len(accepted)
    assert RunInput.objects.filter(run_id__in=accepted).count() == len(accepted)
    assert not RunOutput.objects.exclude(run_id__in=Run.objects.values("id")).exists()
    assert not Write.objects.filter(materialized__isnull=False).exists()


def test_a_cluster_killed_and_restarted_loses_nothing(api, live_db, cluster):
    accepted = post_batch(api, 1000)
    wait_until(lambda: commit_lock_holder(live_db), timeout=30, interval=0.01, what="a commit in progress")

    cluster.kill()
    accepted += post_batch(api, 200)  # accepted while no worker runs
    assert Write.objects.filter(id__in=accepted, status="queued").exists()
    cluster.start()

    all_committed_exactly_once(accepted)


def test_a_cluster_stopped_gracefully_and_restarted_loses_nothing(api, live_db, cluster):
    accepted = post_batch(api, 500)
    cluster.stop()
    accepted += post_batch(api, 100)
    cluster.start()

    all_committed_exactly_once(accepted)


def test_writes_queued_when_redis_is_flushed_are_committed(
    api, live_db, cluster, private_redis, web_broker, settings
):
    cluster.stop()
    # The first request's commit-pending flag outlives both, however slow the machine:
    # flushall below ends it.
    settings.MLTRACE_COMMIT_DELAY_MS = 600_000
    accepted = post_batch(api, 50) + post_batch(api, 50)
    # One commit task waits for both requests: the second saw the first's task pending.
    assert web_broker.queue_size() == 1

    private_redis.client().flushall()
    assert web_broker.queue_size() == 0
    cluster.start()

    all_committed_exactly_once(accepted, timeout=30)
    # The sweep logs once its task ends, a moment after its last commit.
    wait_until(lambda: "sweep committed" in cluster.output(), timeout=30, what="the sweep's log line")


def test_writes_survive_redis_restarting_empty_under_a_running_cluster(api, live_db, cluster, private_redis):
    accepted = post_batch(api, 1000)
    private_redis.restart_empty()
    accepted += post_batch(api, 10)
    private_redis.stop()
    # Redis is down: the write is still recorded and answered 202; its task is lost.
    accepted += post_batch(api, 10)
    private_redis.start()

    all_committed_exactly_once(accepted, timeout=120)


def test_workers_ride_out_a_database_they_cannot_reach(api, live_db, cluster_env, web_broker):
    proxy = TcpProxy(live_db["HOST"] or "127.0.0.1", int(live_db["PORT"] or 5432))
    proxy.start()
    env = {**cluster_env, "DATABASE_URL": database_url(live_db, host="127.0.0.1", port=proxy.port)}
    workers = Cluster(env)
    workers.start()
    try:
        accepted = post_batch(api, 1000)
        wait_until(
            lambda: commit_lock_holder(live_db), timeout=30, interval=0.01, what="a commit in progress"
        )
        failed_before = workers.output().count("Failed 'ingest.tasks.commit_task'")
        proxy.cut()  # mid-commit: the worker's connection drops, its transaction rolls back
        accepted += post_batch(api, 20)
        # A worker tried, and its task failed on the database it cannot reach...
        wait_until(
            lambda: workers.output().count("Failed 'ingest.tasks.commit_task'") > failed_before,
            timeout=60,
            what="a commit task to fail on the unreachable database",
        )
        # ...leaving the writes queued, none marked failed for an outage.
        assert Write.objects.filter(id__in=accepted, status="queued").exists()
        assert not Write.objects.filter(id__in=accepted, status="failed").exists()
        proxy.restore()

        all_committed_exactly_once(accepted, timeout=120)
    finally:
        workers.stop()
        proxy.cut()
        print(workers.output()[-20000:])


def test_the_web_process_answers_503_while_the_database_is_unreachable(live_db, django_user_model):
    user = django_user_model.objects.create(username="web")
    token = Token.objects.create(user=user).key
    proxy = TcpProxy(live_db["HOST"] or "127.0.0.1", int(live_db["PORT"] or 5432))
    proxy.start()
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(live_db, host="127.0.0.1", port=proxy.port),
        "DJANGO_SETTINGS_MODULE": "mltrace_site.settings",
    }
    env.pop("REDIS_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "mltrace_site.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Token {token}"}
    try:
        wait_until(lambda: serves(f"{url}/healthz"), timeout=30, what="gunicorn to serve")
        assert (
            http(
                "POST", f"{url}/api/v1/runs/", json_body=run_request_body("etl"), headers=headers
            ).status_code
            == 202
        )

        proxy.cut()
        refused = http("POST", f"{url}/api/v1/runs/", json_body=run_request_body("etl"), headers=headers)
        not_ready = http("GET", f"{url}/readyz")
        proxy.restore()
        recovered = http("POST", f"{url}/api/v1/runs/", json_body=run_request_body("etl"), headers=headers)
    finally:
        server.terminate()
        server.wait(10)
        proxy.cut()

    assert refused.status_code == 503
    assert int(refused.headers["Retry-After"]) > 0
    assert "detail" in refused.json()
    assert not_ready.status_code == 503
    assert "database" in not_ready.json()["detail"]
    assert recovered.status_code == 202
    assert Write.objects.count() == 2
