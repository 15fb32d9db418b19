"""Ingestion: the accepted-write log and the path of a write from its acceptance to its commit.

Its modules, top to bottom: each imports only the modules below it in this list
(tests/test_layout.py reads the list and checks it).

    submit.py       the one door the views call: the 202 path, or ?sync=true
    accept.py       the 202 door: record validated writes as queued, enqueue their commit
    sync.py         the ?sync=true door: accept and commit in one transaction, in its place in line
    edits.py        edits outside the log that take their place in line (a component's owner)
    retry.py        failed writes back in the queue
    brokers.py      django-q's brokers, with the sweep's trigger in their pull loop
    enqueue.py      enqueue a commit task, unless the commit-pending flag says one waits
    tasks.py        the django-q tasks: commit the queue, sweep lost tasks, purge keys
    fanout.py       helper tasks, so that every worker joins in on a backlog
    flag.py         the commit-pending flag in Redis: raised by accepts, awaited by the task
    broker.py       the process's one django-q broker
    queue.py        commit the queue: materialize ranges, resolve batches in order, mark each write
    materialize.py  the order-free half of a run write: its pointers, links and materialized form
    batch.py        apply one batch in order: its events made writes (openlineage.py), planned, inserted
    openlineage.py  one batch's OpenLineage events and the run and component writes they make
    predictions.py  one batch's outputs and feedback folded into their tasks' predictions and counts
    pointers.py     pointers made or retyped so that each has its first mention's type
    locks.py        the accept lock and the commit lock
    idempotency.py  Idempotency-Key answers
    selectors.py    the queue's state and the writes not committed yet
    sql.py          the raw SQL: advisory locks, the one-statement accept, bulk inserts and COPY

Words: a run write is *materialized* when its pointers and links are written, by any
worker, in any order (materialize.py). A write is *applied* when the rest of the rows it makes
are written into the domain's tables in acceptance order (`batch.batch_apply`, in the
caller's transaction); *resolving* is applying the oldest queued writes under the commit
lock, and a write is *committed* when it is applied and marked committed in the write log in
that one transaction, which SQL's COMMIT then ends.

It imports the domain (monitoring, runs, components) and common; nothing below imports it.
"""
