"""MLPerf Tiny, end to end: our four reference architectures against the reference .tflite files.

    python benchmarks/mlperf_tiny.py [--rounds 15] [--rebuild] [--out benchmarks/mlperf_tiny_results.json]

For each task (keyword spotting ``ds_cnn``, visual wake words ``mobilenet_v1_025``,
image classification ``resnet8``, anomaly detection ``fc_autoencoder``):

1. **Build** a bundle (float32 + int8, TFLite + ONNX) from stand-in data of the
   reference input shape, made from scikit-learn's digits (nothing downloads):

   - KWS 49x10x1: each 8x8 digit resized bilinearly to 49x10; 10 classes (the head
     keeps the reference's 12 outputs, classes 10 and 11 have no samples);
   - VWW 96x96x3: digits resized bilinearly to 96x96, grey copied to 3 channels;
     2 classes: digit < 5 vs >= 5;
   - IC 32x32x3: digits resized bilinearly to 32x32, grey copied to 3 channels; 10 classes;
   - AD 640: digits resized bilinearly to 32x20 and flattened, written as an
     ``anomaly:PATH`` npz (digit 1 normal, every other digit anomalous); one-class
     protocol: trained on 1s only (MSE); the anomaly score is the reconstruction MSE.

   Classifiers go through ``edgeship.build.write_bundle`` (no pruning, PTQ only).
   The AD model goes through ``edgeship build`` with ``task = "anomaly"``
   (per-tensor int8 weights as the reference, BatchNorm folded, ROC AUC budget 0.02);
   its eval.npz holds the normal(0)/anomalous(1) labels. Epochs are small so the
   whole run takes minutes.
2. **Sizes and parameters**: our int8 and float32 TFLite bytes against the
   reference files (``/work/shared/mlperf_tiny``, or ``$EDGESHIP_MLPERF_DIR``).
3. **Quality**: top-1 (AUC for AD) of every artifact on the bundle's eval.npz,
   through ``edgeship.runtime``.
4. **``edgeship bench``** on each bundle (1 thread): every variant loaded
   ``--loads`` times and interleaved, median of rounds per load, median over
   loads per variant; it writes ``device_profile.json``.
5. **Side by side**, in one interleaved run (1 thread, median of ``--rounds``
   rounds per load, median over ``--loads`` loads): the four variants plus the
   reference int8 and float32 files, all through ``edgeship.runtime``. Then ``load(bundle)``'s pick with the profile
   and without it (the no-profile rule), each as a ratio to the fastest variant
   within the accuracy budget in this run.
6. **Parity of I/O and operators**: our int8/float32 TFLite against the reference
   files (:func:`edgeship.runtime._compare.compare_models`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

WORK = Path(tempfile.gettempdir()) / "edgeship-bench" / "mlperf_tiny"
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Task:
    key: str
    title: str
    arch: str
    shape: tuple[int, ...]
    classes: int
    epochs: int
    reference_int8: str
    reference_float32: str
    target: float  # the benchmark's quality target (top-1; AUC for AD)
    stand_in: str

    @property
    def anomaly(self) -> bool:
        return self.arch == "fc_autoencoder"


TASKS = [
    Task("kws", "keyword spotting", "ds_cnn", (49, 10, 1), 12, 12, "kws_ref_model.tflite",
         "kws_ref_model_float32.tflite", 0.90,
         "digits 8x8 resized bilinearly to 49x10x1; 10 classes used of the 12 outputs"),
    Task("vww", "visual wake words", "mobilenet_v1_025", (96, 96, 3), 2, 10, "vww_96_int8.tflite",
         "vww_96_float.tflite", 0.80, "digits resized bilinearly to 96x96, grey to 3 channels; 2 classes: digit < 5 vs >= 5"),
    Task("ic", "image classification", "resnet8", (32, 32, 3), 10, 6, "pretrainedResnet_quant.tflite",
         "pretrainedResnet.tflite", 0.85, "digits resized bilinearly to 32x32, grey to 3 channels; 10 classes"),
    Task("ad", "anomaly detection", "fc_autoencoder", (640,), 0, 40, "ad01_int8.tflite", "ad01_fp32.tflite", 0.85,
         "digits resized bilinearly to 32x20 and flattened to 640; normal = digit 1 (train on 1s only), "
         "anomalous = every other digit"),
]


def reference_path(name: str) -> Path | None:
    from edgeship._mlperf import find_reference

    return find_reference(name)


# -- stand-in data ---------------------------------------------------------------
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)


def _resize(images: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    from edgeship.core.tf import tf_modules

    tf, _ = tf_modules()
    return tf.image.resize(images[..., None], hw, method="bilinear").numpy().astype(np.float32)


def stand_in(task: Task, seed: int = 0) -> dict[str, np.ndarray]:
    """Train / val / test splits of digits in ``task``'s input shape (see the module doc)."""
    x8, y = _digits()
    rng = np.random.default_rng(seed)
    h, w, c = task.shape
    x = _resize(x8, (h, w))
    if c == 3:
        x = np.repeat(x, 3, axis=-1)
    if task.classes == 2:
        y = (y >= 5).astype(np.int64)
    order = rng.permutation(len(x))
    n_test, n_val = len(x) // 5, len(x) // 10
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    return {"x_train": x[train], "y_train": y[train], "x_val": x[val], "y_val": y[val],
            "x_test": x[test], "y_test": y[test]}


