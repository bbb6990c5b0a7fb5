"""Structured channel pruning (issue 14): int8 latency, accuracy and size against the unpruned int8 model.

    .venv/bin/python benchmarks/structured_pruning.py [--seeds 0 1 2] [--json benchmarks/structured_pruning_results.json]

For ``small_cnn`` on digits (8x8x1) and ``resnet8`` on digits resized to
32x32x3, and each seed: train the model, then for each channel ratio prune it
(``edgeship.compress.prune_channels``, L1 ranking) and fine-tune the narrower
model twice from the same start, on the labels and distilled from the trained
model (``compress.fine_tune_channels``, T=3, alpha=0.5). Every model is
converted to int8 TFLite and int8 ONNX (QDQ, x86 preset); the test-split top-1
of the int8 files is measured through ``edgeship.runtime``, and the latency of
each pruned int8 file as a ratio to the unpruned int8 file of the same format,
interleaved in one run (``measure_pair_ratio``: median of rounds, batch 1,
one engine thread).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

MODELS = {"small_cnn": (0.5, 0.35, 0.25), "resnet8": (0.5, 0.35, 0.25)}


def dataset(name: str, seed: int) -> Any:
    """digits; for resnet8 resized (bilinear) to 32x32 and repeated to 3 channels."""
    from edgeship import train
    from edgeship.core.tf import tf_modules

    ds = train.load_dataset("digits", seed=seed)
    if name != "resnet8":
        return ds
    tf, _ = tf_modules()

    def big(x: np.ndarray) -> np.ndarray:
        return np.repeat(tf.image.resize(x, (32, 32)).numpy(), 3, axis=-1).astype(np.float32)

    ds.x_train, ds.x_val, ds.x_test = big(ds.x_train), big(ds.x_val), big(ds.x_test)
    return ds


class Files:
    """int8 TFLite / ONNX files of a model, their test accuracy, and latency ratios to a reference pair."""

    def __init__(self, model: Any, calibration: np.ndarray, folder: Path, tag: str) -> None:
        from edgeship.core.tf import quiet_engine
        from edgeship.export import quantize_onnx, to_onnx, to_tflite

        with quiet_engine():
            content = {"tflite": to_tflite(model, "int8", calibration),
                       "onnx": quantize_onnx(to_onnx(model), calibration)}
        self.paths = {}
        for fmt, data in content.items():
            self.paths[fmt] = folder / f"{tag}.int8.{fmt}"
            self.paths[fmt].write_bytes(data)

    def bytes(self) -> dict[str, int]:
        return {fmt: p.stat().st_size for fmt, p in self.paths.items()}

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        from edgeship.runtime._load import load_file

        out = {}
        for fmt, p in self.paths.items():
            with load_file(p, fmt, threads=1) as m:
                out[fmt] = float(np.mean(np.argmax(m.predict(x), -1) == y))
        return out

    def latency_ratio(self, reference: Files, x: np.ndarray, rounds: int) -> dict[str, dict[str, Any]]:
        """Per format through ``edgeship.runtime`` (TFLite: LiteRT with its default XNNPACK delegate), and
        ``tflite_builtin``: LiteRT's own int8 kernels (no delegate), ``invoke()`` alone."""
        from edgeship.runtime._check import measure_pair_ratio
        from edgeship.runtime._load import load_file

        out = {}
        for fmt, p in self.paths.items():
            with load_file(p, fmt, threads=1) as a, load_file(reference.paths[fmt], fmt, threads=1) as b:
                out[fmt] = measure_pair_ratio(a, b, x, rounds=rounds, block_seconds=0.05)
        a, b = Invoke(self.paths["tflite"], x), Invoke(reference.paths["tflite"], x)
        out["tflite_builtin"] = measure_pair_ratio(a, b, x, rounds=rounds, block_seconds=0.05)  # type: ignore[arg-type]
        return out


