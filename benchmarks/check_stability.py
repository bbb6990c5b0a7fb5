"""Does ``edgeship check`` hold on a noisy machine, and does it catch real regressions?

    python benchmarks/check_stability.py [--bundle DIR] [--runs 20] [--json OUT.json]

1. Stability: ``edgeship check BUNDLE`` (the real CLI, one fresh process per run)
   ``--runs`` times on an unchanged bundle while a second process keeps one core
   busy (a pure-Python spin loop). Counts passes and prints each artifact's
   latency ratio spread (min / median / max) over the runs, against its baseline.
   ``--bundle`` reuses a built bundle (with baseline.json); otherwise the default
   recipe is built first (``edgeship build``, ~90 s).
2. A ~1.5x slower model: a digits CNN is trained here, exported (TFLite and ONNX,
   float32 and int8) into a bundle and baselined; then the *same* trained network
   with one extra identity 3x3 convolution (48->48 channels at 8x8: same outputs,
   +~65 % multiply-adds, +21k weights) is re-exported through the real converters and
   written over the artifacts, with the manifest's sha256/bytes updated. ``check
   --size-tol 1`` (the extra weights would fail the size gate too) must fail on latency
   alone, and pass accuracy.
3. Perturbed weights: Gaussian noise on every kernel, scaled until the Keras model
   loses ~5 accuracy points, re-exported and written over the artifacts the same
   way. ``check`` must fail on accuracy.

Both regressions are checked with the busy core still running.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

EDGESHIP = [sys.executable, "-m", "edgeship"]
SPIN = "while True:\n    pass\n"


def check(bundle: Path, *extra: str) -> tuple[int, dict]:
    proc = subprocess.run(
        [*EDGESHIP, "check", str(bundle), "--json", *extra], capture_output=True, text=True, timeout=600
    )
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"edgeship check exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return proc.returncode, json.loads(proc.stdout)


def spread(values: list[float]) -> dict[str, float]:
    return {"min": float(np.min(values)), "median": float(np.median(values)), "max": float(np.max(values))}


# -- 1. stability ------------------------------------------------------------------------
def stability(bundle: Path, runs: int) -> dict:
    base = json.loads((bundle / "baseline.json").read_text())
    ratios: dict[str, list[float]] = {name: [] for name in base["artifacts"]}
    passes, seconds = 0, []
    for i in range(runs):
        t0 = time.perf_counter()
        rc, res = check(bundle)
        seconds.append(time.perf_counter() - t0)
        passes += rc == 0
        for name, a in res["measured"]["artifacts"].items():
            ratios[name].append(a["latency_ratio"])
        worst = max((r for r in res["rows"] if r["metric"] == "latency"), key=lambda r: r["current"] / r["baseline"])
        print(
            f"  run {i + 1:2d}: exit {rc}; worst latency row {worst['artifact']} {worst['current'] / worst['baseline'] - 1:+.1%}",
            flush=True,
        )
    out = {"runs": runs, "passed": passes, "check_seconds": spread(seconds), "artifacts": {}}
    for name, vals in ratios.items():
        b = base["artifacts"][name]["latency_ratio"]
        s = spread(vals)
        out["artifacts"][name] = {"baseline": b, **s, "max_rel_dev": max(abs(v / b - 1) for v in vals)}
    return out


# -- 2 and 3: a trained model we can slow down and perturb ----------------------------------
def train_digits():
    from sklearn.datasets import load_digits

    from edgeship.core.tf import tf_modules

    tf, keras = tf_modules()
    keras.utils.set_random_seed(0)
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]
    y = d.target.astype(np.int64)
    idx = np.random.default_rng(0).permutation(len(x))
    tr, te = idx[:1400], idx[1400:]
    layers = keras.layers
    model = keras.Sequential(
        [
            layers.Input((8, 8, 1), name="input"),
            layers.Conv2D(48, 3, padding="same", activation="relu", name="conv1"),
            layers.Conv2D(48, 3, padding="same", activation="relu", name="conv2"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(96, 3, padding="same", activation="relu", name="conv3"),
            layers.Flatten(name="flatten"),
            layers.Dense(10, activation="softmax", name="probs"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[tr], y[tr], epochs=15, batch_size=32, verbose=0)
    return keras, model, x[tr], x[te], y[te]


def with_identity_conv(keras, model):
    """The same network with an identity 3x3 conv (48->48) after conv2: same outputs, more work."""
    layers = keras.layers
    ident = layers.Conv2D(48, 3, padding="same", use_bias=False, name="identity")
    slow = keras.Sequential(
        [layers.Input((8, 8, 1), name="input")]
        + [model.get_layer(n) for n in ("conv1", "conv2")]
        + [ident]
        + [model.get_layer(n) for n in ("pool1", "conv3", "flatten", "probs")]
    )
    k = np.zeros((3, 3, 48, 48), np.float32)
    k[1, 1] = np.eye(48, dtype=np.float32)
    ident.set_weights([k])
    return slow


def perturbed(keras, model, x, y, target_drop=0.05):
    base = float(np.mean(np.argmax(model.predict(x, verbose=0), 1) == y))
    clone = keras.models.clone_model(model)
    rng = np.random.default_rng(0)
    noise = [rng.standard_normal(w.shape).astype(np.float32) for w in model.get_weights()]
    for sigma in np.arange(0.05, 2.0, 0.025):
        clone.set_weights([w + sigma * w.std() * n if w.ndim > 1 else w for w, n in zip(model.get_weights(), noise)])
        acc = float(np.mean(np.argmax(clone.predict(x, verbose=0), 1) == y))
        if base - acc >= target_drop:
            return clone, float(sigma), base, acc
    raise RuntimeError("no noise level reached the target drop")


def export_all(model, calibration) -> dict[str, bytes]:
    from edgeship.export import quantize_onnx, to_onnx, to_tflite

    f_onnx = to_onnx(model, 17)
    return {
        "model.float32.tflite": to_tflite(model, "float32"),
        "model.int8.tflite": to_tflite(model, "int8", calibration),
        "model.float32.onnx": f_onnx,
        "model.int8.onnx": quantize_onnx(f_onnx, calibration),
    }


def write_bundle(out: Path, files: dict[str, bytes], x_eval, y_eval) -> None:
    from edgeship.export import BundleWriter, file_entry

    with BundleWriter(out) as bw:
        arts = []
        for name, data in files.items():
            _, precision, fmt = name.split(".")
            arts.append({**file_entry(bw.write_bytes(name, data)), "format": fmt, "precision": precision})
        np.savez_compressed(bw.path("eval.npz"), x=x_eval, y=y_eval)
        bw.write_manifest(
            {
                "name": "stability",
                "labels": [str(i) for i in range(10)],
                "artifacts": arts,
                "eval": {**file_entry(bw.path("eval.npz")), "samples": len(y_eval)},
            }
        )


def overwrite(bundle: Path, files: dict[str, bytes]) -> None:
    """Write new model bytes over the artifacts and update the manifest so sha256/bytes still match."""
    from edgeship.export import file_entry

    mpath = bundle / "manifest.json"
    manifest = json.loads(mpath.read_text())
    for a in manifest["artifacts"]:
        (bundle / a["file"]).write_bytes(files[a["file"]])
        a.update(file_entry(bundle / a["file"]))
    mpath.write_text(json.dumps(manifest, indent=2))


def regressions(work: Path, repeats: int) -> dict:
    keras, model, x_tr, x_te, y_te = train_digits()
    cal = x_tr[:256]
    base_dir = work / "base"
    write_bundle(base_dir, export_all(model, cal), x_te, y_te)
    subprocess.run([*EDGESHIP, "check", str(base_dir), "--update"], check=True, capture_output=True)
    result: dict = {}

    slow_dir = work / "slow"
    shutil.copytree(base_dir, slow_dir)
    overwrite(slow_dir, export_all(with_identity_conv(keras, model), cal))
    slow_runs = []
    for _ in range(repeats):
        rc, res = check(slow_dir, "--size-tol", "1")  # its identity conv adds weights: gate latency alone
        lat = {r["artifact"]: r for r in res["rows"] if r["metric"] == "latency"}
        acc_fail = [r["artifact"] for r in res["rows"] if r["metric"] == "accuracy" and r["status"] == "fail"]
        slow_runs.append(
            {
                "exit": rc,
                "slowdown": {k: r["current"] / r["baseline"] for k, r in lat.items()},
                "latency_failed": sorted(k for k, r in lat.items() if r["status"] == "fail"),
                "accuracy_failed": acc_fail,
            }
        )
        print(
            f"  slow model: exit {rc}; ratio vs baseline "
            + ", ".join(f"{k} {v:.2f}x" for k, v in slow_runs[-1]["slowdown"].items()),
            flush=True,
        )
    result["slow"] = {"runs": slow_runs, "failed": sum(r["exit"] == 1 for r in slow_runs)}

    noisy, sigma, acc0, acc1 = perturbed(keras, model, x_te, y_te)
    pert_dir = work / "perturbed"
    shutil.copytree(base_dir, pert_dir)
    overwrite(pert_dir, export_all(noisy, cal))
    rc, res = check(pert_dir)
    acc_rows = {r["artifact"]: r for r in res["rows"] if r["metric"] == "accuracy"}
    result["perturbed"] = {
        "exit": rc,
        "sigma": sigma,
        "keras_accuracy": [acc0, acc1],
        "accuracy": {k: [r["baseline"], r["current"], r["status"]] for k, r in acc_rows.items()},
        "other_failures": [
            f"{r['artifact']} {r['metric']}" for r in res["rows"] if r["status"] == "fail" and r["metric"] != "accuracy"
        ],
    }
    print(
        f"  perturbed (sigma {sigma:.3f} x std): exit {rc}; "
        + ", ".join(f"{k} {b:.4f}->{c:.4f} {s}" for k, (b, c, s) in result["perturbed"]["accuracy"].items()),
        flush=True,
    )
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", help="existing bundle with baseline.json (default: build the default recipe)")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5, help="checks of the slowed bundle")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--skip-stability", action="store_true", help="only the two regressions")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgeship-stability-"))
    spinner = subprocess.Popen([sys.executable, "-c", SPIN])
    try:
        figures: dict = {}
        if not args.skip_stability:
            bundle = Path(args.bundle) if args.bundle else work / "default"
            if not args.bundle:
                subprocess.run([*EDGESHIP, "build", "--out", str(bundle)], check=True, capture_output=True)
            print(f"1. {args.runs} checks of an unchanged bundle, one core kept busy (pid {spinner.pid}):", flush=True)
            figures["stability"] = stability(bundle, args.runs)
        print("2./3. regressions (busy core still running):", flush=True)
        figures.update(regressions(work, args.repeats))
    finally:
        spinner.kill()
        spinner.wait()
        shutil.rmtree(work, ignore_errors=True)
    s = figures.get("stability") or {"passed": 0, "runs": 0, "check_seconds": {"median": 0.0}, "artifacts": {}}
    print(
        f"\nunchanged bundle: {s['passed']} of {s['runs']} checks passed "
        f"(check took {s['check_seconds']['median']:.1f} s median)"
    )
    print(f"{'artifact':<24} {'baseline':>9} {'min':>7} {'median':>7} {'max':>7} {'max |dev|':>9}")
    for name, a in s["artifacts"].items():
        print(
            f"{name:<24} {a['baseline']:>8.3f}x {a['min']:>6.3f}x {a['median']:>6.3f}x {a['max']:>6.3f}x {a['max_rel_dev']:>8.1%}"
        )
    sl = figures["slow"]
    med = {k: float(np.median([r["slowdown"][k] for r in sl["runs"]])) for k in sl["runs"][0]["slowdown"]}
    print(
        f"1.5x-slower model: {sl['failed']} of {len(sl['runs'])} checks failed; median ratio vs baseline "
        + ", ".join(f"{k} {v:.2f}x" for k, v in med.items())
    )
    p = figures["perturbed"]
    print(
        f"perturbed weights: exit {p['exit']}; keras accuracy {p['keras_accuracy'][0]:.4f} -> {p['keras_accuracy'][1]:.4f}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
