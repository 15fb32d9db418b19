"""The admin dashboard, used as a person uses it: every page and action, with data."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.test import Client
from django.urls import reverse

from bench.seed import seed
from components.models import Component
from runs.models import IOPointer, Run, Write
from tests.factories import BASE_TIME, create_predictions, log_run, moment, run_request_body

pytestmark = pytest.mark.django_db
DAY = 24 * 3600


@pytest.fixture
def admin_client_(django_user_model) -> Client:
    user = django_user_model.objects.create_superuser("root", password="pw")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def pipeline(api) -> dict[str, dict]:
    runs = {}
    runs["etl"] = log_run(
        api,
        "etl",
        start=moment(0),
        inputs=["raw.parquet"],
        outputs=["clean_data.csv"],
        git_hash="abc1234",
        code_snapshot="def etl():\n    return 1 < 2",
    )
    runs["train"] = log_run(
        api, "train", start=moment(40 * DAY), inputs=["clean_data.csv"], outputs=["model.pkl"]
    )
    runs["infer"] = log_run(
        api,
        "infer",
        start=moment(40 * DAY + 60),
        inputs=["model.pkl"],
        outputs=[
            {"name": "pred_1", "pointer_type": "ENDPOINT"},
            {"name": "pred_2", "pointer_type": "ENDPOINT"},
        ],
    )
    api.post(
        "/api/v1/components/?sync=true", {"name": "etl", "owner": "data", "tags": ["nightly"]}, format="json"
    )
    return runs


def text(response) -> str:
    assert response.status_code == 200, response.status_code
    return re.sub(r"\s+", " ", response.content.decode())


def test_the_index_links_the_lineage_pages_and_django_q(admin_client_):
    page = text(admin_client_.get("/admin/"))

    for name in ("mltrace-trace", "mltrace-review", "mltrace-recent", "mltrace-monitor"):
        assert f'href="{reverse(f"admin:{name}")}"' in page
    for model in ("Components", "Runs", "IO pointers", "Tags", "Accepted writes"):
        assert model in page
    assert "/admin/django_q/" in page


def test_the_component_list_shows_tags_owner_run_count_and_last_run(admin_client_, pipeline):
    page = text(admin_client_.get("/admin/components/component/"))

    row = re.search(r"<tr[^>]*>.*?>etl<.*?</tr>", page).group(0)
    assert "data" in row and "nightly" in row and ">1<" in row
    assert "train" in page and "infer" in page


def test_the_component_list_hides_jobs_that_named_no_dataset_unless_asked(admin_client_, pipeline, api):
    from tests.openlineage_events import dbt_structured_logs

    for body in dbt_structured_logs():
        assert api.post("/api/v1/lineage?sync=true", body, format="json").status_code == 201
    rows = r"<th class=\"field-name\"><a [^>]*>([^<]+)</a>"
    shown = re.findall(rows, text(admin_client_.get("/admin/components/component/")))
    assert shown == ["dbt:jaffle.orders", "etl", "infer", "train"]
    everything = re.findall(rows, text(admin_client_.get("/admin/components/component/?listed=all")))
    assert len(everything) == 4 + 1 + 4 and "dbt:jaffle.orders.sql.1" in everything
    hidden = re.findall(rows, text(admin_client_.get("/admin/components/component/?listed=no")))
    assert hidden == ["dbt:dbt-run-jaffle", *(f"dbt:jaffle.orders.sql.{n}" for n in range(1, 5))]


def test_the_run_list_filters_by_component_stale_and_date_and_searches(admin_client_, pipeline):
    def run_ids(query: str) -> set[int]:
        page = text(admin_client_.get(f"/admin/runs/run/{query}"))
        return {int(i) for i in re.findall(r"/admin/runs/run/(\d+)/change/", page)}

    ids = {name: run["id"] for name, run in pipeline.items()}
    train_component = Run.objects.get(id=ids["train"]).component_id
    assert run_ids("") == set(ids.values())
    assert run_ids(f"?component__id__exact={train_component}") == {ids["train"]}
    assert run_ids("?stale=yes") == {ids["train"]}
    assert run_ids("?stale=no") == {ids["etl"], ids["infer"]}
    assert run_ids("?start_timestamp__gte=2024-01-30+00:00:00%2B00:00") == {ids["train"], ids["infer"]}
    assert run_ids("?q=infer") == {ids["infer"]}
    assert run_ids("?q=abc12") == {ids["etl"]}
    assert run_ids("?q=model.pkl") == {ids["train"], ids["infer"]}
    assert run_ids("?status=failed") == set()


def test_the_status_filter_points_queued_runs_to_the_accepted_writes(admin_client_, api):
    api.post(
        "/api/v1/runs/",
        {"component": "x", "start_timestamp": moment(0), "end_timestamp": moment(0)},
        format="json",
    )

    page = text(admin_client_.get("/admin/runs/run/?status=queued"))

    assert "accepted writes" in page
    assert "/admin/runs/write/?status__exact=queued" in page


def test_a_run_page_lists_its_lineage_and_code(admin_client_, pipeline):
    train = pipeline["train"]

    page = text(admin_client_.get(f"/admin/runs/run/{train['id']}/change/"))

    assert "clean_data.csv" in page and "model.pkl" in page
    assert f"/admin/runs/run/{pipeline['etl']['id']}/change/" in page  # depends on
    assert f"/admin/runs/run/{pipeline['infer']['id']}/change/" in page  # dependents
    assert "was run 40 days ago" in page
    etl_page = text(admin_client_.get(f"/admin/runs/run/{pipeline['etl']['id']}/change/"))
    assert "<pre>def etl(): return 1 &lt; 2</pre>" in etl_page


def test_a_run_page_is_titled_with_its_component_s_name_not_its_id(admin_client_, pipeline):
    run = Run.objects.get(id=pipeline["train"]["id"])

    page = text(admin_client_.get(f"/admin/runs/run/{run.id}/change/"))

    assert f"<title>run {run.id} of train | " in page
    assert f"<h2>run {run.id} of train</h2>" in page
    assert f"run {run.id} of {run.component_id}" not in page


def test_notes_are_the_one_thing_editable_on_a_run(admin_client_, pipeline):
    run_id = pipeline["etl"]["id"]

    response = admin_client_.post(f"/admin/runs/run/{run_id}/change/", {"notes": "checked", "_save": "Save"})

    assert response.status_code == 302
    run = Run.objects.get(id=run_id)
    assert run.notes == "checked"
    assert run.git_hash == "abc1234"


def test_pointers_are_flagged_and_unflagged_by_admin_actions(admin_client_, pipeline):
    pointer = IOPointer.objects.get(name="pred_1")

    flag = admin_client_.post("/admin/runs/iopointer/", {"action": "flag", "_selected_action": [pointer.id]})
    flagged = text(admin_client_.get("/admin/runs/iopointer/?flagged=yes"))
    unflag = admin_client_.post(
        "/admin/runs/iopointer/", {"action": "unflag", "_selected_action": [pointer.id]}
    )

    assert flag.status_code == unflag.status_code == 302
    assert "pred_1" in flagged and "pred_2" not in flagged
    assert not IOPointer.objects.filter(flag=True).exists()


def test_the_trace_page_shows_the_tree_with_links_outputs_and_staleness(admin_client_, pipeline):
    page = text(admin_client_.get("/admin/lineage/trace/?output_id=pred_1"))

    nodes = re.findall(r'data-run="(\d+)"', page)
    assert [int(n) for n in nodes] == [
        pipeline["infer"]["id"],
        pipeline["train"]["id"],
        pipeline["etl"]["id"],
    ]
    assert "pred_1" in page and "pred_2" in page and "model.pkl" in page
    assert "was run 40 days ago" in page
    assert text(admin_client_.get("/admin/lineage/trace/?output_id=nothing")).count("No committed run") == 1


def test_the_trace_and_review_pages_list_at_most_runs_shown(admin_client_, api, monkeypatch):
    from api import dashboard as site_admin

    monkeypatch.setattr(site_admin, "RUNS_SHOWN", 3)
    runs = [
        {
            "component": "chain",
            "start_timestamp": moment(i),
            "end_timestamp": moment(i),
            "inputs": [f"c{i - 1}"] if i else [],
            "outputs": [f"c{i}"],
        }
        for i in range(5)
    ]
    api.post("/api/v1/runs/batch/?sync=true", {"runs": runs}, format="json")
    api.post("/api/v1/flag/", {"output_id": "c4"}, format="json")

    trace = text(admin_client_.get("/admin/lineage/trace/?output_id=c4"))
    review = text(admin_client_.get("/admin/lineage/review/"))

    assert len(re.findall(r'data-run="(\d+)"', trace)) == 3
    assert "and 4 runs upstream" in trace and "And 2 more runs upstream" in trace
    assert len(re.findall(r'<a href="/admin/runs/run/(\d+)/change/">', review.split('id="ranked"')[1])) == 3
    assert "And 2 more runs with fewer flagged outputs" in review


def test_the_review_page_flags_ranks_and_unflags(admin_client_, pipeline):
    flag = admin_client_.post(
        "/admin/lineage/flag/", {"output_id": "pred_1", "action": "flag", "next": "/admin/lineage/review/"}
    )
    page = text(admin_client_.get("/admin/lineage/review/"))
    unflag = admin_client_.post("/admin/lineage/flag/", {"output_id": "pred_1", "action": "unflag"})

    assert flag.status_code == 302 and flag["Location"] == "/admin/lineage/review/"
    assert 'id="flagged"' in page and "pred_1" in page
    ranked = re.findall(r'<a href="/admin/runs/run/(\d+)/change/">', page.split('id="ranked"')[1])
    assert [int(i) for i in ranked] == [
        pipeline["infer"]["id"],
        pipeline["train"]["id"],
        pipeline["etl"]["id"],
    ]
    assert unflag.status_code == 302
    assert not IOPointer.objects.filter(flag=True).exists()


def test_flagging_an_unknown_output_says_so(admin_client_, pipeline):
    response = admin_client_.post("/admin/lineage/flag/", {"output_id": "nope"}, follow=True)

    assert "No IO pointer is named" in text(response)


def test_the_recent_page_lists_the_newest_runs_and_pages_back(admin_client_, api):
    ids = [log_run(api, "etl", start=moment(i))["id"] for i in range(55)]

    first = text(admin_client_.get("/admin/lineage/recent/"))
    older = re.search(r'href="(\?before=\d+)" id="older"', first).group(1)
    second = text(admin_client_.get(f"/admin/lineage/recent/{older}"))

    assert [int(i) for i in re.findall(r"run (\d+)</a>", first)] == list(reversed(ids))[:50]
    assert [int(i) for i in re.findall(r"run (\d+)</a>", second)] == list(reversed(ids))[50:]


def test_the_write_queue_shows_failed_writes_and_retries_them(admin_client_, api):
    accepted = api.post(
        "/api/v1/runs/",
        {"component": "x", "start_timestamp": moment(0), "end_timestamp": moment(0)},
        format="json",
    ).json()
    Write.objects.filter(id=accepted["id"]).update(status="failed", error="KeyError: 'component'")

    listing = text(admin_client_.get("/admin/runs/write/?status__exact=failed"))
    detail = text(admin_client_.get(f"/admin/runs/write/{accepted['id']}/change/"))
    retry = admin_client_.post(
        "/admin/runs/write/", {"action": "retry", "_selected_action": [accepted["id"]]}
    )

    assert "KeyError" in listing
    assert "&quot;component&quot;: &quot;x&quot;" in detail
    assert retry.status_code == 302
    assert Write.objects.get(id=accepted["id"]).status == "queued"


def test_a_write_page_is_read_only_so_a_save_cannot_undo_a_commit(admin_client_, api):
    accepted = api.post("/api/v1/components/", {"name": "etl"}, format="json").json()
    url = f"/admin/runs/write/{accepted['id']}/change/"

    page = text(admin_client_.get(url))
    response = admin_client_.post(url, {"status": "queued"})

    assert 'name="_save"' not in page
    assert response.status_code == 403
    assert Write.objects.get(id=accepted["id"]).status == "queued"


def test_components_are_edited_not_added_in_the_admin_and_keep_their_counts(admin_client_, pipeline):
    component = Component.objects.get(name="train")
    url = f"/admin/components/component/{component.id}/change/"

    assert admin_client_.get("/admin/components/component/add/").status_code == 403
    response = admin_client_.post(url, {"description": "trains", "owner": "ml", "tags": []})

    assert response.status_code == 302
    component.refresh_from_db()
    assert (component.name, component.description, component.owner) == ("train", "trains", "ml")
    assert component.run_count == 1
    assert component.last_run_at is not None


def test_tags_list_with_their_component_counts(admin_client_, pipeline, api):
    tagged = {"name": "train", "tags": ["nightly", "gpu"]}
    assert api.post("/api/v1/components/?sync=true", tagged, format="json").status_code == 200
    page = text(admin_client_.get("/admin/components/tag/"))

    assert "nightly" in page
    # Each tag's row, its count in the components column: nightly tags etl and train.
    rows = re.findall(
        r'<th class="field-name"><a [^>]*>([^<]+)</a></th><td class="field-component_count">(\d+)</td>', page
    )
    assert rows == [("gpu", "1"), ("nightly", "2")]


def test_django_qs_task_pages_stay_reachable(admin_client_):
    for model in ("success", "failure", "schedule"):
        assert admin_client_.get(f"/admin/django_q/{model}/").status_code == 200


# --- at scale: bounded queries and no full-table COUNT -------------------------------------

PAGES = [
    "/admin/",
    "/admin/components/component/",
    "/admin/components/tag/",
    "/admin/runs/run/",
    "/admin/runs/run/?stale=yes",
    "/admin/runs/run/?_facets=1",
    "/admin/runs/write/?_facets=1",
    "/admin/runs/run/?q=infer",
    "/admin/runs/run/?start_timestamp__gte=2020-01-01+00:00:00%2B00:00",
    "/admin/runs/iopointer/",
    "/admin/runs/iopointer/?flagged=yes",
    "/admin/runs/write/",
    "/admin/lineage/review/",
    "/admin/lineage/recent/",
    "/admin/monitor/",
]


def test_every_page_answers_in_bounded_queries_with_capped_counts(
    admin_client_, settings, django_assert_max_num_queries
):
    seed(runs=3000, batch=1000, say=lambda line: None)
    from api.admin import base as admin_base

    settings.DEBUG = False
    admin_base.CAPPED_COUNT = 500  # below the 3,000 rows, so the cap is what answers
    run = Run.objects.order_by("-id").first()
    prediction = IOPointer.objects.filter(pointer_type="ENDPOINT").order_by("-id").first()
    IOPointer.objects.filter(id=prediction.id).update(flag=True)
    pages = [
        *PAGES,
        f"/admin/runs/run/{run.id}/change/",
        f"/admin/lineage/trace/?output_id={prediction.name}",
        f"/admin/runs/run/?q={prediction.name}",
        f"/admin/runs/iopointer/?q={prediction.name}",
    ]
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    try:
        assert "501 runs" in text(admin_client_.get("/admin/runs/run/"))
        for url in pages:
            with django_assert_max_num_queries(12), CaptureQueriesContext(connection) as queries:
                response = admin_client_.get(url)
            assert response.status_code == 200, url
            for query in queries.captured_queries:
                if query["sql"].startswith("SELECT COUNT(*)"):
                    assert "LIMIT 501" in query["sql"], (url, query["sql"])
    finally:
        admin_base.CAPPED_COUNT = 10_000


def _store_too_deep(table: str, column: str, row_id: int, prefix: str = "", suffix: str = "") -> None:
    """A value nested deeper than a process can decode, as a server before the depth bound
    (MLTRACE_MAX_JSON_DEPTH) could store it."""
    from django.db import connection

    deep = prefix + "[" * 990 + "]" * 990 + suffix
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {column} = %s WHERE id = %s", [deep, row_id])


def test_a_value_too_deep_to_decode_leaves_the_lists_and_pages_answering(admin_client_, pipeline, api):
    queued = api.post("/api/v1/runs/", run_request_body("etl"), format="json").json()["id"]
    _store_too_deep("runs_write", "payload", queued, '{"component": "etl", "test_results": ', "}")
    _store_too_deep("runs_run", "test_results", pipeline["train"]["id"])

    run_list = text(admin_client_.get("/admin/runs/run/"))
    run_page = text(admin_client_.get(f"/admin/runs/run/{pipeline['train']['id']}/change/"))
    other_run_page = text(admin_client_.get(f"/admin/runs/run/{pipeline['etl']['id']}/change/"))
    write_list = text(admin_client_.get("/admin/runs/write/"))
    write_page = text(admin_client_.get(f"/admin/runs/write/{queued}/change/"))

    assert f"/admin/runs/run/{pipeline['train']['id']}/change/" in run_list
    assert "(nested too deeply to show)" in run_page and "model.pkl" in run_page
    assert "<pre>def etl(): return 1 &lt; 2</pre>" in other_run_page
    assert f"/admin/runs/write/{queued}/change/" in write_list
    assert "(nested too deeply to show)" in write_page


def test_openlineage_runs_show_open_and_ended_with_their_run_parent_and_events(admin_client_, api):
    from runs.models import OpenLineageRun
    from tests.openlineage_events import airflow_dag, never_ends, run_uuid

    for body in airflow_dag() + never_ends():
        assert api.post("/api/v1/lineage?sync=true", body, format="json").status_code == 201
    load = OpenLineageRun.objects.get(run_uuid=run_uuid("etl-load-0"))

    page = text(admin_client_.get(f"/admin/runs/run/{load.run_id}/change/"))
    assert run_uuid("etl-load-0") in page and "COMPLETE" in page
    assert f"airflow:etl {run_uuid('etl-dag-0')}" in page
    assert "providers-openlineage" in page  # the producer

    open_runs = text(admin_client_.get("/admin/runs/openlineagerun/?open=yes"))
    assert run_uuid("never-ends") in open_runs and run_uuid("etl-load-0") not in open_runs
    stuck = OpenLineageRun.objects.get(run_uuid=run_uuid("never-ends"))
    stuck_page = text(admin_client_.get(f"/admin/runs/openlineagerun/{stuck.id}/change/"))
    assert "open: no run yet" in stuck_page and "RUNNING" in stuck_page

    dag = OpenLineageRun.objects.get(run_uuid=run_uuid("etl-dag-0"))
    assert "3 runs" in text(admin_client_.get(f"/admin/runs/openlineagerun/{dag.id}/change/"))
    events = text(admin_client_.get("/admin/runs/openlineageevent/", {"q": run_uuid("etl-load-0")}))
    assert events.count(run_uuid("etl-load-0")) >= 3
    assert (
        admin_client_.get(
            f"/admin/runs/openlineageevent/{OpenLineageRun.objects.get(run_uuid=run_uuid('etl-load-0')).last_event_id}/change/"
        ).status_code
        == 200
    )


def test_an_openlineage_runs_page_shows_the_events_after_its_end(admin_client_, api):
    from runs.models import OpenLineageRun
    from tests.openlineage_events import airflow_rerun, run_uuid

    for body in airflow_rerun():
        assert api.post("/api/v1/lineage?sync=true", body, format="json").status_code == 201
    task = OpenLineageRun.objects.get(run_uuid=run_uuid("rerun-task"))
    page = text(admin_client_.get(f"/admin/runs/openlineagerun/{task.id}/change/"))
    assert re.search(r'<a href="[^"]*outcome__exact=after\+end[^"]*">2 events after the end</a>', page)
    assert "<li>events after the end 2</li>" in text(
        admin_client_.get(f"/admin/runs/run/{task.run_id}/change/")
    )
    listed = text(
        admin_client_.get(f"/admin/runs/openlineageevent/?q={task.run_uuid}&outcome__exact=after+end")
    )
    assert re.findall(r'class="field-outcome">([^<]+)<', listed) == ["After End", "After End"]


def test_the_trace_page_shows_downstream_runs_and_what_the_graph_leaves_out(admin_client_, api, monkeypatch):
    import json as json_module

    from api import dashboard

    monkeypatch.setattr(dashboard, "GRAPH_RUNS_SHOWN", 2)
    log_run(api, "etl", inputs=["raw.csv"], outputs=["clean.csv"])
    for i in range(4):
        log_run(api, "infer", inputs=["clean.csv"], outputs=[{"name": f"p{i}", "pointer_type": "ENDPOINT"}])

    page = text(admin_client_.get("/admin/lineage/trace/", {"output_id": "clean.csv", "direction": "both"}))

    assert "4 runs downstream of clean.csv; they output 0 data, 0 models, 4 endpoint outputs" in page
    assert "it leaves out 2 runs further downstream" in page
    graph = json_module.loads(
        re.search(r'<script id="graph-data" type="application/json">(.*?)</script>', page)[1]
    )
    assert sorted(n.get("component", n.get("name")) for n in graph["nodes"]) == [
        "clean.csv",
        "etl",
        "infer",
        "infer",
    ]
    assert {"source": "output:clean.csv", "target": graph["nodes"][-1]["id"]} in graph["edges"]
    raw = text(admin_client_.get("/admin/lineage/trace/", {"output_id": "raw.csv", "direction": "upstream"}))
    assert "No committed run has an output named" in raw
    assert "5 runs downstream of raw.csv" in text(
        admin_client_.get("/admin/lineage/trace/", {"output_id": "raw.csv", "direction": "both"})
    )


# --- Monitor: tasks, their metrics and a task's metrics over time ---------------------------

# output, feedback: 5 outputs, 5 feedback, 4 pairs (accuracy 2/4, precision 2/3, recall 2/3).
CHURN = [(1, 1), (0, 1), (1, 0), (1, 1), (1, None), (None, 0)]


def cells(page: str, task: str) -> dict[str, str]:
    """The Monitor list's row of a task: {class or metric name: the cell's text}."""
    row = re.search(rf'<tr data-task="{task}">(.*?)</tr>', page).group(1)
    found = {}
    for attributes, content in re.findall(r"<td([^>]*)>(.*?)</td>", row):
        key = re.search(r'data-metric="([^"]+)"', attributes) or re.search(r'class="number (\w+)', attributes)
        if key:
            found[key.group(1)] = re.sub(r"<[^>]+>", "", content).strip()
    return found


def chart_data(page: str) -> dict:
    return json.loads(
        re.search(r'<script id="chart-data" type="application/json">(.*?)</script>', page).group(1)
    )


def test_the_monitor_page_lists_tasks_with_counts_share_and_metrics(admin_client_, monkeypatch):
    from api import dashboard

    create_predictions("churn", CHURN)
    create_predictions("price", [(1.5, 2.0), (3.0, 3.0)])
    create_predictions("fresh", [(0.5, None)])

    page = text(admin_client_.get("/admin/monitor/"))

    assert "latest 1000 pairs" in page
    assert re.findall(r'<tr data-task="([^"]+)">', page) == ["churn", "fresh", "price"]
    churn = cells(page, "churn")
    assert (churn["outputs"], churn["feedback"], churn["share"]) == ("5", "5", "80.0%")
    assert (churn["accuracy"], churn["precision"], churn["recall"], churn["f1"]) == (
        "0.5",
        "0.6667",
        "0.6667",
        "0.6667",
    )
    price = cells(page, "price")
    assert (price["outputs"], price["feedback"], price["share"]) == ("2", "2", "100.0%")
    assert (price["mean_absolute_error"], price["mean_squared_error"]) == ("0.25", "0.125")
    assert price["accuracy"] == "\u2014" and 'title="accuracy compares class labels' in page
    fresh = cells(page, "fresh")
    assert (fresh["outputs"], fresh["feedback"], fresh["share"], fresh["accuracy"]) == (
        "1",
        "0",
        "0.0%",
        "\u2014",
    )
    assert f'href="{reverse("admin:mltrace-monitor-task", args=["churn"])}"' in page

    monkeypatch.setattr(dashboard, "MONITOR_WINDOW_PAIRS", 1)  # the latest pair alone: (1, 1)
    assert cells(text(admin_client_.get("/admin/monitor/")), "churn")["accuracy"] == "1"


def test_the_monitor_page_pages_tasks_in_a_bounded_number_of_queries(
    admin_client_, monkeypatch, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from api import dashboard

    for i in range(3):
        create_predictions(f"task-{i:02}", CHURN)
    with CaptureQueriesContext(connection) as few:
        text(admin_client_.get("/admin/monitor/"))
    for i in range(3, 12):
        create_predictions(f"task-{i:02}", CHURN * 3, prefix="x")
    with django_assert_max_num_queries(len(few)):  # the same queries for 12 tasks as for 3
        page = text(admin_client_.get("/admin/monitor/"))
    assert len(few) <= 6 and page.count("<tr data-task=") == 12

    monkeypatch.setattr(dashboard, "TASKS_PAGE", 5)
    first = text(admin_client_.get("/admin/monitor/"))
    after = re.search(r'href="(\?after=[^"]+)" id="next"', first).group(1)
    second = text(admin_client_.get(f"/admin/monitor/{after}"))
    assert re.findall(r'<tr data-task="([^"]+)">', first) == [f"task-{i:02}" for i in range(5)]
    assert re.findall(r'<tr data-task="([^"]+)">', second) == [f"task-{i:02}" for i in range(5, 10)]


def test_a_task_page_shows_counts_metrics_and_a_series_per_bucket(
    admin_client_, django_assert_max_num_queries
):
    from django.utils import timezone

    hour = timezone.now().replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=3)
    # 4 pairs in one hour, then 2 (both right) two hours later; the old pair is outside the day.
    create_predictions("churn", CHURN, start=hour, step=dt.timedelta(minutes=1))
    create_predictions("churn", [(1, 1), (0, 0)], start=hour + dt.timedelta(hours=2), prefix="b")
    create_predictions("churn", [(0, 1)], start=hour - dt.timedelta(days=3), prefix="old")

    with django_assert_max_num_queries(16):  # a constant: the data never adds queries
        page = text(admin_client_.get("/admin/monitor/churn/"))

    summary = re.search(r'<table class="mltrace" id="summary">(.*?)</table>', page).group(1)
    assert ">8<" in summary and ">7<" in summary and ">87.5%<" in summary  # 7 pairs of 8 outputs
    window = dict(re.findall(r'data-metric="([^"]+)">([^<]*)', page))
    assert window["accuracy"].strip() == "0.5714"  # 4 of the 7 pairs
    assert window["roc_auc"].strip() and window["roc_auc"].strip() != "\u2014"
    assert "median_absolute_error" in window and "mutual_info_score" in window
    data = chart_data(page)
    assert data["bucket"] == "hour" and data["t"] == [int(hour.timestamp()), int(hour.timestamp()) + 7200]
    assert data["pairs"] == [4, 2]
    series = {m["name"]: m["values"] for m in data["metrics"]}
    assert series["accuracy"] == [0.5, 1.0] and series["precision"] == [2 / 3, 1.0]
    assert "mean_squared_error" in series and data["left_out"] == []
    assert 'src="/static/mltrace/vendor/uPlot.iife.min.js"' in page

    week = chart_data(text(admin_client_.get("/admin/monitor/churn/?range=week&bucket=day")))
    assert sum(week["pairs"]) == 7 and week["bucket"] == "day"
    refused = text(admin_client_.get("/admin/monitor/churn/?range=day&bucket=minute"))
    assert "holds 1,441 minute buckets; at most 1,000" in refused and "chart-data" not in refused
    fallback = text(admin_client_.get("/admin/monitor/churn/?range=year&bucket=second"))
    assert chart_data(fallback)["bucket"] == "hour"


def test_a_task_page_draws_only_the_metrics_defined_somewhere(admin_client_):
    from django.utils import timezone

    create_predictions("price", [(1.5, 2.0), (3.0, 3.0)], start=timezone.now() - dt.timedelta(minutes=5))

    data = chart_data(text(admin_client_.get("/admin/monitor/price/?range=hour&bucket=minute")))

    drawn = {m["name"] for m in data["metrics"]}
    assert drawn == {"mean_absolute_error", "mean_squared_error", "r2", "explained_variance"}
    assert {m["name"] for m in data["left_out"]} == {"accuracy", "precision", "recall", "f1"}


def test_an_unknown_task_is_a_404_and_an_empty_one_says_it_has_no_pairs(admin_client_):
    create_predictions("fresh", [(0.5, None), (None, 1.0)])
    create_predictions("old", [(1, 1)])  # in 2024: no pair in the last day

    assert admin_client_.get("/admin/monitor/nothing/").status_code == 404
    fresh = text(admin_client_.get("/admin/monitor/fresh/"))
    assert "There are no pairs yet" in fresh and "chart-data" not in fresh and 'id="window"' not in fresh
    old = text(admin_client_.get("/admin/monitor/old/"))
    assert "There are no pairs in the last day" in old and "chart-data" not in old
    assert 'data-metric="accuracy">1<' in old  # the latest pairs, however old


def test_the_monitor_page_flags_the_outputs_whose_feedback_disagrees(
    admin_client_, pipeline, django_user_model
):
    # pred_1 is answered wrongly, pred_0 rightly; pred_90 disagrees but names no pointer.
    create_predictions("churn", [(1.0, 1.0), (1.0, 0.0)], prefix="pred_")  # pred_0, pred_1
    create_predictions("churn", [(0.0, 1.0)], prefix="pred_9", start=BASE_TIME + dt.timedelta(seconds=5))
    page = text(admin_client_.get("/admin/monitor/churn/"))
    assert 'id="flag-form"' in page and 'action="/admin/monitor/churn/flag/"' in page

    response = admin_client_.post("/admin/monitor/churn/flag/", {"disagreement": "mismatch"}, follow=True)

    assert response.redirect_chain == [("/admin/monitor/churn/", 302)]
    assert (
        "Of the latest 1,000 pairs, 2 show a mismatch: 1 pointers flagged now, 0 flagged already, "
        "1 identifiers name no pointer." in text(response)
    )
    assert list(IOPointer.objects.filter(flag=True).values_list("name", flat=True)) == ["pred_1"]
    # A threshold no error passes flags nothing more; a user without the permission is refused.
    again = admin_client_.post(
        "/admin/monitor/churn/flag/", {"disagreement": "threshold", "threshold": "1"}, follow=True
    )
    assert "0 show an error over 1: 0 pointers flagged now" in text(again)
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    client = Client()
    client.force_login(viewer)
    refused = client.post("/admin/monitor/churn/flag/", {"disagreement": "mismatch"}, follow=True)
    assert "You may not flag outputs." in text(refused)
    assert admin_client_.post("/admin/monitor/nope/flag/", {}).status_code == 404
