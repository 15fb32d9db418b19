"""Names as pipelines write them: URIs with queries and fragments, spaces, '+', '%', '&',
quotes and non-ASCII, in component and pointer names, through register, log_component_run,
flags, backtrace, history and the review.

The decorated functions spell their non-ASCII names with escapes: mltrace 0.17 stores a
register'd function's source as `bytes(source, "ascii")`, so a function whose source holds
a non-ASCII character raises UnicodeEncodeError once it has run, and nothing is logged.
"""

from datetime import datetime, timedelta

import observe

from mltrace import ComponentRun, create_component, flag_output_id, log_component_run, register

SOURCE = "s3://raw bucket/events?date=2024-01-01&v=2#part 1"


@register("Clean & Join (v2+)", input_vars=["source"], output_vars=["cleaned"])
def clean(source):
    cleaned = "gs://donn\u00e9es/clean 100%.parquet"
    return cleaned


@register("model \u00abA\u00bb", input_vars=["cleaned"], output_vars=["model"])
def train(cleaned):
    model = 'models/it\'s "best"+1.pkl'
    return model


@register("score?x=1", input_vars=["model"], output_vars=["scores"], endpoint=True)
def score(model):
    scores = ["id=1&k=2", "id #2", "id%203", "\u00fcn\u00ef c\u00f8d\u00e9 \u2713"]
    return scores


if __name__ == "__main__":
    create_component("Clean & Join (v2+)", "Joins; 100% «clean»", "ana+bo@example.com", ["a tag", "ü"])
    create_component("late 50%", "", "")
    # An hour ago (within the staleness threshold, so no message that depends on the day
    # the program runs), to the microsecond.
    T = datetime.utcnow().replace(microsecond=123456) - timedelta(hours=1)
    old = ComponentRun("late 50%", start_timestamp=T, end_timestamp=T + timedelta(seconds=1))
    old.add_output(SOURCE)
    log_component_run(old)
    model = train(clean(SOURCE))
    scores = score(model)
    for name in scores[:3]:
        flag_output_id(name)

    observe.report(
        backtraces={name: name for name in [SOURCE, model] + scores},
        review=observe.review(),
        history_queries={
            "to the microsecond": observe.history("late 50%", date_lower=T, date_upper=T),
            "a microsecond later": observe.history("late 50%", date_lower=T + timedelta(microseconds=1)),
        },
    )
