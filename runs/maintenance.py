"""Keeping PostgreSQL's planner statistics up with a database that grows fast.

Autovacuum analyzes a table once a tenth of it changed, checking every minute. A database
that goes from empty to half a million runs in a minute (a backfill, a burst of predictions)
is read for that minute with statistics taken when it was nearly empty, and the planner then
scans whole tables where an index probe would do (in the benchmark, history and trace take
seconds instead of milliseconds). Workers therefore analyze the run tables themselves when they
have grown by half since the last analyze, between the batches of a backlog too: a backlog
of 250,000 runs committed from an empty database and analyzed only at its end has its
producers' lookup scan every output link (300-500 ms a batch by its end, the batch twice its
time); analyzed between batches, its batches keep to 0.6-0.8 s throughout.
"""

from __future__ import annotations

import logging
import time

from runs.sql import analyze, tables_grown

logger = logging.getLogger(__name__)

TABLES = ("runs_run", "runs_runinput", "runs_runoutput", "runs_rundependency", "runs_iopointer", "runs_write")
CHECK_EVERY_SECONDS = 10
MIN_CHANGES = 10_000

_last_check = float("-inf")


def analyze_if_grown() -> list[str]:
    """ANALYZE the run tables that changed by more than half (and MIN_CHANGES rows) since
    their last analyze; looks at most every CHECK_EVERY_SECONDS. Returns the tables analyzed."""
    global _last_check
    if time.monotonic() - _last_check < CHECK_EVERY_SECONDS:
        return []
    _last_check = time.monotonic()
    grown = tables_grown(list(TABLES), min_changes=MIN_CHANGES)
    for table in grown:
        started = time.perf_counter()
        analyze(table)
        logger.info("analyzed %s in %.0f ms: it grew by half", table, (time.perf_counter() - started) * 1000)
    return grown
