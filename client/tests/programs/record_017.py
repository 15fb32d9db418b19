"""Records what the original mltrace 0.17 observes for each program of this directory.

Writes mltrace017.json, {program: observations}, which test_mltrace017.py compares with what
our client observes for the same program. Regenerate it (after changing a program or
observe.py) from the repository's root with the project's Python:

    .venv/bin/python client/tests/programs/record_017.py            # every program
    .venv/bin/python client/tests/programs/record_017.py tiny stale  # some of them

mltrace 0.17 runs on Python 3.9 only: this uses bench/.mltrace-venv, created (with
bench/mltrace_baseline.py's pins) when missing. Each program runs against a PostgreSQL
database of its own (DATABASE_URL's server, default postgres@127.0.0.1:5432), created empty
and dropped afterwards; mltrace 0.17 creates its tables itself.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
RECORDING = HERE / "mltrace017.json"
# Not programs: the helper they share, and this file.
NOT_PROGRAMS = {"observe", "record_017"}
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/mltrace"


def programs() -> list[str]:
    """The programs of this directory, by name (tiny for tiny.py)."""
    return sorted(path.stem for path in HERE.glob("*.py") if path.stem not in NOT_PROGRAMS)


def observations(stdout: str) -> dict:
    """The JSON object a program prints last (observe.report)."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise ValueError("the program printed nothing")
    return json.loads(lines[-1])


def mltrace017_python() -> Path:
    sys.path.insert(0, str(ROOT))
    from bench.mltrace_baseline import PYTHON39, ensure_venv

    return ensure_venv(PYTHON39)


def run_program(python: Path, program: str, server_url: str) -> dict:
    """Runs `program` under mltrace 0.17 on a new database of its own, dropped afterwards."""
    parts = urlsplit(server_url)
    database = f"mltrace017_{program}_{os.getpid()}"
    admin = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            cursor.execute(f'CREATE DATABASE "{database}"')
        # mltrace 0.17 only accepts postgresql:// URIs.
        uri = "postgresql://" + urlunsplit(parts._replace(path="/" + database)).split("://", 1)[1]
        env = {key: value for key, value in os.environ.items() if not key.startswith("MLTRACE_")}
        env.update({"DB_URI": uri, "PYTHONDONTWRITEBYTECODE": "1"})
        with tempfile.TemporaryDirectory() as cwd:  # what the programs save stays out of the tree
            env["SAVE_DIR"] = cwd
            result = subprocess.run(
                [str(python), str(HERE / f"{program}.py")],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
        if result.returncode != 0:
            raise RuntimeError(f"{program}.py failed under mltrace 0.17:\n{result.stdout}\n{result.stderr}")
        return observations(result.stdout)
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("programs", nargs="*", help=f"default: all of {', '.join(programs())}")
    args = parser.parse_args()
    unknown = set(args.programs) - set(programs())
    if unknown:
        parser.error(f"no such program: {', '.join(sorted(unknown))}")

    python = mltrace017_python()
    server_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    recorded = json.loads(RECORDING.read_text()) if RECORDING.exists() else {}
    # A program that no longer exists is no longer recorded.
    recorded = {name: value for name, value in recorded.items() if name in programs()}
    started = time.monotonic()
    for program in args.programs or programs():
        began = time.monotonic()
        recorded[program] = run_program(python, program, server_url)
        print(f"{program}: {time.monotonic() - began:.1f} s", file=sys.stderr)
    RECORDING.write_text(json.dumps(dict(sorted(recorded.items())), indent=1, sort_keys=True) + "\n")
    print(f"wrote {RECORDING.relative_to(ROOT)} in {time.monotonic() - started:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
