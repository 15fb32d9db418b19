"""A DAG for tests/test_producers.py: SQL tasks on the warehouse that dbt built.

`top_customers` reads dbt's aggregate (shop_logs.customer_totals) and writes a table of its
own; the OpenLineage provider extracts both datasets from the SQL, so the trace of its table
crosses into dbt's lineage through the table's name. `missing_table` fails. The connection
comes from AIRFLOW_CONN_WAREHOUSE, which the test sets.
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import DAG

with DAG("shop_report", schedule=None, start_date=dt.datetime(2024, 1, 1), catchup=False):
    SQLExecuteQueryOperator(
        task_id="top_customers",
        conn_id="warehouse",
        sql=[
            "DROP TABLE IF EXISTS shop_logs.top_customers",
            "CREATE TABLE shop_logs.top_customers AS"
            " SELECT customer_id, name, total FROM shop_logs.customer_totals WHERE total > 10",
        ],
    )
    SQLExecuteQueryOperator(
        task_id="missing_table",
        conn_id="warehouse",
        sql="SELECT count(*) FROM shop_logs.no_such_table",
        retries=0,
    )
