"""The real OpenLineage producers, dbt (openlineage-dbt's `dbt-ol`) and Airflow (its
OpenLineage provider), sending to the server as shipped: gunicorn with gunicorn.conf.py and a
`manage.py qcluster` on a private Redis, on the test database.

The producers run from venvs of their own (tests/venvs.py; `make producers` builds them), on
the project in tests/producers/dbt/project/ and the DAG in tests/producers/airflow/dags/, in a
warehouse database of their own. One server serves the whole module, so the DAG's task reads
a table that dbt built and told the server about: its trace crosses from Airflow into dbt
through the table's name alone.

dbt-ol has two modes that name things differently, so each writes its own schema: the default
(`dbt-ol run`, which reads dbt's artifacts after the run) in `shop`, and
`--consume-structured-logs` (which follows dbt's log as it runs) in `shop_logs`, which Airflow
reads. Each phase runs its commands once, waits for the workers to commit what they sent, and
keeps what the API answered then, so a later phase cannot change what an earlier test sees.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import psycopg2
import pytest
from django.core.management import call_command

from tests import venvs
from tests.conftest import database_url
from tests.live import ROOT, Cluster, PrivateRedis, free_port, http, serves, start_gunicorn, wait_until

# django_db: so that pytest-django sets up the test database even when this module runs alone
# (it sets it up only for tests that ask for it). The tests themselves read over HTTP.
pytestmark = [pytest.mark.live, pytest.mark.django_db]

PRODUCERS = ROOT / "tests" / "producers"
DBT = PRODUCERS / "dbt" / "requirements.txt"
AIRFLOW = PRODUCERS / "airflow" / "requirements.txt"
HOST, PORT = "127.0.0.1", 5432
NAMESPACE = f"postgres://{HOST}:{PORT}"
MODELS = ["stg_customers", "stg_orders", "customer_orders", "customer_totals", "broken_totals"]
DIVISION_BY_ZERO = (
    "Database Error in model broken_totals (models/marts/broken_totals.sql)\n"
    "  division by zero\n"
    "  compiled code at target/run/shop/models/marts/broken_totals.sql"
)


def producer_python(requirements: Path) -> Path:
    """The python of a producer's venv, or a skip that says why there is none."""
    python = venvs.built(requirements)
    if python is None:
        reason = venvs.failure_of(requirements) or "its venv is not built: run `make producers`"
        pytest.skip(f"{requirements.relative_to(ROOT)}: {reason}")
    return python


@dataclass
class Server:
    url: str
    write_token: str
    read_token: str
    logs: list[str] = field(default_factory=list)

    def get(self, path: str, **params: Any) -> Any:
        query = f"?{urlencode(params)}" if params else ""
        response = http(
            "GET", f"{self.url}{path}{query}", headers={"Authorization": f"Token {self.read_token}"}
        )
        assert response.status_code == 200, (path, params, response.body[:500])
        return response.json()

    def components(self, **params: Any) -> list[str]:
        """The names the component list shows: the listed ones, or all with all="true"."""
        return [c["name"] for c in self.get("/api/v1/components/", limit=1000, **params)["results"]]

    def component(self, name: str) -> dict:
        return self.get(f"/api/v1/components/{quote(name, safe='')}/")

    def lineage_runs(self, component: str) -> list[dict]:
        """The component's OpenLineage runs, oldest first."""
        return self.get("/api/v1/lineage/runs/", component=component, limit=1000)["results"][::-1]

    def run(self, run_id: int) -> dict:
        return self.get(f"/api/v1/runs/{run_id}/")

    def trace(self, output_id: str) -> list[tuple[int, int, str]]:
        """(depth, run id, component) of each node, in the trace's order."""
        nodes = self.get("/api/v1/trace/", output_id=output_id)["nodes"]
        return [(n["depth"], n["run"]["id"], n["run"]["component"]) for n in nodes]

    def impact(self, output_id: str) -> list[tuple[int, int, str]]:
        nodes = self.get("/api/v1/impact/", output_id=output_id, limit=1000)["nodes"]
        return [(n["depth"], n["run"]["id"], n["run"]["component"]) for n in nodes]

    def settled(self, predicate=lambda: True, *, what: str) -> None:
        """Waits until every accepted write is committed (none failed) and predicate holds."""

        def done() -> bool:
            queue = self.get("/api/v1/queue/")
            assert queue["failed"] == 0, queue
            return queue["pending"] == 0 and bool(predicate())

        wait_until(done, timeout=60, interval=0.2, what=what)


