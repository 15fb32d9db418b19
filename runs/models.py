from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models

from common.jsontext import JSONTextField
from components.models import Component

POINTER_NAME_MAX_LENGTH = 1024
GIT_HASH_MAX_LENGTH = 255
# mltrace's default: a dependency that began more than 30 days before its run is stale.
DEFAULT_STALENESS_THRESHOLD = 60 * 60 * 24 * 30


class PointerType(models.TextChoices):
    DATA = "DATA"
    MODEL = "MODEL"
    ENDPOINT = "ENDPOINT"
    UNKNOWN = "UNKNOWN"


# mltrace's extensions of data and model files, as docs/API.md states them; the client
# (client/mltrace/db/models.py) keeps its own copy, and tests/test_pointer_types.py checks
# that the two agree.
DATA_EXTENSIONS = frozenset(("csv", "pq", "parquet", "txt", "md", "rtf", "tsv", "xml", "pdf", "mlt"))
MODEL_EXTENSIONS = frozenset(("h5", "hdf5", "joblib", "pkl", "pickle", "ckpt", "mlmodel"))


def infer_pointer_type(name: str) -> PointerType:
    """mltrace's type for a pointer name: DATA or MODEL by a word in it, else by its extension."""
    lowered = name.lower()
    # Case-insensitive; a name that matches no rule is UNKNOWN, and ENDPOINT is only ever given.
    if "data" in lowered:
        return PointerType.DATA
    if "model" in lowered:
        return PointerType.MODEL
    extension = lowered.rsplit(".", 1)[-1]
    if extension in DATA_EXTENSIONS:
        return PointerType.DATA
    if extension in MODEL_EXTENSIONS:
        return PointerType.MODEL
    return PointerType.UNKNOWN


def pointer_name_hash(name: str) -> int:
    """A signed 64-bit digest of a pointer name, indexed in place of the name itself.

    A name may be 1,024 characters of up to 4 bytes each, more than a PostgreSQL btree entry
    holds, so lookups go through this column and then compare the name.
    """
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def pointer_key(name: str, value: str) -> str:
    """The unique digest of a pointer's identity, (name, value)."""
    return hashlib.sha256(name.encode() + b"\x00" + value.encode()).hexdigest()


