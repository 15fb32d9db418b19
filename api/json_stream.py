"""JSON answers written as they are built: a trace's and a review's runs go out a chunk at a
time, so an answer of a million runs holds their ids, never all their bodies.

The views send these through StreamingHttpResponse, `buffered` into ~64 KB writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings

from common.lookups import chunked
from runs.lineage import ReviewPlan, TracePlan
from runs.selectors import run_body_chunks


def json_items(items: Iterator[list[Any]], *, budget: int | None = None) -> Iterator[str]:
    """The JSON of list items, comma-separated, one json.dumps per chunk (not per item).

    With a budget, a chunk whose JSON is longer goes out in pieces of at most that many bytes
    (an item longer than that alone), its items dumped one by one: a chunk is cut by its runs'
    weights, at least their size, and escapes or compressed test results can make it larger.
    """
    first = True
    for chunk in items:
        if not chunk:
            continue
        text = json.dumps(chunk)[1:-1]  # ASCII (ensure_ascii): a character is a byte
        pieces = [text] if budget is None or len(text) <= budget else _pieces(chunk, budget - 2)
        for piece in pieces:
            yield ("" if first else ", ") + piece
            first = False


def _pieces(chunk: list[Any], budget: int) -> Iterator[str]:
    """The chunk's items as JSON, comma-separated, in pieces of at most `budget` bytes (an
    item longer than that alone)."""
    piece: list[str] = []
    length = 0
    for item in chunk:
        text = json.dumps(item)
        if piece and length + 2 + len(text) > budget:
            yield ", ".join(piece)
            piece, length = [], 0
        length += len(text) + (2 if piece else 0)
        piece.append(text)
    if piece:
        yield ", ".join(piece)


def buffered(pieces: Iterable[str], size: int = 64 * 1024) -> Iterator[str]:
    """Joins small pieces of a streamed body into ~64 KB writes (one socket write each); a
    piece that large goes out on its own, so no write is much larger than its largest piece."""
    buffer: list[str] = []
    length = 0
    for piece in pieces:
        if len(piece) >= size:
            if buffer:
                yield "".join(buffer)
                buffer, length = [], 0
            yield piece
            continue
        buffer.append(piece)
        length += len(piece)
        if length >= size:
            yield "".join(buffer)
            buffer, length = [], 0
    if buffer:
        yield "".join(buffer)


def trace_json(plan: TracePlan) -> Iterator[str]:
    """The trace of an output as JSON, written as it is built: run bodies a chunk at a time.

    {"output_id", "root", "nodes": [{"depth", "run"}] in pre-order, "edges": [[run, dependency]]}.
    """
    yield f'{{"output_id": {json.dumps(plan.output_id)}, "root": {plan.root}, "nodes": ['
    yield from json_items(
        (
            [{"depth": plan.depths[run_id], "run": body} for run_id, body in chunk]
            for chunk in run_body_chunks(plan.order, known_dependencies=plan.edges)
        ),
        budget=settings.MLTRACE_MAX_PAGE_BYTES,
    )
    yield '], "edges": ['
    yield from json_items(chunked(plan.edge_pairs()))
    yield "]}"


def review_json(plan: ReviewPlan) -> Iterator[str]:
    """The review as JSON, written as it is built: {"flagged", "runs": [{"run", "count"}]}."""
    counts = dict(plan.ranked)
    yield f'{{"flagged": {json.dumps(plan.flagged)}, "runs": ['
    yield from json_items(
        (
            [{"run": body, "count": counts[run_id]} for run_id, body in chunk]
            for chunk in run_body_chunks([i for i, _ in plan.ranked])
        ),
        budget=settings.MLTRACE_MAX_PAGE_BYTES,
    )
    yield "]}"