def _labels(task: Task) -> list[str]:
    if task.classes == 2:
        return ["digit<5", "digit>=5"]
    names = [str(i) for i in range(10)]
    return names + ["_silence_", "_unknown_"][: task.classes - 10]


# -- building --------------------------------------------------------------------
def _recipe(task: Task) -> Any:
    from edgeship.recipe import Recipe

    return Recipe.model_validate({
        "name": f"mlperf-{task.key}",
        "model": {"arch": task.arch},
        "train": {"epochs": task.epochs, "batch_size": 32},
        "prune": {"enabled": False},
        "quantize": {"calibration_samples": 200},
        "budget": {"enabled": False, "max_accuracy_drop": 0.01},
        "export": {"measure_rss": False, "allow_parity_failure": True},
    })


def build_classifier(task: Task, out: Path) -> dict[str, Any]:
    from edgeship import train
    from edgeship.build import BuildInfo, ShipData, calibration_sample, write_bundle
    from edgeship.core.bundle import DatasetInfo, ModelMetrics

    d = stand_in(task)
    t0 = time.perf_counter()
    model, history = train.train_model(
        lambda: train.create_model(task.arch, task.shape, task.classes),
        train.TrainingData(d["x_train"], d["y_train"], d["x_val"], d["y_val"]),
        train.plan_training(len(d["x_train"]), epochs=task.epochs, batch_size=32, learning_rate=1e-3,
                            early_stopping_patience=task.epochs, min_epochs=0),
        train.TrainOptions(seed=0, strategy="one_device", mixed_precision="off", verbose=0),
    )
    train_s = time.perf_counter() - t0
    acc = train.accuracy(model, d["x_test"], d["y_test"])
    recipe = _recipe(task)
    ship = ShipData(calibration_sample(d["x_train"], 200, 0), d["x_test"], d["y_test"], _labels(task), {}, acc)
    write_bundle(model, recipe, out, ship, info=BuildInfo(
        dataset=DatasetInfo(name=f"digits stand-in: {task.stand_in}", train=len(d["x_train"]),
                            val=len(d["x_val"]), test=len(d["x_test"])),
        metrics=ModelMetrics(keras_reference_accuracy=acc),
    ))
    return {"params": int(model.count_params()), "keras_accuracy": acc, "train_seconds": train_s,
            "epochs": task.epochs}


