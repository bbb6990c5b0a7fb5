"""Multi-worker training on one machine: the digits recipe on 1 and on 2 worker processes over loopback.

    .venv/bin/python benchmarks/multi_worker.py [--epochs 10] [--out benchmarks/multi_worker_results.json]

For each cluster size (1, then 2) it picks free ports on 127.0.0.1
(``edgeship.train.local_cluster``), starts that many worker processes with
their ``TF_CONFIG`` and ``train.strategy = "multi_worker"``
(MultiWorkerMirroredStrategy), and each runs ``edgeship.build.build`` on the
built-in digits recipe (pruning and int8 as in the default recipe). The chief
writes the bundle; the other worker leaves only its trained weights. Each
worker records the time of every epoch end (``build(on_epoch=...)``), so
training steps per second is measured from the end of epoch 1 (startup and
tracing excluded) to the last epoch: ``steps_per_epoch * (epochs - 1) / seconds``;
one step is one global batch of ``batch_size`` samples split over the workers.
Reported per size: the chief's test accuracy (float32 Keras and int8 TFLite),
steps/s, samples/s, the whole build's wall time, and whether the workers'
trained weights are identical. On one 2-core machine two workers share the
same cores, so no speed-up is expected; the figure is what this machine shows.
Early stopping is off (patience = epochs) so both sizes run the same steps.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from small_data import git_state, machine, versions  # noqa: E402

HERE = Path(__file__).resolve().parent
TIMEOUT = 900  # seconds per worker process


def recipe_toml(epochs: int) -> str:
    from edgeship.recipe import Recipe

    data = Recipe.default().to_dict()
    data["name"] = "digits-multi-worker"
    data["train"].update(strategy="multi_worker", epochs=epochs, early_stopping_patience=epochs)
    data["export"]["measure_rss"] = False
    return Recipe.from_dict(data).to_toml()


def worker(recipe_path: str, out: str, times_path: str) -> None:
    """One worker process (TF_CONFIG in the environment): build, recording each epoch end."""
    from edgeship import build as build_mod
    from edgeship.recipe import Recipe

    recipe = Recipe.from_toml(recipe_path)
    stamps: list[float] = []
    t0 = time.perf_counter()
    result = build_mod.build(recipe, out, on_epoch=lambda epoch, logs: stamps.append(time.perf_counter()))
    wall = time.perf_counter() - t0
    ds = build_mod.load_data(recipe)
    plan = build_mod._plan(recipe, len(ds.x_train))
    Path(times_path).write_text(json.dumps({"epoch_ends": stamps, "wall_s": wall, "result": str(result),
                                            "steps_per_epoch": plan.steps_per_epoch,
                                            "batch_size": plan.batch_size}))


def run_cluster(n: int, epochs: int, work: Path) -> dict[str, Any]:
    from edgeship import train

    recipe = work / "recipe.toml"
    recipe.write_text(recipe_toml(epochs), encoding="utf-8")
    out = work / f"bundle-{n}"
    procs, logs = [], []
    t0 = time.perf_counter()
    for i, tf_config in enumerate(train.local_cluster(n)):
        env = {**os.environ, "TF_CONFIG": tf_config, "TF_USE_LEGACY_KERAS": "1"}
        logs.append(work / f"worker-{n}-{i}.log")
        with logs[-1].open("wb") as log:
            procs.append(subprocess.Popen(
                [sys.executable, __file__, "--worker", str(recipe), str(out), str(work / f"times-{n}-{i}.json")],
                env=env, stdout=log, stderr=subprocess.STDOUT))
    try:
        codes = [p.wait(timeout=TIMEOUT) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    wall = time.perf_counter() - t0
    if codes != [0] * n:
        tails = [log.read_text(errors="replace")[-1500:] for log in logs]
        raise SystemExit(f"{n} worker(s) exited {codes}:\n" + "\n---\n".join(tails))
    times = [json.loads((work / f"times-{n}-{i}.json").read_text()) for i in range(n)]
    chief = times[0]
    ends = chief["epoch_ends"]
    steps_s = chief["steps_per_epoch"] * (len(ends) - 1) / (ends[-1] - ends[0])
    manifest = json.loads((out / "manifest.json").read_text())
    int8 = [a for a in manifest["artifacts"] if a["file"] == "model.int8.tflite"]
    same = None
    if n > 1:
        same = _same_weights(out / "training" / "trained.weights.h5",
                             [Path(t["result"]) / "trained.weights.h5" for t in times[1:]])
    return {
        "workers": n, "epochs": len(ends), "steps_per_epoch": chief["steps_per_epoch"],
        "global_batch": chief["batch_size"], "train_steps_per_s": round(steps_s, 2),
        "train_samples_per_s": round(steps_s * chief["batch_size"], 1),
        "wall_s": round(wall, 1), "chief_build_s": round(chief["wall_s"], 1),
        "keras_float32_test_accuracy": manifest["metrics"].get("keras_float32_accuracy"),
        "int8_tflite_test_accuracy": int8[0]["metrics"]["accuracy"] if int8 else None,
        "weights_identical_across_workers": same,
    }


def _same_weights(chief: Path, others: list[Path]) -> bool:
    import h5py
    import numpy as np

    def load(p: Path) -> dict[str, Any]:
        found: dict[str, Any] = {}
        with h5py.File(p, "r") as f:
            f.visititems(lambda k, o: found.__setitem__(k, np.asarray(o)) if isinstance(o, h5py.Dataset) else None)
        return found

    ref = load(chief)
    return all(ref.keys() == (w := load(o)).keys() and all(np.array_equal(ref[k], w[k]) for k in ref)
               for o in others)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--out", default=str(HERE / "multi_worker_results.json"))
    ap.add_argument("--worker", nargs=3, metavar=("RECIPE", "OUT", "TIMES"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgeship-mw-") as tmp:
        for n in (1, 2):
            rows.append(run_cluster(n, args.epochs, Path(tmp)))
            print(json.dumps(rows[-1]), flush=True)
    result = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
              "note": "one machine, 2 cores shared with other jobs; both workers on loopback", "versions": versions(),
              "git": git_state(), "results": rows}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print("| workers | steps/s | samples/s | float32 acc | int8 acc | wall s | weights identical |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['workers']} | {r['train_steps_per_s']} | {r['train_samples_per_s']} | "
              f"{r['keras_float32_test_accuracy']} | {r['int8_tflite_test_accuracy']} | {r['wall_s']} | "
              f"{r['weights_identical_across_workers']} |")


if __name__ == "__main__":
    main()