@dataclass
class Warehouse:
    """The database dbt builds and Airflow reads, and dbt's project and profiles beside it."""

    dbname: str
    project: Path
    profiles: Path

    def table(self, schema: str, name: str) -> str:
        """The pointer name of a table, as both producers name its dataset."""
        return f"{NAMESPACE}/{self.dbname}.{schema}.{name}"


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory):
    from django.conf import settings
    from django.db import connection

    with django_db_blocker.unblock():
        if connection.vendor != "postgresql":
            pytest.skip("live-process tests run against PostgreSQL (make test sets DATABASE_URL)")
        # The teardown flushes this database: never one that is not pytest-django's.
        assert connection.settings_dict["NAME"].startswith("test_"), connection.settings_dict["NAME"]
        tokens = {}
        for name, scope in (("producer", "write"), ("reader", "read")):
            out = io.StringIO()
            call_command("create_api_token", name, "--scope", scope, stdout=out)
            tokens[scope] = out.getvalue().strip()
        db_url = database_url(connection.settings_dict)
    redis = PrivateRedis()
    redis.start()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "REDIS_URL": redis.url,
        "MLTRACE_QUEUE_NAME": settings.Q_CLUSTER["name"],
        "MLTRACE_WORKERS": "2",
        "DJANGO_SETTINGS_MODULE": "mltrace_site.settings",
    }
    cluster = Cluster(env)
    port = free_port()
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    gunicorn = None
    try:
        cluster.start()
        gunicorn = start_gunicorn(env, port, log)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: serves(f"{url}/healthz"), timeout=30, what="gunicorn to serve")
        yield Server(url, tokens["write"], tokens["read"])
    finally:
        if gunicorn:
            gunicorn.terminate()
            gunicorn.wait(timeout=40)
            print(log.read_text()[-3000:])
        cluster.stop()
        print(cluster.output()[-3000:])
        redis.stop()
        with django_db_blocker.unblock():
            # What the processes committed outlives the module otherwise (as transactional_db does).
            call_command("flush", interactive=False, verbosity=0)


