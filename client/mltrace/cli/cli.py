"""The `mltrace` command: mltrace 0.17's commands and output, reading from the server.

    mltrace recent [--limit 5]          info cards of the newest runs
    mltrace history COMPONENT           a component's runs
    mltrace inspect RUN_ID              one run's card
    mltrace trace OUTPUT_ID             the runs that produced an output, as a tree
    mltrace impact OUTPUT_ID [--depth]  the runs downstream of an output, as a tree (not in 0.17)
    mltrace flag OUTPUT_ID / unflag (--output_id ID | --all)
    mltrace review [--limit 5]          the runs behind flagged outputs, likeliest first
    mltrace components [--owner] [--tag] / tags
    mltrace tasks                       monitored tasks: outputs, feedback, pairs
    mltrace metrics TASK [--metric NAME] [--window-seconds N | --window-pairs N]

Every command takes --server URL and --token (or MLTRACE_SERVER_URL and MLTRACE_TOKEN),
mltrace's --address HOST, and --json for machine-readable output. Errors are one line on
stderr and a non-zero exit status.
"""

from __future__ import annotations

import functools
import json
import textwrap
from typing import Any, Callable

import click

import mltrace
from mltrace import _monitoring, _request_bodies, _state, client
from mltrace.errors import NotSupported, ServerError

# A command answers quickly or says why not: it does not wait out an outage as writes do.
CLI_GIVE_UP_SECONDS = 3.0


# ------------------------- Utilities ------------------------ #


def _yellow(text: str) -> str:
    return click.style(text, fg="yellow", bg="black")


def _tree_lines(items: list[str]) -> list[str]:
    return [f"│  {'└' if i == len(items) - 1 else '├'}─{item}" for i, item in enumerate(items)]


def _duration(run: mltrace.ComponentRun) -> str:
    assert run.start_timestamp is not None and run.end_timestamp is not None  # a committed run
    minutes = (run.end_timestamp - run.start_timestamp).total_seconds() / 60
    return f"{minutes:0.3f} mins"


def _stale_lines(run: mltrace.ComponentRun) -> None:
    if run.stale:
        click.echo(_yellow("├─Some dependencies may be stale:"))
        for line in _tree_lines(run.stale):
            click.echo(_yellow(line))


def _body_lines(run: mltrace.ComponentRun) -> None:
    click.echo("├─Inputs:")
    for line in _tree_lines([pointer["name"] for pointer in run.inputs]):
        click.echo(line)
    click.echo("├─Outputs:")
    for line in _tree_lines([pointer["name"] for pointer in run.outputs]):
        click.echo(line)
    code = textwrap.indent(run.code_snapshot or "", "│  ")
    click.echo(f"├─Code Snapshot:\n{code.rstrip()}")
    dependencies = " ".join(run.dependencies) if run.dependencies else "None"
    click.echo(f"└─Dependencies: {dependencies}")
    click.echo()


def show_info_card(run_id: int | str, count: int | None = None, num_outputs: int | None = None) -> None:
    """mltrace's info card of a run; with count, review's coverage line."""
    run = client.get_component_run_information(run_id)
    component = client.get_component_information(run.component_name)
    click.echo(f"Name: {component.name}")
    if count and num_outputs:
        times = "time" if count == 1 else "times"
        coverage = str(round(float(count / num_outputs) * 100, 2))
        click.echo(
            click.style(
                f"├─This component has {coverage}% coverage: it was used "
                + f"{count} {times} in producing the flagged outputs.",
                fg="cyan",
                bg="black",
            )
        )
    _stale_lines(run)
    click.echo(f"├─Owner: {component.owner}")
    click.echo(f"├─Desc: {component.description}")
    click.echo(f"├─Run ID: {run_id}")
    click.echo(f"├─Tags: {' '.join(component.tags)}")
    click.echo(f"├─Started: {run.start_timestamp}")
    click.echo(f"├─Git commit: {run.git_hash}")
    if run.git_tags is not None:
        click.echo(f"|-Git Tags: {run.git_tags}")
    click.echo(f"├─Duration: {_duration(run)}")
    _body_lines(run)


def show_history(history: list) -> None:
    for run in history:
        click.echo(f"{run.component_name}--{run.id}")
        _stale_lines(run)
        click.echo(f"├─Started: {run.start_timestamp}")
        click.echo(f"├─Git commit: {run.git_hash}")
        click.echo(f"├─Duration: {_duration(run)}")
        _body_lines(run)


