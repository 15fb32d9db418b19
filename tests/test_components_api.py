from __future__ import annotations

import base64

import pytest

from api.exceptions import MISSING_SLASH
from api.serializers.components import COMPONENT_NAME_SLASH
from components.models import Component, Tag
from runs.models import Write
from tests.factories import create_component, log_run, moment

pytestmark = pytest.mark.django_db

SYNC = "/api/v1/components/?sync=true"


def test_it_creates_a_component_synchronously(api):
    response = api.post(
        SYNC, {"name": "etl", "description": "cleans", "owner": "shreya", "tags": ["b", "a"]}, format="json"
    )

    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "etl"
    assert body["description"] == "cleans"
    assert body["owner"] == "shreya"
    assert body["tags"] == ["a", "b"]
    assert body["run_count"] == 0
    assert body["last_run_at"] is None
    assert body["created_at"].endswith("Z")
    assert Component.objects.get(name="etl").tags.count() == 2


def test_creating_an_existing_component_adds_tags_and_replaces_non_empty_fields(api):
    create_component(api, "etl", description="old", owner="shreya", tags=["a"])

    response = api.post(
        SYNC, {"name": "etl", "description": "", "owner": "rolando", "tags": ["b"]}, format="json"
    )

    assert response.status_code == 200
    body = response.json()
    assert body["description"] == "old"
    assert body["owner"] == "rolando"
    assert body["tags"] == ["a", "b"]
    assert Component.objects.count() == 1


def test_each_component_write_takes_an_id_from_the_shared_sequence(api):
    create_component(api, "a")
    run = log_run(api, "b")
    create_component(api, "c")

    ids = list(Write.objects.order_by("id").values_list("id", "kind"))
    assert [kind for _, kind in ids] == ["component", "run", "component"]
    assert ids[1][0] == run["id"]


def test_it_gets_a_component_with_run_count_and_last_run(api):
    create_component(api, "train")
    log_run(api, "train", start="2024-03-01T00:00:00Z")
    log_run(api, "train", start="2024-02-01T00:00:00Z")

    response = api.get("/api/v1/components/train/")

    assert response.status_code == 200
    assert response.json()["run_count"] == 2
    assert response.json()["last_run_at"] == "2024-03-01T00:00:00Z"


def test_an_unknown_component_is_404(api):
    for response in (
        api.get("/api/v1/components/nope/"),
        api.patch("/api/v1/components/nope/", {"owner": "x"}, format="json"),
        api.post("/api/v1/components/nope/tags/", {"tags": ["x"]}, format="json"),
        api.get("/api/v1/components/nope/history/"),
    ):
        assert response.status_code == 404
        assert "nope" in response.json()["detail"]
    assert not Tag.objects.exists()


def test_a_nul_in_a_component_name_in_the_url_is_404_never_500(api):
    for response in (
        api.get("/api/v1/components/a%00b/"),
        api.patch("/api/v1/components/a%00b/", {"owner": "x"}, format="json"),
        api.post("/api/v1/components/a%00b/tags/", {"tags": ["x"]}, format="json"),
        api.get("/api/v1/components/a%00b/history/"),
    ):
        assert response.status_code == 404
        assert "detail" in response.json()
    assert not Tag.objects.exists()


@pytest.mark.parametrize("url", ["/api/v1/components/", "/api/v1/tags/"])
def test_a_forged_cursor_is_404_never_500(api, url):
    create_component(api, "etl", tags=["prod"])
    for position in ("p=a%00b", "o=x", "r=zz"):
        cursor = base64.b64encode(position.encode()).decode()

        response = api.get(url, {"cursor": cursor})

        assert response.status_code == 404, position
        assert response.json() == {"detail": "Invalid cursor"}


def test_an_unknown_api_url_is_a_json_404(api):
    for url in ("/api/v1/nonexistent/", "/api/v1/runs/abc/"):
        response = api.get(url)

        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert url in response.json()["detail"]


def test_a_write_to_an_api_path_without_its_slash_is_a_json_404_not_a_redirect(api):
    response = api.post("/api/v1/components", {"name": "etl"}, format="json")

    assert response.status_code == 404
    assert response.json() == {"detail": MISSING_SLASH.format(path="/api/v1/components")}
    assert not Component.objects.exists()
    assert api.get("/api/v1/components").status_code == 301  # reads may still be redirected


def test_it_patches_description_and_owner(api):
    create_component(api, "etl", description="old", owner="shreya")

    response = api.patch("/api/v1/components/etl/", {"description": ""}, format="json")

    assert response.status_code == 200
    assert response.json()["description"] == ""
    assert response.json()["owner"] == "shreya"


def test_it_lists_components_by_tag_and_owner(api):
    create_component(api, "a", owner="x", tags=["prod"])
    create_component(api, "b", owner="y", tags=["prod"])
    create_component(api, "c", owner="x")

    def names(**params):
        response = api.get("/api/v1/components/", params)
        assert response.status_code == 200
        return [c["name"] for c in response.json()["results"]]

    assert names() == ["a", "b", "c"]
    assert names(tag="prod") == ["a", "b"]
    assert names(owner="x") == ["a", "c"]
    assert names(tag="prod", owner="x") == ["a"]
    assert names(tag="none") == []


