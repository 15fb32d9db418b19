"""OpenLineage events read as mltrace's terms: a job is a component, a dataset a pointer.

`read_event` checks an event as received (a dict decoded from JSON) and returns what the
commit needs of it, as an `Event`. It is the one reading of an event: the API calls it to
refuse bad input before the 202, and the commit calls it again on the stored event, so both
read the same thing. It raises InvalidInput naming the field (dotted, "run.runId").

Strict only where nothing can be built without the field: eventTime, run.runId, job.namespace
and job.name (a DatasetEvent: dataset.namespace and dataset.name), and the namespace and name
of each dataset. Lenient where real producers are: producer and schemaURL may be missing or
odd, eventType may be missing (read as OTHER), a runId need not be a UUID, an eventTime
without a zone is UTC, and a facet that is not in the shape the spec gives is ignored.

The mapping (docs/API.md, "OpenLineage"):
- component name: namespace and name, each with "%" "/" and (namespace only) ":" escaped as
  %25 %2F %3A, joined by ":" ("airflow:etl.extract"). The first ":" splits them back, so two
  jobs never share a component. A name over 255 characters keeps its first 238 and ends in
  "~" and 16 hex digits of the SHA-256 of the whole name.
- pointer name: the dataset's URI as OpenLineage's naming spec builds it from namespace and
  name: "postgres://db:5432/public.orders"; one "/" when the name is a path,
  "hdfs://nn:8020/warehouse/orders"; a namespace that is a scheme alone joins with ":",
  "bigquery:project.dataset.table", "file:/srv/data.csv". Over 1,024 characters, shortened
  the same way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from common.errors import InvalidInput
from components.models import COMPONENT_NAME_MAX_LENGTH, OWNER_MAX_LENGTH
from runs.models import GIT_HASH_MAX_LENGTH, POINTER_NAME_MAX_LENGTH, PointerType

EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
TERMINAL = frozenset({"COMPLETE", "ABORT", "FAIL"})
RUN_ID_MAX_LENGTH = 255

REQUIRED = "This field is required."
NOT_AN_OBJECT = "Expected a JSON object."
NOT_A_LIST = "Expected a list of datasets."
NOT_TEXT = "Expected a non-empty string."
RUN_ID_TOO_LONG = f"At most {RUN_ID_MAX_LENGTH} characters."
BAD_EVENT_TYPE = "Expected one of " + ", ".join(EVENT_TYPES) + " (or no eventType: OTHER)."
BAD_EVENT_TIME = (
    "Expected an ISO 8601 date and time, such as 2024-05-01T12:00:00.123Z; without a zone it is UTC."
)
NOT_AN_EVENT = (
    "An OpenLineage event has a run and a job (RunEvent), a dataset (DatasetEvent) or a job (JobEvent)."
)
TOO_MANY_DATASETS = "At most {limit} datasets."

# 2024-05-01T12:00[:00[.1-9 digits]][Z|+hh:mm|+hhmm|+hh]; a space may stand for the T.
# ASCII digits only; EVENT_TIME_PATTERN is the same rule for the OpenAPI schema.
EVENT_TIME_PATTERN = (
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]{1,9}))?)?"
    r"(?:([Zz])|([+-])([0-9]{2})(?::?([0-9]{2}))?)?$"
)
EVENT_TIME = re.compile(EVENT_TIME_PATTERN)
# eventType in any case, ASCII only (as a pattern for the schema too).
EVENT_TYPE_PATTERN = "^(" + "|".join("".join(f"[{c}{c.lower()}]" for c in t) for t in EVENT_TYPES) + ")$"


@dataclass(frozen=True)
class Dataset:
    pointer: str  # the pointer name
    value: str
    pointer_type: str

    def spec(self) -> dict[str, str]:
        return {"name": self.pointer, "value": self.value, "pointer_type": self.pointer_type}


@dataclass(frozen=True)
class Parent:
    run_id: str
    job: str  # the parent job's component name

    def as_dict(self) -> dict[str, str]:
        return {"run_id": self.run_id, "job": self.job}


@dataclass
class Event:
    kind: str  # "run", "dataset" or "job"
    event_time: dt.datetime
    event_type: str = ""  # RunEvents: one of EVENT_TYPES ("" elsewhere)
    run_id: str = ""
    job: str = ""  # the component name
    producer: str = ""
    inputs: list[Dataset] = field(default_factory=list)
    outputs: list[Dataset] = field(default_factory=list)
    git_hash: str = ""
    code_snapshot: str = ""  # the job's sourceCode facet
    sql: str = ""  # the job's sql facet (SQLJobFacet): dbt's and Airflow's SQL
    error_message: str = ""
    parent: Parent | None = None
    upstream_run_ids: list[str] = field(default_factory=list)
    description: str = ""  # JobEvents
    owner: str = ""  # the ownership job facet's owner names; JobEvents and RunEvents

    @property
    def terminal(self) -> bool:
        return self.event_type in TERMINAL


def fingerprint(event: Any) -> str:
    """The digest two copies of one event share, however their keys were ordered."""
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _escape(text: str, *, colon: bool) -> str:
    text = text.replace("%", "%25").replace("/", "%2F")
    return text.replace(":", "%3A") if colon else text


def shortened(name: str, limit: int) -> str:
    """name itself if it fits in limit characters, else its head, "~" and 16 hex digits of it."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return f"{name[: limit - 17]}~{digest}"


