"""The HTML the admins' pages show: links to runs and traces, lists of pointers and runs,
an OpenLineage run's summary, and JSON as indented text."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.db.models import QuerySet
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from runs.models import OpenLineageRun, Run

# Pointers or runs a run's page lists in one field; past it the list says "and more".
LINKS_SHOWN = 100


def run_link(run_id: int, label: str = "") -> str:
    """A link to a run's admin page, labelled `label` or "run <id>"."""
    url = reverse("admin:runs_run_change", args=[run_id])
    return format_html('<a href="{}">{}</a>', url, label or f"run {run_id}")


def trace_link(name: str) -> str:
    """A pointer's name, linked to the Trace page of that output."""
    url = reverse("admin:mltrace-trace") + "?" + urlencode({"output_id": name})
    return format_html('<a href="{}" title="trace">{}</a>', url, name)


def pointer_links(links: QuerySet) -> str:
    """A list of the first LINKS_SHOWN pointers of a run's input or output links, each with its
    trace link, type, value and flag; "-" when there are none."""
    rows = list(links.select_related("pointer").order_by("id")[: LINKS_SHOWN + 1])
    items = format_html_join(
        "",
        "<li>{} <small>{}{} {}</small></li>",
        (
            (
                trace_link(link.pointer.name),
                link.pointer.pointer_type,
                f" = {link.pointer.value}" if link.pointer.value else "",
                "flagged" if link.pointer.flag else "",
            )
            for link in rows[:LINKS_SHOWN]
        ),
    )
    more = format_html("<li>and more</li>") if len(rows) > LINKS_SHOWN else ""
    return format_html("<ul>{}{}</ul>", items, more) if rows else "-"


def run_links(ids: list[int]) -> str:
    """A list of links to the first LINKS_SHOWN of these runs, each named by its component;
    "-" when there are none."""
    runs = (
        Run.objects.filter(id__in=ids[:LINKS_SHOWN])
        .select_related("component")
        .only("id", "component__name")
        .order_by("id")
    )
    items = format_html_join(
        "", "<li>{}</li>", ((run_link(r.id, f"{r.component.name} (run {r.id})"),) for r in runs)
    )
    more = format_html("<li>and more</li>") if len(ids) > LINKS_SHOWN else ""
    return format_html("<ul>{}{}</ul>", items, more) if ids else "-"


def openlineage_summary(ol: OpenLineageRun) -> str:
    """An OpenLineage run's runId, state, parent and producer, with links."""
    url = reverse("admin:runs_openlineagerun_change", args=[ol.id])
    parent: str = "-"
    if ol.parent_run_uuid:
        parent_run = OpenLineageRun.objects.filter(run_uuid=ol.parent_run_uuid).first()
        label = f"{ol.parent_job} {ol.parent_run_uuid}"
        parent = (
            format_html(
                '<a href="{}">{}</a>',
                reverse("admin:runs_openlineagerun_change", args=[parent_run.id]),
                label,
            )
            if parent_run is not None
            else label
        )
    return format_html(
        '<ul><li>runId <a href="{}">{}</a></li><li>state {}</li><li>parent {}</li><li>producer {}</li>'
        "<li>job {} / {}</li><li>events after the end {}</li></ul>",
        url,
        ol.run_uuid,
        ol.state,
        parent,
        ol.producer or "-",
        ol.namespace,
        ol.name,
        ol.events_after_end,
    )


def json_or_why_not(read: Callable[[], Any], *, none: str = "-") -> str:
    """A JSON value as indented text, or why it cannot be shown: a value stored under a larger
    MLTRACE_MAX_JSON_DEPTH, or none, may nest deeper than this process can decode."""
    try:
        value = read()
        if value is None:
            return none
        return format_html("<pre>{}</pre>", json.dumps(value, indent=2))
    except RecursionError:
        return "(nested too deeply to show)"