def test_the_component_list_pages_with_limit_and_next(api):
    for name in ("a", "b", "c"):
        create_component(api, name)

    first = api.get("/api/v1/components/", {"limit": 2}).json()
    second = api.get(first["next"]).json()

    assert [c["name"] for c in first["results"]] == ["a", "b"]
    assert first["previous"] is None
    assert [c["name"] for c in second["results"]] == ["c"]
    assert second["next"] is None
    assert second["previous"] is not None


@pytest.mark.parametrize("limit", ["0", "-1", "abc"])
def test_a_bad_limit_is_400(api, limit):
    response = api.get("/api/v1/components/", {"limit": limit})

    assert response.status_code == 400
    assert "limit" in response.json()


def test_a_limit_over_1000_is_capped(api):
    create_component(api, "a")

    response = api.get("/api/v1/components/", {"limit": 5000})

    assert response.status_code == 200
    assert [c["name"] for c in response.json()["results"]] == ["a"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "a" * 256}, "name"),
        ({"name": "a/b"}, "name"),
        ({"name": 5}, "name"),
        ({"name": "a", "tags": "prod"}, "tags"),
        ({"name": "a", "tags": [""]}, "tags"),
        ({"name": "a", "owner": "o" * 256}, "owner"),
        ({"name": "a", "description": None}, "description"),
    ],
)
def test_bad_component_payloads_are_400_and_write_nothing(api, payload, field):
    response = api.post(SYNC, payload, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not Component.objects.exists()
    assert not Write.objects.exists()


def test_a_slash_in_a_name_says_why(api):
    response = api.post(SYNC, {"name": "a/b"}, format="json")

    assert response.json() == {"name": [COMPONENT_NAME_SLASH]}


def test_a_255_character_name_with_any_other_characters_is_accepted(api):
    name = "é ?#%" + "x" * 250

    response = api.post(SYNC, {"name": name}, format="json")

    assert response.status_code == 201
    from urllib.parse import quote

    assert api.get(f"/api/v1/components/{quote(name)}/").json()["name"] == name


def test_it_lists_all_tags(api):
    create_component(api, "a", tags=["z", "y"])
    create_component(api, "b", tags=["y", "x"])

    response = api.get("/api/v1/tags/")

    assert response.status_code == 200
    assert response.json() == {"next": None, "previous": None, "results": ["x", "y", "z"]}


def test_adding_no_tags_is_400(api):
    create_component(api, "a")

    response = api.post("/api/v1/components/a/tags/", {"tags": []}, format="json")

    assert response.status_code == 400
    assert "tags" in response.json()


def test_more_than_1000_tags_is_400_even_when_they_repeat(api):
    create_component(api, "a")

    response = api.post("/api/v1/components/a/tags/", {"tags": ["prod"] * 1001}, format="json")

    assert response.status_code == 400
    assert response.json() == {"tags": ["Ensure this field has no more than 1000 elements."]}
    assert not Tag.objects.exists()


@pytest.mark.parametrize(
    "bound,status",
    [
        ("2024-01-01", 200),
        ("2024-01-01T00:00", 200),
        ("2023-12-31T23:59:59.5Z", 200),
        ("2024-01-01T02:00:00+02:00", 200),
        ("", 400),
        ("2024-01-01 00:00", 400),
        ("2024-W01-1", 400),
        ("20240101", 400),
    ],
)
def test_history_bounds_are_dates_or_iso_date_times_and_nothing_else(api, bound, status):
    log_run(api, "etl", start="2024-01-01T00:00:00Z")

    response = api.get("/api/v1/components/etl/history/", {"date_lower": bound})

    assert response.status_code == status, response.content
    if status == 400:
        assert list(response.json()) == ["date_lower"]
    else:
        assert len(response.json()["results"]) == 1


def test_history_is_newest_start_first_with_limit_and_inclusive_bounds(api):
    runs = [log_run(api, "etl", start=f"2024-01-0{day}T00:00:00Z")["id"] for day in (3, 1, 2, 5, 4)]
    by_day = dict(zip((3, 1, 2, 5, 4), runs, strict=True))
    url = "/api/v1/components/etl/history/"

    default = api.get(url).json()
    limited = api.get(url, {"limit": 2}).json()
    bounded = api.get(url, {"date_lower": "2024-01-02", "date_upper": "2024-01-04T00:00:00Z"}).json()

    assert [r["id"] for r in default["results"]] == [by_day[d] for d in (5, 4, 3, 2, 1)]
    assert [r["id"] for r in limited["results"]] == [by_day[5], by_day[4]]
    assert [r["id"] for r in api.get(limited["next"]).json()["results"]] == [by_day[3], by_day[2]]
    assert [r["id"] for r in bounded["results"]] == [by_day[4], by_day[3], by_day[2]]


def test_history_defaults_to_10_runs_like_mltrace(api):
    for i in range(12):
        log_run(api, "etl", start=moment(i))

    assert len(api.get("/api/v1/components/etl/history/").json()["results"]) == 10


def test_a_bad_history_date_is_400(api):
    log_run(api, "etl")

    response = api.get("/api/v1/components/etl/history/", {"date_lower": "yesterday"})

    assert response.status_code == 400
    assert "date_lower" in response.json()
