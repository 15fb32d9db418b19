"""Monitoring's reads: the task list and a task, its outputs, feedback and pairs page by page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from api.pagination import LIMIT_INVALID
from api.serializers.task_reads import CURSOR_INVALID, WINDOW_EXCLUSIVE
from common.errors import TASK_NOT_FOUND
from monitoring.models import Prediction, Task
from tests.factories import BASE_TIME, create_predictions

pytestmark = pytest.mark.django_db

READS = ["", "outputs/", "feedback/", "pairs/", "metrics/?metric=accuracy"]


def walk(api, url: str) -> tuple[list[dict], int]:
    """Every result of a list, following its next links; and how many pages it took."""
    results, pages = [], 0
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.content
        results += response.json()["results"]
        url = response.json()["next"]
        pages += 1
    return results, pages


def test_the_task_list_and_a_task(api):
    create_predictions("b", [(1.0, 0.0), (2.0, None), (None, 3.0)])
    create_predictions("a", [(None, 1.0)], start=BASE_TIME + dt.timedelta(days=1))

    listed = api.get("/api/v1/tasks/")
    one = api.get("/api/v1/tasks/b/")

    assert listed.status_code == 200
    assert listed.json() == {
        "next": None,
        "previous": None,
        "results": [
            {
                "name": "a",
                "created_at": "2024-01-02T00:00:00Z",
                "outputs": 0,
                "feedback": 1,
                "pairs": 0,
                "feedback_share": None,
                "last_output_at": None,
            },
            {
                "name": "b",
                "created_at": "2024-01-01T00:00:00Z",
                "outputs": 2,
                "feedback": 2,
                "pairs": 1,
                "feedback_share": 0.5,
                "last_output_at": "2024-01-01T00:00:01Z",
            },
        ],
    }
    assert (one.status_code, one.json()) == (200, listed.json()["results"][1])


def test_the_task_list_pages_by_name(api):
    for name in ["c", "a", "d", "b", "e"]:
        create_predictions(name, [(1.0, 1.0)])

    first = api.get("/api/v1/tasks/?limit=2")
    everything, pages = walk(api, "/api/v1/tasks/?limit=2")

    assert [task["name"] for task in first.json()["results"]] == ["a", "b"]
    assert ([task["name"] for task in everything], pages) == (["a", "b", "c", "d", "e"], 3)


@pytest.mark.parametrize("read", READS)
def test_every_read_of_an_unknown_task_is_a_404(api, read):
    create_predictions("known", [(1.0, 1.0)])

    response = api.get(f"/api/v1/tasks/unknown/{read}")

    assert (response.status_code, response.json()) == (404, {"detail": TASK_NOT_FOUND.format(name="unknown")})


def test_outputs_newest_first_without_the_rows_that_hold_only_feedback(api):
    create_predictions("t", [(0.5, 1.0), (None, 2.0), (1.5, None), (2.5, None)])

    response = api.get("/api/v1/tasks/t/outputs/")

    assert response.status_code == 200
    assert response.json() == {
        "next": None,
        "results": [
            {"timestamp": "2024-01-01T00:00:03Z", "identifier": "3", "value": 2.5},
            {"timestamp": "2024-01-01T00:00:02Z", "identifier": "2", "value": 1.5},
            {"timestamp": "2024-01-01T00:00:00Z", "identifier": "0", "value": 0.5},
        ],
    }


def test_feedback_newest_feedback_first(api):
    create_predictions("t", [(0.5, 1.0), (None, 2.0), (1.5, None)])
    # A feedback that came later than the others, for the oldest output.
    Prediction.objects.filter(identifier="0").update(feedback_at=BASE_TIME + dt.timedelta(hours=1))

    response = api.get("/api/v1/tasks/t/feedback/")

    assert response.json() == {
        "next": None,
        "results": [
            {"timestamp": "2024-01-01T01:00:00Z", "identifier": "0", "value": 1.0},
            {"timestamp": "2024-01-01T00:00:01Z", "identifier": "1", "value": 2.0},
        ],
    }


@pytest.mark.parametrize("read", ["outputs", "feedback", "pairs"])
def test_pages_follow_the_next_cursor_through_ties_of_time(api, read):
    # Seven rows at each of three times: the cursor breaks ties by id.
    for second in range(3):
        create_predictions(
            "t",
            [(float(i), float(i)) for i in range(7)],
            start=BASE_TIME + dt.timedelta(seconds=second),
            step=dt.timedelta(0),
            prefix=f"{second}-",
        )

    first = api.get(f"/api/v1/tasks/t/{read}/?limit=5")
    everything, pages = walk(api, f"/api/v1/tasks/t/{read}/?limit=5")

    assert len(first.json()["results"]) == 5
    assert first.json()["next"].startswith(f"http://testserver/api/v1/tasks/t/{read}/?limit=5&before=")
    newest_first = list(Prediction.objects.order_by("-output_at", "-id").values_list("identifier", flat=True))
    assert [row["identifier"] for row in everything] == newest_first
    assert pages == 5


def test_pairs_of_a_window_of_pairs_page_within_it(api):
    create_predictions("t", [(float(i), float(i % 2)) for i in range(30)])
    create_predictions("t", [(1.0, None), (None, 1.0)], start=BASE_TIME + dt.timedelta(hours=1), prefix="x")

    everything, pages = walk(api, "/api/v1/tasks/t/pairs/?window_pairs=12&limit=5")
    first = api.get("/api/v1/tasks/t/pairs/?window_pairs=12&limit=1").json()["results"][0]

    assert [row["identifier"] for row in everything] == [str(i) for i in range(29, 17, -1)]
    assert pages == 3
    assert first == {
        "identifier": "29",
        "output": 29.0,
        "feedback": 1.0,
        "output_at": "2024-01-01T00:00:29Z",
        "feedback_at": "2024-01-01T00:00:29Z",
    }


def test_window_seconds_reads_the_last_seconds_by_each_ones_time(api):
    now = timezone.now()
    create_predictions(
        "t", [(1.0, 1.0), (2.0, 2.0)], start=now - dt.timedelta(days=3), step=dt.timedelta(days=3, hours=-1)
    )
    # The old output's feedback arrived recently.
    Prediction.objects.filter(identifier="0").update(feedback_at=now - dt.timedelta(minutes=5))

    outputs = api.get("/api/v1/tasks/t/outputs/?window_seconds=7200").json()["results"]
    feedback = api.get("/api/v1/tasks/t/feedback/?window_seconds=7200").json()["results"]
    pairs = api.get("/api/v1/tasks/t/pairs/?window_seconds=7200").json()["results"]

    assert [row["identifier"] for row in outputs] == ["1"]
    assert [row["identifier"] for row in feedback] == ["0", "1"]
    assert [row["identifier"] for row in pairs] == ["1"]  # by output time


def test_limit_defaults_to_100_and_is_capped_at_10000(api):
    task = Task.objects.create(name="t", created_at=BASE_TIME)
    Prediction.objects.bulk_create(
        Prediction(task=task, identifier=str(i), output=1.0, output_at=BASE_TIME + dt.timedelta(seconds=i))
        for i in range(10_001)
    )

    default = api.get("/api/v1/tasks/t/outputs/").json()
    capped = api.get("/api/v1/tasks/t/outputs/?limit=20000").json()
    rest = api.get(capped["next"]).json()

    assert len(default["results"]) == 100
    assert len(capped["results"]) == 10_000
    assert (rest["results"], rest["next"]) == (
        [{"timestamp": "2024-01-01T00:00:00Z", "identifier": "0", "value": 1.0}],
        None,
    )


@pytest.mark.parametrize("limit", ["0", "-1", "x", "1.5"])
def test_a_limit_that_is_not_a_positive_integer_is_a_400(api, limit):
    create_predictions("t", [(1.0, 1.0)])

    response = api.get(f"/api/v1/tasks/t/pairs/?limit={limit}")

    assert (response.status_code, response.json()) == (400, {"limit": [LIMIT_INVALID.format(max=10_000)]})


@pytest.mark.parametrize(
    "cursor", ["abc", "1.2.3", "1", ".5", "1704067200000000.99999999999999999999", "999999999999999999.1"]
)
def test_a_cursor_not_from_a_next_link_is_a_400(api, cursor):
    create_predictions("t", [(1.0, 1.0)])

    for read in ("outputs", "feedback", "pairs"):
        response = api.get(f"/api/v1/tasks/t/{read}/?before={cursor}")

        assert (response.status_code, response.json()) == (400, {"before": [CURSOR_INVALID]})


def test_windows_are_checked(api):
    create_predictions("t", [(1.0, 1.0)])

    both = api.get("/api/v1/tasks/t/pairs/?window_seconds=5&window_pairs=5")
    zero = api.get("/api/v1/tasks/t/pairs/?window_pairs=0")
    seconds_of_pairs = api.get("/api/v1/tasks/t/outputs/?window_pairs=5")

    assert (both.status_code, both.json()) == (400, {"window_pairs": [WINDOW_EXCLUSIVE]})
    assert (zero.status_code, zero.json()) == (
        400,
        {"window_pairs": ["Ensure this value is greater than or equal to 1."]},
    )
    assert seconds_of_pairs.status_code == 400
    assert list(seconds_of_pairs.json()) == ["window_pairs"]


def test_a_page_stops_at_max_page_bytes_and_goes_on_from_there(api, settings):
    create_predictions("t", [(float(i), float(i)) for i in range(20)], prefix="x" * 200)
    whole = api.get("/api/v1/tasks/t/pairs/?limit=20")
    settings.MLTRACE_MAX_PAGE_BYTES = len(whole.content) // 3

    first = api.get("/api/v1/tasks/t/pairs/?limit=20")
    everything, pages = walk(api, "/api/v1/tasks/t/pairs/?limit=20")

    assert len(first.content) <= settings.MLTRACE_MAX_PAGE_BYTES
    assert 0 < len(first.json()["results"]) < 20
    assert everything == whole.json()["results"]
    assert pages >= 3