def acting_user() -> models.ForeignKey:
    """Who did something, kept if the user is deleted (then None) and not indexed."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )


class WriteQuerySet(models.QuerySet):
    def queued(self) -> WriteQuerySet:
        """Accepted and not committed yet (write_queued_idx)."""
        return self.filter(status=Write.Status.QUEUED)

    def failed(self) -> WriteQuerySet:
        return self.filter(status=Write.Status.FAILED)

    def last_queued_id(self) -> int | None:
        """The id of the newest queued write: what a commit of the whole queue must reach."""
        return self.queued().order_by("-id").values_list("id", flat=True).first()


class Write(models.Model):
    """An accepted write. Its id is the acceptance order shared by every component and run."""

    class Kind(models.TextChoices):
        COMPONENT = "component"
        RUN = "run"
        OPENLINEAGE = "openlineage", "OpenLineage event"  # as received
        OUTPUT = "output"  # a task's outputs (monitoring)
        FEEDBACK = "feedback"  # a task's feedback (monitoring)

    class Status(models.TextChoices):
        QUEUED = "queued"
        COMMITTED = "committed"
        FAILED = "failed"

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    # The validated payload, kept until the write is committed; a failed write keeps it.
    payload = JSONTextField(null=True, blank=True)
    # A run write once materialized (ingest/materialize.py): its links and pointers are
    # written, and this is what the resolver still needs of it, the payload with each
    # pointer reduced to its name. None: not materialized (or not a run, or committed).
    materialized = JSONTextField(null=True, blank=True)
    # The payload's size as accepted, in bytes of JSON: what a commit batch is bounded by (a
    # commit's memory grows with it). 0: not recorded (the column's default for older rows).
    payload_bytes = models.BigIntegerField(default=0)
    # Who sent it (None: not recorded, the column's default for older rows, or a command).
    accepted_by = acting_user()
    error = models.TextField(blank=True, default="")
    accepted_at = models.DateTimeField()
    committed_at = models.DateTimeField(null=True, blank=True)

    objects = WriteQuerySet.as_manager()

    class Meta:
        verbose_name = "accepted write"
        indexes = [
            # The committer scans the queue in acceptance order; committed writes drop out.
            models.Index(fields=["id"], name="write_queued_idx", condition=models.Q(status="queued")),
            models.Index(fields=["id"], name="write_failed_idx", condition=models.Q(status="failed")),
            # The materializers claim queued run writes not materialized yet, oldest first.
            models.Index(
                fields=["id"],
                name="write_unmaterialized_idx",
                condition=models.Q(status="queued", kind="run", materialized__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} write {self.id} ({self.status})"


class IdempotencyKey(models.Model):
    """What the first write request with an Idempotency-Key recorded, replayed on retries."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # sha256 of the method, path and body; the same key with another body is a conflict.
    fingerprint = models.CharField(max_length=64)
    # The ids of the writes it recorded, in order; the answer is rebuilt from them.
    write_ids = models.JSONField(default=list)
    # None: accepted (202); else committed at once, and whether it created its object.
    created = models.BooleanField(null=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotencykey_unique")]

    def __str__(self) -> str:
        return self.key


class IOPointer(models.Model):
    name = models.TextField()
    value = models.TextField(blank=True, default="")
    pointer_type = models.CharField(max_length=16, choices=PointerType.choices, default=PointerType.UNKNOWN)
    flag = models.BooleanField(default=False)
    name_hash = models.BigIntegerField(db_index=True)
    # Unique by a constraint, not unique=True: that would add a second index of every key,
    # for LIKE queries nothing makes, to the table a batch of inference runs writes most.
    key = models.CharField(max_length=64)
    # The lowest id of the writes that named it so far, whose type it has: writes are
    # materialized in any order, and a lower one that comes later gives it its type
    # (ingest/pointers.py). 0: not recorded (the column's default for older rows), or no write.
    first_write = models.BigIntegerField(default=0, db_default=0)

    class Meta:
        verbose_name = "IO pointer"
        constraints = [models.UniqueConstraint(fields=["key"], name="iopointer_key_unique")]
        indexes = [
            models.Index(fields=["name_hash"], name="iopointer_flagged_idx", condition=models.Q(flag=True)),
            models.Index(fields=["pointer_type", "id"], name="iopointer_type_idx"),
        ]

    def __str__(self) -> str:
        return self.name if not self.value else f"{self.name} ({self.value})"


class Run(models.Model):
    # Not an auto field: a run's id is the id of the write that carried it.
    id = models.BigIntegerField(primary_key=True)
    component = models.ForeignKey(Component, on_delete=models.PROTECT, related_name="runs", db_index=False)
    start_timestamp = models.DateTimeField()
    end_timestamp = models.DateTimeField()
    notes = models.TextField(blank=True, default="")
    git_hash = models.CharField(max_length=GIT_HASH_MAX_LENGTH, blank=True, default="", db_index=True)
    git_tags = models.JSONField(default=list, blank=True)
    code_snapshot = models.TextField(blank=True, default="")
    test_results = models.JSONField(null=True, blank=True)
    stale = models.JSONField(default=list, blank=True)
    # stale is not empty; a column of its own so the admin's stale filter has an index.
    is_stale = models.BooleanField(default=False)
    unresolved_dependencies = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField()
    dependencies = models.ManyToManyField(
        "self", symmetrical=False, through="RunDependency", related_name="dependents"
    )
    inputs = models.ManyToManyField(IOPointer, through="RunInput", related_name="consumers")
    outputs = models.ManyToManyField(IOPointer, through="RunOutput", related_name="producers")

    class Meta:
        indexes = [
            # history, explicit dependencies and staleness counts: runs of one component by start
            models.Index(fields=["component", "start_timestamp", "id"], name="run_component_start_idx"),
            # recent runs across components
            models.Index(fields=["start_timestamp", "id"], name="run_start_idx"),
            # the admin's stale runs, newest first
            models.Index(
                fields=["start_timestamp", "id"], name="run_stale_idx", condition=models.Q(is_stale=True)
            ),
        ]

    def __str__(self) -> str:
        # The component's name, as every page shows it (its id means nothing to a reader);
        # a query unless the component was selected with the run.
        return f"run {self.id} of {self.component.name}"


class RunInput(models.Model):
    # No foreign key in the database: a materializer writes the links before the resolver
    # writes their run (docs/ARCHITECTURE.md, "Materialize, then resolve").
    run = models.ForeignKey(Run, on_delete=models.CASCADE, db_index=False, db_constraint=False)
    pointer = models.ForeignKey(IOPointer, on_delete=models.PROTECT, db_index=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "pointer"], name="runinput_unique")]
        indexes = [models.Index(fields=["pointer", "run"], name="runinput_pointer_idx")]

    def __str__(self) -> str:
        return f"run {self.run_id} read pointer {self.pointer_id}"


