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

    from ingest import broker
    from tests.live import free_port

    port = free_port()  # nothing listens there

    class DeadRedis(Redis):
        @staticmethod
        def get_connection(list_key=None):
            return redis_client.from_url(f"redis://127.0.0.1:{port}/0", socket_connect_timeout=1)

    monkeypatch.setattr(broker, "_broker", DeadRedis(list_key="x"))

    response = anon.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["detail"] == "broker is unavailable."
    assert body["database"] == "ok"
    assert body["broker"].startswith("unavailable")


def _token(capsys, username: str, *args: str) -> APIClient:
    call_command("create_api_token", username, *args)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {capsys.readouterr().out.strip()}")
    return client


# (method, url, body, the scope it needs)
SCOPED = [
    ("get", "/api/v1/runs/", None, "read"),
    ("get", "/api/v1/components/", None, "read"),
    ("get", "/api/v1/review/", None, "read"),
    ("post", "/api/v1/runs/", "run", "write"),
    ("post", "/api/v1/runs/batch/", "batch", "write"),
    ("post", "/api/v1/components/", {"name": "etl2"}, "write"),
    ("post", "/api/v1/flag/", {"output_id": "clean.csv"}, "admin"),
    ("post", "/api/v1/unflag/", {"all": True}, "admin"),
    ("patch", "/api/v1/components/etl/", {"owner": "bob"}, "admin"),
]


def _body(body):
    from tests.factories import run_request_body

    if body == "run":
        return run_request_body("etl")
    if body == "batch":
        return {"runs": [run_request_body("etl")]}
    return body


@pytest.fixture
def seeded(api):
    from tests.factories import log_run

    return log_run(api, "etl", outputs=["clean.csv"])


@pytest.mark.parametrize("scope", ["read", "write", "admin"])
def test_a_scoped_token_may_do_what_its_scope_covers_and_nothing_else(seeded, capsys, scope):
    client = _token(capsys, f"svc-{scope}", "--scope", scope)

    for method, url, body, needs in SCOPED:
        response = getattr(client, method)(url, _body(body), format="json")
        if needs == scope:
            assert response.status_code in (200, 202), (method, url, response.content)
        else:
            assert response.status_code == 403, (method, url, response.status_code)
            assert response.json() == {"detail": f"This token does not have the {needs} scope."}


def test_scopes_add_up_and_a_token_without_scopes_may_do_everything(seeded, capsys):
    both = _token(capsys, "svc", "--scope", "read", "--scope", "write")
    everything = _token(capsys, "old-script")

    assert both.get("/api/v1/runs/").status_code == 200
    assert both.post("/api/v1/runs/", _body("run"), format="json").status_code == 202
    assert both.post("/api/v1/flag/", {"output_id": "clean.csv"}, format="json").status_code == 403
    for method, url, body, _ in SCOPED:
        assert getattr(everything, method)(url, _body(body), format="json").status_code in (200, 202)


def test_an_expired_token_is_401(seeded, capsys, settings):
    settings.MLTRACE_TOKEN_CACHE_SECONDS = 0
    client = _token(capsys, "temp", "--expires-in-days", "-1")

    response = client.get("/api/v1/runs/")

    assert response.status_code == 401
    assert response.json() == {"detail": "The token has expired."}


def test_tokens_are_listed_and_revoked(seeded, capsys, settings):
    settings.MLTRACE_TOKEN_CACHE_SECONDS = 0
    client = _token(capsys, "ci", "--scope", "write", "--expires-in-days", "30")
    key = client._credentials["HTTP_AUTHORIZATION"].split()[1]

    call_command("list_api_tokens")
    listed = capsys.readouterr().out
    call_command("revoke_api_token", key[:8])
    revoked = capsys.readouterr().out

    line = next(line for line in listed.splitlines() if line.startswith("ci\t"))
    assert line.split("\t")[1:3] == [key[:8], "write"]
    assert line.split("\t")[4] != "never"
    assert revoked == f"revoked the token of ci ({key[:8]}...)\n"
    assert client.get("/api/v1/runs/").status_code == 401


