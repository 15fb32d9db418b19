"""Writes that do not block the pipeline: the buffer, its sender, and what they guarantee,
against a live server that the tests stop, starve of its database, and restart."""

from __future__ import annotations

import logging
import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta

import pytest
from server import free_port, wait_until

import mltrace
from mltrace import ComponentRun, _state
from mltrace._config import Settings

T0 = datetime(2024, 1, 1)


def a_run(component: str, i: int, inputs=(), outputs=()) -> ComponentRun:
    run = ComponentRun(component)
    run.set_start_timestamp(T0 + timedelta(seconds=i))
    run.set_end_timestamp(T0 + timedelta(seconds=i + 1))
    run.add_inputs(list(inputs))
    run.add_outputs(list(outputs))
    return run


def committed_outputs(server, component: str) -> list[str]:
    """Output names of the component's committed runs in id order, read from the database."""
    rows = server.query(
        "SELECT p.name FROM runs_run r JOIN components_component c ON c.id = r.component_id "
        "JOIN runs_runoutput o ON o.run_id = r.id JOIN runs_iopointer p ON p.id = o.pointer_id "
        "WHERE c.name = %s ORDER BY r.id",
        (component,),
    )
    return [row[0] for row in rows]


def test_a_write_returns_while_the_server_is_down_and_lands_when_it_is_back(server):
    def hundred_calls():
        for i in range(100):
            mltrace.log_component_run(a_run("etl", i, outputs=[f"out_{i}.csv"]))

    server.stop_web()
    calls = threading.Thread(target=hundred_calls)
    calls.start()
    # The server stays down until they have returned: a call that waited for it would never
    # return. (The 60 s bound only turns such a hang into a failure; only a stall reaches it.)
    calls.join(60)

    assert not calls.is_alive()
    sender = _state.sender()
    assert (sender.pending(), sender.accepted) == (100, 0)  # every write made, none sent yet
    assert committed_outputs(server, "etl") == []
    server.start_web()
    assert mltrace.flush(timeout=60) is True
    assert committed_outputs(server, "etl") == [f"out_{i}.csv" for i in range(100)]


def test_one_process_writes_keep_their_order_and_their_lineage(server):
    for i in range(500):
        mltrace.log_component_run(a_run("step", i, inputs=[f"x_{i}"], outputs=[f"x_{i + 1}"]))

    trace = mltrace.backtrace("x_500")

    assert [depth for depth, _ in trace] == list(range(500))
    assert [run.outputs[0].name for _, run in trace] == [f"x_{i}" for i in range(500, 0, -1)]
    ids = [run.id for _, run in trace]
    assert ids == sorted(ids, reverse=True)


def test_a_component_write_between_runs_keeps_its_place():
    mltrace.log_component_run(a_run("etl", 0, outputs=["a.csv"]))
    mltrace.create_component("etl", "Cleans the data", "ana", ["v1"])
    mltrace.log_component_run(a_run("etl", 1, outputs=["b.csv"]))
    mltrace.create_component("etl", "", "", ["v2"])

    component = mltrace.get_component_information("etl")

    assert (component.description, component.owner, component.tags) == (
        "Cleans the data",
        "ana",
        ["v1", "v2"],
    )
    assert [run.id for run in mltrace.get_history("etl")] == [3, 1]


def test_a_refused_run_in_a_batch_is_reported_and_its_neighbours_committed(server, caplog):
    refused = []
    mltrace.set_error_callback(refused.append)
    server.stop_web()  # the runs gather in the buffer and go out as one batch
    for i in range(10):
        # 60 inputs: the client does not know this server's limit of 50; the server refuses it.
        inputs = [f"in_{i}_{k}" for k in range(60 if i == 4 else 1)]
        mltrace.log_component_run(a_run("etl", i, inputs=inputs, outputs=[f"out_{i}.csv"]))
    server.start_web()

    with caplog.at_level(logging.ERROR, logger="mltrace"):
        assert mltrace.flush(timeout=60) is True

    assert committed_outputs(server, "etl") == [f"out_{i}.csv" for i in range(10) if i != 4]
    (write,) = refused
    assert (write.kind, write.status) == ("run", 400)
    assert write.payload["outputs"] == ["out_4.csv"]
    assert "inputs" in write.error
    assert "the server refused a run write of 'etl' (HTTP 400)" in caplog.text
    assert _state.sender().refused == 1 and _state.sender().accepted == 9


