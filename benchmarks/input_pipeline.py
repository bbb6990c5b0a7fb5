"""Image folders streamed from disk (``data.stream``) against the in-memory path: peak RSS and training speed.

    .venv/bin/python benchmarks/input_pipeline.py [--sizes 2000,8000] [--root /tmp/edgeship-input-pipeline]
        [--out benchmarks/input_pipeline_results.json]

1. Generates PNG class folders of 96x96x3 images (4 classes; each image is
   smooth noise with one bright channel per class, so a small CNN learns it),
   ``N`` images per folder for each ``--sizes`` entry, under ``--root`` (kept
   and reused on later runs; nothing downloads).
2. Peak RSS: for each folder, one fresh process runs a one-epoch
   ``edgeship build`` (small_cnn width 16, ``image_size = [96, 96]``, pruning off, int8
   TFLite only) with ``data.stream = "always"`` and reports its own
   ``ru_maxrss``; the same for the smallest folder in memory (``"never"``) for
   reference. The bar (issue 15): when the folder grows 4x, the streamed
   build's peak RSS grows by less than 25% of the extra images' decoded
   float32 size (``(8000 - 2000) * 96 * 96 * 3 * 4`` bytes).
3. Training speed: in one process, one small_cnn (width 16, batch 32) trains
   on the smallest folder's training split with ``edgeship.train.fine_tune``
   from memory (decoded arrays), streamed, and streamed with
   ``data.cache_dir``, interleaved over ``--rounds`` rounds (2 epochs per
   pipeline per round, the second timed: traced, cache written), so load from
   other jobs hits all three alike; the median epoch gives steps/s. The bar:
   streamed steps/s at least 90% of in-memory.

The machine is reported with the results; on a shared machine the figures move
from run to run (the bars are reported, not asserted).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from small_data import git_state, machine, versions  # noqa: E402

HERE = Path(__file__).resolve().parent
SIDE = 96
CLASSES = 4
EPOCHS_SPEED = 4


def make_folder(root: Path, n: int, seed: int = 0) -> Path:
    """``n`` PNGs of SIDE x SIDE x 3 in CLASSES class folders (skipped when already complete)."""
    from PIL import Image

    marker = root / ".complete"
    if marker.exists():
        return root
    rng = np.random.default_rng(seed)
    for i in range(n):
        label = i % CLASSES
        folder = root / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        coarse = rng.integers(0, 120, (12, 12, 3)).astype(np.uint8)
        img = np.asarray(Image.fromarray(coarse).resize((SIDE, SIDE), Image.BILINEAR))
        img = img.copy()
        img[..., label % 3] = np.clip(img[..., label % 3].astype(int) + (60 if label < 3 else 0) + 60, 0, 255)
        if label == 3:  # the fourth class: bright everywhere
            img = np.clip(img.astype(int) + 80, 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"{i:05d}.png")
    marker.write_text(str(n))
    return root


def recipe(folder: Path, stream: str, epochs: int) -> Any:
    from edgeship.recipe import Recipe

    return Recipe.from_dict({
        "name": f"input-pipeline-{stream}",
        "data": {"dataset": f"images:{folder}", "image_size": [SIDE, SIDE], "stream": stream,
                 "augmentation": {"horizontal_flip": False, "rotation": 0.0, "zoom": 0.0}},
        "model": {"arch": "small_cnn", "width": 16},
        "train": {"epochs": epochs, "batch_size": 32, "min_epochs": 0},
        "prune": {"enabled": False},
        "quantize": {"tflite": ["int8"]},
        "budget": {"allow_chance_level": True},
        "export": {"formats": ["tflite"], "measure_rss": False},
    })


def child_build(folder: str, stream: str, out: str) -> None:
    from edgeship.build import build

    t0 = time.perf_counter()
    build(recipe(Path(folder), stream, 1), out)
    manifest = json.loads((Path(out) / "manifest.json").read_text())
    print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "build_s": round(time.perf_counter() - t0, 1),
                      "keras_float32_accuracy": manifest["metrics"].get("keras_float32_accuracy")}))


def child_speed(folder: str, cache: str, rounds: str) -> None:
    """Interleaved rounds in one process: each pipeline trains 2 epochs per round; the second epoch is timed."""
    from edgeship import train
    from edgeship.build import _model_factory, load_data
    from edgeship.core.tf import tf_modules

    base = recipe(Path(folder), "never", 2)
    pipelines = {
        "memory": load_data(base),
        "streamed": load_data(base.model_copy(update={"data": base.data.model_copy(update={"stream": "always"})})),
        "streamed+cache": load_data(base.model_copy(update={"data": base.data.model_copy(
            update={"stream": "always", "cache_dir": cache})})),
    }
    _, keras = tf_modules()
    stamps: list[float] = []

    class Stamp(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            stamps.append(time.perf_counter())

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            stamps.append(time.perf_counter())

    train.set_seed(0)
    model = _model_factory(base, pipelines["memory"])()
    train.compile_classifier(model, 1e-3)
    times: dict[str, list[float]] = {name: [] for name in pipelines}
    for _ in range(int(rounds)):
        for name, ds in pipelines.items():
            stamps.clear()
            train.fine_tune(model, ds.training_data, epochs=2, batch_size=32,
                            callbacks=[Stamp()], verbose=0)
            times[name].append(stamps[3] - stamps[2])  # the second epoch: traced, and the cache is written
    steps = -(-len(pipelines["memory"].y_train) // 32)
    print(json.dumps({name: {"steps_per_s": round(steps / float(np.median(t)), 2), "steps_per_epoch": steps,
                             "epoch_s": [round(v, 2) for v in t]} for name, t in times.items()}))


def _child(*args: str) -> dict[str, Any]:
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env,
                         timeout=3600)
    if run.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="2000,8000")
    ap.add_argument("--root", default=str(Path(tempfile.gettempdir()) / "edgeship-input-pipeline"))
    ap.add_argument("--out", default=str(HERE / "input_pipeline_results.json"))
    ap.add_argument("--rounds", type=int, default=3, help="interleaved speed rounds (median reported)")
    ap.add_argument("--skip-rss", action="store_true", help="only the speed comparison")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, *rest = args.child
        (child_build if kind == "build" else child_speed)(*rest)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    folders = {n: make_folder(Path(args.root) / f"png-{n}", n) for n in sizes}
    decoded = {n: n * SIDE * SIDE * 3 * 4 for n in sizes}
    rss: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="edgeship-ip-") as tmp:
        runs = [] if args.skip_rss else [(n, "always") for n in sizes] + [(sizes[0], "never")]
        for n, stream in runs:
            row = {"images": n, "stream": stream, "decoded_mb": round(decoded[n] / 2**20, 1),
                   **_child("build", str(folders[n]), stream, str(Path(tmp) / f"b-{n}-{stream}"))}
            rss.append(row)
            print(json.dumps(row), flush=True)
        timed = _child("speed", str(folders[sizes[0]]), str(Path(tmp) / "cache"), str(args.rounds))
        speed = [{"pipeline": name, "images": sizes[0], **row} for name, row in timed.items()]
        print(json.dumps(speed), flush=True)
    if args.skip_rss:  # keep the peak-RSS rows of the last full run
        previous = json.loads(Path(args.out).read_text())
        rss, rss_date = previous["peak_rss"], previous.get("peak_rss_date", previous["date"])
    else:
        rss_date = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    streamed = {r["images"]: r["peak_rss_mb"] for r in rss if r["stream"] == "always"}
    small, big = sizes[0], sizes[-1]
    growth = streamed[big] - streamed[small]
    extra = (decoded[big] - decoded[small]) / 2**20
    memory = next(r["steps_per_s"] for r in speed if r["pipeline"] == "memory")
    bars = {
        "rss_growth_mb": round(growth, 1), "extra_decoded_mb": round(extra, 1),
        "rss_growth_fraction_of_extra": round(growth / extra, 3), "rss_bar_met": growth < 0.25 * extra,
        **{f"{r['pipeline']}_speed_vs_memory": round(r["steps_per_s"] / memory, 3) for r in speed},
        "speed_bar_met": all(r["steps_per_s"] >= 0.9 * memory for r in speed if r["pipeline"] != "memory"),
    }
    result = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
              "note": "2 cores shared with other jobs while measuring; one run each", "versions": versions(),
              "git": git_state(), "peak_rss_date": rss_date, "peak_rss": rss, "training_speed": speed, "bars": bars}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(bars, indent=2))


if __name__ == "__main__":
    main()
