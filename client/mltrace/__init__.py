"""mltrace, the lineage and tracing library for ML pipelines, as a client of the mltrace server.

The same API as mltrace 0.17, and later mltrace's monitoring (Task, Metric, log_output,
log_feedback, compute_metric). Point it at a server with MLTRACE_SERVER_URL and MLTRACE_TOKEN
(or mltrace.set_server(url, token)); writes are sent in the background, reads see them.
"""

from mltrace._version import __version__
from mltrace.client import (
    add_notes_to_component_run,
    backtrace,
    clean_db,
    compute_metric,
    create_component,
    create_random_ids,
    flag_output_id,
    flush,
    get_all_tags,
    get_component_information,
    get_component_run_information,
    get_components,
    get_db_uri,
    get_git_hash,
    get_git_tags,
    get_history,
    get_io_pointer,
    get_recent_run_ids,
    get_server,
    impact,
    load,
    log_component_run,
    log_feedback,
    log_output,
    register,
    review_flagged_outputs,
    save,
    set_address,
    set_db_uri,
    set_error_callback,
    set_server,
    set_sync,
    tag_component,
    unflag_all,
    unflag_output_id,
    web_trace,
)
from mltrace.db import PointerTypeEnum
from mltrace.entities import (
    Component,
    ComponentRun,
    IOPointer,
    Metric,
    Task,
    Test,
    components,
    supported_sklearn_metrics,
    tests,
)
from mltrace.errors import NotSupported, RefusedWrite, ServerError, ServerUnreachable

__all__ = [
    "clean_db",
    "create_component",
    "register",
    "backtrace",
    "impact",
    "get_history",
    "tag_component",
    "log_component_run",
    "create_random_ids",
    "get_component_information",
    "get_component_run_information",
    "web_trace",
    "get_recent_run_ids",
    "get_io_pointer",
    "set_db_uri",
    "get_db_uri",
    "get_git_hash",
    "get_git_tags",
    "set_address",
    "add_notes_to_component_run",
    "flag_output_id",
    "unflag_output_id",
    "review_flagged_outputs",
    "get_all_tags",
    "get_components",
    "unflag_all",
    "Component",
    "Test",
    "ComponentRun",
    "IOPointer",
    "components",
    "tests",
    "load",
    "save",
    # mltrace's monitoring (after 0.17):
    "log_output",
    "log_feedback",
    "compute_metric",
    "Task",
    "supported_sklearn_metrics",
    "Metric",
    # Ours, beyond mltrace 0.17:
    "__version__",
    "flush",
    "get_server",
    "set_server",
    "set_sync",
    "set_error_callback",
    "PointerTypeEnum",
    "NotSupported",
    "RefusedWrite",
    "ServerError",
    "ServerUnreachable",
]

# Functions of later mltrace (labels, get_tags) that 0.17 did not have and this client lacks.
_LATER_MLTRACE = frozenset(
    (
        "retract_label",
        "retrieve_retracted_labels",
        "retract_labels",
        "retrieve_io_pointers_for_label",
        "get_labels",
        "get_tags",
    )
)


def __getattr__(name):
    if name in _LATER_MLTRACE:

        def not_supported(*args, **kwargs):
            raise NotSupported(
                f"mltrace.{name} is not supported: this client implements mltrace 0.17's API "
                "and later mltrace's monitoring (Task, Metric, log_output), not its labels."
            )

        not_supported.__name__ = name
        return not_supported
    raise AttributeError(f"module 'mltrace' has no attribute {name!r}")
