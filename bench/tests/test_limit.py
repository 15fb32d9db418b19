"""bench/limit.py: the rows it COPYs for N runs are the rows the commit makes for them."""

from __future__ import annotations

import psycopg2
import pytest

from bench import limit
from bench.seed import seed
from runs.models import IOPointer, Run, RunDependency, RunInput, RunOutput, Write
from tests.conftest import database_url

TABLES = {
    "runs_write": Write,
    "runs_iopointer": IOPointer,
    "runs_run": Run,
    "runs_runinput": RunInput,
    "runs_runoutput": RunOutput,
    "runs_rundependency": RunDependency,
}


@pytest.mark.django_db
@pytest.mark.parametrize("predictions", [1, 10])
def test_the_limit_copies_as_many_rows_per_table_as_the_commit_makes(predictions):
    runs = 230  # two pipeline cycles (etl, train, 100 inference runs) and part of a third
    built = list(limit.build(runs, predictions=predictions, components={"etl": 1, "train": 2, "infer": 3}))
    seed(runs=runs, batch=50, predictions=predictions, say=lambda line: None)

    copied = {table: sum(len(rows.get(table, ())) for rows in built) for table in TABLES}
    committed = {table: model.objects.count() for table, model in TABLES.items()}
    assert copied == committed
    assert committed["runs_runoutput"] == 2 * 3 + (runs - 6) * predictions


def test_the_limit_copies_into_a_migrated_database_of_its_own_and_reports_each_table(live_db):
    url = database_url({**live_db, "NAME": f"{live_db['NAME']}_limit"})

    result = limit.measure(url, runs=250, batch=100, predictions=2, say=lambda line: None)

    assert result["runs"] == 250
    assert result["tables"]["runs_run"]["rows"] == result["tables"]["runs_write"]["rows"] == 250
    assert result["rows"] == sum(part["rows"] for part in result["tables"].values())
    assert result["runs_per_s"] > 0
    connection = psycopg2.connect(url)
    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT COUNT(*) FROM runs_run), (SELECT COUNT(*) FROM runs_runoutput)")
        assert cursor.fetchone() == (250, result["tables"]["runs_runoutput"]["rows"])
    connection.close()
    limit.drop(url)
