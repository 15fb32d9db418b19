"""What a program's lineage looks like, read back through mltrace's public API.

Imported by the programs of this directory, under mltrace 0.17 (Python 3.9) and under our
client (Python 3.11), so: mltrace's public API only, and Python 3.9 syntax. It keeps what is
meaningful in both systems: run ids (test_mltrace017.py renumbers them by rank), component
names, depths, staleness messages, pointer names. No pointer values (0.17 stores digests),
and every list whose order 0.17 does not fix is sorted (a run's inputs, outputs,
dependencies and staleness messages; the names of flagged outputs).

A program ends with `report(...)`, which prints ONE JSON object:

    run_ids     every committed run's id, ascending (what ids are renumbered against)
    components  {name: [description, owner, sorted tags]} of every component
    history     {name: get_history(name, limit=None)} of every component, newest start first
    backtrace   {label: backtrace(output name)} for the outputs the program names
    ...         whatever else the program observed (labelled reviews, history queries)
"""

import json

import mltrace

# More runs than any program logs: get_recent_run_ids() has no "all".
ALL_RUNS = 1000000


def run_entry(run):
    """A run of get_history: [id, component, stale, dependencies, inputs, outputs]."""
    return [
        int(run.id),
        run.component_name,
        sorted(run.stale or []),
        sorted(run.dependencies or []),
        sorted(pointer["name"] for pointer in run.inputs),
        sorted(pointer["name"] for pointer in run.outputs),
    ]


def history(component_name, *args, **kwargs):
    """get_history(...) as run entries, in the order it returns them."""
    return [run_entry(run) for run in mltrace.get_history(component_name, *args, **kwargs)]


def trace(output_name):
    """backtrace(output_name) as [depth, component, id], in the order it returns them."""
    return [[depth, run.component_name, int(run.id)] for depth, run in mltrace.backtrace(output_name)]


def review():
    """review_flagged_outputs() as {"flagged": sorted names, "runs": [[component, id, count]]}."""
    flagged, runs = mltrace.review_flagged_outputs()
    return {
        "flagged": sorted(flagged),
        "runs": [[run.component_name, int(run.id), count] for run, count in runs],
    }


def component_names():
    try:
        return sorted(component.name for component in mltrace.get_components())
    except RuntimeError:  # mltrace raises "Search yielded no components." for none
        return []


def component_entry(name):
    component = mltrace.get_component_information(name)
    return [component.description, component.owner, sorted(component.tags)]


def report(backtraces=None, **observed):
    """Prints the program's observations as one JSON object (see the module's docstring)."""
    names = component_names()
    observations = {
        "run_ids": sorted(int(run_id) for run_id in mltrace.get_recent_run_ids(ALL_RUNS)),
        "components": {name: component_entry(name) for name in names},
        "history": {name: history(name, limit=None) for name in names},
        "backtrace": {label: trace(output) for label, output in (backtraces or {}).items()},
    }
    observations.update(observed)
    print(json.dumps(observations, sort_keys=True))
