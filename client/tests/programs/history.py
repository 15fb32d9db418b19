"""get_history's limit and date bounds (datetimes, strings, None), on fixed timestamps.

Six etl runs start at T0 + 30, 10, 50, 0, 20 and 24 hours (T0 is 2024-01-01), logged in that
order, so that newest-start-first is not the logging order. Bounds are inclusive.
"""

from datetime import datetime, timedelta

import observe

from mltrace import ComponentRun, create_component, log_component_run

T0 = datetime(2024, 1, 1)
HOURS = [30, 10, 50, 0, 20, 24]


if __name__ == "__main__":
    create_component("etl", "Cleans", "ana", ["nightly"])
    for n, hours in enumerate(HOURS):
        start = T0 + timedelta(hours=hours)
        run = ComponentRun("etl", start_timestamp=start, end_timestamp=start + timedelta(minutes=30))
        run.add_input("raw.csv")
        run.add_output(f"clean_{n}.csv")
        log_component_run(run)

    lower, upper = T0 + timedelta(hours=10), T0 + timedelta(hours=30)
    queries = {
        "default limit": observe.history("etl"),
        "limit 3": observe.history("etl", limit=3),
        "limit 1": observe.history("etl", 1),
        "limit 0": observe.history("etl", limit=0),
        "datetime bounds": observe.history("etl", limit=None, date_lower=lower, date_upper=upper),
        "datetime bounds, limit 2": observe.history("etl", limit=2, date_lower=lower, date_upper=upper),
        "lower bound only": observe.history("etl", date_lower=T0 + timedelta(hours=24)),
        "upper bound only": observe.history("etl", date_upper=T0 + timedelta(hours=20)),
        "string bounds": observe.history(
            "etl", limit=None, date_lower="2024-01-01 10:00:00", date_upper="2024-01-02T06:00:00"
        ),
        "string bound, a date": observe.history("etl", date_upper="2024-01-02"),
        "string bound, UTC": observe.history("etl", date_lower="2024-01-02T00:00:00Z"),
        "None bounds": observe.history("etl", limit=None, date_lower=None, date_upper=None),
        "empty window": observe.history("etl", date_lower=T0 + timedelta(days=30)),
        "unknown component": observe.history("nobody"),
    }

    observe.report(history_queries=queries)