def test_a_full_buffer_blocks_the_caller_with_a_warning_and_drops_nothing(server, caplog):
    _state.settings.buffer_size = 5
    server.stop_web()
    for i in range(5):
        mltrace.log_component_run(a_run("etl", i, outputs=[f"out_{i}.csv"]))
    accepted_when_the_sixth_returned = []

    def sixth_call():
        mltrace.log_component_run(a_run("etl", 5, outputs=["out_5.csv"]))
        accepted_when_the_sixth_returned.append(_state.sender().accepted)

    sixth = threading.Thread(target=sixth_call)

    with caplog.at_level(logging.WARNING, logger="mltrace"):
        sixth.start()
        # The warning is logged as the call starts to wait for room.
        wait_until(lambda: "the write buffer is full (5 writes)" in caplog.text, what="the warning")
        assert sixth.is_alive()  # waiting for room
        server.start_web()
        sixth.join(30)

    assert not sixth.is_alive()
    # It returned only once the server had accepted some of the five: it waited for room.
    assert accepted_when_the_sixth_returned[0] >= 1
    assert mltrace.flush(timeout=30) is True
    assert committed_outputs(server, "etl") == [f"out_{i}.csv" for i in range(6)]


def test_503_while_the_server_has_no_database_is_waited_out(server, caplog):
    server.cut_database()
    try:
        with caplog.at_level(logging.DEBUG, logger="mltrace"):
            for i in range(20):
                mltrace.log_component_run(a_run("etl", i, outputs=[f"out_{i}.csv"]))
            # The server answers 503 with Retry-After; the sender waits and retries.
            wait_until(lambda: "(HTTP 503" in caplog.text, what="the sender to retry after a 503")
        assert mltrace.flush(timeout=0.5) is False
    finally:
        server.restore_database()
    assert mltrace.flush(timeout=60) is True
    assert committed_outputs(server, "etl") == [f"out_{i}.csv" for i in range(20)]


def test_nothing_lost_or_doubled_when_the_server_is_killed_in_a_stream_of_20000(server):
    total = 20_000
    killed = threading.Event()

    def stream():
        for i in range(total):
            if i == total // 2:
                killed.wait()  # the second half is written while the server is down
            mltrace.log_component_run(a_run("infer", i, inputs=["model.pkl"], outputs=[f"pred_{i}"]))

    writer = threading.Thread(target=stream, daemon=True)  # a failed wait leaves it waiting
    writer.start()
    sender = _state.sender()
    wait_until(lambda: sender.accepted >= 5000, timeout=60, interval=0.01, what="5000 writes accepted")
    server.kill_web()  # requests in flight die with it; their answers are lost
    killed.set()
    # The outage as the stream meets it: the sender retries the dead server, and the writer
    # has made every write the buffer has room for (or all of them).
    wait_until(lambda: sender.outage_since is not None, what="the sender to retry the dead server")
    wait_until(
        lambda: not writer.is_alive() or sender.in_flight + len(sender.buffer) >= _state.settings.buffer_size,
        what="the writer to fill the buffer",
    )
    server.start_web()
    writer.join(120)
    assert mltrace.flush(timeout=120) is True

    names = committed_outputs(server, "infer")
    assert len(names) == total
    assert names == [f"pred_{i}" for i in range(total)]  # once each, in program order


def test_sync_writes_are_committed_before_the_call_returns(server):
    mltrace.set_sync(True)
    try:
        mltrace.create_component("etl", "Cleans", "ana")
        mltrace.log_component_run(a_run("etl", 0, outputs=["a.csv"]))
        # No flush: the rows are there when the call returns.
        assert committed_outputs(server, "etl") == ["a.csv"]
        assert server.query("SELECT description FROM components_component WHERE name = 'etl'") == [
            ("Cleans",)
        ]
        with pytest.raises(ValueError, match="refused this run"):
            mltrace.log_component_run(a_run("etl", 1, inputs=[f"in_{k}" for k in range(60)]))
    finally:
        mltrace.set_sync(False)


