from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from runs.models import Write

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("get", "/api/v1/components/"),
    ("post", "/api/v1/components/"),
    ("get", "/api/v1/components/etl/"),
    ("patch", "/api/v1/components/etl/"),
    ("post", "/api/v1/components/etl/tags/"),
    ("get", "/api/v1/components/etl/history/"),
    ("get", "/api/v1/tags/"),
    ("get", "/api/v1/runs/"),
    ("post", "/api/v1/runs/"),
    ("post", "/api/v1/runs/batch/"),
    ("get", "/api/v1/runs/1/"),
    ("patch", "/api/v1/runs/1/"),
    ("get", "/api/v1/trace/?output_id=x"),
    ("post", "/api/v1/flag/"),
    ("post", "/api/v1/unflag/"),
    ("get", "/api/v1/review/"),
]


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_every_api_endpoint_needs_a_token(anon, method, url):
    response = getattr(anon, method)(url, {"name": "etl"}, format="json")

    assert response.status_code == 401
    assert "detail" in response.json()
    assert response["WWW-Authenticate"] == "Token"
    assert not Write.objects.exists()


def test_a_wrong_token_is_401(anon):
    anon.credentials(HTTP_AUTHORIZATION="Token not-a-token")

    assert anon.get("/api/v1/components/").status_code == 401


def test_a_logged_in_admin_session_works(db):
    get_user_model().objects.create_superuser("root", password="pw")
    client = APIClient()
    client.login(username="root", password="pw")

    assert client.get("/api/v1/components/").status_code == 200


def test_create_api_token_creates_the_user_and_prints_a_stable_token(capsys):
    call_command("create_api_token", "bob")
    first = capsys.readouterr().out.strip()
    call_command("create_api_token", "bob")
    second = capsys.readouterr().out.strip()

    assert first == second
    assert Token.objects.get(user__username="bob").key == first
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {first}")
    assert client.get("/api/v1/tags/").status_code == 200


def test_setup_local_creates_the_admin_and_prints_how_to_use_it(capsys, settings, tmp_path, monkeypatch):
    settings.VAR_DIR = tmp_path
    monkeypatch.delenv("MLTRACE_ADMIN_PASSWORD", raising=False)

    call_command("setup_local")
    out = capsys.readouterr().out

    password = (tmp_path / "admin-password").read_text().strip()
    token = Token.objects.get(user__username="admin").key
    assert password in out
    assert token in out
    # The two lines a user pastes to point the client at this server.
    assert "    export MLTRACE_SERVER_URL=http://127.0.0.1:8000\n" in out
    assert f"    export MLTRACE_TOKEN={token}\n" in out
    assert get_user_model().objects.get(username="admin").check_password(password)


def test_health_needs_no_token(anon):
    assert anon.get("/healthz").status_code == 200
    ready = anon.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"


def test_readyz_names_the_broker_when_it_does_not_answer(anon, monkeypatch):
    import redis as redis_client
    from django_q.brokers.redis_broker import Redis

    from ingest import tasks
    from tests.live import free_port

    port = free_port()  # nothing listens there

    class DeadRedis(Redis):
        @staticmethod
        def get_connection(list_key=None):
            return redis_client.from_url(f"redis://127.0.0.1:{port}/0", socket_connect_timeout=1)

    monkeypatch.setattr(tasks, "_broker", DeadRedis(list_key="x"))

    response = anon.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["detail"] == "broker is unavailable."
    assert body["database"] == "ok"
    assert body["broker"].startswith("unavailable")
