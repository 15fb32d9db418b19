# The two commands a newcomer needs: `make run` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/mltrace
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test producers lint format bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# The server's requirements and the client (client/, editable: `mltrace` in this venv is it).
$(VENV)/.installed: $(PY) requirements.txt client/pyproject.toml
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet -e ./client
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# Embedded default: a SQLite file under var/ unless DATABASE_URL is set.
run: $(VENV)/.installed
	$(PY) manage.py migrate --noinput
	$(PY) manage.py setup_local
	$(PY) manage.py serve --host $(HOST) --port $(PORT)

# The real OpenLineage producers that tests/test_producers.py runs, each in a venv of its own,
# cached outside the checkout by its requirements file's hash (tests/venvs.py): built once (about
# a minute each), a no-op after. One that cannot be installed is reported, and does not fail
# make: its tests skip with pip's reason.
PRODUCERS := tests/producers/dbt/requirements.txt tests/producers/airflow/requirements.txt
producers: $(VENV)/.installed-dev
	$(PY) -m tests.venvs $(PRODUCERS)

# The server's suite, then the client's (client/tests, against a live server of its own).
test: $(VENV)/.installed-dev producers
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		MLTRACE_QUEUE_NAME=$${MLTRACE_QUEUE_NAME:-mltrace-test} \
		$(PY) -m pytest $(PYTEST_ARGS)
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(PY) -m pytest client/tests $(PYTEST_ARGS)

$(VENV)/.installed-bench: $(VENV)/.installed-dev requirements-bench.txt
	$(PY) -m pip install --quiet -r requirements-bench.txt
	touch $@

# Every Locust scenario against gunicorn and a qcluster on PostgreSQL and Redis; the report
# lands in bench/results/<timestamp>/report.md. BENCH_ARGS="--users 32 --duration 60 --sizes 0".
bench: $(VENV)/.installed-bench
	$(PY) bench/run.py $(BENCH_ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DATABASE_URL= REDIS_URL= $(VENV)/bin/mypy
	cd client && ../$(VENV)/bin/mypy

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis
