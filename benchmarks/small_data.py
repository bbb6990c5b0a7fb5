"""Small real-photo datasets through ``edgeship build`` with a recipe that names only the dataset.

    .venv/bin/python benchmarks/small_data.py [--datasets sklearn_china_flower,skimage_scenes,skimage_faces]
        [--seeds 0,1,2] [--data-seed 0] [--out benchmarks/small_data_results.json] [--workdir DIR]

The datasets (benchmarks/photo_sets.py) are image folders cut from photos that
scikit-learn and scikit-image ship; nothing downloads. Each dataset is written once with
``--data-seed`` (default 0), so every build of it reads the same files; only the
recipe seed varies over ``--seeds`` (weight init, the train/val(/test) split, shuffling,
calibration sample). The recipe is what a user with a folder would write:

    name = "<dataset>-seed<s>"
    seed = <s>
    [data]
    dataset = "images:<folder>"

i.e. every other setting is edgeship's default (32x32 RGB input, small_cnn, 50 %
pruning, PTQ int8, TFLite + ONNX). Each build is a fresh ``python -m edgeship build``
process (TF state isolated; its stderr goes to ``WORKDIR/logs``), timed wall-clock.
A build that exits non-zero is recorded as a failure with its one-line error.

From each manifest.json: ``metrics.baselines`` (majority / linear, when the build
records them), ``metrics.keras_float32_accuracy`` and every artifact's
``metrics.accuracy``, all on the build's test split (the table's ``pruned`` column is
``metrics.keras_reference_accuracy``, the Keras model the artifacts come from). Per-seed rows and per-dataset
medians over the successful seeds go to ``--out`` with the CPU, versions and date;
stdout gets a Markdown table and the issue's bars (reported, not asserted): the median
shipped int8 TFLite / ONNX accuracy is >= median linear - 0.02, and at most 0.01 below the
median Keras float32 accuracy (a drop: an int8 file that scores higher is within it); the median
over seeds of each seed's own drop is printed beside it. ``--from-json FILE`` prints the
table and bars again from an earlier results file without building.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from photo_sets import MARKER, PHOTO_SETS  # noqa: E402

HERE = Path(__file__).resolve().parent
ARTIFACT_ORDER = ["model.float32.tflite", "model.int8.tflite", "model.float32.onnx", "model.int8.onnx"]
BARS = {"linear_margin": 0.02, "float32_tolerance": 0.01}


# -- machine -------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    """CPU model and the SIMD flags int8 kernels care about, from /proc/cpuinfo."""
    cpu: str | None = None
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and cpu is None:
                cpu = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return {
        "cpu": cpu or platform.processor() or "unknown",
        "avx2": "avx2" in flags,
        "avx512_vnni": "avx512_vnni" in flags,
        "cpu_count": os.cpu_count(),
        "system": platform.system(),
        "machine": platform.machine(),
    }


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("edgeship", "tensorflow", "tf-keras", "tensorflow-model-optimization", "onnxruntime",
                 "ai-edge-litert", "scikit-learn", "scikit-image", "pillow"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def git_state() -> dict[str, Any]:
    """The commit benchmarked and whether the work tree had local edits (read-only git calls)."""
    def run(*cmd: str) -> str | None:
        try:
            return subprocess.run(["git", *cmd], cwd=HERE, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": run("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None}


# -- data ----------------------------------------------------------------------------
def folder_digest(folder: Path) -> str:
    """sha256 over the dataset's relative paths and bytes: the same data cut gives the same digest."""
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*.png")):
        h.update(str(f.relative_to(folder)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def describe(folder: Path) -> dict[str, Any]:
    meta = json.loads((folder / MARKER).read_text())
    classes = sorted({Path(k).name for k in meta["counts"]})
    return {**meta, "classes": len(classes), "class_names": classes, "sha256": folder_digest(folder)}


# -- build ---------------------------------------------------------------------------
def toml_recipe(recipe: dict[str, Any]) -> str:
    """The recipe as TOML (top-level scalars, then one table per dict); strings JSON-quoted (valid TOML)."""
    top = [f"{k} = {json.dumps(v)}" for k, v in recipe.items() if not isinstance(v, dict)]
    tables = [f"\n[{k}]\n" + "\n".join(f"{kk} = {json.dumps(vv)}" for kk, vv in v.items())
              for k, v in recipe.items() if isinstance(v, dict)]
    return "\n".join(top) + "\n" + "\n".join(tables) + "\n"


def error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    typed = [ln for ln in lines if ln.startswith("edgeship: error:")]
    return (typed or lines or ["(no stderr)"])[-1][:1000]


def build_one(name: str, data: Path, seed: int, work: Path, timeout: float) -> dict[str, Any]:
    """One ``edgeship build`` in a fresh process; the row for the results JSON."""
    from edgeship.recipe import Recipe

    recipe = {"name": f"{name}-seed{seed}", "seed": seed, "data": {"dataset": f"images:{data}"}}
    Recipe.from_dict(recipe)  # a bad recipe is this script's bug: fail here, loudly
    for sub in ("recipes", "bundles", "logs"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    recipe_path = work / "recipes" / f"{name}-seed{seed}.toml"
    recipe_path.write_text(toml_recipe(recipe))
    out = work / "bundles" / f"{name}-seed{seed}"
    if (out / "manifest.json").is_file():
        shutil.rmtree(out)  # never read a bundle left by an earlier run
    log = work / "logs" / f"{name}-seed{seed}.log"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    cmd = [sys.executable, "-m", "edgeship", "build", str(recipe_path), "--out", str(out)]
    row: dict[str, Any] = {"dataset": name, "seed": seed, "recipe": recipe, "log": str(log)}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        rc, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc, stdout = None, exc.stdout or ""
        stderr = (exc.stderr or "") + f"\nbenchmark: timeout after {timeout:.0f} s"
        stdout = stdout.decode(errors="replace") if isinstance(stdout, bytes) else stdout
        stderr = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    row["build_seconds"] = round(time.perf_counter() - t0, 1)
    row["exit_code"] = rc
    log.write_text(f"$ {' '.join(cmd)}\n--- stdout\n{stdout}\n--- stderr\n{stderr}")
    if rc != 0 or not (out / "manifest.json").is_file():
        row.update(ok=False, error=error_line(stderr) if rc is not None else f"timeout after {timeout:.0f} s")
        return row
    manifest = json.loads((out / "manifest.json").read_text())
    metrics = manifest.get("metrics", {})
    baselines = metrics.get("baselines") or {}
    row.update(
        ok=True,
        error=None,
        bundle=str(out),
        split=manifest.get("dataset"),
        majority=baselines.get("majority"),
        linear=baselines.get("linear"),
        baselines_in_manifest="baselines" in metrics,
        baselines=metrics.get("baselines"),
        float32=metrics.get("keras_float32_accuracy"),
        keras_reference=metrics.get("keras_reference_accuracy"),
        artifacts={a["file"]: a.get("metrics", {}).get("accuracy") for a in manifest.get("artifacts", [])},
        timings_s=manifest.get("timings_s"),
    )
    return row


# -- summary -------------------------------------------------------------------------
def _median(values: list[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return statistics.median(vals) if vals else None


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in rows if r["ok"]]
    files = sorted({f for r in ok for f in r["artifacts"]},
                   key=lambda f: (ARTIFACT_ORDER.index(f) if f in ARTIFACT_ORDER else len(ARTIFACT_ORDER), f))
    return {
        "seeds": [r["seed"] for r in rows],
        "succeeded": len(ok),
        "failed": len(rows) - len(ok),
        "failures": [{"seed": r["seed"], "error": r["error"]} for r in rows if not r["ok"]],
        "majority": _median([r["majority"] for r in ok]),
        "linear": _median([r["linear"] for r in ok]),
        "float32": _median([r["float32"] for r in ok]),
        "keras_reference": _median([r["keras_reference"] for r in ok]),
        "artifacts": {f: _median([r["artifacts"].get(f) for r in ok]) for f in files},
        "build_seconds": _median([r["build_seconds"] for r in rows]),
    }


def bars(name: str, med: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's bars on the medians: int8 >= linear - 0.02, and int8 >= float32 - 0.01 (at most 1 point lost)."""
    out = []
    for f in ("model.int8.tflite", "model.int8.onnx"):
        acc = med["artifacts"].get(f)
        lin, f32 = med["linear"], med["float32"]
        drops = [r["float32"] - r["artifacts"][f] for r in rows if r.get("ok") and f in r.get("artifacts", {})]
        per_seed = _median(drops) if drops else None
        checks = [
            ("linear", f"{f} {_fmt(acc)} >= linear {_fmt(lin)} - {BARS['linear_margin']}",
             None if acc is None or lin is None else acc >= lin - BARS["linear_margin"] - 1e-12),
            ("float32", f"{f} {_fmt(acc)} >= float32 {_fmt(f32)} - {BARS['float32_tolerance']} "
             f"(median of the per-seed drops: {_fmt(per_seed)})",
             None if acc is None or f32 is None else acc >= f32 - BARS["float32_tolerance"] - 1e-12),
        ]
        for kind, text, passed in checks:
            out.append({"dataset": name, "artifact": f, "bar": kind, "text": text, "passed": passed,
                        "median_per_seed_drop": per_seed if kind == "float32" else None})
    return out


def _fmt(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def table(datasets: dict[str, dict[str, Any]]) -> str:
    files = [f for f in ARTIFACT_ORDER if any(f in d["median"]["artifacts"] for d in datasets.values())]
    files += sorted({f for d in datasets.values() for f in d["median"]["artifacts"]} - set(files))
    head = ["dataset", "classes", "images", "majority", "linear", "float32", "pruned", *files, "build s", "failures"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 2) + "---|"]
    for name, d in datasets.items():
        m = d["median"]
        fails = f"{m['failed']}/{len(m['seeds'])}"
        if m["failures"]:
            fails += ": " + "; ".join(f"seed {x['seed']}: {x['error']}" for x in m["failures"])
        cells = [name, str(d["data"]["classes"]), str(d["data"]["images"]), _fmt(m["majority"]), _fmt(m["linear"]),
                 _fmt(m["float32"]), _fmt(m["keras_reference"]), *(_fmt(m["artifacts"].get(f)) for f in files), _fmt(m["build_seconds"], 0), fails]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default=",".join(PHOTO_SETS), help=f"comma-separated, from {', '.join(PHOTO_SETS)}")
    ap.add_argument("--seeds", default="0,1,2", help="recipe seeds, comma-separated")
    ap.add_argument("--data-seed", type=int, default=0, help="seed of the data cut, fixed for all recipe seeds")
    ap.add_argument("--out", type=Path, default=HERE / "small_data_results.json")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "edgeship-small-data",
                    help="datasets, recipes, bundles and build logs go here")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per build")
    ap.add_argument("--from-json", type=Path, help="print the table and bars of an earlier results file; build nothing")
    args = ap.parse_args()
    if args.from_json:
        results = json.loads(args.from_json.read_text())
        for name, d in results["datasets"].items():
            d["bars"] = bars(name, d["median"], [r for r in results["runs"] if r.get("dataset") == name])
        report(results, ",".join(map(str, results["recipe_seeds"])), results["data_seed"], args.from_json)
        args.from_json.write_text(json.dumps(results, indent=2) + "\n")
        return 0

    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in PHOTO_SETS]
    if unknown:
        ap.error(f"unknown dataset(s) {', '.join(unknown)}; valid: {', '.join(PHOTO_SETS)}")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    work = args.workdir.absolute()

    results: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "git": git_state(),
        "recipe": "name, seed and data.dataset only; every other key at edgeship's default",
        "data_seed": args.data_seed,
        "recipe_seeds": seeds,
        "bars": BARS,
        "datasets": {},
        "runs": [],
    }
    m = results["machine"]
    print(f"CPU: {m['cpu']} ({m['cpu_count']} cores, avx2={m['avx2']}, avx512_vnni={m['avx512_vnni']}); "
          f"python {results['versions']['python']}, tensorflow {results['versions']['tensorflow']}", flush=True)
    for name in names:
        folder = PHOTO_SETS[name](work / "data", args.data_seed)
        data = describe(folder)
        print(f"{name}: {data['images']} images, {data['classes']} classes, {data['size'][0]}x{data['size'][1]} "
              f"{data['color']}, {data['layout']} ({folder})", flush=True)
        rows = []
        for seed in seeds:
            row = build_one(name, folder, seed, work, args.timeout)
            rows.append(row)
            if row["ok"]:
                accs = ", ".join(f"{f} {_fmt(a)}" for f, a in row["artifacts"].items())
                print(f"  seed {seed}: {row['build_seconds']:.0f} s; majority {_fmt(row['majority'])} linear "
                      f"{_fmt(row['linear'])} float32 {_fmt(row['float32'])}; {accs}", flush=True)
            else:
                print(f"  seed {seed}: FAILED after {row['build_seconds']:.0f} s: {row['error']}", flush=True)
        results["runs"].extend(rows)
        med = summarize(rows)
        results["datasets"][name] = {"folder": str(folder), "data": data, "median": med, "bars": bars(name, med, rows)}
        args.out.write_text(json.dumps(results, indent=2) + "\n")  # partial results survive an interrupted run

    report(results, args.seeds, args.data_seed, args.out)
    return 0


def report(results: dict[str, Any], seeds: str, data_seed: int, out: Path) -> None:
    """The Markdown table and the bars on stdout."""
    m = results["machine"]
    print()
    print(f"Medians over recipe seeds {seeds} (data seed {data_seed}); accuracy on each build's test split; "
          f"CPU {m['cpu']}, {m['cpu_count']} cores, avx2={m['avx2']}, avx512_vnni={m['avx512_vnni']}")
    print()
    print(table(results["datasets"]))
    print("\nfloat32: metrics.keras_float32_accuracy (the trained Keras model); pruned: metrics.keras_reference_accuracy "
          "(the Keras model the artifacts are exported from); build s: wall clock of one `edgeship build` process")
    if not all(r.get("baselines_in_manifest") for r in results["runs"] if r["ok"]):
        print("\nmajority / linear: '-' where the manifest has no metrics.baselines (older edgeship build)")
    print()
    for name, d in results["datasets"].items():
        for b in d["bars"]:
            verdict = {True: "PASS", False: "FAIL", None: "N/A "}[b["passed"]]
            print(f"{verdict} {name}: {b['text']}")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    sys.exit(main())