def build_autoencoder(task: Task, out: Path) -> dict[str, Any]:
    """The AD model through ``edgeship build`` with ``task = "anomaly"`` on an ``anomaly:PATH`` stand-in.

    The stand-in is digits resized to 32x20 and flattened to 640 values: digit 1 normal, every other
    digit anomalous. The recipe is the shipped ``anomaly_digits.toml``'s: per-tensor int8 weights (as
    the reference file), BatchNorm folded, ROC AUC budget 0.02, threshold at the 0.95 quantile.
    """
    from edgeship.build import build
    from edgeship.recipe import Recipe

    x8, y = _digits()
    data = out.parent / f"{task.key}.stand_in.npz"
    np.savez_compressed(data, x=_resize(x8, (32, 20)).reshape(len(x8), 640), y=(y != 1).astype(np.int64))
    recipe = Recipe.model_validate({
        "name": f"mlperf-{task.key}", "seed": 0,
        "data": {"dataset": f"anomaly:{data}"},
        "model": {"arch": task.arch, "task": "anomaly"},
        "train": {"epochs": task.epochs, "batch_size": 32},
        "prune": {"enabled": False},
        "quantize": {"calibration_samples": 200, "per_channel": False},
        "budget": {"max_accuracy_drop": 0.02},
        "anomaly": {"threshold_quantile": 0.95},
        "export": {"measure_rss": False},
    })
    t0 = time.perf_counter()
    build(recipe, out)
    manifest = json.loads((out / "manifest.json").read_text())
    from edgeship import train

    return {"params": int(train.create_model(task.arch, task.shape, 0).count_params()),
            "keras_auc": manifest["anomaly"]["roc_auc"], "threshold": manifest["anomaly"]["threshold"],
            "build_pipeline_seconds": time.perf_counter() - t0, "epochs": task.epochs,
            "recipe": "task = anomaly, per-tensor int8 weights, BatchNorm folded (edgeship build)"}


def build_all(work: Path, rebuild: bool, only: list[str] | None) -> dict[str, dict[str, Any]]:
    info: dict[str, dict[str, Any]] = {}
    for task in TASKS:
        if only and task.key not in only:
            continue
        out = work / task.key
        meta = work / f"{task.key}.build.json"
        if rebuild or not (out / "manifest.json").is_file() or not meta.is_file():
            print(f"[{task.key}] building {task.arch} ({task.epochs} epochs) -> {out}", flush=True)
            t0 = time.perf_counter()
            got = build_autoencoder(task, out) if task.anomaly else build_classifier(task, out)
            got["build_seconds"] = time.perf_counter() - t0
            meta.write_text(json.dumps(got, indent=2) + "\n")
        info[task.key] = json.loads(meta.read_text())
    return info


# -- measuring ---------------------------------------------------------------------
def cpu_info() -> dict[str, Any]:
    """lscpu's model name and the int8 dot-product ISA flags (x86 VNNI, ARM asimddp)."""
    flags: set[str] = set()
    model = platform.processor() or "unknown"
    try:
        text = open("/proc/cpuinfo").read()
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("flags", "Features"):
                flags |= set(value.split())
            if key.strip() == "model name":
                model = value.strip()
    except OSError:
        pass
    try:
        import subprocess

        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "model": model,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "avx512_vnni": "avx512_vnni" in flags,
        "avx_vnni": "avx_vnni" in flags,
        "avx2": "avx2" in flags,
        "asimddp": "asimddp" in flags,
    }


def engines() -> dict[str, str]:
    from importlib.metadata import version

    return {m: version(m) for m in ("ai-edge-litert", "onnxruntime", "tensorflow", "numpy")}


