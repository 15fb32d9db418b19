"""docker-compose.yml, the Dockerfile and .env.example agree with the settings.

No Docker engine runs here, so the compose file is parsed and checked: its services, their
commands, volumes and environment, against what mltrace_site/settings.py reads.
"""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import dj_database_url
import pytest
import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = (ROOT / "mltrace_site" / "settings.py").read_text()


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's ${VAR:-default} and ${VAR:?message}, with these values or the defaults."""
    env = env or {}

    def replace(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if name in env:
            return env[name]
        if op == ":-":
            return arg
        raise AssertionError(f"{name} must be set ({arg})")

    return re.sub(r"\$\{(\w+)(:-|:\?)?([^}]*)\}", replace, value)


def settings_reads(name: str) -> bool:
    return re.search(rf'env_\w+\("{name}"', SETTINGS) is not None


def test_it_has_the_production_services(compose):
    assert set(compose["services"]) == {"postgres", "redis", "migrate", "web", "worker"}


def test_postgres_keeps_its_data_in_a_volume(compose):
    postgres = compose["services"]["postgres"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    assert "pgdata" in compose["volumes"]


# What docker-compose.yml's postgres command sets for the write load (its comments say why),
# and bench/pgcluster.py runs; sized for the host the file states.
SHIPPED_POSTGRES = {
    "shared_buffers": "4GB",
    "effective_cache_size": "10GB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
    "checkpoint_completion_target": "0.9",
    "wal_compression": "lz4",
}


def test_postgres_runs_with_the_settings_for_the_write_load(compose):
    from bench.pgcluster import compose_settings

    command = compose["services"]["postgres"]["command"]
    assert command[0] == "postgres"
    assert compose_settings(ROOT / "docker-compose.yml") == SHIPPED_POSTGRES


def test_postgres_durability_is_not_weakened(compose):
    from bench.pgcluster import compose_settings

    settings_ = compose_settings(ROOT / "docker-compose.yml")
    # A 202 promises a durable write: commits wait for the WAL's fsync, and pages cannot tear.
    for name in ("fsync", "synchronous_commit", "full_page_writes"):
        assert settings_.get(name, "on") == "on", name
    assert "commit_delay" not in settings_ and "wal_level" not in settings_


def test_each_postgres_setting_carries_its_reason():
    lines = (ROOT / "docker-compose.yml").read_text().splitlines()
    for name, value in SHIPPED_POSTGRES.items():
        at = lines.index(f"      - {name}={value}")
        assert lines[at - 1].strip() == "- -c", name
        assert lines[at - 2].strip().startswith("#"), f"{name} has no comment above it"


def test_postgres_has_shared_memory_for_parallel_queries(compose):
    # Docker's /dev/shm is 64 MB unless the service asks for more.
    assert compose["services"]["postgres"]["shm_size"] == "1gb"


def test_redis_runs_with_the_append_only_file(compose):
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") for v in compose["services"]["redis"]["volumes"])


def test_migrations_run_once_before_web_and_workers(compose):
    services = compose["services"]
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_web_is_gunicorn_and_workers_are_qcluster(compose):
    web = compose["services"]["web"]
    worker = compose["services"]["worker"]
    assert web["command"][:2] == ["gunicorn", "mltrace_site.wsgi"]
    # gunicorn.conf.py holds the worker class and the timeout; the command overrides neither.
    assert not [arg for arg in web["command"] if arg.startswith(("--timeout", "--worker-class", "-k"))]
    assert worker["command"] == ["python", "manage.py", "qcluster"]
    # --scale worker=N needs containers that claim no fixed name or host port.
    assert "container_name" not in worker and "ports" not in worker


def test_gunicorn_conf_serves_with_gevent_workers_that_outwait_a_sync_write():
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert conf["wsgi_app"] == "mltrace_site.wsgi:application"
    assert conf["worker_class"] == "gevent"
    # A sync write may wait MLTRACE_SYNC_LOCK_TIMEOUT_MS for its 503; gunicorn must not kill it first.
    assert conf["timeout"] * 1000 > settings.MLTRACE_SYNC_LOCK_TIMEOUT_MS


def test_the_app_environment_points_at_the_compose_services(compose):
    env = {
        k: interpolate(str(v), {"SECRET_KEY": "s"})
        for k, v in compose["services"]["web"]["environment"].items()
    }
    database = dj_database_url.parse(env["DATABASE_URL"])
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert database["HOST"] == "postgres"
    assert database["NAME"] == compose["services"]["postgres"]["environment"]["POSTGRES_DB"]
    assert env["REDIS_URL"].startswith("redis://redis:")
    assert compose["services"]["worker"]["environment"] == compose["services"]["web"]["environment"]


def test_every_app_variable_is_one_the_settings_read(compose):
    for name in compose["services"]["web"]["environment"]:
        assert settings_reads(name), name


def test_the_secret_key_must_be_set(compose):
    with pytest.raises(AssertionError, match="SECRET_KEY"):
        interpolate(compose["services"]["web"]["environment"]["SECRET_KEY"])


def test_the_env_example_names_only_variables_that_are_used(compose):
    text = (ROOT / "docker-compose.yml").read_text()
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name = line.split("=", 1)[0]
            assert settings_reads(name) or f"${{{name}" in text, name


def test_the_dockerfile_installs_the_requirements_and_copies_every_app():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install -r requirements.txt" in dockerfile
    assert "collectstatic" in dockerfile
    # Every package of the server (its layers, tests/test_layout.py), and nothing of bench/.
    from tests.test_layout import LAYERS

    for package in ("mltrace_site", "components", "runs", *LAYERS):
        assert f"COPY {package} ./{package}" in dockerfile
    assert re.search(r"^COPY .*\bgunicorn\.conf\.py\b", dockerfile, re.M)
    assert "bench" not in dockerfile
    assert re.search(r'^CMD \["gunicorn", "mltrace_site.wsgi"', dockerfile, re.M)
