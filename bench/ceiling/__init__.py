"""The ceiling: the least a Django + DRF endpoint that records a request can do.

One view, no authentication, DRF's JSON parsing, one INSERT of the body into a table of its
own, served by gunicorn exactly as the server is (gevent workers, the same handler greenlets,
psycopg2 waiting through gevent). bench/sustained.py loads it with the same wrk script as
POST /api/v1/runs/; what our accept path does beyond it is what it costs over this ceiling.

    DATABASE_URL=postgres://... gunicorn -c bench/ceiling/gunicorn.conf.py
"""

TABLE = "bench_ceiling_hit"
# bench/run.py creates it before it starts the ceiling (no Django here: the bench imports it).
CREATE_TABLE = f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigserial PRIMARY KEY, body jsonb NOT NULL)"
