"""Explicit dependencies (set_upstream) and staleness, on runs with fixed timestamps.

T is 2024-03-01. In logging order:

  ingest A   T-3d             -> raw_a.csv
  ingest B   T-5d             -> raw_b.csv    (logged after A, starts before it)
  train 1    T-10d12h         raw_b.csv -> model.pkl  (its dependency B starts after it)
  train 2    T-9d             -> model_v2.pkl
  train 3    T-8d             -> model_v3.pkl
  report 1   T                model.pkl, set_upstream("ingest"), threshold 4 days:
             train 1 (inferred) "was run 10 days ago" and "has 2 fresher runs"; ingest A
             (the latest start, not B, the latest logged) is 3 days old: not stale
  ingest C   T+6h             -> raw_c.csv
  report 2   T+1d12h          set_upstream("ingest"), threshold 1 day: C "was run 1 days ago"
  ingest D   T+12h            -> raw_d.csv    (logged after report 2: not fresher for it)
  report 3   T+2d             raw_c.csv, set_upstream("ingest"), threshold 1d12h: C
             (inferred) is 1d18h old and has 1 fresher run (D); D (explicit) is exactly
             1d12h old, not more: not stale. Its dependencies: ingest twice.
  report 4   T+3d             model.pkl without inferred dependencies, set_upstream(["train"]):
             train 3 (the latest start), not train 1
  ingest E   T+5d             -> shared.csv
  ingest F   T+4d             -> shared.csv   (logged after E, starts before it)
  report 5   T+6d             shared.csv: its inferred dependency is F, the latest logged
             producer (E, the latest start, is fresher); shared.csv's trace starts at E
  report 6   T+7d             raw_b.csv: B has 5 fresher runs, A (logged before B) among them

shared.csv is then flagged: the review's trace of it starts at E too. (E and F output it as
an IOPointer: mltrace 0.17 cannot flag an output logged as a string, MLTRACE017.md.)
"""

from datetime import datetime, timedelta

import observe

from mltrace import ComponentRun, IOPointer, create_component, flag_output_id, log_component_run

T = datetime(2024, 3, 1)
DAY = 24 * 60 * 60


def log(component, start, inputs=(), outputs=(), upstream=None, **kwargs):
    run = ComponentRun(component, start_timestamp=start, end_timestamp=start + timedelta(minutes=5))
    for name in inputs:
        run.add_input(name)
    for name in outputs:
        run.add_output(name)
    if upstream is not None:
        run.set_upstream(upstream)
    log_component_run(run, **kwargs)


if __name__ == "__main__":
    # mltrace 0.17 (SQLAlchemy 1.4) needs the component before log_component_run.
    for name in ("ingest", "train", "report"):
        create_component(name, "", "")
    log("ingest", T - timedelta(days=3), outputs=["raw_a.csv"])
    log("ingest", T - timedelta(days=5), outputs=["raw_b.csv"])
    log("train", T - timedelta(days=10, hours=12), inputs=["raw_b.csv"], outputs=["model.pkl"])
    log("train", T - timedelta(days=9), outputs=["model_v2.pkl"])
    log("train", T - timedelta(days=8), outputs=["model_v3.pkl"])
    log(
        "report",
        T,
        inputs=["model.pkl"],
        outputs=["report_1.md"],
        upstream="ingest",
        staleness_threshold=4 * DAY,
    )
    log("ingest", T + timedelta(hours=6), outputs=["raw_c.csv"])
    log(
        "report",
        T + timedelta(days=1, hours=12),
        outputs=["report_2.md"],
        upstream="ingest",
        staleness_threshold=DAY,
    )
    log("ingest", T + timedelta(hours=12), outputs=["raw_d.csv"])
    log(
        "report",
        T + timedelta(days=2),
        inputs=["raw_c.csv"],
        outputs=["report_3.md"],
        upstream="ingest",
        staleness_threshold=DAY + DAY // 2,
    )
    log(
        "report",
        T + timedelta(days=3),
        inputs=["model.pkl"],
        outputs=["report_4.md"],
        upstream=["train"],
        set_dependencies_from_inputs=False,
    )

    log("ingest", T + timedelta(days=5), outputs=[IOPointer("shared.csv")])
    log("ingest", T + timedelta(days=4), outputs=[IOPointer("shared.csv")])
    log("report", T + timedelta(days=6), inputs=["shared.csv"], outputs=["report_5.md"])
    log("report", T + timedelta(days=7), inputs=["raw_b.csv"], outputs=["report_6.md"])
    flag_output_id("shared.csv")

    observe.report(
        backtraces={
            name: name
            for name in (
                "report_1.md",
                "report_3.md",
                "report_4.md",
                "report_5.md",
                "report_6.md",
                "shared.csv",
            )
        },
        review=observe.review(),
    )
