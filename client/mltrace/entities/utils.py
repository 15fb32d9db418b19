"""Utility functions of mltrace's entities."""

from __future__ import annotations

import functools
import threading

from mltrace._capture import run_capturing_locals


def run_func_capture_locals(func, *args, **kwargs):
    """Calls func(*args, **kwargs); returns (its local variables at return, its result)."""
    return run_capturing_locals(func, args, kwargs)


def asynchronous(func):
    """Decorator for running a function in a thread."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        thread = threading.Thread(target=func, args=args, kwargs=kwargs)
        thread.start()
        return thread

    return wrapper
