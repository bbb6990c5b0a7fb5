"""The build's channel-pruning stage (``prune.structure = "channels"``): ratio, back-off, and what it cost.

The orchestrator side of :mod:`edgeship.compress.channels`: it may export and
measure, which compress may not. ``target_latency_ratio`` is resolved here to a
channel ratio by converting narrower copies to int8 TFLite and timing each
against the unpruned int8 file, interleaved in one run on one thread
(:func:`edgeship.runtime._check.measure_pair_ratio`). The accepted model's
int8 bytes and latency ratio go to ``manifest["compression"]["channels"]``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.progress import say

#: Channel ratios tried, widest first, when ``prune.target_latency_ratio`` sets the goal.
LATENCY_SEARCH_RATIOS = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.25, 0.2)


def int8_tflite(model: Any, calibration: np.ndarray) -> bytes:
    """``model`` as a full-int8 TFLite file, calibrated on ``calibration``, BatchNorm folded as the bundle's."""
    from edgeship.compress.fold import fold_batchnorm
    from edgeship.core.tf import quiet_engine
    from edgeship.export import to_tflite

    with quiet_engine():
        return to_tflite(fold_batchnorm(model)[0], "int8", calibration)


def int8_tflite_cost(model: Any, base_int8: bytes, calibration: np.ndarray, *, rounds: int = 15) -> dict[str, Any]:
    """``model``'s int8 TFLite latency over the unpruned file ``base_int8`` (interleaved, one thread, batch 1)
    and both files' bytes. The unpruned file is converted once by the caller, not per candidate."""
    from edgeship.runtime import load_file, measure_pair_ratio

    files = [int8_tflite(model, calibration), base_int8]
    with tempfile.TemporaryDirectory(prefix="edgeship-channels-") as tmp:
        paths = [Path(tmp) / f"{i}.tflite" for i in range(2)]
        for p, content in zip(paths, files):
            p.write_bytes(content)
        with load_file(paths[0], "tflite", threads=1) as a, load_file(paths[1], "tflite", threads=1) as b:
            timed = measure_pair_ratio(a, b, np.ascontiguousarray(calibration[:1], dtype=np.float32), rounds=rounds)
    return {"int8_tflite_latency_ratio": round(timed["ratio"], 4), "int8_tflite_ms": round(timed["latency_ms"], 4),
            "unpruned_int8_tflite_ms": round(timed["reference_ms"], 4), "int8_tflite_bytes": len(files[0]),
            "unpruned_int8_tflite_bytes": len(files[1]), "threads": 1, "rounds": rounds}


def ratio_for_latency(model: Any, calibration: np.ndarray, target: float, ranking: str,
                      base_int8: bytes | None = None) -> tuple[float, list[dict]]:
    """The widest channel ratio whose int8 TFLite latency ratio to the unpruned int8 model is at most ``target``.

    Untrained narrow copies suffice: latency depends on the shapes, not the weights.
    Returns the ratio (the narrowest tried when none reaches the target) and every measurement.
    """
    from edgeship.compress import prune_channels

    base_int8 = base_int8 if base_int8 is not None else int8_tflite(model, calibration)
    tried: list[dict] = []
    for ratio in LATENCY_SEARCH_RATIOS:
        narrow, _ = prune_channels(model, ratio, ranking=ranking)  # type: ignore[arg-type]
        cost = int8_tflite_cost(narrow, base_int8, calibration)
        tried.append({"channel_ratio": ratio, **cost})
        say(f"    latency search: keep {ratio:.0%} -> int8 TFLite latency ratio {cost['int8_tflite_latency_ratio']:.3f}")
        if cost["int8_tflite_latency_ratio"] <= target:
            return ratio, tried
    say(f"  WARNING: no channel ratio down to {LATENCY_SEARCH_RATIOS[-1]} reached latency ratio {target}; "
        "using the narrowest")
    return LATENCY_SEARCH_RATIOS[-1], tried


def channel_candidates(recipe: Any, ds: Any, plan: Any, augment: Any, model: Any, decision: Any,
                       calibration: np.ndarray, attempts: list[Any],
                       stage: Callable[[str], Any]) -> Iterator[tuple[Any, dict[str, Any]]]:
    """Each channel-pruning attempt within the budget: ``(fine-tuned narrow model, channels info)``.

    ``attempts`` receives every attempt (accepted or not), in order.
    """
    from edgeship import compress

    pc, distill = recipe.prune, recipe.distill
    search: list[dict] = []
    ratio = pc.keep_ratio
    base_int8: bytes | None = None  # the unpruned int8 file, converted once for every latency ratio
    if pc.target_latency_ratio is not None:
        with stage(f"channels: latency search toward {pc.target_latency_ratio}"):
            base_int8 = int8_tflite(model, calibration)
            ratio, search = ratio_for_latency(model, calibration, pc.target_latency_ratio, pc.channel_ranking,
                                              base_int8)
    tries = compress.iter_channel_attempts(
        model, ds.x_train, ds.y_train, ds.x_val, ds.y_val, channel_ratio=ratio,
        fine_tune_epochs=pc.fine_tune_epochs or compress.default_fine_tune_epochs(plan.steps_per_epoch),
        reference_accuracy=decision.reference, budget=decision.budget, decision=(decision.x, decision.y),
        batch_size=plan.batch_size, learning_rate=plan.learning_rate / 4, seed=recipe.seed,
        ranking=pc.channel_ranking, augment=augment,
        distill=distill.spec(), say=say,
    )
    while True:
        with stage(f"channels, attempt {len(attempts) + 1}"):
            tried = next(tries, None)
        if tried is None:
            return
        attempt, narrow, report = tried
        attempts.append(attempt)
        if attempt.met_budget:
            with stage("channels: int8 latency against the unpruned model"):
                base_int8 = base_int8 if base_int8 is not None else int8_tflite(model, calibration)
                cost = int8_tflite_cost(narrow, base_int8, calibration)
            say(f"  int8 TFLite latency ratio {cost['int8_tflite_latency_ratio']:.3f} "
                f"({cost['int8_tflite_bytes']:,} of {cost['unpruned_int8_tflite_bytes']:,} bytes)")
            info = {**report.to_json(), **cost, "target_latency_ratio": pc.target_latency_ratio,
                    "latency_search": search, "distillation": distill.model_dump() if distill.enabled else None}
            yield narrow, info