class RunOutput(models.Model):
    # No foreign key in the database: a materializer writes the links before the resolver
    # writes their run (docs/ARCHITECTURE.md, "Materialize, then resolve").
    run = models.ForeignKey(Run, on_delete=models.CASCADE, db_index=False, db_constraint=False)
    pointer = models.ForeignKey(IOPointer, on_delete=models.PROTECT, db_index=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "pointer"], name="runoutput_unique")]
        # latest producer of a pointer: max(run) per pointer is one index probe
        indexes = [models.Index(fields=["pointer", "run"], name="runoutput_pointer_idx")]

    def __str__(self) -> str:
        return f"run {self.run_id} wrote pointer {self.pointer_id}"


class RunDependency(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+", db_index=False)
    depends_on = models.ForeignKey(Run, on_delete=models.PROTECT, related_name="+", db_index=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "depends_on"], name="rundependency_unique")]
        indexes = [models.Index(fields=["depends_on", "run"], name="rundependency_upstream_idx")]

    def __str__(self) -> str:
        return f"run {self.run_id} depends on run {self.depends_on_id}"


class Edit(models.Model):
    """An edit that is not a write in the log: a flag, an unflag, a PATCH. Who, what, when."""

    class Action(models.TextChoices):
        FLAG = "flag"
        UNFLAG = "unflag"
        UNFLAG_ALL = "unflag all"
        RUN_NOTES = "run notes"
        COMPONENT = "component"

    at = models.DateTimeField(db_index=True)
    user = acting_user()
    action = models.CharField(max_length=16, choices=Action.choices)
    target = models.TextField(blank=True, default="")  # a pointer name, a run id, a component
    detail = models.JSONField(default=dict, blank=True)  # what changed: counts, new values

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.target}"


