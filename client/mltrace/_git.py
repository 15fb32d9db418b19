"""The git commit and tags of the working directory, as mltrace's decorators record them.

mltrace asked GitPython on every call. This asks the git command once per working directory
and remembers the answer for the life of the process: a decorated call must stay cheap, and
a running pipeline's code does not change commits under it. No git, or no repository: None.
"""

from __future__ import annotations

import os
import subprocess
import threading

_cache: dict[str, tuple[str | None, list[str] | None]] = {}
_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # another thread of the parent may have held it


os.register_at_fork(after_in_child=_after_fork_in_child)


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=10, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def hash_and_tags() -> tuple[str | None, list[str] | None]:
    """(HEAD's commit hash or None, the tags pointing at HEAD or None when there are none)."""
    cwd = os.getcwd()
    found = _cache.get(cwd)
    if found is None:
        with _lock:
            found = _cache.get(cwd)
            if found is None:
                commit = _git("rev-parse", "HEAD")
                tags = _git("tag", "--points-at", "HEAD") if commit else None
                found = (commit, sorted(tags.split()) if tags else None)
                _cache[cwd] = found
    return found