@pytest.fixture(scope="module")
def warehouse(server, tmp_path_factory):
    from django.db import connection

    dbname = f"{connection.settings_dict['NAME']}_warehouse"
    admin = psycopg2.connect(host=HOST, port=PORT, user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{dbname}"')
    home = tmp_path_factory.mktemp("dbt")
    # A copy: dbt writes target/ and logs/ into the project, which must stay out of the checkout.
    project = home / "project"
    shutil.copytree(PRODUCERS / "dbt" / "project", project)
    target = {"type": "postgres", "host": HOST, "port": PORT, "user": "postgres", "password": ""}
    target.update(dbname=dbname, threads=1)
    profile = {
        "shop": {
            "target": "default",
            "outputs": {"default": {**target, "schema": "shop"}, "logs": {**target, "schema": "shop_logs"}},
        }
    }
    (home / "profiles.yml").write_text(json.dumps(profile))  # JSON is YAML
    yield Warehouse(dbname, project, home)
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    admin.close()


def run_producer(python: Path, command: list[str], *, env: dict[str, str], cwd: Path) -> str:
    """Runs a producer's command from its venv (bin/ first on PATH, as an activated venv has
    it: dbt-ol starts `dbt`); returns its output, whatever its exit code."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENLINEAGE", "AIRFLOW", "DBT_"))}
    base.update(
        PATH=f"{python.parent}{os.pathsep}{base.get('PATH', '')}", VIRTUAL_ENV=str(python.parent.parent)
    )
    result = subprocess.run(
        [str(python.parent / command[0]), *command[1:]],
        env={**base, "PYTHONDONTWRITEBYTECODE": "1", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return f"$ {' '.join(command)} (exit {result.returncode})\n{result.stdout}{result.stderr}"


def dbt(server: Server, warehouse: Warehouse, *args: str, token: str | None = None) -> str:
    env = {
        "OPENLINEAGE_URL": server.url,
        "OPENLINEAGE_API_KEY": token or server.write_token,
        "OPENLINEAGE_NAMESPACE": "dbt",
        "DBT_PROFILES_DIR": str(warehouse.profiles),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    return run_producer(producer_python(DBT), ["dbt-ol", *args], env=env, cwd=warehouse.project)


def ended(component_runs: list[dict], count: int) -> bool:
    """True once a component has `count` runs and none of them is open."""
    return len(component_runs) >= count and all(not r["open"] for r in component_runs)


# --- the phases: each runs its producer once and keeps what the API answered ------------------


@pytest.fixture(scope="module")
def dbt_default(request):
    """`dbt-ol seed`, then `dbt-ol run` twice, in the default mode, on schema shop."""
    producer_python(DBT)  # before the server starts: a skip costs nothing
    server, warehouse = request.getfixturevalue("server"), request.getfixturevalue("warehouse")
    prefix = f"dbt:{warehouse.dbname}.shop.shop."
    outputs = [dbt(server, warehouse, "seed")]
    snapshots = []
    for n in (1, 2):
        outputs.append(dbt(server, warehouse, "run"))
        server.settled(
            lambda n=n: len(server.lineage_runs(f"{prefix}broken_totals")) == n,
            what=f"dbt-ol run #{n} to be committed:\n" + "\n".join(outputs)[-4000:],
        )
        snapshots.append({m: server.lineage_runs(prefix + m) for m in MODELS})
    table = lambda name: warehouse.table("shop", name)  # noqa: E731
    return {
        "prefix": prefix,
        "outputs": outputs,
        "first": {m: runs[0] for m, runs in snapshots[0].items()},
        "second": {m: runs[1] for m, runs in snapshots[1].items()},
        "invocations": server.lineage_runs("dbt:dbt-run-shop"),
        "components": server.components(),
        "all_components": server.components(all="true"),
        "code": server.run(snapshots[1]["customer_totals"][1]["run"])["code_snapshot"],
        "trace": server.trace(table("customer_totals")),
        "impact": server.impact(table("stg_orders")),
        "seed_pointer": http(
            "GET",
            f"{server.url}/api/v1/impact/?{urlencode({'output_id': table('raw_orders')})}",
            headers={"Authorization": f"Token {server.read_token}"},
        ).status_code,
        "fail_notes": server.run(snapshots[1]["broken_totals"][1]["run"])["notes"],
    }


@pytest.fixture(scope="module")
def dbt_logs(request):
    """`dbt-ol seed` and `dbt-ol run` with --consume-structured-logs, on schema shop_logs."""
    producer_python(DBT)
    server, warehouse = request.getfixturevalue("server"), request.getfixturevalue("warehouse")
    before = len(server.lineage_runs("dbt:dbt-run-shop"))
    outputs = []
    for command in ("seed", "run"):
        outputs.append(dbt(server, warehouse, command, "--consume-structured-logs", "--target", "logs"))
        before += 1
        server.settled(
            lambda count=before: ended(server.lineage_runs("dbt:dbt-run-shop"), count),
            what=f"dbt-ol {command} to be committed:\n" + "\n".join(outputs)[-4000:],
        )
    runs = {m: server.lineage_runs(f"dbt:model.shop.{m}") for m in MODELS}
    runs |= {s: server.lineage_runs(f"dbt:seed.shop.{s}") for s in ("raw_customers", "raw_orders")}
    table = lambda name: warehouse.table("shop_logs", name)  # noqa: E731
    fail = runs["broken_totals"][0]
    return {
        "outputs": outputs,
        "runs": runs,
        "invocations": server.lineage_runs("dbt:dbt-run-shop")[-2:],
        "components": server.components(),
        "all_components": server.components(all="true"),
        "code": server.run(runs["customer_totals"][0]["run"])["code_snapshot"],
        "trace": server.trace(table("customer_totals")),
        "impact": server.impact(table("raw_orders")),
        "fail_notes": server.run(fail["run"])["notes"],
    }


@pytest.fixture(scope="module")
def airflow(request, tmp_path_factory):
    """`airflow dags test shop_report` after dbt built shop_logs (dbt_logs), then again with the
    same logical date: the provider sends the same runIds, so the rerun makes no run."""
    python = producer_python(AIRFLOW)
    request.getfixturevalue("dbt_logs")
    server, warehouse = request.getfixturevalue("server"), request.getfixturevalue("warehouse")
    home = tmp_path_factory.mktemp("airflow")
    transport = {"type": "http", "url": server.url, "auth": {"type": "api_key", "apiKey": server.write_token}}
    connection = {"conn_type": "postgres", "host": HOST, "port": PORT, "login": "postgres"}
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PRODUCERS / "airflow" / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "airflow",
        "AIRFLOW_CONN_WAREHOUSE": json.dumps({**connection, "schema": warehouse.dbname}),
    }
    test = ["airflow", "dags", "test", "shop_report", "2024-05-01T06:00:00+00:00"]
    # A SQLite metadata database in AIRFLOW_HOME, migrated anew (about 6 s).
    outputs = [run_producer(python, ["airflow", "db", "migrate"], env=env, cwd=home)]
    outputs.append(run_producer(python, test, env=env, cwd=home))
    server.settled(
        lambda: ended(server.lineage_runs("airflow:shop_report"), 1),
        what="the DAG run to be committed:\n" + "\n".join(outputs)[-4000:],
    )
    tasks = ("top_customers", "missing_table")
    first = {
        "dag": server.lineage_runs("airflow:shop_report"),
        "tasks": {t: server.lineage_runs(f"airflow:shop_report.{t}") for t in tasks},
        "trace": server.trace(warehouse.table("shop_logs", "top_customers")),
        "owners": {t: server.component(f"airflow:shop_report.{t}")["owner"] for t in tasks},
        "code": server.run(server.lineage_runs("airflow:shop_report.top_customers")[0]["run"])[
            "code_snapshot"
        ],
        "listed": server.components(),
    }
    outputs.append(run_producer(python, test, env=env, cwd=home))
    server.settled(
        lambda: server.lineage_runs("airflow:shop_report")[0]["events_after_end"] > 0,
        what="the rerun's events to be committed:\n" + "\n".join(outputs)[-4000:],
    )
    rerun = {
        "dag": server.lineage_runs("airflow:shop_report"),
        "tasks": {t: server.lineage_runs(f"airflow:shop_report.{t}") for t in tasks},
    }
    return {"outputs": outputs, **first, "rerun": rerun}


# --- dbt-ol, default mode ----------------------------------------------------------------------


def test_dbt_ol_names_each_model_database_schema_project_model_and_sends_no_seed(dbt_default):
    prefix = dbt_default["prefix"]
    dbt_components = {c for c in dbt_default["all_components"] if c.startswith("dbt:")}
    assert dbt_components == {"dbt:dbt-run-shop"} | {prefix + m for m in MODELS}
    # The invocation names no dataset: the component list leaves it out unless asked for all.
    assert {c for c in dbt_default["components"] if c.startswith("dbt:")} == {prefix + m for m in MODELS}
    # `dbt-ol seed` sends its invocation only; the staging models name no input.
    assert dbt_default["seed_pointer"] == 404
    assert dbt_default["first"]["stg_orders"]["inputs"] == []
    invocations = dbt_default["invocations"]
    assert [r["state"] for r in invocations] == ["COMPLETE", "FAIL", "FAIL"]
    assert all(r["inputs"] == [] and r["outputs"] == [] for r in invocations)


def test_a_dbt_model_s_run_has_its_compiled_sql_as_code_snapshot(dbt_default, warehouse):
    code = dbt_default["code"]
    assert code.startswith("select customer_id, name, count(*) as orders, sum(amount) as total"), code
    assert f'from "{warehouse.dbname}"."shop"."customer_orders"' in code


def test_each_dbt_ol_run_is_a_run_per_model_under_its_invocation(dbt_default):
    invocations = dbt_default["invocations"]
    for which, invocation in (("first", invocations[1]), ("second", invocations[2])):
        runs = dbt_default[which]
        assert {m: r["state"] for m, r in runs.items()} == {
            **dict.fromkeys(MODELS, "COMPLETE"),
            "broken_totals": "FAIL",
        }
        assert {r["parent"]["run_id"] for r in runs.values()} == {invocation["run_id"]}
        assert {r["parent"]["run"] for r in runs.values()} == {invocation["run"]}
        assert {r["producer"] for r in runs.values()} == {
            "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/dbt"
        }


def test_the_trace_of_the_aggregate_is_the_second_dbt_ol_run_s_models(dbt_default):
    second = {m: r["run"] for m, r in dbt_default["second"].items()}
    prefix = dbt_default["prefix"]
    assert dbt_default["trace"] == [
        (0, second["customer_totals"], prefix + "customer_totals"),
        (1, second["customer_orders"], prefix + "customer_orders"),
        (2, second["stg_customers"], prefix + "stg_customers"),
        (2, second["stg_orders"], prefix + "stg_orders"),
    ]


def test_the_impact_of_a_staging_model_is_every_run_downstream_of_it(dbt_default):
    first = {m: r["run"] for m, r in dbt_default["first"].items()}
    second = {m: r["run"] for m, r in dbt_default["second"].items()}
    prefix = dbt_default["prefix"]
    expected = [
        (depth, runs[model], prefix + model)
        for depth, model in enumerate(["customer_orders", "customer_totals", "broken_totals"], start=1)
        for runs in (first, second)
    ]
    assert dbt_default["impact"] == expected


def test_a_failing_model_is_a_fail_run_without_outputs_and_without_a_message(dbt_default):
    fail = dbt_default["second"]["broken_totals"]
    assert fail["state"] == "FAIL" and fail["error_message"] == ""
    assert [p["name"].rsplit(".", 1)[-1] for p in fail["inputs"]] == ["customer_totals"]
    # In the default mode dbt-ol reads the error from run_results.json but sends no errorMessage.
    assert dbt_default["fail_notes"] == ""


def test_a_token_without_the_write_scope_loses_dbt_ol_s_events_and_dbt_ol_exits_0(
    dbt_default, server, warehouse
):
    before = server.lineage_runs("dbt:dbt-run-shop")
    output = dbt(server, warehouse, "run", "--select", "stg_customers", token=server.read_token)
    assert "(exit 0)" in output.splitlines()[0], output[-3000:]
    assert "403 Client Error: Forbidden" in output
    server.settled(what="nothing to commit")
    assert server.lineage_runs("dbt:dbt-run-shop") == before


# --- dbt-ol --consume-structured-logs ----------------------------------------------------------


def test_structured_logs_name_each_node_by_its_unique_id_and_send_seeds(dbt_logs):
    components = set(dbt_logs["components"])
    nodes = {f"dbt:model.shop.{m}" for m in MODELS} | {
        "dbt:seed.shop.raw_customers",
        "dbt:seed.shop.raw_orders",
    }
    assert nodes <= components
    runs = dbt_logs["runs"]
    assert {name: [r["state"] for r in node_runs] for name, node_runs in runs.items()} == {
        **{name: ["COMPLETE"] for name in runs},
        "broken_totals": ["FAIL"],
    }
    seed, run = dbt_logs["invocations"]
    assert (seed["state"], run["state"]) == ("COMPLETE", "FAIL")
    assert {runs[s][0]["parent"]["run_id"] for s in ("raw_customers", "raw_orders")} == {seed["run_id"]}
    assert {runs[m][0]["parent"]["run_id"] for m in MODELS} == {run["run_id"]}
    assert [p["name"].rsplit(".", 1)[-1] for p in runs["stg_orders"][0]["inputs"]] == ["raw_orders"]


def test_structured_logs_statement_jobs_are_left_out_of_the_component_list(dbt_logs):
    statements = {c for c in dbt_logs["all_components"] if ".sql." in c}
    # Each model and seed ran three or four statements, each a job of its own.
    assert "dbt:model.shop.customer_totals.sql.1" in statements and len(statements) >= 3 * 7
    assert not statements & set(dbt_logs["components"])
    assert "dbt:model.shop.customer_totals" in dbt_logs["components"]
    # The node's own job sends no sql facet in this mode: its statements' jobs have the SQL.
    assert dbt_logs["code"] == ""


def structured_logs_trace(run: dict[str, int], *, below: int = 0) -> list[tuple[int, int, str]]:
    """The trace of shop_logs.customer_totals as structured logs make it, `below` levels down:
    (depth, run id, component), in the trace's order, from the node runs of `run`."""
    nodes = [
        (0, "model", "customer_totals"),
        (1, "model", "customer_orders"),
        (2, "model", "stg_customers"),
        (3, "seed", "raw_customers"),
        (2, "model", "stg_orders"),
        (3, "seed", "raw_orders"),
    ]
    return [(depth + below, run[name], f"dbt:{kind}.shop.{name}") for depth, kind, name in nodes]


def test_structured_logs_trace_the_aggregate_down_to_the_seeds(dbt_logs):
    run = {name: node_runs[0]["run"] for name, node_runs in dbt_logs["runs"].items()}
    assert dbt_logs["trace"] == structured_logs_trace(run)


def test_structured_logs_impact_of_a_seed_reaches_the_failed_model(dbt_logs):
    run = {name: node_runs[0]["run"] for name, node_runs in dbt_logs["runs"].items()}
    models = ["stg_orders", "customer_orders", "customer_totals", "broken_totals"]
    assert dbt_logs["impact"] == [
        (depth, run[m], f"dbt:model.shop.{m}") for depth, m in enumerate(models, start=1)
    ]


def test_structured_logs_send_the_failing_model_s_error_as_its_notes(dbt_logs):
    fail = dbt_logs["runs"]["broken_totals"][0]
    assert fail["error_message"] == DIVISION_BY_ZERO
    assert dbt_logs["fail_notes"] == DIVISION_BY_ZERO
    assert dbt_logs["invocations"][1]["error_message"].startswith("Command `dbt run` failed at ")


# --- Airflow -----------------------------------------------------------------------------------


def test_airflow_dag_run_is_the_parent_of_its_task_runs(airflow):
    (dag,) = airflow["dag"]
    assert dag["state"] == "FAIL" and dag["error_message"] == "task_failure"
    assert dag["run"] is not None and dag["producer"].startswith("https://github.com/apache/airflow/")
    tasks = airflow["tasks"]
    assert {t: [r["state"] for r in runs] for t, runs in tasks.items()} == {
        "top_customers": ["COMPLETE"],
        "missing_table": ["FAIL"],
    }
    for (task,) in tasks.values():
        assert task["parent"] == {"run_id": dag["run_id"], "job": "airflow:shop_report", "run": dag["run"]}


def test_airflow_failed_task_keeps_postgres_error_as_its_notes(airflow):
    (fail,) = airflow["tasks"]["missing_table"]
    assert fail["error_message"].startswith('relation "shop_logs.no_such_table" does not exist')
    assert [p["name"].rsplit(".", 1)[-1] for p in fail["inputs"]] == ["no_such_table"]


def test_airflow_sql_task_traces_into_dbt_through_the_table_it_reads(airflow, dbt_logs):
    (task,) = airflow["tasks"]["top_customers"]
    dbt_run = {name: node_runs[0]["run"] for name, node_runs in dbt_logs["runs"].items()}
    # The task, then the aggregate's whole dbt trace one level down, seeds included.
    assert airflow["trace"] == [
        (0, task["run"], "airflow:shop_report.top_customers"),
        *structured_logs_trace(dbt_run, below=1),
    ]


def test_airflow_sends_each_task_s_sql_and_its_owner(airflow):
    assert "CREATE TABLE shop_logs.top_customers AS SELECT customer_id" in airflow["code"]
    assert airflow["owners"] == {"top_customers": "airflow", "missing_table": "airflow"}
    # The DAG run names no dataset: its component is left out of the list, its tasks are in it.
    listed = set(airflow["listed"])
    assert "airflow:shop_report" not in listed and "airflow:shop_report.top_customers" in listed


def without_counts(runs: list[dict]) -> list[dict]:
    return [
        {k: v for k, v in r.items() if k not in ("events", "events_after_end", "last_event_id")} for r in runs
    ]


def test_airflow_rerun_with_the_same_logical_date_makes_no_run_and_counts_its_events(airflow):
    rerun = airflow["rerun"]
    assert without_counts(rerun["dag"]) == without_counts(airflow["dag"])
    for task, runs in rerun["tasks"].items():
        assert without_counts(runs) == without_counts(airflow["tasks"][task])
        ((first,), (again,)) = airflow["tasks"][task], runs
        # START and an end the first time, the same two again after the end.
        assert (first["events"], first["events_after_end"]) == (2, 0)
        assert (again["events"], again["events_after_end"]) == (4, 2)
    # `airflow dags test` sends the DAG run's end alone, and again.
    assert [(r["events"], r["events_after_end"]) for r in airflow["dag"]] == [(1, 0)]
    assert [(r["events"], r["events_after_end"]) for r in rerun["dag"]] == [(2, 1)]
