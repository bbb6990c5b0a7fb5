"""Compression figures on digits (issue 4): pruning + int8 accuracy, gzip size ratio, PQAT sparsity.

    .venv/bin/python benchmarks/compress_digits.py [--seed 0] [--json out.json]

Trains small_cnn once (the default recipe's training), then:
- 50% ConstantSparsity pruning (4 epochs) -> full-int8 TFLite: top-1 vs float32;
- 80% PolynomialDecay pruning (8 epochs) -> float and int8 TFLite: top-1 vs float32,
  gzip size of the int8 file / gzip size of the float32 (unpruned) TFLite file;
- PQAT (2 epochs) on the 80% model -> int8 TFLite: zeros measured in the exported weights.
Accuracy is on the held-out test split, through edgeship.runtime.
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from edgeship import compress, train
    from edgeship.export import to_tflite
    from edgeship.runtime._load import load_file

    tmp = Path(tempfile.mkdtemp(prefix="edgeship-bench-"))

    def tflite_acc(data: bytes, x: np.ndarray, y: np.ndarray) -> float:
        p = tmp / "m.tflite"
        p.write_bytes(data)
        with load_file(p, "tflite") as m:
            return float(np.mean(np.argmax(m.predict(x), -1) == y))

    def gz(data: bytes) -> int:
        return len(gzip.compress(data, compresslevel=9))

    t0 = time.time()
    ds = train.load_dataset("digits", seed=args.seed)
    model = train.create_model("small_cnn", ds.input_shape, ds.num_classes)
    train.fit(model, ds.training_data, epochs=60, patience=10, seed=args.seed, verbose=0)
    cal = ds.x_train[np.random.default_rng(args.seed).choice(len(ds.x_train), 256, replace=False)]
    float_acc = train.accuracy(model, ds.x_test, ds.y_test)
    f32 = to_tflite(model, "float32")
    res: dict = {"seed": args.seed, "test_samples": len(ds.x_test), "float32_keras_top1": float_acc,
                 "float32_tflite_top1": tflite_acc(f32, ds.x_test, ds.y_test),
                 "float32_tflite_bytes": len(f32), "float32_tflite_gzip_bytes": gz(f32)}

    def clone():
        c = train.create_model("small_cnn", ds.input_shape, ds.num_classes)
        c.set_weights(model.get_weights())
        return c

    p50 = compress.prune(clone(), ds.x_train, ds.y_train, ds.x_val, ds.y_val, fine_tune_epochs=4,
                         learning_rate=2.5e-4, seed=args.seed, verbose=0,
                         schedule=compress.PruneSchedule("constant", 0.5))
    i8 = to_tflite(p50, "int8", cal)
    res["p50"] = {"keras_top1": train.accuracy(p50, ds.x_test, ds.y_test), "int8_tflite_top1": tflite_acc(i8, ds.x_test, ds.y_test),
                  "sparsity": compress.sparsity_report(p50), "int8_tflite_gzip_bytes": gz(i8)}
    res["p50"]["int8_drop_points"] = 100 * (float_acc - res["p50"]["int8_tflite_top1"])

    p80 = compress.prune(clone(), ds.x_train, ds.y_train, ds.x_val, ds.y_val, fine_tune_epochs=8,
                         learning_rate=2.5e-4, seed=args.seed, verbose=0,
                         schedule=compress.PruneSchedule("polynomial", 0.8))
    f80, i80 = to_tflite(p80, "float32"), to_tflite(p80, "int8", cal)
    res["p80"] = {"keras_top1": train.accuracy(p80, ds.x_test, ds.y_test), "int8_tflite_top1": tflite_acc(i80, ds.x_test, ds.y_test),
                  "sparsity": compress.sparsity_report(p80), "float32_tflite_gzip_bytes": gz(f80),
                  "int8_tflite_bytes": len(i80), "int8_tflite_gzip_bytes": gz(i80)}
    res["p80"]["keras_drop_points"] = 100 * (float_acc - res["p80"]["keras_top1"])
    res["p80"]["int8_drop_points"] = 100 * (float_acc - res["p80"]["int8_tflite_top1"])
    res["p80"]["gzip_ratio_int8_vs_float32_unpruned"] = gz(i80) / gz(f32)
    res["p80"]["gzip_ratio_int8_vs_float32_pruned"] = gz(i80) / gz(f80)

    pq = compress.quantize_aware(p80, ds.x_train, ds.y_train, ds.x_val, ds.y_val, scheme="pqat", epochs=2,
                                 seed=args.seed, verbose=0)
    iq = to_tflite(pq, "int8", cal)
    exported = compress.tflite_weight_sparsity(iq)
    res["pqat"] = {"target_sparsity": 0.8, "int8_tflite_top1": tflite_acc(iq, ds.x_test, ds.y_test),
                   "exported_weight_sparsity": exported,
                   "kept_fraction_of_target_min": min(exported.values()) / 0.8}
    qat = compress.quantize_aware(p80, ds.x_train, ds.y_train, ds.x_val, ds.y_val, scheme="qat", epochs=2,
                                  seed=args.seed, verbose=0)
    res["plain_qat_exported_weight_sparsity"] = compress.tflite_weight_sparsity(to_tflite(qat, "int8", cal))
    res["seconds"] = time.time() - t0
    text = json.dumps(res, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
