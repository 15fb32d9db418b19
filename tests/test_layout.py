"""What imports what: the shipped server imports nothing of bench/ or the tests, and the
client (client/mltrace) nothing of the server. Read from the sources with ast."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER_PACKAGES = ("components", "runs", "mltrace_site")


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
