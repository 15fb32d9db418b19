"""mltrace's web_trace tree of a trace (GET /api/v1/trace/?format=tree): the nested nodes its
UI drew, and their JSON written without recursion."""

from __future__ import annotations

import json
from typing import Any

from runs.lineage import bounded_edges, trace_root
from runs.models import PointerType
from runs.selectors import outputs_by_run, runs_by_id

# The icon mltrace's UI shows beside an output of each type (a type not listed has none).
ICONS: dict[str, str] = {
    PointerType.DATA: "database",
    PointerType.MODEL: "function",
    PointerType.ENDPOINT: "flow-end",
}


def web_trace(*, output_id: str, depth: int | None = None) -> list[dict[str, Any]]:
    """mltrace's web_trace tree: a list with one nested node for the output's latest run.

    Children: outputs sorted by name, then dependencies by ascending id. A run met again
    through another path appears as a leaf with no children. A depth bound applies to each
    run's shortest distance from the root, so the tree holds exactly the runs of the bounded trace.
    Raises NotFound.
    """
    root = trace_root(output_id)
    edges, depths = bounded_edges(root, depth)
    runs = runs_by_id(list(depths))
    outputs = outputs_by_run(depths)

    def run_node(run_id: int) -> dict[str, Any]:
        run = runs[run_id]
        return {
            "id": f"componentrun_{run_id}",
            "label": run.component.name,
            "hasCaret": True,
            "isExpanded": True,
            "stale": run.stale,
            "childNodes": [],
        }

    tree = run_node(root)
    expanded: set[int] = set()
    # (node, run id); iterative so a 10,000-run chain cannot overflow.
    stack: list[tuple[dict[str, Any], int]] = [(tree, root)]
    while stack:
        node, run_id = stack.pop()
        if run_id in expanded:
            continue
        expanded.add(run_id)
        parent = node["id"]
        for pointer in sorted(outputs[run_id], key=lambda p: (p.name, p.value)):
            child = {
                "id": f"iopointer_{pointer.name}",
                "label": pointer.name,
                "hasCaret": False,
                "parent": parent,
            }
            if pointer.pointer_type in ICONS:
                child["icon"] = ICONS[pointer.pointer_type]
            node["childNodes"].append(child)
        if depth is not None and depths[run_id] >= depth:
            continue
        pending = []
        for dep in edges.get(run_id, ()):
            child = run_node(dep)
            node["childNodes"].append(child)
            pending.append((child, dep))
        # Pre-order: the first dependency is expanded first; later meetings stay leaves.
        for item in reversed(pending):
            stack.append(item)
    return [tree]


def tree_json(nodes: list[dict[str, Any]]) -> str:
    """JSON text of web_trace's nested nodes, written without recursion.

    A chain of runs nests two levels per hop; json.dumps recurses per level and fails past
    about a thousand, so the nesting is unrolled on an explicit stack.
    """
    out: list[str] = ["["]
    stack: list[Any] = ["]"]
    for index in reversed(range(len(nodes))):
        stack.append(nodes[index])
        if index:
            stack.append(", ")
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        children = item.get("childNodes")
        if not children:
            out.append(json.dumps(item))
            continue
        head = json.dumps({key: value for key, value in item.items() if key != "childNodes"})
        out.append(head[:-1] + ', "childNodes": [')
        stack.append("]}")
        for index in reversed(range(len(children))):
            stack.append(children[index])
            if index:
                stack.append(", ")
    return "".join(out)
