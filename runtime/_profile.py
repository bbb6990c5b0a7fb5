"""Device profiles: which artifact of a bundle is fastest on this device.

``edgeship bench BUNDLE`` measures every artifact, picks the fastest one whose
accuracy on the bundle's held-out sample stays within the accuracy budget of the
best float32 artifact, and writes that choice to ``device_profile.json`` in the
bundle. ``load(BUNDLE)`` with no format/precision then loads that artifact — but
only on the device that measured it: the profile records a device fingerprint
(OS, CPU architecture and model, core count), and a bundle copied to another
device falls back to the default order until it is benchmarked there.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from edgeship.bundle import Manifest

PROFILE_FILE = "device_profile.json"
PROFILE_SCHEMA = "edgeship.device_profile/1"
DEFAULT_ACCURACY_BUDGET = 0.01


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (x86 'model name', ARM 'Hardware' / 'cpu model'), else platform's."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def device_fingerprint() -> dict[str, Any]:
    """What makes latency figures comparable: OS, architecture, CPU model, cores."""
    return {
        "system": platform.system(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
    }


def accuracy_budget(manifest: Manifest, override: float | None = None) -> float:
    """The budget: ``override``, else the recipe's ``budget.max_accuracy_drop`` (0.1 bundles:
    ``quantize.accuracy_budget``), else 0.01."""
    if override is not None:
        return float(override)
    budget = manifest.recipe_accuracy_budget()
    return DEFAULT_ACCURACY_BUDGET if budget is None else budget


def select_fastest(results: list[dict[str, Any]], budget: float) -> dict[str, Any]:
    """The lowest-p50 result whose accuracy is within ``budget`` of the best float32 one.

    Results without a measured accuracy are only chosen when none has one.
    """
    measured = [r for r in results if isinstance(r.get("accuracy"), float)]
    if not measured:
        return min(results, key=lambda r: r["latency_ms"]["p50"])
    floats = [r["accuracy"] for r in measured if r.get("precision") == "float32"]
    reference = max(floats) if floats else max(r["accuracy"] for r in measured)
    eligible = [r for r in measured if r["accuracy"] >= reference - budget - 1e-12]
    return min(eligible, key=lambda r: r["latency_ms"]["p50"])


def write_profile(folder: Path, choice: dict[str, Any], results: list[dict[str, Any]], budget: float) -> Path:
    """Record ``choice`` as the bundle's device profile (atomic write)."""
    profile = {
        "schema": PROFILE_SCHEMA,
        "file": choice["file"],
        "format": choice.get("format"),
        "precision": choice.get("precision"),
        "threads": choice.get("threads"),
        "p50_ms": choice["latency_ms"]["p50"],
        "p99_ms": choice["latency_ms"]["p99"],
        "accuracy": choice.get("accuracy"),
        "accuracy_budget": budget,
        "device": device_fingerprint(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "candidates": [
            {"file": r["file"], "p50_ms": r["latency_ms"]["p50"], "p99_ms": r["latency_ms"]["p99"], "accuracy": r.get("accuracy")}
            for r in results
        ],
    }
    path = folder / PROFILE_FILE
    tmp = folder / f".{PROFILE_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps(profile, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def profile_applies(profile: dict[str, Any]) -> bool:
    """True when the profile was measured on this device (or records no device)."""
    device = profile.get("device")
    return not isinstance(device, dict) or device == device_fingerprint()
