"""What imports what, read from the sources with ast (function-local imports included).

The server's packages form a line, top to bottom; a module imports only from its own package
and the ones below it:

    mltrace_site   the project: settings, root URLconf, wsgi, commands; nothing imports it
    api            HTTP: views, serializers, routing, the exception handler, the dashboard
    ingest         the accepted-write log: accept, locks, idempotency, commit, tasks, brokers
    monitoring     the domain: tasks, their outputs and feedback, metrics (it may use runs)
    runs           the domain: runs, pointers, lineage reads (it may use components)
    components     the domain: components and tags
    common         helpers that import no app

Inside ingest the modules form a line too, written in ingest/__init__.py's docstring: each
imports only the ones below it.

The shipped server imports nothing of bench/ or the tests, and the client (client/mltrace)
nothing of the server.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["mltrace_site", "api", "ingest", "monitoring", "runs", "components", "common"]
SERVER_PACKAGES = tuple(LAYERS)


def imported(path: Path) -> set[str]:
    """The top-level names of every module a file imports, at any depth of its code."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def imported_modules(path: Path, package: str) -> set[str]:
    """The modules of `package` a file imports (`from package.x import y`, `from package import
    x`, `import package.x`), at any depth of its code."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(
                alias.name.split(".")[1] for alias in node.names if alias.name.startswith(f"{package}.")
            )
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == package:
                names.update(alias.name for alias in node.names)
            elif node.module.startswith(f"{package}."):
                names.add(node.module.split(".")[1])
    return names


def ingest_line() -> list[str]:
    """ingest's modules, top to bottom, as ingest/__init__.py's docstring lists them."""
    doc = ast.get_docstring(ast.parse((ROOT / "ingest" / "__init__.py").read_text())) or ""
    return re.findall(r"^    (\w+)\.py ", doc, flags=re.MULTILINE)


def sources(*packages: str) -> list[Path]:
    return [path for package in packages for path in sorted((ROOT / package).rglob("*.py"))]


def test_the_shipped_server_imports_nothing_of_bench_or_the_tests():
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported(path) & {"bench", "tests"})
        for path in sources(*SERVER_PACKAGES)
        if imported(path) & {"bench", "tests"}
    }
    assert offenders == {}


def test_the_client_imports_nothing_of_the_server():
    server = {*SERVER_PACKAGES, "django", "rest_framework", "django_q", "drf_spectacular"}
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported(path) & server)
        for path in sources("client/mltrace")
        if imported(path) & server
    }
    assert offenders == {}
    assert len(sources("client/mltrace")) > 20  # the walk did find the client


def test_each_layer_imports_only_the_layers_below_it():
    upward = {}
    for index, package in enumerate(LAYERS):
        above = set(LAYERS[:index])
        for path in sources(package):
            wrong = imported(path) & above
            if wrong:
                upward[str(path.relative_to(ROOT))] = sorted(wrong)
    assert upward == {}


def test_the_layer_test_sees_an_upward_import(tmp_path, monkeypatch):
    # The check itself: a domain module importing ingest is caught.
    module = tmp_path / "runs" / "bad.py"
    module.parent.mkdir()
    module.write_text("def f():\n    from ingest.accept import writes_accept\n")
    assert imported(module) & set(LAYERS[:3]) == {"ingest"}


def test_ingest_lists_its_modules_in_order_each_once():
    line = ingest_line()
    on_disk = sorted(path.stem for path in (ROOT / "ingest").glob("*.py") if path.stem != "__init__")
    assert sorted(line) == on_disk
    assert len(line) == len(set(line))


def test_each_ingest_module_imports_only_the_ones_below_it():
    line = ingest_line()
    upward = {}
    for index, name in enumerate(line):
        wrong = imported_modules(ROOT / "ingest" / f"{name}.py", "ingest") - set(line[index + 1 :])
        if wrong:
            upward[f"ingest/{name}.py"] = sorted(wrong)
    assert upward == {}


def test_the_ingest_line_test_sees_an_upward_import(tmp_path):
    # The check itself: every form of import names the module it reaches.
    module = tmp_path / "bad.py"
    module.write_text(
        "import ingest.tasks\nfrom ingest import flag\n"
        "def f():\n    from ingest.submit import writes_submit\n"
    )
    assert imported_modules(module, "ingest") == {"tasks", "flag", "submit"}
    assert ingest_line()[0] == "submit" and ingest_line()[-1] == "sql"
