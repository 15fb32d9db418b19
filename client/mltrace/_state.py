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
import sys
import threading

from mltrace._config import Settings
from mltrace._sender import Sender
from mltrace.errors import ServerError

logger = logging.getLogger("mltrace")

settings = Settings()
_sender: Sender | None = None
_lock = threading.Lock()


def sender() -> Sender:
    """This process's sender, made on first use."""
    global _sender
    current = _sender
    if current is not None and current.pid == os.getpid():
        return current
    with _lock:
        if _sender is None or _sender.pid != os.getpid():
            _sender = Sender(settings)
            if "multiprocessing" in sys.modules:
                from multiprocessing import util

                util.Finalize(None, exit_flush, exitpriority=100)
        return _sender


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
    """At exit: send what is buffered and wait for its commit, for MLTRACE_FLUSH_TIMEOUT at most."""
    current = current_sender()
    if current is None or (current.pending() == 0 and current.committed_through >= current.last_accepted_id):
        return
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
            settings.server_url,
            settings.flush_timeout,
        )
    elif not done:
        logger.info("mltrace: every write was accepted; the server commits the last ones after exit")


def _after_fork_in_child() -> None:
    global _sender, _lock
    _sender = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(exit_flush)
