"""Ingestion: the accepted-write log and the path of a write from its acceptance to its commit.

    accept.py       the 202 door: record a validated write as queued, enqueue its commit
    tasks.py        the django-q tasks: commit the queue, sweep lost tasks, purge keys
    queue.py        commit the queue a batch per transaction; the ?sync=true door; edits in order
    batch.py        one batch: plan its writes in memory, insert them in bulk
    locks.py        the accept lock and the commit lock
    idempotency.py  Idempotency-Key answers
    retry.py        failed writes back in the queue
    brokers.py      django-q's brokers, with the sweep in their pull loop
    selectors.py    the queue's state and the writes not committed yet

It imports the domain (components, runs) and common; nothing below imports it.
"""
