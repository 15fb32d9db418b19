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
