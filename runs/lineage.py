"""Lineage reads: trace, review and impact (downstream), as set-based queries.

mltrace walks a trace one run at a time, a query per hop. Here one recursive CTE returns the
dependency edges of everything upstream of a run, and the walk happens in memory, so the
number of queries does not grow with the depth of the pipeline.

These return plans (which runs, in which order, at which depth) and pages; the API writes
them as JSON (api/json_stream.py, and api/web_trace.py for mltrace's tree).
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from common.errors import OUTPUT_NOT_FOUND, POINTER_NOT_FOUND, NotFound
from common.lookups import chunked
from runs.models import IOPointer, PointerType, Run, RunOutput, pointer_name_hash
from runs.selectors import run_bodies_within
from runs.sql import (
    downstream_count,
    downstream_edge_rows,
    downstream_output_rows,
    downstream_page_rows,
    trace_membership_rows,
    upstream_edge_rows,
)


def trace_root(output_id: str) -> int:
    """The committed run with the latest start_timestamp (then highest id) that output this name.

    Raises NotFound.
    """
    run_id = (
        Run.objects.filter(outputs__name_hash=pointer_name_hash(output_id), outputs__name=output_id)
        .order_by("-start_timestamp", "-id")
        .values_list("id", flat=True)
        .first()
    )
    if run_id is None:
        raise NotFound(OUTPUT_NOT_FOUND.format(name=output_id))
    return run_id


def upstream_edges(root: int, depth: int | None = None) -> dict[int, list[int]]:
    """Dependencies (ascending) of every run upstream of root, within depth hops if given."""
    if depth == 0:
        return {}
    rows = upstream_edge_rows(root, depth)
    edges: dict[int, list[int]] = defaultdict(list)
    for run_id, depends_on_id in sorted(rows):
        edges[run_id].append(depends_on_id)
    return edges


def shortest_depths(root: int, edges: dict[int, list[int]], depth: int | None) -> dict[int, int]:
    depths = {root: 0}
    queue = deque([root])
    while queue:
        node = queue.popleft()
        if depth is not None and depths[node] >= depth:
            continue
        for dep in edges.get(node, ()):
            if dep not in depths:
                depths[dep] = depths[node] + 1
                queue.append(dep)
    return depths


def trace_order(root: int, edges: dict[int, list[int]], depths: dict[int, int]) -> list[int]:
    """Depth-first pre-order, dependencies in ascending id, each run once at its shortest depth.

    A run is entered from a parent one hop nearer the root; the first such parent in the walk
    owns it, so the list reads as a tree.
    """
    order: list[int] = []
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        order.append(node)
        children = [
            dep for dep in edges.get(node, ()) if depths.get(dep) == depths[node] + 1 and dep not in seen
        ]
        stack.extend(reversed(children))
    return order


@dataclass(frozen=True)
class TracePlan:
    """The shape of a trace: which runs, in which order, at which depth, and their edges."""

    output_id: str
    root: int
    order: list[int]
    depths: dict[int, int]
    # Every traced run's dependencies, ascending (those at the bound included).
    edges: dict[int, list[int]]

    def edge_pairs(self) -> Iterator[list[int]]:
        included = set(self.order)
        for run_id in self.order:
            for dep in self.edges.get(run_id, ()):
                if dep in included:
                    yield [run_id, dep]


def bounded_edges(root: int, depth: int | None) -> tuple[dict[int, list[int]], dict[int, int]]:
    """The upstream edges of root and the shortest depth of each run within the bound.

    With a bound, the edges are read one hop further, so that the dependencies of the runs
    at the bound are known too: an edge between two runs of the trace is kept even when it
    leaves a run at the bound (edge_pairs drops those that leave the trace).
    """
    edges = upstream_edges(root, None if depth is None else depth + 1)
    return edges, shortest_depths(root, edges, depth)


def trace_plan(*, output_id: str, depth: int | None = None) -> TracePlan:
    """Finds the root and walks upstream (one recursive query). Raises NotFound."""
    root = trace_root(output_id)
    edges, depths = bounded_edges(root, depth)
    return TracePlan(output_id, root, trace_order(root, edges, depths), depths, edges)


@dataclass(frozen=True)
class ReviewPlan:
    flagged: list[str]
    ranked: list[tuple[int, int]]  # (run id, count), by count descending then id descending


def review_plan() -> ReviewPlan:
    """Flagged output names, and the runs in their traces counted once per flagged output.

    Runs are sorted by count descending, then id descending. A flagged name that no committed
    run output has no trace and adds nothing.
    """
    flagged = sorted(set(IOPointer.objects.filter(flag=True).values_list("name", flat=True)))
    if not flagged:
        return ReviewPlan([], [])
    # The root of a flagged name's trace is its latest producer (trace_root), whichever of
    # the name's pointers (name, value) it output: a flagged one or a newer, unflagged value.
    producers = RunOutput.objects.filter(
        pointer__name_hash__in={pointer_name_hash(name) for name in flagged}, pointer__name__in=flagged
    ).values_list("pointer__name", "run_id", "run__start_timestamp")
    latest: dict[str, tuple[Any, int]] = {}
    for name, run_id, start in producers:
        if name not in latest or (start, run_id) > latest[name]:
            latest[name] = (start, run_id)
    roots = [(index, latest[name][1]) for index, name in enumerate(flagged) if name in latest]
    counts = traces_membership(roots)
    return ReviewPlan(flagged, sorted(counts.items(), key=lambda item: (-item[1], -item[0])))


def traces_membership(roots: list[tuple[int, int]]) -> dict[int, int]:
    """For (trace number, root run) pairs: each run upstream of any root, with how many traces
    hold it. One recursive query per CHUNK roots."""
    counts: dict[int, int] = defaultdict(int)
    for chunk in chunked(roots):
        for run_id, count in trace_membership_rows(chunk):
            counts[run_id] += count
    return counts


# --- downstream: what an output, or a run, touched ---------------------------------------


@dataclass(frozen=True)
class ImpactPage:
    """A page of the runs downstream of an output (or a run), nearest first.

    nodes: (run, depth) by depth then id; depth is hops from the output (its readers are at 1)
    or from the run (itself at 0), each run once at its shortest. edges: [run, dependency]
    for the listed runs' dependencies that are downstream too. outputs: the distinct pointers
    every downstream run output, counted by type (the whole impact, not this page; on the
    first page only).
    """

    nodes: list[tuple[int, int]]
    bodies: list[dict[str, Any]]  # the nodes' runs, in order
    edges: list[list[int]]
    outputs: dict[str, int] | None  # on the first page (no cursor) only
    next_cursor: tuple[int, int] | None


def impact_seeds_of_output(output_id: str) -> list[int]:
    """The ids of the pointers of this name. Raises NotFound when there is none."""
    ids = list(
        IOPointer.objects.filter(name_hash=pointer_name_hash(output_id), name=output_id)
        .order_by("id")
        .values_list("id", flat=True)
    )
    if not ids:
        raise NotFound(POINTER_NOT_FOUND.format(name=output_id))
    return ids


def impact_page(
    *,
    seeds: list[int],
    from_pointers: bool,
    depth: int | None,
    after: tuple[int, int] | None,
    limit: int,
    budget: int | None = None,
    node_size: Callable[[int, dict[str, Any]], int] | None = None,
) -> ImpactPage:
    """One page of downstream runs in three queries, whatever the depth and the fan-out.

    Each query walks the downstream runs again in the database (the walk is bounded by
    runs x depths); nothing of the walk is held here but the page. The page also stops where
    its nodes' node_size(depth, body), their bytes as sent, would add up past `budget` (never
    before its first node), and goes on from there. By default MLTRACE_MAX_PAGE_BYTES of
    the runs' bodies in JSON.
    """
    if budget is None:
        budget = settings.MLTRACE_MAX_PAGE_BYTES
    sized = node_size or (lambda hop, body: len(json.dumps(body).encode()))
    if from_pointers and depth == 0:  # an output's readers are one hop away
        return ImpactPage(
            nodes=[], bodies=[], edges=[], outputs={t: 0 for t in PointerType.values}, next_cursor=None
        )
    rows = downstream_page_rows(
        seeds=seeds, from_pointers=from_pointers, depth=depth, after=after, limit=limit + 1
    )
    more = len(rows) > limit
    page = [(run_id, hop) for run_id, hop in rows[:limit]]
    hops = dict(page)
    bodies = run_bodies_within(
        [run_id for run_id, _ in page], budget=budget, size=lambda body: sized(hops[body["id"]], body)
    )
    kept = [body["id"] for body in bodies]
    if len(kept) < len(page):
        page, more = page[: len(kept)], True
    edges = (
        [
            list(e)
            for e in downstream_edge_rows(seeds=seeds, from_pointers=from_pointers, depth=depth, run_ids=kept)
        ]
        if kept
        else []
    )
    # The outputs of the whole impact are counted on the first page only: the count walks
    # every downstream run and its outputs, most of a page's time at a fan-out of 100,000.
    counts: dict[str, int] | None = None
    if after is None:
        counts = {t: 0 for t in PointerType.values}
        counts.update(dict(downstream_output_rows(seeds=seeds, from_pointers=from_pointers, depth=depth)))
    last = page[-1] if page else None
    return ImpactPage(
        nodes=page,
        bodies=bodies,
        edges=edges,
        outputs=counts,
        next_cursor=(last[1], last[0]) if more and last else None,
    )


def impact_count(*, seeds: list[int], from_pointers: bool, depth: int | None = None) -> int:
    """How many runs impact_page would list over all its pages."""
    if from_pointers and depth == 0:
        return 0
    return downstream_count(seeds=seeds, from_pointers=from_pointers, depth=depth)