def component_name(namespace: str, name: str) -> str:
    """The component of an OpenLineage job (never the same for two jobs; no "/")."""
    return shortened(
        f"{_escape(namespace, colon=True)}:{_escape(name, colon=False)}", COMPONENT_NAME_MAX_LENGTH
    )


def pointer_name(namespace: str, name: str) -> str:
    """The pointer of an OpenLineage dataset: its URI, as OpenLineage's naming spec builds it."""
    if "://" not in namespace:  # a scheme alone, as "bigquery" or "file": scheme:name
        joined = f"{namespace}:{name}"
    elif name.startswith("/") or namespace.endswith("/"):
        joined = f"{namespace}{name}"
    else:
        joined = f"{namespace}/{name}"
    return shortened(joined, POINTER_NAME_MAX_LENGTH)


def parse_event_time(value: Any, *, where: str = "eventTime") -> dt.datetime:
    """An eventTime as an aware UTC datetime; without a zone it is UTC. 1 to 9 fractional
    digits (past microseconds they are dropped)."""
    match = EVENT_TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidInput(BAD_EVENT_TIME, field=where)
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    offset = dt.timedelta(0)
    if sign:
        offset = dt.timedelta(hours=int(off_h), minutes=int(off_m or 0))
        if offset >= dt.timedelta(hours=24):
            raise InvalidInput(BAD_EVENT_TIME, field=where)
        offset = -offset if sign == "-" else offset
    try:
        moment = dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            micros,
            tzinfo=dt.timezone(offset),
        )
        return moment.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise InvalidInput(BAD_EVENT_TIME, field=where) from None


def _object(value: Any, where: str, *, required: bool = True) -> dict[str, Any]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(REQUIRED if value is None else NOT_AN_OBJECT, field=where)
    return value


def _text(container: dict[str, Any], key: str, where: str) -> str:
    value = container.get(key)
    if value is None:
        raise InvalidInput(REQUIRED, field=f"{where}.{key}")
    if not isinstance(value, str) or not value:
        raise InvalidInput(NOT_TEXT, field=f"{where}.{key}")
    return value


def _facet(facets: Any, name: str) -> dict[str, Any]:
    """A facet if it is an object, else {} (an odd facet is ignored, not refused)."""
    facet = facets.get(name) if isinstance(facets, dict) else None
    return facet if isinstance(facet, dict) else {}


def _facet_text(facet: dict[str, Any], key: str) -> str:
    value = facet.get(key)
    return value if isinstance(value, str) else ""


def _job_of(value: Any) -> str | None:
    """The component name of a {namespace, name} reference in a facet, or None if odd."""
    if not isinstance(value, dict):
        return None
    namespace, name = value.get("namespace"), value.get("name")
    if isinstance(namespace, str) and isinstance(name, str) and namespace and name:
        return component_name(namespace, name)
    return None


def _run_id_of(value: Any) -> str | None:
    run_id = value.get("runId") if isinstance(value, dict) else None
    return run_id if isinstance(run_id, str) and 0 < len(run_id) <= RUN_ID_MAX_LENGTH else None