def side_by_side(task: Task, bundle: Path, rounds: int, min_seconds: float, loads: int) -> dict[str, Any]:
    """The bundle's four variants and the two reference files, one thread, one interleaved run."""
    from edgeship.core.task import AnomalyDetection, Classification
    from edgeship.runtime import load_eval
    from edgeship.runtime._bench import measure_interleaved, quality
    from edgeship.runtime._bundle import read_manifest
    from edgeship.runtime._load import load_file

    manifest = read_manifest(bundle)
    x_eval, y_eval = load_eval(bundle)
    x = np.ascontiguousarray(x_eval[:1])
    names, openers = [], []
    for a in manifest.artifacts:
        names.append(a.file)
        openers.append(lambda a=a: load_file(bundle / a.file, a.format, threads=1, precision=a.precision))
    for ref in (task.reference_int8, task.reference_float32):
        path = reference_path(ref)
        if path is not None:
            names.append(f"reference:{ref}")
            openers.append(lambda path=path: load_file(path, "tflite", threads=1))
    timed = measure_interleaved(openers, x, rounds=rounds, warmup=20, runs=rounds * 20, min_seconds=min_seconds,
                                loads=loads)
    rows = {}
    for name, (model, r) in zip(names, timed):
        with model:
            row = {"engine": r["engine"], "format": r["format"], "precision": r["precision"],
                   "median_us": r["median_ms"] * 1e3,
                   "median_us_per_load": [v * 1e3 for v in r["median_ms_per_load"]], "p50_all_calls_us": r["latency_ms"]["p50"] * 1e3,
                   "round_us": [v * 1e3 for v in r["round_ms"]], "calls": r["runs"]}
            if not name.startswith("reference:"):
                metric, value = quality(model, (x_eval, y_eval), AnomalyDetection() if task.anomaly else Classification())
                row.update(metric=metric, quality=value)
                # what the build recorded (an anomaly build's AUC/threshold once [model] task = "anomaly" lands)
                recorded = next((a.metrics for a in manifest.artifacts if a.file == name), None)
                row["manifest_metrics"] = None if recorded is None else {
                    k: v for k, v in recorded.to_json().items() if k != "chance_check"}
            rows[name] = row
    return rows


def instance_spread(bundle: Path, rounds: int, seconds: float, copies: int = 3) -> dict[str, Any]:
    """``copies`` separate loads of each LiteRT file, timed side by side in one run: how much one load differs
    from another of the same file (weights packed at a different address), against the gap between variants."""
    from edgeship.runtime._bench import measure_interleaved
    from edgeship.runtime._load import load_file

    x = np.ascontiguousarray(np.load(bundle / "eval.npz")["x"][:1])
    files = [f for f in ("model.float32.tflite", "model.int8.tflite") for _ in range(copies)]
    timed = measure_interleaved([lambda f=f: load_file(bundle / f, "tflite", threads=1) for f in files], x,
                                rounds=rounds, runs=rounds * 20, min_seconds=seconds)
    out: dict[str, list[float]] = {}
    for f, (model, r) in zip(files, timed):
        model.close()
        out.setdefault(f, []).append(r["median_ms"] * 1e3)
    return {f: {"median_us_per_load": v, "spread": max(v) / min(v)} for f, v in out.items()}


def picks(task: Task, bundle: Path, rows: dict[str, Any]) -> dict[str, Any]:
    """``load(bundle)``'s pick with the device profile and without it, each against the best within budget."""
    from edgeship.runtime import load
    from edgeship.runtime._bundle import read_manifest
    from edgeship.runtime._choice import default_choice
    from edgeship.runtime._profile import accuracy_budget, eligible

    manifest = read_manifest(bundle)
    budget = accuracy_budget(manifest)
    variants = [{"file": f, "precision": r["precision"], "accuracy": r["quality"], "median_ms": r["median_us"] / 1e3,
                 "latency_ms": {"p50": r["p50_all_calls_us"] / 1e3}} for f, r in rows.items() if "quality" in r]
    ok = eligible(variants, budget, manifest)
    best = min((v for v in variants if v["file"] in ok), key=lambda v: v["median_ms"])
    with load(bundle, threads=1) as m:
        with_profile = m.path.name
    rule, reason = default_choice(manifest, bundle)
    without = rule.file
    speed = {v["file"]: v["median_ms"] for v in variants}
    return {
        "accuracy_budget": budget,
        "within_budget": sorted(ok),
        "best": best["file"],
        "pick_with_profile": with_profile,
        "ratio_with_profile": speed[with_profile] / best["median_ms"],
        "pick_without_profile": without,
        "rule_reason": reason,
        "ratio_without_profile": speed[without] / best["median_ms"],
    }


