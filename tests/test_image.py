"""The image as the Dockerfile builds it, without Docker: its install, its steps and its CMD.

No Docker engine runs here, so this stands in for building the image. It reads the Dockerfile
and does what it says, outside the checkout and away from the test tools:
- a venv from `requirements.txt` alone (the image's `pip install -r requirements.txt`), cached
  by the file's hash (tests/venvs.py);
- the app's files, copied as the COPY lines name them, into a folder of their own;
- the RUN steps that use the app (collectstatic), then docker-compose.yml's migrate command on
  a new database, then the CMD as written, and the compose file's worker command beside it;
- the compose file's environment, with this machine's PostgreSQL and a private Redis.

A package the image needs at run time but that only the test tools bring (gunicorn's gevent
worker needed `packaging`) fails here, where `make test`'s own venv would hide it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
import yaml
from django.conf import settings

from tests import venvs
from tests.conftest import database_url
from tests.factories import run_request_body
from tests.live import ROOT, PrivateRedis, free_port, http, serves, wait_until
from tests.test_deployment import interpolate

pytestmark = pytest.mark.live

# RUN steps that set up the image's user and folders: nothing to run outside a container.
IMAGE_ONLY = ("useradd ", "mkdir ", "chown ")


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) in order, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def image_plan() -> dict:
    """What the Dockerfile does, in the terms this test runs: files, env, steps and CMD."""
    plan: dict = {"copy": [], "env": {}, "steps": [], "install": None, "cmd": None}
    for instruction, args in dockerfile_instructions():
        if instruction == "COPY":
            *sources, _destination = args.split()
            plan["copy"] += sources
        elif instruction == "ENV":
            plan["env"].update(dict(pair.split("=", 1) for pair in shlex.split(args)))
        elif instruction == "RUN":
            for step in (part.strip() for part in args.split("&&")):
                if step.startswith("pip install"):
                    plan["install"] = step
                elif not step.startswith(IMAGE_ONLY):
                    plan["steps"].append(step)
        elif instruction == "CMD":
            plan["cmd"] = json.loads(args)
    return plan


def test_the_plan_reads_the_dockerfile_as_it_is():
    """If the Dockerfile changes shape, this test says so before the live one misreads it."""
    plan = image_plan()
    assert plan["install"] == "pip install -r requirements.txt"
    assert plan["steps"] == ["SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput"]
    assert plan["cmd"][:2] == ["gunicorn", "mltrace_site.wsgi"]
    assert "--bind" in plan["cmd"] and "requirements.txt" in plan["copy"]
    assert plan["env"]["PYTHONUNBUFFERED"] == "1"


def serve_on(cmd: list[str], port: int) -> list[str]:
    """The CMD with its bind address (0.0.0.0:8000 in the image) moved to a free local port."""
    cmd = list(cmd)
    at = cmd.index("--bind")
    cmd[at + 1] = f"127.0.0.1:{port}"
    return cmd


@pytest.fixture(scope="module")
def image_python() -> Path:
    """The venv the image's `pip install -r requirements.txt` makes; built here if missing."""
    try:
        return venvs.ensure(ROOT / "requirements.txt", retry_failed=True)
    except venvs.VenvUnavailable as error:
        pytest.fail(f"the image's requirements do not install: {error}")


@pytest.fixture
def image_database() -> Iterator[str]:
    """A new, empty database: what the compose file's migrate service starts from."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("the image runs against PostgreSQL (make test sets DATABASE_URL)")
    name = f"{db['NAME']}_image_{os.getpid()}"
    admin = psycopg2.connect(database_url({**db, "NAME": "postgres"}))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url({**db, "NAME": name})
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_the_image_serves_accepts_and_its_worker_commits(image_python, image_database, tmp_path):
    plan = image_plan()
    app = tmp_path / "app"  # the image's WORKDIR
    app.mkdir()
    for source in plan["copy"]:
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, app / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / source, app / source)
    redis = PrivateRedis()
    redis.start()
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    env = {
        "PATH": f"{image_python.parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        **plan["env"],
        **{
            k: interpolate(str(v), {"SECRET_KEY": "image-test"})
            for k, v in services["web"]["environment"].items()
        },
        "DATABASE_URL": image_database,
        "REDIS_URL": redis.url,
    }
    processes: list[subprocess.Popen] = []

    def step(command: str | list[str]) -> str:
        result = subprocess.run(
            command, shell=isinstance(command, str), cwd=app, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def start(command: list[str], log: str) -> subprocess.Popen:
        process = subprocess.Popen(
            command,
            cwd=app,
            env=env,
            stdout=(tmp_path / log).open("w"),  # noqa: SIM115 - lives as long as the process
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        processes.append(process)
        return process

    try:
        for command in plan["steps"]:
            step(command)
        assert (app / "var" / "static" / "admin").is_dir()  # served by whitenoise, not the finders
        step(services["migrate"]["command"])
        token = step(["python", "manage.py", "create_api_token", "image"]).strip().splitlines()[-1]
        port = free_port()
        web = start(serve_on(plan["cmd"], port), "web.log")
        url = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: web.poll() is not None or serves(f"{url}/healthz"), timeout=60, what="gunicorn to serve"
        )
        assert web.poll() is None, (tmp_path / "web.log").read_text()[-3000:]
        ready = http("GET", f"{url}/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ok", ready.body

        headers = {"Authorization": f"Token {token}"}
        run = run_request_body("image", inputs=["raw.csv"], outputs=["clean.csv"])
        accepted = http("POST", f"{url}/api/v1/runs/", json_body=run, headers=headers)
        assert accepted.status_code == 202, accepted.body
        run_url = f"{url}/api/v1/runs/{accepted.json()['id']}/"

        worker = start(services["worker"]["command"], "worker.log")
        wait_until(
            lambda: (
                worker.poll() is not None
                or http("GET", run_url, headers=headers).json()["status"] == "committed"
            ),
            timeout=60,
            what="the image's qcluster to commit the write",
        )
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
        body = http("GET", run_url, headers=headers).json()
        assert body["component"] == "image" and [p["name"] for p in body["outputs"]] == ["clean.csv"]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(40)
            except subprocess.TimeoutExpired:
                process.kill()
        redis.stop()
        for log in ("web.log", "worker.log"):
            if (tmp_path / log).exists():
                print(f"--- {log}\n" + (tmp_path / log).read_text()[-3000:])
