"""The process's one configuration and one sender, renewed in a forked child.

A child made by fork (multiprocessing's default on Linux) inherits the parent's memory: its
buffer, a lock another thread may hold, sockets shared with the parent. It must not send
the parent's writes, so it starts empty: a new sender, made at its first write. Its exit
flush is registered with multiprocessing too, whose children leave through os._exit()
without running atexit.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading

from mltrace._config import Settings
from mltrace._sender import Sender
from mltrace.errors import ServerError

logger = logging.getLogger("mltrace")

settings = Settings()
_sender: Sender | None = None
_lock = threading.Lock()
_exit_flushed_in: int | None = None  # the pid whose exit flush ran
_exit_flush_running = False
_terminate_after_flush = False  # a SIGTERM came during the exit flush


def sender() -> Sender:
    """This process's sender, made on first use."""
    global _sender
    current = _sender
    if current is not None and current.pid == os.getpid():
        return current
    with _lock:
        if _sender is None or _sender.pid != os.getpid():
            _sender = Sender(settings)
            _flush_at_a_childs_exit()
        return _sender


def _flush_at_a_childs_exit() -> None:
    """In a multiprocessing child, flush when it ends, however it ends.

    Its normal end is os._exit() after multiprocessing's own finalizers, not atexit: a
    Finalize runs there. Pool.terminate() (what `with Pool() as pool:` does on leaving) ends
    its workers with SIGTERM: a handler flushes first, then lets the signal do what it did.
    """
    if "multiprocessing" not in sys.modules:
        return
    import multiprocessing
    from multiprocessing import util

    if multiprocessing.parent_process() is None:
        return  # the main process: atexit flushes it
    util.Finalize(None, exit_flush, exitpriority=100)
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) in (
        signal.SIG_DFL,
        None,
    ):
        signal.signal(signal.SIGTERM, _flush_then_terminate)


def _flush_then_terminate(signum: int, frame: object) -> None:
    global _terminate_after_flush
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _terminate_after_flush = True
    if _exit_flush_running:
        # The signal interrupted the exit flush (a Pool worker that got its sentinel, then
        # the terminate): that flush goes on, and ends the process when it is done.
        return
    exit_flush()
    os.kill(os.getpid(), signal.SIGTERM)


def current_sender() -> Sender | None:
    """The sender if this process made one, without making it."""
    current = _sender
    return current if current is not None and current.pid == os.getpid() else None


def reconfigure(**changes: object) -> None:
    """New settings for every write not sent yet (a new token fixes a refused one, say)."""
    with _lock:
        for key, value in changes.items():
            setattr(settings, key, value)
    current = current_sender()
    if current is not None:
        current.retarget()


def exit_flush() -> None:
    """At exit: send what is buffered and wait for its commit, for MLTRACE_FLUSH_TIMEOUT at most.

    Once per process: atexit and multiprocessing's finalizers may both call it.
    """
    global _exit_flushed_in, _exit_flush_running
    current = current_sender()
    if _exit_flushed_in == os.getpid():
        return
    _exit_flushed_in = os.getpid()
    if current is None or (current.pending() == 0 and current.committed_through >= current.last_accepted_id):
        return
    _exit_flush_running = True
    try:
        _flush_before_exit(current)
    finally:
        _exit_flush_running = False
        if _terminate_after_flush:
            os.kill(os.getpid(), signal.SIGTERM)


def _flush_before_exit(current: Sender) -> None:
    try:
        done = current.flush(timeout=settings.flush_timeout)
    except ServerError as exc:
        done = False
        logger.warning("mltrace: %s", exc)
    unsent = current.pending()
    if unsent:
        logger.warning(
            "mltrace: %d writes were not sent to the server at %s before exit "
            "(MLTRACE_FLUSH_TIMEOUT is %g s); they are lost",
            unsent,
            current.transport.url,
            settings.flush_timeout,
        )
    elif not done:
        logger.info("mltrace: every write was accepted; the server commits the last ones after exit")


def _after_fork_in_child() -> None:
    global _sender, _lock, _exit_flush_running, _terminate_after_flush
    _sender = None
    _lock = threading.Lock()
    _exit_flush_running = _terminate_after_flush = False


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(exit_flush)