def show_res(res: Any, indent: int, count: int, pos: int, need_stick: int) -> None:
    """mltrace's printing of a web_trace tree, line for line."""
    if isinstance(res, dict):
        label = f"└─{res['label']}" if count == pos else f"├─{res['label']}"
        pre = "  " if indent > 0 else ""
        sticks = "│ " * need_stick
        post = "  " * ((indent - 1) - need_stick)
        click.echo(pre + sticks + post + label)
        need_stick = need_stick if count == pos else need_stick + 1
        if "childNodes" in res:
            show_res(res["childNodes"], indent + 1, count, pos, need_stick)
    if isinstance(res, list):
        for index, node in enumerate(res):
            show_res(node, indent, len(res) - 1, index, need_stick)


def _run_json(run: mltrace.ComponentRun) -> dict:
    return {
        "id": run.id,
        "component": run.component_name,
        "start_timestamp": _iso(run.start_timestamp),
        "end_timestamp": _iso(run.end_timestamp),
        "inputs": [_pointer_json(p) for p in run.inputs],
        "outputs": [_pointer_json(p) for p in run.outputs],
        "dependencies": run.dependencies,
        "stale": run.stale,
        "notes": run.notes,
        "git_hash": run.git_hash,
        "git_tags": run.git_tags,
        "code_snapshot": run.code_snapshot,
        "test_results": run.test_results,
    }


def _iso(ts: Any) -> str | None:
    return None if ts is None else ts.isoformat() + "Z"


def _pointer_json(pointer: Any) -> dict:
    if isinstance(pointer, dict):
        return {**pointer, "pointer_type": pointer["pointer_type"].value}
    return {
        "name": pointer.name,
        "value": pointer.value,
        "pointer_type": pointer.pointer_type.value,
        "flag": pointer.flag,
    }


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


# ------------------------- CLI ------------------------ #


def server_options(command: Callable) -> Callable:
    """--address, --server, --token and --json on a command; errors as one line."""

    @click.option("--address", help="Host of the mltrace server (mltrace's option): http://HOST:8000.")
    @click.option("--server", help="URL of the mltrace server [env MLTRACE_SERVER_URL].")
    @click.option("--token", help="API token [env MLTRACE_TOKEN].")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
    @functools.wraps(command)
    def wrapper(*args: Any, address: str, server: str, token: str, as_json: bool, **kwargs: Any) -> Any:
        try:
            if server:
                client.set_server(server, token)
            elif token:
                client.set_server(client.get_server(), token)
            if address:
                client.set_address(address)
            _state.settings.read_give_up_seconds = CLI_GIVE_UP_SECONDS
            return command(*args, as_json=as_json, **kwargs)
        except (ServerError, RuntimeError, ValueError, NotSupported) as exc:
            raise click.ClickException(_one_line(exc)) from None

    return wrapper


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


@click.group()
@click.version_option(mltrace.__version__, prog_name="mltrace (mltrace-client)")
def mltrace_cli() -> None:
    """mltrace over the mltrace server: trace outputs back to the runs that made them."""


@mltrace_cli.command("recent")
@click.option("--limit", default=5, help="Limit of recent objects.")
@server_options
def recent(limit: int, as_json: bool) -> None:
    """The newest component runs."""
    ids = client.get_recent_run_ids(limit)
    if as_json:
        _echo_json([_run_json(client.get_component_run_information(i)) for i in ids])
        return
    for run_id in ids:
        show_info_card(run_id)


@mltrace_cli.command("inspect")
@click.argument("component_run_id")
@server_options
def inspect_run(component_run_id: str, as_json: bool) -> None:
    """One component run."""
    if as_json:
        _echo_json(_run_json(client.get_component_run_information(component_run_id)))
        return
    show_info_card(component_run_id)


@mltrace_cli.command("history")
@click.argument("component_name")
@click.option("--limit", default=5, help="Limit of recent objects.")
@server_options
def history(component_name: str, limit: int, as_json: bool) -> None:
    """A component's runs, newest first."""
    runs = client.get_history(component_name, limit) if limit else client.get_history(component_name)
    if as_json:
        _echo_json([_run_json(run) for run in runs])
        return
    show_history(runs)


