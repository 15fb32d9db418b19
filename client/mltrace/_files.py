"""mltrace's save() and load(): objects as joblib files. Inside a decorated call (register,
Component.run), a file saved is one of the run's outputs and a file loaded one of its inputs."""

from __future__ import annotations

import os
import random
import string
import time

from mltrace import _capture
from mltrace._request_bodies import value_text


def load(pathname: str):
    """Loads the joblib file at pathname; inside a decorated call, it becomes an input."""
    obj = _joblib().load(pathname)
    capture = _capture.current_capture()
    if capture is not None:
        # The value as read: later changes to the object are not what the file held.
        capture.loaded[pathname] = value_text(obj)
    return obj


def save(obj, pathname: str | None = None, var_name: str = "") -> str:
    """Saves obj as a joblib file (under $SAVE_DIR or ~/.mltrace when no pathname is given);
    inside a decorated call, it becomes an output. Returns the path."""
    capture = _capture.current_capture()
    if pathname is None:
        identifier = "".join(random.choice(string.ascii_lowercase) for _ in range(5))
        pathname = f"{var_name}_{identifier}{time.strftime('%Y%m%d%H%M%S')}.mlt"
        if capture is not None:
            pathname = os.path.join(capture.component_name.lower().replace(" ", "_"), pathname)
        pathname = os.path.join(
            os.environ.get("SAVE_DIR", os.path.join(os.path.expanduser("~"), ".mltrace")), pathname
        )
    directory = os.path.dirname(pathname)
    if directory:
        os.makedirs(directory, exist_ok=True)
    _joblib().dump(obj, pathname)
    if capture is not None:
        capture.saved[pathname] = value_text(obj)
    return pathname


def _joblib():
    try:
        import joblib
    except ImportError:
        raise ImportError(
            "mltrace.save() and mltrace.load() write joblib files: pip install joblib "
            "(or mltrace-client[joblib])."
        ) from None
    return joblib