def test_revoking_an_unknown_token_says_so(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No token matches 'nobody'"):
        call_command("revoke_api_token", "nobody")


def test_a_session_has_the_admin_s_permissions_in_the_api(seeded, django_user_model):
    from django.contrib.auth.models import Permission

    staff = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_run"))
    client = APIClient()
    client.force_login(staff)

    read = client.get("/api/v1/runs/")
    refused = client.post("/api/v1/flag/", {"output_id": "clean.csv"}, format="json")
    staff.user_permissions.add(Permission.objects.get(codename="change_iopointer"))
    client.force_login(django_user_model.objects.get(username="staff"))  # permissions are cached per user
    allowed = client.post("/api/v1/flag/", {"output_id": "clean.csv"}, format="json")

    assert read.status_code == 200
    assert refused.status_code == 403
    assert refused.json() == {"detail": "Your account does not have the permission runs.change_iopointer."}
    assert allowed.status_code == 200


def test_every_write_flag_and_edit_records_its_user(api, user, capsys):
    from runs.models import Edit
    from tests.factories import run_request_body

    queued = api.post("/api/v1/runs/", run_request_body("etl", outputs=["clean.csv"]), format="json").json()[
        "id"
    ]
    synced = api.post(
        "/api/v1/runs/?sync=true", run_request_body("etl", outputs=["b.csv"]), format="json"
    ).json()["id"]
    keyed = api.post(
        "/api/v1/runs/", run_request_body("etl"), format="json", HTTP_IDEMPOTENCY_KEY="k"
    ).json()["id"]
    api.post("/api/v1/flag/", {"output_id": "b.csv"}, format="json")
    api.post("/api/v1/unflag/", {"all": True}, format="json")
    api.patch(f"/api/v1/runs/{synced}/", {"notes": "checked"}, format="json")
    api.patch("/api/v1/components/etl/", {"owner": "bob"}, format="json")
    api.post("/api/v1/components/etl/tags/", {"tags": ["nightly"]}, format="json")

    users = dict(Write.objects.values_list("id", "accepted_by__username"))
    edits = list(Edit.objects.order_by("id").values_list("user__username", "action", "target", "detail"))

    assert [users[queued], users[synced], users[keyed]] == ["alice"] * 3
    assert edits == [
        ("alice", "flag", "b.csv", {"pointers": 1}),
        ("alice", "unflag all", "", {"pointers": 1}),
        ("alice", "run notes", str(synced), {"notes": "checked"}),
        ("alice", "component", "etl", {"owner": "bob"}),
        ("alice", "component", "etl", {"tags": ["nightly"]}),
    ]


@pytest.mark.parametrize("keyword", ["Bearer", "bearer", "Token"])
def test_a_token_is_read_after_bearer_as_after_token(anon, token, keyword):
    anon.credentials(HTTP_AUTHORIZATION=f"{keyword} {token}")

    assert anon.get("/api/v1/runs/").status_code == 200
    assert anon.post("/api/v1/runs/", _body("run"), format="json").status_code == 202


@pytest.mark.parametrize("header", ["Bearer", "Bearer not-a-token", "Bearer a b"])
def test_a_bad_bearer_header_is_401(anon, header):
    anon.credentials(HTTP_AUTHORIZATION=header)

    response = anon.get("/api/v1/runs/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert "detail" in response.json()


def test_running_create_api_token_again_without_options_keeps_the_token_s_scopes(seeded, capsys, settings):
    settings.MLTRACE_TOKEN_CACHE_SECONDS = 0
    narrow = _token(capsys, "svc", "--scope", "read")
    again = _token(capsys, "svc")

    assert again._credentials == narrow._credentials
    assert again.post("/api/v1/runs/", _body("run"), format="json").status_code == 403


def _made(capsys, username: str, *args: str) -> tuple[list[str], list[str]]:
    """The lines create_api_token printed: (stdout, stderr)."""
    call_command("create_api_token", username, *args)
    out, err = capsys.readouterr()
    return out.splitlines(), err.splitlines()


def test_create_api_token_says_which_scope_a_producer_needs_and_prints_the_token_alone(capsys):
    from mltrace_site.management.commands.create_api_token import HAS_EVERY_SCOPE, LACKS_WRITE, WRITE_NEEDED

    out, err = _made(capsys, "dbt")

    assert out == [Token.objects.get(user__username="dbt").key]  # `TOKEN=$(...)` still reads it
    assert err == [WRITE_NEEDED, HAS_EVERY_SCOPE]
    assert "OpenLineage" in WRITE_NEEDED and "write scope" in WRITE_NEEDED
    assert LACKS_WRITE not in err


def test_create_api_token_warns_that_a_token_without_write_cannot_take_events(seeded, capsys):
    from mltrace_site.management.commands.create_api_token import HAS_SCOPES, LACKS_WRITE, WRITE_NEEDED
    from tests.openlineage_events import never_ends

    out, err = _made(capsys, "dbt", "--scope", "read", "--expires-in-days", "30")
    reader = APIClient()
    reader.credentials(HTTP_AUTHORIZATION=f"Bearer {out[-1]}")

    assert len(out) == 1
    assert err[:3] == [WRITE_NEEDED, HAS_SCOPES.format(scopes="read"), LACKS_WRITE]
    assert err[3].startswith("It expires at ")
    # What the warning is about: an OpenLineage event sent with this token is refused.
    response = reader.post("/api/v1/lineage", never_ends()[0], format="json")
    assert response.status_code == 403
    assert response.json() == {"detail": "This token does not have the write scope."}
    assert not Write.objects.filter(kind=Write.Kind.OPENLINEAGE).exists()


def test_create_api_token_run_again_reports_the_scopes_the_token_keeps(capsys):
    from mltrace_site.management.commands.create_api_token import HAS_SCOPES, LACKS_WRITE

    _made(capsys, "airflow", "--scope", "write", "--scope", "read")
    out, err = _made(capsys, "airflow")

    assert out == [Token.objects.get(user__username="airflow").key]
    assert HAS_SCOPES.format(scopes="read, write") in err
    assert LACKS_WRITE not in err


def test_head_takes_the_query_parameters_of_get(seeded, token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    assert client.head("/api/v1/trace/", {"output_id": "clean.csv"}).status_code == 200
    assert client.options("/api/v1/trace/", {"output_id": "clean.csv"}).status_code == 200
