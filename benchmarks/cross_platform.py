"""Cross-architecture parity: x86-64 host against aarch64 (emulated Cortex-A76, `make arm-root`), per artifact.

Two subjects:

* the default bundle (`edgeship build`), every artifact on its eval.npz (edgeship.crossplatform.check_platform);
* the MLPerf Tiny reference files in ../shared/mlperf_tiny (float32 and int8 of each model), on 64 seeded
  random inputs spanning each int8 model's input range (the same inputs for its float32 sibling).

No latency: under emulation timings are qemu's, not a CPU's. Writes benchmarks/cross_platform_results.json and
prints the README table.

    .venv/bin/python benchmarks/cross_platform.py --bundle build/digits-small-cnn
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from edgeship import platforms
from edgeship.crossplatform import LIMITS, check_platform, judge
from edgeship.runtime import load

HERE = Path(__file__).resolve().parent
MLPERF = HERE.parent.parent / "shared" / "mlperf_tiny"
PAIRS = {  # model: (float32 file, int8 file)
    "kws (ds_cnn)": ("kws_ref_model_float32.tflite", "kws_ref_model.tflite"),
    "vww (mobilenet_v1_025)": ("vww_96_float.tflite", "vww_96_int8.tflite"),
    "ic (resnet8)": ("pretrainedResnet.tflite", "pretrainedResnet_quant.tflite"),
    "ad (fc_autoencoder)": ("ad01_fp32.tflite", "ad01_int8.tflite"),
}
SAMPLES = 64


def _inputs(int8_file: Path, rng: np.random.Generator) -> np.ndarray:
    """Float inputs spanning the int8 model's representable input range (its quantization), batch first."""
    with load(int8_file, probe=False) as m:
        spec = m.inputs[0]
        shape = [SAMPLES, *[d if isinstance(d, int) and d > 0 else 1 for d in spec.shape[1:]]]
        if spec.quantized:
            lo, hi = (-128 - spec.zero_point) * spec.scale, (127 - spec.zero_point) * spec.scale
        else:
            lo, hi = 0.0, 1.0
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def mlperf_rows(cpu: str) -> list[dict[str, object]]:
    rows = []
    for model, files in PAIRS.items():
        paths = [MLPERF / f for f in files]
        if not all(p.is_file() for p in paths):
            continue
        x = _inputs(paths[1], np.random.default_rng(0))
        host = {}
        for p in paths:
            with load(p, probe=False) as m:
                y = m.predict(x)
            host[p.name] = y if isinstance(y, list) else [y]
        from edgeship.crossplatform import run_files_on_device

        device = run_files_on_device(paths, x)
        for p, quantized in zip(paths, (False, True)):
            rec, failure = judge(p.name, quantized, host[p.name], device[p.name], LIMITS)
            rows.append({"subject": f"MLPerf Tiny {model}", "artifact": p.name, **rec.to_json(),
                         "failure": failure, "samples": SAMPLES, "cpu": cpu})
    return rows


def bundle_rows(bundle: Path, cpu: str) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory() as tmp:  # check a copy: the benchmark does not edit the bundle
        import shutil

        copy = Path(tmp) / "b"
        shutil.copytree(bundle, copy)
        try:
            result = check_platform(copy, "linux-aarch64", record=False)
        except Exception as exc:  # noqa: BLE001 - a miss is a result here, reported in the table
            from edgeship.core.errors import ParityError

            if not isinstance(exc, ParityError):
                raise
            result = check_platform(copy, "linux-aarch64", record=False, limits={"float_max_abs_diff": 1e9,
                                    "min_sqnr_db": -1e9, "min_top1_agreement": 0.0})
    return [{"subject": f"default bundle ({result.samples} eval digits)", "artifact": f, **a.to_json(),
             "failure": None if a.passed else "miss", "samples": result.samples, "cpu": cpu}
            for f, a in result.artifacts.items()]


def table(rows: list[dict[str, object]]) -> str:
    lines = ["| subject | artifact | max abs diff | SQNR dB | top-1 agreement | within limits |", "|---|---|---|---|---|---|"]
    for r in rows:
        sq = ">= 120 (cap)" if r["sqnr_db"] == 120.0 else (f"{r['sqnr_db']:.1f}" if r["sqnr_db"] is not None else "-")
        diff = r["max_abs_diff"] if isinstance(r["max_abs_diff"], str) else f"{r['max_abs_diff']:.2g}"
        lines.append(f"| {r['subject']} | {r['artifact']} | {diff} | {sq} | {r['top1_agreement']:.4f} | "
                     f"{'yes' if r['passed'] else 'NO'} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bundle", type=Path, help="bundle folder (default: build/digits-small-cnn)",
                   default=Path("build/digits-small-cnn"))
    p.add_argument("--out", type=Path, default=HERE / "cross_platform_results.json")
    args = p.parse_args()
    cpu = platforms.qemu_cpu()
    rows = bundle_rows(args.bundle, cpu) + mlperf_rows(cpu)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"host": "linux-x86_64", "target": "linux-aarch64 (qemu-user, -cpu " + cpu + ")",
                               "engines": platforms.root_versions(platforms.root_path()), "limits": LIMITS,
                               "rows": rows}, indent=2) + "\n")
    os.replace(tmp, args.out)
    print(table(rows))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
