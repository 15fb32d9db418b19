"""How long the Trace page takes to draw its graph in headless Chromium (target: 2 s).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mltrace .venv/bin/python -m pytest \
        bench/graph_draw.py -p no:cacheprovider -s

A measurement, not a test: it prints the times and writes bench/results/graph-draw.json. The
shapes: an upstream trace of 500 runs (10 layers of 50, each run reading two outputs of the
layer before), and an output read by 10,000 inference runs (the page draws the nearest 500).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
RESULTS = Path(__file__).resolve().parent / "results"
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def batch(api: APIClient, runs: list[dict]) -> None:
    for start in range(0, len(runs), 1000):
        response = api.post(
            "/api/v1/runs/batch/?sync=true", {"runs": runs[start : start + 1000]}, format="json"
        )
        assert response.status_code == 201, response.content


def run(component: str, n: int, inputs: list[str], outputs: list[str]) -> dict:
    moment = (T0 + dt.timedelta(seconds=n)).isoformat()
    return {
        "component": component,
        "start_timestamp": moment,
        "end_timestamp": moment,
        "inputs": inputs,
        "outputs": outputs,
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed")
def test_graph_draw_times(live_server, django_user_model):
    from playwright.sync_api import sync_playwright

    user = django_user_model.objects.create_superuser("bench", password="bench-password")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    n, runs = 0, []
    for layer in range(10):
        for i in range(50):
            n += 1
            inputs = [f"l{layer - 1}_{i}", f"l{layer - 1}_{(i + 1) % 50}"] if layer else ["raw.csv"]
            runs.append(run(f"layer_{layer}", n, inputs, [f"l{layer}_{i}"]))
    runs.append(run("final", n + 1, [f"l9_{i}" for i in range(50)], ["final.csv"]))
    batch(api, runs)
    batch(api, [run("infer", 1000 + i, ["final.csv"], [f"prediction_{i}"]) for i in range(10_000)])

    timings = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{live_server.url}/admin/")
        page.fill("#id_username", "bench")
        page.fill("#id_password", "bench-password")
        page.click("input[type=submit]")
        page.wait_for_selector("text=Lineage")
        for name, query in (
            ("upstream 501 runs", "output_id=final.csv&direction=upstream"),
            ("downstream 10,000 runs", "output_id=final.csv&direction=downstream"),
            ("both", "output_id=final.csv&direction=both"),
        ):
            for _attempt in range(3):
                began = time.perf_counter()
                page.goto(f"{live_server.url}/admin/lineage/trace/?{query}")
                page.wait_for_selector("#graph[data-nodes]")
                loaded = time.perf_counter() - began
                graph = page.evaluate(
                    "() => { const g = document.getElementById('graph').dataset;"
                    " return {drawn_ms: +g.drawnMs, nodes: +g.nodes, edges: +g.edges}; }"
                )
                timings.setdefault(name, []).append({**graph, "page_and_draw_s": round(loaded, 2)})
        browser.close()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "graph-draw.json").write_text(json.dumps(timings, indent=2))
    for name, rows in timings.items():
        print(name, rows)
