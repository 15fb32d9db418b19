"""What imports what, read from the sources with ast (function-local imports included).

The server's packages form a line, top to bottom; a module imports only from its own package
and the ones below it:

    mltrace_site   the project: settings, root URLconf, wsgi, commands; nothing imports it
    api            HTTP: views, serializers, routing, the exception handler, the dashboard
    ingest         the accepted-write log: accept, locks, idempotency, commit, tasks, brokers
    runs           the domain: runs, pointers, lineage reads (it may use components)
    components     the domain: components and tags
    common         helpers that import no app

The shipped server imports nothing of bench/ or the tests, and the client (client/mltrace)
nothing of the server.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["mltrace_site", "api", "ingest", "runs", "components", "common"]
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