@mltrace_cli.command("trace")
@click.argument("output_id")
@server_options
def trace(output_id: str, as_json: bool) -> None:
    """The runs that produced an output, as a tree."""
    res = client.web_trace(output_id)
    if as_json:
        _echo_json(res)
        return
    click.echo(res[0]["label"])
    if "childNodes" in res[0]:
        show_res(res[0]["childNodes"], indent=1, count=0, pos=0, need_stick=0)


def impact_tree(output_id: str, nodes: list[dict], edges: list[list[int]]) -> list[str]:
    """The impact as a tree under the output: each run under the first (lowest id) of its
    dependencies one hop nearer; the readers of the output under the output itself."""
    depth = {node["run"]["id"]: node["depth"] for node in nodes}
    children: dict[int | None, list[dict]] = {}
    for node in nodes:
        run_id, hops = node["run"]["id"], node["depth"]
        parents = sorted(dep for run, dep in edges if run == run_id and depth.get(dep) == hops - 1)
        children.setdefault(parents[0] if parents else None, []).append(node)
    lines = [output_id]

    def walk(parent: int | None, prefix: str) -> None:
        kids = children.get(parent, [])
        for i, node in enumerate(kids):
            run = node["run"]
            last = i == len(kids) - 1
            stale = " " + _yellow("(stale)") if run["stale"] else ""
            lines.append(
                f"{prefix}{'└── ' if last else '├── '}{run['component']} (run {run['id']}, "
                f"{run['start_timestamp']}){stale}"
            )
            walk(run["id"], prefix + ("    " if last else "│   "))

    walk(None, "")
    return lines


@mltrace_cli.command("impact")
@click.argument("output_id")
@click.option("--depth", type=click.IntRange(min=0), default=None, help="At most this many hops.")
@server_options
def impact(output_id: str, depth: int | None, as_json: bool) -> None:
    """The runs downstream of an output (those that read it, and those that depend on them),
    as a tree. Not in mltrace 0.17."""
    nodes, edges = client.impact_nodes(output_id, depth)
    if as_json:
        _echo_json({"output_id": output_id, "nodes": nodes, "edges": edges})
        return
    for line in impact_tree(output_id, nodes, edges):
        click.echo(line)


@mltrace_cli.command("flag")
@click.argument("output_id")
@server_options
def flag(output_id: str, as_json: bool) -> None:
    """Flag an output id (every pointer of that name)."""
    client.flag_output_id(output_id)
    if as_json:
        _echo_json({"output_id": output_id, "flag": True})


@mltrace_cli.command("unflag")
@click.option("--output_id", help="Output ID to unflag")
@click.option("--all", "all_", is_flag=True, help="Add flag to unflag all")
@server_options
def unflag(output_id: str, all_: bool, as_json: bool) -> None:
    """Unflag an output id, or all of them."""
    if all_ and output_id:
        raise click.ClickException("Can set either --all=True or specify an --output_id. Cannot set both.")
    if not all_ and not output_id:
        raise click.ClickException("Need to either set --all=True or specify an --output_id to unflag.")
    if all_:
        client.unflag_all()
    else:
        client.unflag_output_id(output_id)
    if as_json:
        _echo_json({"output_id": output_id, "all": all_, "flag": False})


@mltrace_cli.command("review")
@click.option("--limit", default=5, help="Limit of recent objects.")
@server_options
def review(limit: int, as_json: bool) -> None:
    """The runs behind flagged outputs, the most shared first."""
    outputs, component_counts = client.review_flagged_outputs()
    if as_json:
        _echo_json(
            {
                "flagged": outputs,
                "runs": [{"run": _run_json(run), "count": count} for run, count in component_counts[:limit]],
            }
        )
        return
    click.echo("Flagged outputs:")
    for index, out in enumerate(outputs):
        click.echo(f"{'└' if index == len(outputs) - 1 else '├'}─{out}")
    click.echo()
    for run, count in component_counts[:limit]:
        show_info_card(run.id, count, len(outputs))


