"""Fixtures of the client's tests: one live server for the session, emptied before each test."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from server import Server  # noqa: E402


@pytest.fixture(scope="session")
def server():
    process = Server()
    try:
        process.start()
        yield process
    finally:
        process.stop()
        if process.web_output is not None:
            print("--- web ---\n" + process.web_output.text()[-3000:])
        if process.worker_output is not None:
            print("--- worker ---\n" + process.worker_output.text()[-3000:])


@pytest.fixture(autouse=True)
def fresh(server, monkeypatch, tmp_path):
    """An empty server, a client configured for it, files saved under tmp_path."""
    import mltrace
    from mltrace import _answers, _state, client

    if server.web is None:
        server.start_web()
    server.reset()
    client._sent_components.clear()
    _answers._component_of_run.clear()
    _state.settings.sync = False
    _state.settings.error_callback = None
    _state.settings.buffer_size = 10_000
    _state.settings.batch_runs = 1000
    monkeypatch.setenv("SAVE_DIR", str(tmp_path / "saved"))
    monkeypatch.setenv("MLTRACE_SERVER_URL", server.url)
    monkeypatch.setenv("MLTRACE_TOKEN", server.token)
    # A new sender for each test, as a new process would have; set_server() would first wait
    # for the previous test's writes, which a test that stopped the server may have left.
    _state.settings.server_url = server.url
    _state.settings.token = server.token
    _state._sender = None
    yield server
    with contextlib.suppress(Exception):  # a test that broke the server has said so already
        mltrace.flush(timeout=30)