def _datasets(event: dict[str, Any], key: str, *, limit: int) -> list[Dataset]:
    value = event.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput(NOT_A_LIST, field=key)
    if len(value) > limit:
        raise InvalidInput(TOO_MANY_DATASETS.format(limit=limit), field=key)
    found: dict[tuple[str, str], Dataset] = {}
    for index, item in enumerate(value):
        where = f"{key}.{index}"
        dataset = _object(item, where)
        namespace, name = _text(dataset, "namespace", where), _text(dataset, "name", where)
        facets = dataset.get("facets")
        version = _facet(facets, "version").get("datasetVersion")
        kind = _facet_text(_facet(facets, "datasetType"), "datasetType")
        pointer = Dataset(
            pointer=pointer_name(namespace, name),
            value=str(version)
            if isinstance(version, str | int | float) and not isinstance(version, bool)
            else "",
            pointer_type=PointerType.MODEL if kind.strip().upper() == "MODEL" else PointerType.DATA,
        )
        found.setdefault((pointer.pointer, pointer.value), pointer)
    return list(found.values())


def _owner(facets: Any) -> str:
    owners = _facet(facets, "ownership").get("owners")
    names = (
        [o["name"] for o in owners if isinstance(o, dict) and isinstance(o.get("name"), str)]
        if isinstance(owners, list)
        else []
    )
    return ", ".join(dict.fromkeys(n for n in names if n))[:OWNER_MAX_LENGTH]


def read_event(event: Any, *, max_datasets: int) -> Event:
    """Checks an event as received and reads it; raises InvalidInput naming the field."""
    if not isinstance(event, dict):
        raise InvalidInput(NOT_AN_OBJECT, field="event")
    producer = event.get("producer")
    producer = producer if isinstance(producer, str) else ""
    if "run" in event:
        kind = "run"
    elif "dataset" in event:
        kind = "dataset"
    elif "job" in event:
        kind = "job"
    else:
        raise InvalidInput(NOT_AN_EVENT, field="run")
    event_time = parse_event_time(event.get("eventTime")) if "eventTime" in event else None
    if event_time is None:
        raise InvalidInput(REQUIRED, field="eventTime")

    if kind == "dataset":
        dataset = _object(event.get("dataset"), "dataset")
        _text(dataset, "namespace", "dataset")
        _text(dataset, "name", "dataset")
        return Event(kind=kind, event_time=event_time, producer=producer)

    job = _object(event.get("job"), "job")
    job_name = component_name(_text(job, "namespace", "job"), _text(job, "name", "job"))
    job_facets = job.get("facets")
    if kind == "job":
        return Event(
            kind=kind,
            event_time=event_time,
            job=job_name,
            producer=producer,
            description=_facet_text(_facet(job_facets, "documentation"), "description"),
            owner=_owner(job_facets),
        )

    run = _object(event.get("run"), "run")
    run_id = _text(run, "runId", "run")
    if len(run_id) > RUN_ID_MAX_LENGTH:
        raise InvalidInput(RUN_ID_TOO_LONG, field="run.runId")
    event_type = event.get("eventType")
    if event_type is None:
        event_type = "OTHER"
    elif not isinstance(event_type, str) or not event_type.isascii() or event_type.upper() not in EVENT_TYPES:
        raise InvalidInput(BAD_EVENT_TYPE, field="eventType")
    event_type = event_type.upper()

    run_facets = run.get("facets")
    parent_facet = _facet(run_facets, "parent")
    parent_run, parent_job = _run_id_of(parent_facet.get("run")), _job_of(parent_facet.get("job"))
    upstream = _facet(run_facets, "jobDependencies").get("upstream")
    upstream_ids = (
        [run_id for run_id in (_run_id_of(d.get("run")) for d in upstream if isinstance(d, dict)) if run_id]
        if isinstance(upstream, list)
        else []
    )
    git_hash = _facet_text(_facet(job_facets, "sourceCodeLocation"), "version")
    return Event(
        kind=kind,
        event_time=event_time,
        event_type=event_type,
        run_id=run_id,
        job=job_name,
        producer=producer,
        inputs=_datasets(event, "inputs", limit=max_datasets),
        outputs=_datasets(event, "outputs", limit=max_datasets),
        git_hash=git_hash if len(git_hash) <= GIT_HASH_MAX_LENGTH else "",
        code_snapshot=_facet_text(_facet(job_facets, "sourceCode"), "sourceCode"),
        sql=_facet_text(_facet(job_facets, "sql"), "query"),
        error_message=_facet_text(_facet(run_facets, "errorMessage"), "message"),
        parent=Parent(run_id=parent_run, job=parent_job or "") if parent_run else None,
        upstream_run_ids=list(dict.fromkeys(upstream_ids)),
        owner=_owner(job_facets),
    )