def test_mltrace_sync_in_the_environment_turns_sync_on(monkeypatch):
    monkeypatch.setenv("MLTRACE_SYNC", "1")
    assert Settings().sync is True
    monkeypatch.setenv("MLTRACE_SYNC", "maybe")
    with pytest.raises(ValueError, match="MLTRACE_SYNC must be 1 or 0"):
        Settings()


def test_a_bad_token_is_a_clear_error_and_keeps_the_writes(server):
    mltrace.set_server(server.url, token="not-a-token")
    mltrace.log_component_run(a_run("etl", 0, outputs=["a.csv"]))

    with pytest.raises(mltrace.ServerError, match="needs a valid token"):
        mltrace.flush(timeout=10)
    assert committed_outputs(server, "etl") == []

    mltrace.set_server(server.url, token=server.token)  # the buffered write goes with the new token
    assert mltrace.flush(timeout=30) is True
    assert committed_outputs(server, "etl") == ["a.csv"]


def run_script(server, body: str, **env: str) -> subprocess.CompletedProcess:
    script = "import mltrace\nfrom datetime import datetime\n" + textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "MLTRACE_SERVER_URL": server.url, "MLTRACE_TOKEN": server.token, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_exit_flush_sends_and_commits_what_is_buffered(server):
    result = run_script(
        server,
        """
        for i in range(300):
            run = mltrace.ComponentRun("etl", start_timestamp=datetime(2024, 1, 1), end_timestamp=datetime(2024, 1, 1))
            run.add_output(f"out_{i}.csv")
            mltrace.log_component_run(run)
        """,
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    # Committed when the process ended: no flush needed in the script, nor here.
    assert committed_outputs(server, "etl") == [f"out_{i}.csv" for i in range(300)]


def test_the_exit_flush_gives_up_after_its_timeout_with_one_warning(server):
    started = time.monotonic()
    result = run_script(
        server,
        """
        for i in range(3):
            run = mltrace.ComponentRun("etl", start_timestamp=datetime(2024, 1, 1), end_timestamp=datetime(2024, 1, 1))
            mltrace.log_component_run(run)
        """,
        MLTRACE_SERVER_URL=f"http://127.0.0.1:{free_port()}",
        MLTRACE_FLUSH_TIMEOUT="1",
    )

    assert result.returncode == 0
    # About 1 s of flush and the start-up; the default timeout (30 s) would fail this, and so
    # would a stall of over 15 s, nothing less.
    assert time.monotonic() - started < 20
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mltrace: 3 writes were not sent to the server at http://127.0.0.1:")
    assert lines[0].endswith("before exit (MLTRACE_FLUSH_TIMEOUT is 1 s); they are lost")


def _child_logs(written) -> None:
    for i in range(20):
        mltrace.log_component_run(a_run("child", i, outputs=[f"child_{i}"]))
    written.set()
    # No flush: the child's exit sends its own writes.


def test_a_forked_child_sends_its_own_writes_and_never_its_parents(server):
    server.stop_web()
    for i in range(50):
        mltrace.log_component_run(a_run("parent", i, outputs=[f"parent_{i}"]))
    context = multiprocessing.get_context("fork")
    written = context.Event()
    child = context.Process(target=_child_logs, args=(written,))
    child.start()  # the parent's 50 writes are in its buffer as it forks
    # The child's 20 writes are in its own buffer before the server is back.
    assert written.wait(60)
    server.start_web()
    child.join(60)

    assert child.exitcode == 0
    assert mltrace.flush(timeout=60) is True
    assert committed_outputs(server, "child") == [f"child_{i}" for i in range(20)]
    assert committed_outputs(server, "parent") == [f"parent_{i}" for i in range(50)]


def test_a_body_the_server_finds_too_large_is_halved_until_the_one_too_large_stands_alone(server):
    refused = []
    mltrace.set_error_callback(refused.append)
    server.stop_web()  # so that the runs go out as one batch of 11, about 3.5 MB
    for i in range(11):
        run = a_run("etl", i, outputs=[f"out_{i}.csv"])
        # 200 KB each; the sixth 1.5 MB, over the server's 1 MiB limit on its own.
        run.code_snapshot = "x" * (1_500_000 if i == 5 else 200_000)
        mltrace.log_component_run(run)
    server.start_web()

    assert mltrace.flush(timeout=60) is True

    assert committed_outputs(server, "etl") == [f"out_{i}.csv" for i in range(11) if i != 5]
    assert [(write.status, write.payload["outputs"]) for write in refused] == [(413, ["out_5.csv"])]


def test_set_server_moves_writes_stuck_on_a_dead_server_to_the_new_one(server):
    mltrace.set_server(f"http://127.0.0.1:{free_port()}")
    mltrace.log_component_run(a_run("etl", 0, outputs=["a.csv"]))
    sender = _state.sender()
    wait_until(lambda: sender.outage_since is not None, what="the sender to retry the dead server")

    mltrace.set_server(server.url)

    assert mltrace.flush(timeout=20) is True
    assert committed_outputs(server, "etl") == ["a.csv"]


def test_a_url_that_is_not_a_servers_keeps_the_writes_and_says_so(server):
    mltrace.set_server(server.url + "/not-mltrace")
    mltrace.log_component_run(a_run("etl", 0, outputs=["a.csv"]))

    with pytest.raises(mltrace.ServerError, match="HTTP 404"):
        mltrace.flush(timeout=10)
    assert committed_outputs(server, "etl") == []

    mltrace.set_server(server.url)
    assert mltrace.flush(timeout=20) is True
    assert committed_outputs(server, "etl") == ["a.csv"]


def test_an_error_callback_that_reads_does_not_stop_the_sender(server):
    seen = []

    def callback(refused):
        seen.append(mltrace.get_history("etl"))  # a read, in the sending thread
        mltrace.flush()

    mltrace.set_error_callback(callback)
    mltrace.log_component_run(a_run("etl", 0, inputs=[f"in_{k}" for k in range(60)], outputs=["bad.csv"]))
    mltrace.log_component_run(a_run("etl", 1, outputs=["good.csv"]))

    assert mltrace.flush(timeout=20) is True
    assert len(seen) == 1
    assert committed_outputs(server, "etl") == ["good.csv"]


def test_a_read_gives_up_on_a_server_that_stays_down(server):
    _state.settings.read_give_up_seconds = 2.0
    try:
        server.stop_web()
        mltrace.log_component_run(a_run("etl", 0, outputs=["a.csv"]))
        started = time.monotonic()
        with pytest.raises(mltrace.ServerUnreachable, match="1 writes of this process wait to be sent"):
            mltrace.backtrace("a.csv")
        # About 2 s (the give-up, counted from the first failed try); the default give-up (30 s)
        # would fail this, and so would a stall of over 15 s, nothing less.
        assert time.monotonic() - started < 20
    finally:
        _state.settings.read_give_up_seconds = 30.0
    server.start_web()
    assert mltrace.flush(timeout=30) is True
    assert [run.component_name for _, run in mltrace.backtrace("a.csv")] == ["etl"]


def _pool_logs(i: int) -> int:
    mltrace.log_component_run(a_run("pooled", i, outputs=[f"pooled_{i}"]))
    return i


def test_pool_workers_send_their_writes_when_the_pool_terminates_them(server):
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:  # leaving the block terminates the workers (SIGTERM)
        assert sorted(pool.map(_pool_logs, range(400))) == list(range(400))

    # Each worker flushed before it ended: every run is there, once.
    names = committed_outputs(server, "pooled")
    assert sorted(names, key=lambda name: int(name.split("_")[1])) == [f"pooled_{i}" for i in range(400)]


def test_the_exit_flush_runs_once_with_multiprocessing_imported(server):
    result = run_script(
        server,
        """
        import multiprocessing
        run = mltrace.ComponentRun("etl", start_timestamp=datetime(2024, 1, 1), end_timestamp=datetime(2024, 1, 1))
        mltrace.log_component_run(run)
        """,
        MLTRACE_SERVER_URL=f"http://127.0.0.1:{free_port()}",
        MLTRACE_FLUSH_TIMEOUT="1",
    )

    assert result.returncode == 0
    assert result.stderr.count("writes were not sent") == 1, result.stderr


def test_a_component_written_again_with_the_fields_it_had_before_gets_them(server):
    mltrace.create_component("etl", "first", "ana")
    mltrace.create_component("etl", "second", "ana")
    mltrace.create_component("etl", "first", "ana")  # not the last write sent: sent again

    assert mltrace.get_component_information("etl").description == "first"
