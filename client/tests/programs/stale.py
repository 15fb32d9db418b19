"""
examples/stale.py of mltrace 0.17, ported to compare lineage (test_mltrace017.py).

An inference run reads two model files: one from the first of two training runs (so the
training it depends on has 1 fresher run) and one from a run of some_old_component that
started 60 days earlier (so it was run 60 days ago, past the 30-day threshold).

Changed from the original, and why:
- `create_component("some_old_component", "", "")` before its `log_component_run`: mltrace
  0.17 under SQLAlchemy 1.4 fails with a foreign-key violation when logging a run of a
  component that does not exist yet (its docs create the component first).
- The old run starts `timedelta(days=60)` before now, not `now.replace(month=now.month - 2)`,
  which raises ValueError in January and February (and on the 29th-31st of some months).
- random is seeded, so that the inference's output name is the same in every run; the
  program prints its observations (observe.py) instead of the identifier.
"""

import random
import string
from datetime import datetime, timedelta

import observe

from mltrace import create_component, log_component_run, register, set_address  # noqa: F401
from mltrace.entities import ComponentRun


@register(
    component_name="training",
    input_vars=["version"],
    output_vars=["model_file"],
)
def training(version: str) -> str:
    model_file = "model_" + version
    return model_file


@register(
    component_name="inference",
    input_vars=["model_files"],
    output_vars=["identifier"],
)
def inference(model_files) -> str:
    identifier = "".join(random.choice(string.ascii_lowercase) for i in range(10))
    return identifier


if __name__ == "__main__":
    random.seed(17)

    # Run training once
    version = "0"
    first_model_file = training(version)

    # Fake a component run from 2 months ago
    now = datetime.utcnow()
    create_component("some_old_component", "", "")
    cr = ComponentRun(
        "some_old_component",
        start_timestamp=now - timedelta(days=60),
        end_timestamp=now,
    )
    second_model_file = "model_1"
    cr.add_input("1")
    cr.add_output(second_model_file)
    log_component_run(cr)

    # Run training again
    version = "2"
    third_model_file = training(version)

    # Run inference on old model file. This should be stale!
    first_identifier = inference([first_model_file, second_model_file])

    observe.report(backtraces={"first_identifier": first_identifier, "model_1": second_model_file})
