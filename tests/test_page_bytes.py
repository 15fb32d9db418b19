"""MLTRACE_MAX_PAGE_BYTES: what the server sends of heavy runs stays within it.

A page of a list (recent runs, history, impact) stops at the budget and links on; a trace or a
review streams in writes of at most the budget, and reads the same as one built whole.
"""

from __future__ import annotations

import json

import pytest

from tests.factories import log_run, moment, run_request_body

pytestmark = pytest.mark.django_db


# 200 KB of code, as a producer snapshots it: PostgreSQL stores it compressed, in a few KB.
CODE_SNAPSHOT = 'print("hello, world")\n' * 9_100


MAX_PAGE_BYTES = 8 * 2**20  # MLTRACE_MAX_PAGE_BYTES's default


def heavy_chain(api, count: int = 120) -> list[int]:
    """`count` runs of CODE_SNAPSHOT, each reading the output of the one before (sync, 40 a batch)."""
    ids: list[int] = []
    for first in range(0, count, 40):
        runs = [
            run_request_body(
                "etl",
                start=moment(i),
                code_snapshot=CODE_SNAPSHOT,
                inputs=[f"step-{i - 1}.csv"] if i else [],
                outputs=[f"step-{i}.csv"],
            )
            for i in range(first, min(first + 40, count))
        ]
        response = api.post("/api/v1/runs/batch/?sync=true", {"runs": runs}, format="json")
        assert response.status_code == 201, response.content[:300]
        ids += [run["id"] for run in response.json()["runs"]]
    return ids


def walk(api, url: str, link: str) -> tuple[list[list[int]], list[int]]:
    """The run ids of each page from url on, following `link`; and each page's size as sent."""
    pages, sizes = [], []
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.content[:300]
        sizes.append(len(response.content))
        body = response.json()
        listed = body["results"] if "results" in body else [node["run"] for node in body["nodes"]]
        pages.append([run["id"] for run in listed])
        url = body[link]
    return pages, sizes


def test_a_page_of_heavy_runs_stops_at_the_page_bytes_and_links_on(api, settings):
    # Six runs of 40 outputs each, about 3 KB a body as sent: a budget between the size of a
    # page of two and that of a page of three holds two.
    ids = [
        log_run(api, "etl", start=moment(i), outputs=[f"{i}-{n}.csv" for n in range(40)])["id"]
        for i in range(6)
    ]
    two, three = (len(api.get("/api/v1/runs/", {"limit": n}).content) for n in (2, 3))
    settings.MLTRACE_MAX_PAGE_BYTES = (two + three) // 2

    pages, url = [], "/api/v1/runs/?limit=1000"
    while url:
        body = api.get(url).json()
        pages.append([run["id"] for run in body["results"]])
        url = body["next"]
    back = api.get("/api/v1/runs/", {"after": ids[0], "limit": 1000}).json()
    newer = api.get(back["previous"]).json()
    settings.MLTRACE_MAX_PAGE_BYTES = 1
    single = api.get("/api/v1/runs/", {"limit": 1000}).json()

    assert pages == [[ids[5], ids[4]], [ids[3], ids[2]], [ids[1], ids[0]]]
    # Paging back, the page keeps the runs next to its cursor and links on to the newer ones.
    assert [run["id"] for run in back["results"]] == [ids[2], ids[1]]
    assert [run["id"] for run in newer["results"]] == [ids[4], ids[3]]
    assert [run["id"] for run in api.get(newer["previous"]).json()["results"]] == [ids[5]]
    assert [run["id"] for run in single["results"]] == [ids[5]]  # never an empty page


def test_a_trace_of_heavy_runs_is_the_same_built_a_few_runs_at_a_time(api, settings):
    previous: list[str] = []
    for i in range(8):
        outputs = [f"{i}-{n}.csv" for n in range(40)]
        log_run(api, f"step{i}", start=moment(i), inputs=previous, outputs=outputs)
        previous = outputs
    whole = api.get("/api/v1/trace/", {"output_id": previous[0]}).json()
    settings.MLTRACE_MAX_PAGE_BYTES = 6_000

    pieces = api.get("/api/v1/trace/", {"output_id": previous[0]}).json()

    assert len(whole["nodes"]) == 8
    assert pieces == whole


def test_a_page_of_heavy_runs_is_at_most_the_page_bytes_as_sent(api):
    ids = heavy_chain(api)

    recent, recent_sizes = walk(api, "/api/v1/runs/?limit=1000", "next")
    back, back_sizes = walk(api, f"/api/v1/runs/?after={ids[0]}&limit=1000", "previous")
    history, history_sizes = walk(api, "/api/v1/components/etl/history/?limit=1000", "next")
    impact, impact_sizes = walk(api, "/api/v1/impact/?output_id=step-0.csv&limit=1000", "next")

    print("page sizes:", recent_sizes, back_sizes, history_sizes, impact_sizes)
    assert max(recent_sizes + back_sizes + history_sizes + impact_sizes) <= MAX_PAGE_BYTES
    # Every run once, in order, whichever way the pages go.
    assert [run_id for page in recent for run_id in page] == ids[::-1]
    assert [run_id for page in reversed(back) for run_id in page] == ids[:0:-1]
    assert [run_id for page in history for run_id in page] == ids[::-1]
    assert [run_id for page in impact for run_id in page] == ids[1:]
    # A page holds as many runs as fit: a run's body is about 210 KB as sent.
    assert all(len(page) >= 35 for page in recent[:-1])


def test_a_trace_and_a_review_of_heavy_runs_go_out_in_writes_of_at_most_the_page_bytes(api, token):
    from rest_framework.test import APIClient

    ids = heavy_chain(api)
    api.post("/api/v1/flag/", {"output_id": "step-119.csv"}, format="json")
    raw = APIClient()  # the writes as the server streams them, not joined
    raw.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    answers = {}
    for url in ("/api/v1/trace/?output_id=step-119.csv", "/api/v1/review/"):
        response = raw.get(url)
        assert response.status_code == 200 and response.streaming
        writes = [len(piece) for piece in response.streaming_content]
        answers[url] = (writes, json.loads(b"".join(raw.get(url).streaming_content)))

    trace_writes, trace = answers["/api/v1/trace/?output_id=step-119.csv"]
    review_writes, review = answers["/api/v1/review/"]
    print("writes:", trace_writes, review_writes)
    assert sum(trace_writes) > 3 * MAX_PAGE_BYTES  # 27 MB of trace, in pieces
    assert max(trace_writes + review_writes) <= MAX_PAGE_BYTES
    assert [node["run"]["id"] for node in trace["nodes"]] == ids[::-1]
    assert [node["depth"] for node in trace["nodes"]] == list(range(120))
    assert trace["edges"] == [[ids[i], ids[i - 1]] for i in range(119, 0, -1)]
    assert [entry["run"]["id"] for entry in review["runs"]] == ids[::-1]
    assert all(node["run"]["code_snapshot"] == CODE_SNAPSHOT for node in trace["nodes"])
