"""Latency of one 1,000-run batch accept (issue 14's target 4), sequential, 0.3 s apart.

python bench/batch_accept.py PORT COUNT   (a write token in $MLTRACE_TOKEN)
"""

import datetime as d
import os
import statistics
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import payloads  # noqa: E402
from bench.sustained import batch_request  # noqa: E402

port = sys.argv[1]
token = os.environ["MLTRACE_TOKEN"]
s = payloads.pipeline(start=d.datetime(2026, 1, 1, tzinfo=d.UTC))
times = []
for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 20):
    req = batch_request(port, token, [next(s) for _ in range(1000)])
    t = time.perf_counter()
    with urllib.request.urlopen(req) as r:
        r.read()
        assert r.status == 202
    times.append((time.perf_counter() - t) * 1000)
    time.sleep(0.3)
times.sort()
print(
    f"median {statistics.median(times):.1f} ms, p90 {times[int(len(times) * 0.9)]:.1f}, min {times[0]:.1f}, max {times[-1]:.1f}"
)
