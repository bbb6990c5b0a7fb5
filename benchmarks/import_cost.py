"""Import time and RSS of ``import edgeship.runtime`` against ``import tensorflow``.

Each measurement is a fresh interpreter: ``python -c`` times the import with
perf_counter inside the process and reads the peak RSS (VmHWM) after it;
the bare interpreter's RSS is measured the same way as the baseline.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from typing import Any

# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent across exec.
PROBE = """
import time
t0 = time.perf_counter()
{stmt}
dt = time.perf_counter() - t0
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(dt, int(hwm) / 1024)
"""


def measure(stmt: str, repeats: int = 5) -> dict[str, Any]:
    secs, rss = [], []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", PROBE.format(stmt=stmt)], capture_output=True, text=True,
                             check=True, env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
        s, r = out.stdout.strip().splitlines()[-1].split()
        secs.append(float(s))
        rss.append(float(r))
    return {"statement": stmt, "repeats": repeats, "seconds_median": statistics.median(secs), "seconds_min": min(secs),
            "peak_rss_mb_median": statistics.median(rss)}


def import_cost(repeats: int = 5) -> dict[str, Any]:
    return {
        "python_baseline": measure("pass", repeats),
        "edgeship.runtime": measure("import edgeship.runtime", repeats),
        "tensorflow": measure("import tensorflow", repeats),
    }


if __name__ == "__main__":
    print(json.dumps(import_cost(), indent=2))
