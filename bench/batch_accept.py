#!/usr/bin/env python
"""Latency of one 1,000-run batch accept (target: 50 ms): sequential posts, 0.3 s apart.

Inference runs of bench/payloads.py (10 ENDPOINT predictions each, about 840 KB a batch) to
POST /api/v1/runs/batch/ of a server already running; `make bench` runs it too.

    MLTRACE_TOKEN=... python bench/batch_accept.py PORT [COUNT]
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import payloads  # noqa: E402
from bench.sustained import batch_request  # noqa: E402


def latencies(port: int | str, token: str, count: int = 20, size: int = 1000) -> dict[str, Any]:
    """Posts `count` batches of `size` runs one after another; their latencies in ms."""
    stream = payloads.pipeline(start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    times = []
    body_bytes = 0
    for _ in range(count):
        request = batch_request(port, token, [next(stream) for _ in range(size)])
        body_bytes = len(request.data or b"")
        began = time.perf_counter()
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()
            if response.status != 202:
                raise RuntimeError(f"the batch was answered {response.status}")
        times.append((time.perf_counter() - began) * 1000)
        time.sleep(0.3)
    times.sort()
    return {
        "count": count,
        "size": size,
        "body_kb": body_bytes / 1024,
        "median_ms": statistics.median(times),
        "p90_ms": times[min(len(times) - 1, int(len(times) * 0.9))],
        "min_ms": times[0],
        "max_ms": times[-1],
    }


if __name__ == "__main__":
    result = latencies(
        sys.argv[1], os.environ["MLTRACE_TOKEN"], int(sys.argv[2]) if len(sys.argv) > 2 else 20
    )
    print(
        f"{result['count']} batches of {result['size']} runs ({result['body_kb']:.0f} KB): median"
        f" {result['median_ms']:.1f} ms, p90 {result['p90_ms']:.1f}, min {result['min_ms']:.1f}, max {result['max_ms']:.1f}"
    )
