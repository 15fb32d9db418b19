"""Virtualenvs of their own for the tests that run a program as its users install it.

The image's install (`requirements.txt` alone) and the real OpenLineage producers (dbt, Airflow)
each get a venv built from a requirements file, cached outside the checkout by the SHA-256 of
that file, so that a fresh clone (CI's) reuses what an earlier run built and a changed pin
builds anew. The cache is `MLTRACE_VENV_CACHE`, by default `~/.cache/mltrace/venvs`.

    python -m tests.venvs REQUIREMENTS...   # builds each one that is missing; prints why not

A build that fails leaves no venv behind, and its reason in `<venv>.failed` beside it, so the
tests that need it skip with that reason instead of building it again in every test.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("MLTRACE_VENV_CACHE") or Path.home() / ".cache" / "mltrace" / "venvs")
COMPLETE = ".complete"


class VenvUnavailable(Exception):
    """The venv could not be built; the message says why (pip's last lines)."""


def venv_dir(requirements: Path) -> Path:
    """Where the venv of this requirements file lives: its folder's name and its hash."""
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    name = requirements.parent.name if requirements.name == "requirements.txt" else requirements.stem
    if requirements.resolve() == (ROOT / "requirements.txt").resolve():
        name = "image"
    return CACHE / f"{name}-{digest}"


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def failure_of(requirements: Path) -> str | None:
    """Why the last build of this file failed, if it did."""
    failed = venv_dir(requirements).with_suffix(".failed")
    return failed.read_text() if failed.exists() else None


def built(requirements: Path) -> Path | None:
    """The venv's python if it is built and complete, else None."""
    venv = venv_dir(requirements)
    return python_of(venv) if (venv / COMPLETE).exists() else None


def ensure(requirements: Path, *, retry_failed: bool = False, log=print) -> Path:
    """The python of the venv of `requirements`, building it first if needed.

    Builds run one at a time per venv (a lock file). The venv is built in place (its scripts
    name its folder) and marked complete only at the end: a build cut halfway is started over.
    """
    venv = venv_dir(requirements)
    failed = venv.with_suffix(".failed")
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(venv.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / COMPLETE).exists():
            return python_of(venv)
        if failed.exists() and not retry_failed:
            raise VenvUnavailable(failed.read_text())
        shutil.rmtree(venv, ignore_errors=True)
        started = time.monotonic()
        log(f"building {venv} from {requirements}")
        pip = [str(python_of(venv)), "-m", "pip", "install", "--quiet"]
        try:
            _run([sys.executable, "-m", "venv", str(venv)])
            _run([*pip, "--upgrade", "pip"])
            _run([*pip, "-r", str(requirements)])
        except VenvUnavailable as error:
            shutil.rmtree(venv, ignore_errors=True)
            failed.write_text(f"pip could not install {requirements.name}: {error}")
            raise VenvUnavailable(failed.read_text()) from None
        (venv / COMPLETE).write_text(requirements.read_text())
        with contextlib.suppress(FileNotFoundError):
            failed.unlink()
        log(f"built {venv} in {time.monotonic() - started:.0f} s")
        _forget_other_versions(venv)
        return python_of(venv)


def _forget_other_versions(venv: Path) -> None:
    """Removes the venvs that earlier versions of the same requirements file left: a changed
    pin builds a new venv, and the cache keeps one per file, not one per version."""
    name = venv.name.rsplit("-", 1)[0]
    for other in CACHE.glob(f"{name}-" + "[0-9a-f]" * 16):
        if other != venv and other.is_dir():
            shutil.rmtree(other, ignore_errors=True)
            for suffix in (".lock", ".failed"):
                other.with_suffix(suffix).unlink(missing_ok=True)


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise VenvUnavailable(tail or f"{command[0]} exited {result.returncode}")


def main(argv: list[str]) -> int:
    for name in argv:
        requirements = Path(name)
        try:
            ensure(requirements, retry_failed=True)
        except VenvUnavailable as error:
            print(f"{requirements}: not installed, its tests will skip: {error}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
