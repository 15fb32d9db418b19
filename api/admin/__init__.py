"""The admins of every model, on the dashboard's site (api/dashboard.py), one module a model:

    components.py   components and tags
    runs.py         committed runs
    pointers.py     pointers (inputs and outputs), flagged or not
    openlineage.py  OpenLineage runs and the events as received
    writes.py       the accepted-write log
    edits.py        the record of edits

with what they share: base.py (the base classes: capped counts, no add or delete),
filters.py (the list filters) and html.py (links, lists and summaries the pages show).

Django imports this module for the `api` app; the imports register the admins.
"""

from api.admin import components, edits, openlineage, pointers, runs, writes  # noqa: F401
