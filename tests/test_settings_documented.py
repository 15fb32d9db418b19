"""Every environment variable the code reads is in its README's settings table, and only those.

The variables are read from the sources with ast, not imported: `os.environ[NAME]`,
`os.environ.get(NAME)`, `os.getenv(NAME)`, `NAME in os.environ`, and calls of the helpers that
wrap them. A helper is any function that reads the environment with one of its own parameters
as the name (settings.py's env_str, env_int, env_bool and env_list; the client's _env_int,
_env_float and _env_bool), found by that shape rather than by name, so a new helper is
followed too. A read whose name is neither a string literal nor a helper's parameter is
reported: it could read anything. `os.environ.setdefault(...)` writes a default
(DJANGO_SETTINGS_MODULE, in manage.py and wsgi.py) and is not counted.

- The server: every Python file under the repository root except tests/, bench/, client/,
  examples/ and docs/ (settings.py and its helpers, gunicorn.conf.py, the management
  commands, any package added later), against README.md's "Settings" table.
- The client: client/mltrace, against client/README.md's "Configuration" table.

A table's names are the backquoted UPPER_CASE words of each row's first cell (`NAME` or
`NAME=value`); the cell may also hold the Python setters of the same setting.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOT_SERVER = {"tests", "bench", "client", "examples", "docs", "var", "node_modules", "__pycache__"}
ENV_NAME = re.compile(r"^([A-Z][A-Z0-9_]*)(=.*)?$")


def server_sources() -> list[Path]:
    paths = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith(".") and d not in NOT_SERVER)
        paths.extend(Path(folder) / name for name in sorted(files) if name.endswith(".py"))
    return paths


def client_sources() -> list[Path]:
    return sorted((ROOT / "client" / "mltrace").rglob("*.py"))


@dataclass
class EnvReads:
    names: set[str] = field(default_factory=set)
    unresolved: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Helper:
    position: int
    keyword: str


def _is_os(node: ast.AST, attr: str, from_os: set[str]) -> bool:
    """`os.<attr>`, or `<attr>` imported from os."""
    if isinstance(node, ast.Attribute):
        return node.attr == attr and isinstance(node.value, ast.Name) and node.value.id == "os"
    return isinstance(node, ast.Name) and node.id == attr and attr in from_os


def _name_read(node: ast.AST, from_os: set[str]) -> ast.expr | None:
    """The expression naming the variable, if `node` reads one variable of the environment."""
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "get" and _is_os(func.value, "environ", from_os):
            return node.args[0] if node.args else None
        if _is_os(func, "getenv", from_os):
            return node.args[0] if node.args else None
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.ctx, ast.Load)
        and _is_os(node.value, "environ", from_os)
    ):
        return node.slice
    if (
        isinstance(node, ast.Compare)
        and len(node.ops) == 1
        and isinstance(node.ops[0], (ast.In, ast.NotIn))
        and _is_os(node.comparators[0], "environ", from_os)
    ):
        return node.left
    return None


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _helper_argument(call: ast.Call, helper: Helper) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == helper.keyword:
            return keyword.value
    return call.args[helper.position] if len(call.args) > helper.position else None


def _functions(tree: ast.AST) -> Iterator[tuple[ast.FunctionDef | ast.AsyncFunctionDef | None, ast.AST]]:
    """Every node with the innermost function around it (None: module level)."""

    def walk(node: ast.AST, function: ast.FunctionDef | ast.AsyncFunctionDef | None) -> Iterator:
        for child in ast.iter_child_nodes(node):
            inner = child if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            yield inner, child
            yield from walk(child, inner)

    yield from walk(tree, None)


def env_reads(sources: Iterable[tuple[str, str]]) -> EnvReads:
    """The environment variables that these (label, source) read, as described above."""
    modules = []
    for label, source in sources:
        tree = ast.parse(source, label)
        from_os = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "os"
            for alias in node.names
        }
        modules.append((label, tree, from_os))

    # The helpers, to a fixed point: a helper may call another with its own parameter.
    helpers: dict[str, Helper] = {}
    changed = True
    while changed:
        changed = False
        for _, tree, from_os in modules:
            for function, node in _functions(tree):
                if function is None or function.name in helpers:
                    continue
                named = _name_read(node, from_os)
                if named is None and isinstance(node, ast.Call) and _called_name(node) in helpers:
                    named = _helper_argument(node, helpers[_called_name(node) or ""])
                if not isinstance(named, ast.Name):
                    continue
                parameters = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
                if named.id in parameters:
                    helpers[function.name] = Helper(parameters.index(named.id), named.id)
                    changed = True

    reads = EnvReads()
    for label, tree, from_os in modules:
        for function, node in _functions(tree):
            named = _name_read(node, from_os)
            if named is None and isinstance(node, ast.Call) and _called_name(node) in helpers:
                named = _helper_argument(node, helpers[_called_name(node) or ""])
            if named is None:
                continue
            if isinstance(named, ast.Constant) and isinstance(named.value, str):
                reads.names.add(named.value)
            elif (
                function is not None
                and function.name in helpers
                and isinstance(named, ast.Name)
                and named.id == helpers[function.name].keyword
            ):
                continue  # the helper's own read of its parameter
            else:
                reads.unresolved.append(f"{label}:{node.lineno}: {ast.unparse(node)}")
    return reads


def read_sources(paths: Iterable[Path]) -> list[tuple[str, str]]:
    return [(str(path.relative_to(ROOT)), path.read_text()) for path in paths]


def documented(readme: Path, heading: str) -> set[str]:
    """The variables named in the first cells of the table under `heading` in `readme`."""
    lines = readme.read_text().splitlines()
    title = re.compile(rf"^#+\s+{re.escape(heading)}\s*$")
    start = next((i for i, line in enumerate(lines) if title.match(line)), None)
    assert start is not None, f"{readme.relative_to(ROOT)} has no heading {heading!r}"
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        if line.startswith("|"):
            rows.append(line)
        elif rows:
            break  # the table ended
    assert len(rows) > 2, f"no table under {heading!r} in {readme.relative_to(ROOT)}"
    names = set()
    for row in rows[2:]:  # past the header and the |---| line
        first_cell = row.strip("|").split("|")[0]
        for quoted in re.findall(r"`([^`]+)`", first_cell):
            match = ENV_NAME.match(quoted.strip())
            if match:
                names.add(match.group(1))
    return names


def assert_same(code: EnvReads, table: set[str], where: str) -> None:
    assert not code.unresolved, "environment reads whose variable cannot be told:\n" + "\n".join(
        code.unresolved
    )
    undocumented = sorted(code.names - table)
    unread = sorted(table - code.names)
    assert not undocumented and not unread, (
        f"{where} is out of step with the code. "
        f"Read by the code but not in the table (add a row): {undocumented}. "
        f"In the table but read by no code (remove the row, or read it): {unread}."
    )


def test_the_server_settings_table_names_every_variable_the_server_reads():
    code = env_reads(read_sources(server_sources()))
    assert {"DATABASE_URL", "WEB_CONCURRENCY", "MLTRACE_TASK_TIMEOUT"} <= code.names  # the scan sees
    assert_same(code, documented(ROOT / "README.md", "Settings"), "README.md's Settings table")


def test_the_client_configuration_table_names_every_variable_the_client_reads():
    code = env_reads(read_sources(client_sources()))
    assert {"MLTRACE_SERVER_URL", "MLTRACE_BUFFER_SIZE"} <= code.names  # the scan sees
    table = documented(ROOT / "client" / "README.md", "Configuration")
    assert_same(code, table, "client/README.md's Configuration table")


def test_the_scan_finds_each_way_of_reading_the_environment():
    source = """
import os
from os import environ, getenv

def env_int(name, default):
    raw = os.environ.get(name)
    return int(raw) if raw else default

def via_helper(label, var, default=0):
    return env_int(var, default)

A = os.environ["A"]
B = os.environ.get("B", "")
C = os.getenv("C")
D = getenv("D")
E = environ["E"]
F = "F" in os.environ
G = env_int("G", 1)
H = via_helper("x", "H")
I = via_helper("x", var="I")
os.environ.setdefault("NOT_A_READ", "x")
os.environ["ALSO_NOT_A_READ"] = "x"
key = "K"
J = os.environ.get(key)
"""
    reads = env_reads([("sample.py", source)])
    assert reads.names == set("ABCDEFGHI")
    assert reads.unresolved == ["sample.py:24: os.environ.get(key)"]