@mltrace_cli.command("components")
@click.option("--owner", help="Owner of components")
@click.option("--tag", help="Tag of components")
@server_options
def components(owner: str, tag: str, as_json: bool) -> None:
    """Components, by owner or tag."""
    try:
        result = client.get_components(tag or "", owner or "")
    except RuntimeError:
        if as_json:
            _echo_json([])
            return
        raise click.ClickException("No components could be found with the flags passed.") from None
    if as_json:
        _echo_json(
            [{"name": c.name, "description": c.description, "owner": c.owner, "tags": c.tags} for c in result]
        )
        return
    for component in result:
        click.echo(f"Name: {component.name}")
        click.echo()


@mltrace_cli.command("tags")
@server_options
def tags(as_json: bool) -> None:
    """Every tag."""
    all_tags = client.get_all_tags()
    if as_json:
        _echo_json(all_tags)
        return
    click.echo(all_tags)
    click.echo()


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    """Aligned columns, the numbers (`right`) flush right."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths))
        ).rstrip()
        for row in [header, *rows]
    ]


def _share(share: Any) -> str:
    return "-" if share is None else f"{share:.1%}"


@mltrace_cli.command("tasks")
@server_options
def tasks(as_json: bool) -> None:
    """Monitored tasks: their outputs, feedback, pairs and the share of outputs with feedback."""
    all_tasks = _monitoring.tasks()
    if as_json:
        _echo_json(all_tasks)
        return
    if not all_tasks:
        click.echo("No tasks.")
        return
    rows = [
        [t["name"], str(t["outputs"]), str(t["feedback"]), str(t["pairs"]), _share(t["feedback_share"])]
        for t in all_tasks
    ]
    for line in _table(["name", "outputs", "feedback", "pairs", "feedback share"], rows, {1, 2, 3, 4}):
        click.echo(line)


def _window_text(window: dict[str, int]) -> str:
    if "window_seconds" in window:
        return f"output in the last {window['window_seconds']} seconds"
    if "window_pairs" in window:
        return f"the last {window['window_pairs']} by output time"
    return "all"


def _value_text(answer: dict) -> str:
    value = answer["value"]
    if value is None:
        return f"undefined: {answer.get('reason') or 'no value'}"
    if isinstance(value, float):
        return f"{value:.6g}"
    if answer.get("labels") is not None:
        return f"{json.dumps(value)} (labels {json.dumps(answer['labels'])})"
    return json.dumps(value)


@mltrace_cli.command("metrics")
@click.argument("task_name")
@click.option(
    "--metric",
    type=click.Choice(list(mltrace.supported_sklearn_metrics)),
    help="One metric (default: every supported metric).",
)
@click.option(
    "--window-seconds",
    type=click.IntRange(min=1),
    help="The pairs whose output was logged in the last N seconds.",
)
@click.option("--window-pairs", type=click.IntRange(min=1), help="The N pairs with the latest outputs.")
@server_options
def metrics(
    task_name: str, metric: str | None, window_seconds: int | None, window_pairs: int | None, as_json: bool
) -> None:
    """Metrics of a task's pairs (feedback as y_true, outputs as y_pred), computed by the server,
    over every pair or a window by output time. Not in mltrace."""
    if window_seconds is not None and window_pairs is not None:
        raise click.ClickException("Give --window-seconds or --window-pairs, not both.")
    task_name = _request_bodies.task_name(task_name)
    window: dict[str, int] = {}
    if window_seconds is not None:
        window["window_seconds"] = window_seconds
    if window_pairs is not None:
        window["window_pairs"] = window_pairs
    names = [metric] if metric else list(mltrace.supported_sklearn_metrics)
    answers = {}
    for name in names:
        answer = _monitoring.metric_answer(task_name, name, window)
        if answer is None:
            raise click.ClickException(f"Unknown task: {task_name}.")
        answers[name] = answer
    if as_json:
        _echo_json(answers)
        return
    pairs = answers[names[0]]["pairs"]
    click.echo(f"{task_name}: {pairs} {'pair' if pairs == 1 else 'pairs'} ({_window_text(window)})")
    width = max(len(name) for name in names)
    for name, answer in answers.items():
        click.echo(f"{name.ljust(width)}  {_value_text(answer)}")


@mltrace_cli.command("clear")
@server_options
def clear(as_json: bool) -> None:
    """Not supported: mltrace's command to delete every record."""
    client.clean_db()


def main() -> None:
    mltrace_cli(prog_name="mltrace")


if __name__ == "__main__":
    main()