def sizes_and_parity(task: Task, bundle: Path) -> dict[str, Any]:
    from edgeship.runtime._compare import compare_models

    out: dict[str, Any] = {}
    for prec, ref in (("int8", task.reference_int8), ("float32", task.reference_float32)):
        ours = bundle / f"model.{prec}.tflite"
        path = reference_path(ref)
        entry: dict[str, Any] = {"ours_bytes": ours.stat().st_size, "reference": ref}
        if path is not None:
            c = compare_models(ours, path)
            entry.update(reference_bytes=path.stat().st_size, ratio=ours.stat().st_size / path.stat().st_size,
                         parity=c)
        out[prec] = entry
    return out


def run_bench(bundle: Path, rounds: int, loads: int) -> list[dict[str, Any]]:
    """``edgeship bench BUNDLE --threads 1 --rounds R --min-seconds 3``: interleaved rounds, device_profile.json written."""
    from edgeship.runtime._bench import bench_bundle

    rows, _ = bench_bundle(bundle, threads=1, rounds=rounds, runs=rounds * 20, min_seconds=3.0, warmup=20, loads=loads)
    return [{k: r[k] for k in ("file", "median_ms", "metric", "accuracy", "within_budget", "fastest_within_budget")}
            for r in rows]


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "| task (arch) | params | int8 TFLite bytes (ref) | float32 TFLite bytes (ref) | quality f32 / int8 TFLite | "
        "LiteRT f32 µs | LiteRT int8 µs | ORT f32 µs | ORT int8 µs | ref int8 µs | ref f32 µs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, t in results["tasks"].items():
        r = t["latency"]
        s = t["sizes"]

        def us(name: str, r: dict[str, Any] = r) -> str:
            return f"{r[name]['median_us']:.1f}" if name in r else "-"

        q = f"{r['model.float32.tflite']['quality']:.3f} / {r['model.int8.tflite']['quality']:.3f}"
        metric = "AUC " if t["task"]["anomaly"] else "top-1 "
        lines.append(
            f"| {key} ({t['task']['arch']}) | {t['build']['params']:,} | {s['int8']['ours_bytes']:,} "
            f"({s['int8'].get('reference_bytes', 0):,}) | {s['float32']['ours_bytes']:,} "
            f"({s['float32'].get('reference_bytes', 0):,}) | {metric}{q} | {us('model.float32.tflite')} | "
            f"{us('model.int8.tflite')} | {us('model.float32.onnx')} | {us('model.int8.onnx')} | "
            f"{us('reference:' + t['task']['reference_int8'])} | {us('reference:' + t['task']['reference_float32'])} |")
    lines += ["", "| task | fastest within budget (per run) | load() with profile | pick / best (worst run) | "
              "load() without profile | pick / best (worst run) | rule |", "|---|---|---|---:|---|---:|---|"]
    for key, t in results["tasks"].items():
        p = t["picks"]

        def runs(k: str, p: dict[str, Any] = p) -> str:
            return " / ".join(f"{v:.3f}" for v in p[f"{k}_repeats"]) + f" ({p[f'{k}_worst']:.3f})"

        lines.append(f"| {key} | {' / '.join(sorted(set(p['best_repeats'])))} | {p['pick_with_profile']} | "
                     f"{runs('ratio_with_profile')} | {p['pick_without_profile']} | {runs('ratio_without_profile')} | "
                     f"{p['rule_reason']} |")
    lines += ["", "| task | LiteRT float32: 3 loads, µs | spread | LiteRT int8: 3 loads, µs | spread |",
              "|---|---|---:|---|---:|"]
    for key, t in results["tasks"].items():
        sp = t.get("instance_spread")
        if sp:
            f, i = sp["model.float32.tflite"], sp["model.int8.tflite"]
            lines.append(f"| {key} | {' / '.join(f'{v:.1f}' for v in f['median_us_per_load'])} | {f['spread']:.3f} | "
                         f"{' / '.join(f'{v:.1f}' for v in i['median_us_per_load'])} | {i['spread']:.3f} |")
    lines += ["", "| task | precision | I/O same as reference | operators same | differences |", "|---|---|---|---|---|"]
    for key, t in results["tasks"].items():
        for prec in ("int8", "float32"):
            c = t["sizes"][prec].get("parity")
            if c:
                diffs = "; ".join(c["differences"]) or "none"
                lines.append(f"| {key} | {prec} | {'yes' if c['same_io'] else 'no'} | "
                             f"{'yes' if c['same_operators'] else 'no'} | {diffs} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=str(WORK), help="where the bundles are built (cached between runs)")
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--only", nargs="*", help="task keys (kws vww ic ad)")
    ap.add_argument("--build-only", action="store_true")
    ap.add_argument("--rounds", type=int, default=60, help="interleaved rounds of every timing (median taken)")
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds per side-by-side run (all variants)")
    ap.add_argument("--loads", type=int, default=3,
                    help="separate loads of every file, all timed side by side; a variant's figure is the median "
                         "over its loads (one load's speed depends on where the engine placed its weights)")
    ap.add_argument("--repeats", type=int, default=3, help="side-by-side runs that check load()'s pick")
    ap.add_argument("--out", default=str(HERE / "mlperf_tiny_results.json"))
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("EDGESHIP_CACHE_DIR", str(work / "cache"))
    builds = build_all(work, args.rebuild, args.only)
    if args.build_only:
        print(json.dumps(builds, indent=2))
        return 0
    from edgeship.runtime._profile import PROFILE_FILE

    results: dict[str, Any] = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu": cpu_info(),
        "engines": engines(),
        "python": platform.python_version(),
        "machine_note": "2 vCPUs; other jobs may share them: "
                        "absolute figures are noisy; every comparison is interleaved in one run, median of rounds",
        "settings": {"threads": 1, "rounds": args.rounds, "loads": args.loads, "side_by_side_seconds": args.seconds,
                     "side_by_side_repeats": args.repeats,
                     "batch": 1, "epochs": {t.key: t.epochs for t in TASKS}, "prune": False,
                     "quantization": "PTQ, 200 calibration samples, per-channel weights (AD: per-tensor, as the reference); TFLite int8 I/O, ONNX QDQ u8/s8; BatchNorm folded"},
        "tasks": {},
    }
    for task in TASKS:
        if task.key not in builds:
            continue
        bundle = work / task.key
        print(f"[{task.key}] edgeship bench (interleaved, {args.rounds} rounds)", flush=True)
        (bundle / PROFILE_FILE).unlink(missing_ok=True)
        bench_rows = run_bench(bundle, args.rounds, args.loads)
        print(f"[{task.key}] side by side", flush=True)
        rows = side_by_side(task, bundle, args.rounds, args.seconds, args.loads)
        checks = [picks(task, bundle, rows)]
        for i in range(1, args.repeats):
            print(f"[{task.key}] side by side, repeat {i + 1}/{args.repeats}", flush=True)
            checks.append(picks(task, bundle, side_by_side(task, bundle, args.rounds, args.seconds, args.loads)))
        pick = dict(checks[0])
        for key in ("ratio_with_profile", "ratio_without_profile"):
            pick[f"{key}_repeats"] = [c[key] for c in checks]
            pick[f"{key}_worst"] = max(c[key] for c in checks)
        pick["best_repeats"] = [c["best"] for c in checks]
        results["tasks"][task.key] = {
            "task": {"title": task.title, "arch": task.arch, "input": list(task.shape), "classes": task.classes,
                     "stand_in": task.stand_in, "quality_target": task.target, "anomaly": task.anomaly,
                     "reference_int8": task.reference_int8, "reference_float32": task.reference_float32},
            "build": builds[task.key],
            "sizes": sizes_and_parity(task, bundle),
            "bench": bench_rows,
            "latency": rows,
            "picks": pick,
            "instance_spread": instance_spread(bundle, max(10, args.rounds // 2), args.seconds / 2),
        }
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(markdown(results))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