class OpenLineageRun(models.Model):
    """An OpenLineage run: what the events with one runId said, and the run they made.

    Open (no terminal event yet) it has no mltrace run; its first COMPLETE, FAIL or ABORT
    commits one, whose id is that event's write id (`run`). Events after that are recorded
    (OpenLineageEvent) and change nothing here.
    """

    class State(models.TextChoices):
        START = "START"
        RUNNING = "RUNNING"
        COMPLETE = "COMPLETE"
        ABORT = "ABORT"
        FAIL = "FAIL"
        OTHER = "OTHER"

    # Unique by a constraint, not unique=True: that adds a second, varchar_pattern_ops index
    # on PostgreSQL, which no query here uses and every insert pays for.
    run_uuid = models.CharField("OpenLineage runId", max_length=255)
    job = models.CharField(max_length=255)  # the component's name
    namespace = models.TextField()  # the job's, as sent
    name = models.TextField()
    state = models.CharField(max_length=16, choices=State.choices)
    run = models.OneToOneField(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="openlineage"
    )
    # From the START event, else the earliest eventTime seen; end: the terminal event's.
    start_timestamp = models.DateTimeField()
    started = models.BooleanField(default=False)  # a START was seen before the end
    end_timestamp = models.DateTimeField(null=True, blank=True)
    parent_run_uuid = models.CharField(max_length=255, blank=True, default="")
    parent_job = models.CharField(max_length=255, blank=True, default="")
    producer = models.TextField(blank=True, default="")
    # Unions over the run's events, as pointer specs {name, value, pointer_type}.
    inputs = models.JSONField(default=list, blank=True)
    outputs = models.JSONField(default=list, blank=True)
    git_hash = models.CharField(max_length=GIT_HASH_MAX_LENGTH, blank=True, default="")
    code_snapshot = models.TextField(blank=True, default="")  # the sourceCode facet's
    # The sql facet's query: the run's code_snapshot when no event gave a sourceCode facet.
    sql = models.TextField(blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    upstream_run_uuids = models.JSONField(default=list, blank=True)
    events = models.IntegerField(default=0)
    # Of those, the ones that came after its end and changed nothing: a second COMPLETE, a
    # late START, a rerun with the same runIds (`airflow dags test` twice).
    events_after_end = models.IntegerField(default=0)
    first_event_id = models.BigIntegerField()
    last_event_id = models.BigIntegerField()

    class Meta:
        db_table = "runs_lineagerun"
        verbose_name = "OpenLineage run"
        constraints = [models.UniqueConstraint(fields=["run_uuid"], name="lineagerun_uuid_unique")]
        indexes = [
            models.Index(fields=["-first_event_id"], name="lineagerun_recent_idx"),
            models.Index(fields=["parent_run_uuid"], name="lineagerun_parent_idx"),
            models.Index(fields=["job", "-first_event_id"], name="lineagerun_job_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.job} run {self.run_uuid} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.end_timestamp is None


class OpenLineageEvent(models.Model):
    """An OpenLineage event as received (for audit and replay), and what it did."""

    class Kind(models.TextChoices):
        RUN = "run", "RunEvent"
        DATASET = "dataset", "DatasetEvent"
        JOB = "job", "JobEvent"

    class Outcome(models.TextChoices):
        APPLIED = "applied"  # it opened, updated or ended its run, or updated its job
        DUPLICATE = "duplicate"  # the same event was received before
        AFTER_END = "after end"  # its run had ended: recorded only
        OTHER_JOB = "another job"  # its runId belongs to a run of another job: recorded only
        RECORDED = "recorded"  # a DatasetEvent: recorded only

    id = models.BigIntegerField(primary_key=True)  # its write's id: the acceptance order
    kind = models.CharField(max_length=16, choices=Kind.choices)
    event_type = models.CharField(max_length=16, blank=True, default="")
    event_time = models.DateTimeField()
    run_uuid = models.CharField("OpenLineage runId", max_length=255, blank=True, default="")
    job = models.CharField(max_length=255, blank=True, default="")
    producer = models.TextField(blank=True, default="")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    fingerprint = models.CharField(max_length=64)
    body = models.JSONField()
    received_at = models.DateTimeField()

    class Meta:
        db_table = "runs_lineageevent"
        verbose_name = "OpenLineage event"
        indexes = [
            models.Index(fields=["run_uuid", "id"], name="lineageevent_run_idx"),
            # Duplicates are found by fingerprint (a Meta index: no varchar_pattern_ops twin).
            models.Index(fields=["fingerprint"], name="lineageevent_fingerprint_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.id} ({self.event_type or self.kind})"
