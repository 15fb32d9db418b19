from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user(username="alice", password="pw")


@pytest.fixture
def token(user) -> str:
    return Token.objects.create(user=user).key


class StreamingAwareClient(APIClient):
    """APIClient whose json() also reads streamed answers (trace and review stream theirs)."""

    def request(self, **kwargs):
        response = super().request(**kwargs)
        if response.streaming:
            response._json = json.loads(b"".join(response.streaming_content))
        return response


@pytest.fixture
def api(token) -> APIClient:
    client = StreamingAwareClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def anon(db) -> APIClient:
    return APIClient()


# --- live processes -------------------------------------------------------------------------


@pytest.fixture
def private_redis():
    from tests.live import PrivateRedis

    server = PrivateRedis()
    server.start()
    yield server
    server.stop()


def database_url(settings_dict: dict, *, host: str | None = None, port: int | None = None) -> str:
    user = settings_dict.get("USER") or ""
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    return (
        f"postgres://{auth}{host or settings_dict.get('HOST') or '127.0.0.1'}:"
        f"{port or settings_dict.get('PORT') or 5432}/{settings_dict['NAME']}"
    )


@pytest.fixture
def live_db(transactional_db):
    """Committed data that other processes see: the test database, reached over TCP."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("live-process tests run against PostgreSQL (make test sets DATABASE_URL)")
    return connection.settings_dict


@pytest.fixture
def web_broker(private_redis, monkeypatch, settings):
    """This process enqueues into the private Redis, as a web process configured for it would."""
    import redis as redis_client
    from django_q.brokers.redis_broker import Redis

    from ingest import broker, flag

    url = private_redis.url

    class PrivateRedisBroker(Redis):
        @staticmethod
        def get_connection(list_key=None):
            return redis_client.from_url(url)

    private = PrivateRedisBroker(list_key=settings.Q_CLUSTER["name"])
    monkeypatch.setattr(broker, "_broker", private)
    # A flag this process saw in another Redis is not up in this one.
    monkeypatch.setattr(flag, "_flag_seen_until", 0.0)
    return private


@pytest.fixture
def cluster_workers() -> int:
    """Worker processes of a test's qcluster: 3, so that materializers run side by side.
    The tests that the order rests on run with 1 as well (parametrize cluster_workers)."""
    return 3


@pytest.fixture
def cluster_env(live_db, private_redis, settings, cluster_workers) -> dict[str, str]:
    import os

    return {
        **os.environ,
        "DATABASE_URL": database_url(live_db),
        "REDIS_URL": private_redis.url,
        "MLTRACE_QUEUE_NAME": settings.Q_CLUSTER["name"],
        "MLTRACE_WORKERS": str(cluster_workers),
        "MLTRACE_SWEEP_SECONDS": "1",
        "MLTRACE_SWEEP_AFTER_SECONDS": "1",
        "DJANGO_SETTINGS_MODULE": "mltrace_site.settings",
    }


@pytest.fixture
def cluster(cluster_env, web_broker):
    from tests.live import Cluster

    process = Cluster(cluster_env)
    process.start()
    yield process
    process.stop()
    print(process.output()[-5000:])
