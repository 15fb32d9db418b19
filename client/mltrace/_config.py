"""Where the server is and how the client behaves, from the environment and the setters.

MLTRACE_SERVER_URL     the server (default http://127.0.0.1:8000; mltrace's DB_SERVER=HOST
                       gives http://HOST:8000 when MLTRACE_SERVER_URL is unset)
MLTRACE_TOKEN          the API token (`make run` prints one)
MLTRACE_SYNC           1: each write waits for its commit (?sync=true)
MLTRACE_BUFFER_SIZE    writes held in memory before a write call waits (10,000)
MLTRACE_BATCH_RUNS     runs per request (1,000, the server's default limit)
MLTRACE_BATCH_OUTPUTS  outputs (or feedback) per request (10,000, the server's default limit)
MLTRACE_FLUSH_TIMEOUT  seconds the exit flush waits for the server (30)
MLTRACE_READ_TIMEOUT   seconds a read keeps trying a server that does not answer (30)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

DEFAULT_SERVER_URL = "http://127.0.0.1:8000"
DEFAULT_PORT = 8000
TRUE = ("1", "true", "yes", "on")
FALSE = ("", "0", "false", "no", "off")


def _env_int(name: str, default: int, *, minimum: int = 1) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, not {raw!r}.") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}.")
    return value


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {raw!r}.") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative, not {value}.")
    return value


def _env_bool(name: str) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    raise ValueError(f"{name} must be 1 or 0, not {raw!r}.")


def normalize_url(url: str) -> str:
    """http(s)://host[:port][/prefix], without a trailing slash. Raises ValueError."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"The mltrace server URL must look like http://host:8000, not {url!r}.")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def url_with_host(url: str, host: str) -> str:
    """The server URL with another host: mltrace's set_address(), port and scheme kept."""
    parts = urlsplit(url)
    port = parts.port or (DEFAULT_PORT if parts.scheme == "http" else None)
    host = host.strip()
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    netloc = host if port is None else f"{host}:{port}"
    return normalize_url(urlunsplit((parts.scheme, netloc, parts.path, "", "")))


def _server_url_from_env() -> str:
    if os.environ.get("MLTRACE_SERVER_URL", "").strip():
        return normalize_url(os.environ["MLTRACE_SERVER_URL"])
    if os.environ.get("DB_SERVER", "").strip():
        return url_with_host(DEFAULT_SERVER_URL, os.environ["DB_SERVER"])
    return DEFAULT_SERVER_URL


@dataclass
class Settings:
    server_url: str = field(default_factory=_server_url_from_env)
    token: str | None = field(default_factory=lambda: os.environ.get("MLTRACE_TOKEN") or None)
    sync: bool = field(default_factory=lambda: _env_bool("MLTRACE_SYNC"))
    buffer_size: int = field(default_factory=lambda: _env_int("MLTRACE_BUFFER_SIZE", 10_000))
    batch_runs: int = field(default_factory=lambda: _env_int("MLTRACE_BATCH_RUNS", 1000))
    batch_outputs: int = field(default_factory=lambda: _env_int("MLTRACE_BATCH_OUTPUTS", 10_000))
    flush_timeout: float = field(default_factory=lambda: _env_float("MLTRACE_FLUSH_TIMEOUT", 30.0))
    # Called in the sender's thread with each write the server refused (a RefusedWrite).
    error_callback: Callable | None = None
    # How long a read keeps trying a server that does not answer before it raises.
    read_give_up_seconds: float = field(default_factory=lambda: _env_float("MLTRACE_READ_TIMEOUT", 30.0))
    # Largest request body the sender builds; a larger single write is still sent alone.
    max_request_bytes: int = 4 * 1024 * 1024
