"""One real browser (Debian's chromium, driven by Playwright) through the dashboard.

It logs in, opens the trace of a prediction, flags that prediction from the review page, and
saves screenshots under docs/screenshots/ (the README shows them). Chromium is installed by
.ci/run (apt package `chromium`); where it is missing the test says so and skips.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from runs.models import IOPointer
from tests.factories import log_run, moment

pytestmark = pytest.mark.live

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
DAY = 24 * 3600


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed (.ci/run installs it)")
def test_a_person_traces_a_prediction_and_flags_it_from_the_review_page(live_server, api, django_user_model):
    pytest.importorskip("playwright", reason="playwright is in requirements-dev.txt")
    from playwright.sync_api import sync_playwright

    django_user_model.objects.create_superuser("ana", password="correct horse")
    log_run(api, "etl", start=moment(0), inputs=["raw_events.parquet"], outputs=["clean_data.csv"])
    log_run(api, "train", start=moment(35 * DAY), inputs=["clean_data.csv"], outputs=["model.pkl"])
    for batch in range(3):
        log_run(
            api,
            "infer",
            start=moment(35 * DAY + 60 * (batch + 1)),
            inputs=["model.pkl"],
            outputs=[{"name": f"prediction_{batch}_{i}", "pointer_type": "ENDPOINT"} for i in range(3)],
        )
    api.post("/api/v1/flag/", {"output_id": "prediction_0_0"}, format="json")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    # The ORM is not touched while Playwright's event loop runs (Django refuses it there).
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 820})
        page.goto(f"{live_server.url}/admin/")
        page.fill("#id_username", "ana")
        page.fill("#id_password", "correct horse")
        page.click("input[type=submit]")
        page.wait_for_selector("text=Lineage")
        page.screenshot(path=str(SCREENSHOTS / "admin-index.png"))

        page.get_by_role("link", name="Trace", exact=True).click()
        page.fill("#output_id", "prediction_1_2")
        page.click("#trace-form input[type=submit]")
        page.wait_for_selector("#trace")
        components = page.locator("#trace .run-title").all_inner_texts()
        stale = page.locator("#trace .stale").all_inner_texts()
        page.screenshot(path=str(SCREENSHOTS / "trace.png"), full_page=True)

        page.goto(f"{live_server.url}/admin/lineage/review/")
        page.fill("#flag-form input[name=output_id]", "prediction_1_2")
        page.click("#flag-form input[type=submit]")
        page.wait_for_selector("text=Flagged prediction_1_2")
        flagged = page.locator("#flagged li a").all_inner_texts()
        ranked = page.locator("#ranked tbody tr").all_inner_texts()
        page.screenshot(path=str(SCREENSHOTS / "review.png"), full_page=True)

        page.goto(f"{live_server.url}/admin/runs/run/")
        page.screenshot(path=str(SCREENSHOTS / "runs.png"))
        browser.close()

    assert components == ["infer", "train", "etl"]
    assert any("was run 35 days ago" in message for message in stale)
    assert flagged == ["prediction_0_0", "prediction_1_2"]
    assert ranked[0].split()[0] == "2"  # train and etl lie behind both flagged predictions
    assert set(IOPointer.objects.filter(flag=True).values_list("name", flat=True)) == {
        "prediction_0_0",
        "prediction_1_2",
    }
    for name in ("admin-index", "trace", "review", "runs"):
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 10_000


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed (.ci/run installs it)")
def test_the_trace_page_draws_a_diamond_both_ways_as_a_graph(live_server, api, django_user_model):
    pytest.importorskip("playwright", reason="playwright is in requirements-dev.txt")
    from playwright.sync_api import sync_playwright

    django_user_model.objects.create_superuser("ana", password="correct horse")
    # raw.csv -> etl -> clean.csv -> (left, right) -> join -> joined.csv -> report
    etl = log_run(api, "etl", start=moment(0), inputs=["raw.csv"], outputs=["clean.csv"])["id"]
    log_run(api, "left", start=moment(60), inputs=["clean.csv"], outputs=["left.pq"])
    log_run(api, "right", start=moment(120), inputs=["clean.csv"], outputs=["features.pq"])
    join = log_run(api, "join", start=moment(180), inputs=["left.pq", "features.pq"], outputs=["joined.csv"])[
        "id"
    ]
    log_run(
        api,
        "report",
        start=moment(40 * DAY),
        inputs=["joined.csv"],
        outputs=[{"name": "weekly_report", "pointer_type": "ENDPOINT"}],
    )
    api.post("/api/v1/flag/", {"output_id": "left.pq"}, format="json")
    requested: list[str] = []
    drawn = {}

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("request", lambda request: requested.append(request.url))
        page.goto(f"{live_server.url}/admin/")
        page.fill("#id_username", "ana")
        page.fill("#id_password", "correct horse")
        page.click("input[type=submit]")
        page.wait_for_selector("text=Lineage")

        for name, output_id, direction in (
            ("upstream", "joined.csv", "upstream"),
            ("downstream", "clean.csv", "downstream"),
            ("both", "joined.csv", "both"),
        ):
            page.goto(f"{live_server.url}/admin/lineage/trace/?output_id={output_id}&direction={direction}")
            page.wait_for_selector("#graph[data-nodes]")
            drawn[name] = page.evaluate(
                """() => ({
                    nodes: window.mltraceGraph.nodes().map(n => n.data('component') || n.data('name')).sort(),
                    edges: window.mltraceGraph.edges().map(e =>
                        (e.source().data('component') || e.source().data('name')) + '>' +
                        (e.target().data('component') || e.target().data('name'))).sort(),
                    onScreen: window.mltraceGraph.nodes().every(n => n.renderedBoundingBox().w > 0),
                })"""
            )
            if name != "both":
                page.check("#show-pointers")
                page.wait_for_timeout(300)
                page.screenshot(path=str(SCREENSHOTS / f"trace-graph-{name}.png"), full_page=False)

        page.evaluate(f"window.mltraceGraph.$('#run\\\\:{join}').emit('tap')")
        page.wait_for_url(f"**/admin/runs/run/{join}/change/")
        browser.close()

    assert drawn["upstream"]["nodes"] == ["etl", "join", "joined.csv", "left", "right"]
    assert drawn["upstream"]["edges"] == [
        "etl>left",
        "etl>right",
        "join>joined.csv",
        "left>join",
        "right>join",
    ]
    assert drawn["downstream"]["nodes"] == ["clean.csv", "join", "left", "report", "right"]
    assert drawn["downstream"]["edges"] == [
        "clean.csv>left",
        "clean.csv>right",
        "join>report",
        "left>join",
        "right>join",
    ]
    assert drawn["both"]["nodes"] == ["etl", "join", "joined.csv", "left", "report", "right"]
    assert "joined.csv>report" in drawn["both"]["edges"] and "join>joined.csv" in drawn["both"]["edges"]
    assert all(view["onScreen"] for view in drawn.values())
    assert etl != join
    # Every file the pages asked for came from this server: the graph library included.
    assert requested and all(url.startswith(live_server.url) for url in requested), [
        url for url in requested if not url.startswith(live_server.url)
    ]
    for name in ("upstream", "downstream"):
        assert (SCREENSHOTS / f"trace-graph-{name}.png").stat().st_size > 10_000


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed (.ci/run installs it)")
def test_a_task_page_charts_its_metrics_and_pairs_per_hour(live_server, django_user_model):
    pytest.importorskip("playwright", reason="playwright is in requirements-dev.txt")
    import datetime as dt

    from django.utils import timezone
    from playwright.sync_api import sync_playwright

    from tests.factories import create_predictions

    django_user_model.objects.create_superuser("ana", password="correct horse")
    # A churn model over the last day, a pair a minute, drifting: more wrong answers each hour.
    rows = []
    for i in range(23 * 60):
        output = 1 if (i * 7) % 10 < 6 else 0
        wrong = (i * 37) % 100 < 4 + 2 * (i // 60)
        rows.append((output, 1 - output if wrong else output))
    start = timezone.now().replace(second=0, microsecond=0) - dt.timedelta(hours=23)
    create_predictions("churn", rows + [(1, None)] * 40, start=start, step=dt.timedelta(minutes=1))
    requested: list[str] = []
    errors: list[str] = []

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 1300})
        page.on("request", lambda request: requested.append(request.url))
        # Chromium asks for /favicon.ico on its own (the admin has none): not the page's error.
        page.on(
            "console",
            lambda message: (
                errors.append(f"{message.text} {message.location.get('url')}")
                if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico")
                else None
            ),
        )
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.goto(f"{live_server.url}/admin/")
        page.fill("#id_username", "ana")
        page.fill("#id_password", "correct horse")
        page.click("input[type=submit]")
        page.wait_for_selector("text=Monitoring")

        page.get_by_role("link", name="Monitor", exact=True).click()
        page.get_by_role("link", name="churn", exact=True).click()
        page.wait_for_selector("#charts .chart canvas")
        drawn = page.evaluate(
            """() => window.mltraceCharts.map(chart => ({
                series: chart.series[1].label,
                points: chart.data[0].length,
                width: chart.ctx.canvas.width,
                height: chart.ctx.canvas.height,
            }))"""
        )
        legend = page.locator("#charts .u-legend .u-series:nth-child(2) .u-label").all_inner_texts()
        titles = page.locator("#charts .u-title").all_inner_texts()
        page.screenshot(path=str(SCREENSHOTS / "monitor.png"))
        browser.close()

    assert errors == []
    metrics = ["accuracy", "precision", "recall", "f1", "mean_absolute_error", "mean_squared_error", "r2"]
    assert [chart["series"] for chart in drawn] == [*metrics, "explained_variance", "pairs"]
    assert legend == [*metrics, "explained_variance", "pairs"]
    assert titles[0] == "accuracy per hour" and titles[-1] == "pairs per hour"
    assert all(
        chart["points"] in (23, 24) and chart["width"] > 300 and chart["height"] > 100 for chart in drawn
    )
    assert requested and all(url.startswith(live_server.url) for url in requested)
    assert (SCREENSHOTS / "monitor.png").stat().st_size > 10_000