class Invoke:
    """An int8 .tflite on LiteRT's built-in kernels (no XNNPACK), input set once: ``predict`` is ``invoke()``."""

    def __init__(self, path: Path, x: np.ndarray) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self.it = Interpreter(model_path=str(path), num_threads=1,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        self.it.allocate_tensors()
        d = self.it.get_input_details()[0]
        scale, zero = d["quantization"]
        q = np.clip(np.round(x / (scale or 1.0) + zero), -128, 127).astype(d["dtype"])
        self.it.set_tensor(d["index"], q.reshape(d["shape"]))

    def predict(self, x: np.ndarray) -> None:
        self.it.invoke()


def one_seed(name: str, seed: int, ratios: tuple[float, ...], args: Any, folder: Path) -> dict[str, Any]:
    from edgeship import compress, train

    ds = dataset(name, seed)
    train.set_seed(seed)
    base = train.create_model(name, ds.input_shape, ds.num_classes)
    t0 = time.time()
    train.fit(base, ds.training_data, epochs=args.epochs, batch_size=32, patience=8,
              seed=seed, verbose=0)
    calibration = ds.x_train[np.random.default_rng(seed).choice(len(ds.x_train), 256, replace=False)]
    ref = Files(base, calibration, folder, f"{name}-{seed}-base")
    x1 = np.ascontiguousarray(ds.x_test[:1])
    row: dict[str, Any] = {
        "model": name, "seed": seed, "train_seconds": round(time.time() - t0, 1),
        "float_accuracy": train.accuracy(base, ds.x_test, ds.y_test), "params": int(base.count_params()),
        "macs": compress.count_macs(base), "int8_accuracy": ref.accuracy(ds.x_test, ds.y_test),
        "int8_bytes": ref.bytes(), "ratios": [],
    }
    for ratio in ratios:
        entry: dict[str, Any] = {"channel_ratio": ratio}
        for mode, distill in (("labels", None), ("distilled", compress.Distillation(3.0, 0.5))):
            narrow, report = compress.prune_channels(base, ratio)
            entry.update(params=report.params[1], macs=report.macs[1])
            entry[f"{mode}_no_fine_tune_accuracy"] = train.accuracy(narrow, ds.x_test, ds.y_test)
            compress.fine_tune_channels(narrow, base, ds.x_train, ds.y_train, ds.x_val, ds.y_val,
                                        epochs=args.fine_tune_epochs, batch_size=32, learning_rate=1e-3, seed=seed,
                                        distill=distill)
            files = Files(narrow, calibration, folder, f"{name}-{seed}-{ratio}-{mode}")
            entry[f"{mode}_float_accuracy"] = train.accuracy(narrow, ds.x_test, ds.y_test)
            entry[f"{mode}_int8_accuracy"] = files.accuracy(ds.x_test, ds.y_test)
            if mode == "labels":  # same shapes either way: latency measured once
                entry["int8_bytes"] = files.bytes()
                entry["latency"] = files.latency_ratio(ref, x1, args.rounds)
        print(f"  {name} seed {seed} keep {ratio}: tflite latency x{entry['latency']['tflite']['ratio']:.3f} "
              f"onnx x{entry['latency']['onnx']['ratio']:.3f}; int8 tflite acc {row['int8_accuracy']['tflite']:.4f} "
              f"-> labels {entry['labels_int8_accuracy']['tflite']:.4f}, "
              f"distilled {entry['distilled_int8_accuracy']['tflite']:.4f}", flush=True)
        row["ratios"].append(entry)
    return row


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model and ratio: means over seeds of accuracy drops (points), medians of latency ratios."""
    out = []
    for name in dict.fromkeys(r["model"] for r in runs):
        rs = [r for r in runs if r["model"] == name]
        for i, ratio in enumerate(e["channel_ratio"] for e in rs[0]["ratios"]):
            es = [r["ratios"][i] for r in rs]

            def drop(mode: str, fmt: str, es: list[dict] = es, rs: list[dict] = rs) -> float:
                return round(100 * float(np.mean([r["int8_accuracy"][fmt] - e[f"{mode}_int8_accuracy"][fmt]
                                                   for r, e in zip(rs, es)])), 2)

            row = {
                "model": name, "channel_ratio": ratio, "seeds": len(rs),
                "params": [rs[0]["params"], es[0]["params"]], "macs": [rs[0]["macs"], es[0]["macs"]],
                "unpruned_int8_tflite_accuracy": round(float(np.mean([r["int8_accuracy"]["tflite"] for r in rs])), 4),
                "tflite_latency_ratio": round(float(np.median([e["latency"]["tflite"]["ratio"] for e in es])), 3),
                "onnx_latency_ratio": round(float(np.median([e["latency"]["onnx"]["ratio"] for e in es])), 3),
                "tflite_builtin_latency_ratio": round(float(np.median(
                    [e["latency"]["tflite_builtin"]["ratio"] for e in es])), 3),
                "unpruned_ms": {f: round(float(np.median([e["latency"][f]["reference_ms"] for e in es])), 4)
                                for f in ("tflite", "onnx", "tflite_builtin")},
                "tflite_bytes": [rs[0]["int8_bytes"]["tflite"], es[0]["int8_bytes"]["tflite"]],
                "onnx_bytes": [rs[0]["int8_bytes"]["onnx"], es[0]["int8_bytes"]["onnx"]],
                "tflite_drop_labels": drop("labels", "tflite"), "tflite_drop_distilled": drop("distilled", "tflite"),
                "onnx_drop_labels": drop("labels", "onnx"), "onnx_drop_distilled": drop("distilled", "onnx"),
            }
            row["goal_met"] = (1 / row["tflite_latency_ratio"] >= 1.5
                               and min(row["tflite_drop_labels"], row["tflite_drop_distilled"]) <= 1.0)
            row["distilled_at_least_labels"] = row["tflite_drop_distilled"] <= row["tflite_drop_labels"]
            out.append(row)
    return out


def markdown(summary: list[dict[str, Any]], cpu: str) -> str:
    lines = [
        f"CPU: {cpu}; one engine thread, batch 1; latency = pruned int8 / unpruned int8 of the same format, "
        "interleaved, median of rounds (median over seeds); drop = unpruned int8 TFLite top-1 minus pruned, "
        "points, mean of seeds (negative: better).",
        "",
        "| model | keep | params | MACs | TFLite (XNNPACK) latency | TFLite built-in kernels | ONNX latency | "
        "TFLite bytes | drop (labels) | drop (distilled) | ONNX drop labels / distilled | goal |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in summary:
        lines.append(
            f"| {r['model']} | {r['channel_ratio']} | {r['params'][1]:,} / {r['params'][0]:,} | "
            f"{r['macs'][1] / r['macs'][0]:.0%} | x{r['tflite_latency_ratio']:.3f} ({1 / r['tflite_latency_ratio']:.2f}x) | "
            f"x{r['tflite_builtin_latency_ratio']:.3f} ({1 / r['tflite_builtin_latency_ratio']:.2f}x) | "
            f"x{r['onnx_latency_ratio']:.3f} | {r['tflite_bytes'][1]:,} / {r['tflite_bytes'][0]:,} | "
            f"{r['tflite_drop_labels']:+.2f} | {r['tflite_drop_distilled']:+.2f} | "
            f"{r['onnx_drop_labels']:+.2f} / {r['onnx_drop_distilled']:+.2f} | {'met' if r['goal_met'] else 'missed'} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--fine-tune-epochs", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--json", type=Path, default=Path(__file__).with_name("structured_pruning_results.json"))
    args = ap.parse_args()

    from edgeship.runtime._check import machine_info

    machine = machine_info()
    print(f"CPU: {machine['cpu']}", flush=True)
    runs = []
    with tempfile.TemporaryDirectory(prefix="edgeship-structured-") as tmp:
        for name in args.models:
            for seed in args.seeds:
                runs.append(one_seed(name, seed, MODELS[name], args, Path(tmp)))
                summary = summarise(runs)
                args.json.write_text(json.dumps({"machine": machine, "settings": {
                    k: v for k, v in vars(args).items() if k != "json"}, "summary": summary, "runs": runs}, indent=1))
    print(markdown(summary, machine["cpu"]))


if __name__ == "__main__":
    main()
