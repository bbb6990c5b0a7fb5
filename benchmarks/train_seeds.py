"""Float test accuracy of the default recipe's training over seeds 0, 1, 2 (median and spread).

Run: .venv/bin/python benchmarks/train_seeds.py   (about 1 minute per seed on 2 CPU cores)
Trains exactly what `edgeship build` trains for the default recipe (same splits, model,
schedule, early stopping); pruning and export are left out because they do not change the
Keras float32 accuracy reported here.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(seeds: list[int]) -> dict[str, float]:
    from edgeship import train
    from edgeship.recipe import Recipe

    r = Recipe.default()
    accs = []
    for seed in seeds:
        t0 = time.perf_counter()
        train.set_seed(seed)
        ds = train.load_dataset(
            r.data.dataset, seed=seed, test_fraction=r.data.test_fraction, val_fraction=r.data.val_fraction
        )
        plan = train.plan_training(len(ds.x_train), epochs=r.train.epochs, batch_size=r.train.batch_size,
                                   learning_rate=r.train.learning_rate, min_epochs=0,
                                   early_stopping_patience=r.train.early_stopping_patience)
        model, hist = train.train_model(
            lambda ds=ds: train.create_model(r.model.arch, ds.input_shape, ds.num_classes), ds.training_data, plan,
            train.TrainOptions(lr_schedule=r.train.lr_schedule, l2=r.train.l2, seed=seed, strategy=r.train.strategy,
                               mixed_precision=r.train.mixed_precision, verbose=0),
        )
        acc = train.accuracy(model, ds.x_test, ds.y_test)
        accs.append(acc)
        print(json.dumps({"seed": seed, "accuracy": acc, "epochs_run": len(hist["loss"]),
                          "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
    summary = {"median": statistics.median(accs), "min": min(accs), "max": max(accs), "spread": max(accs) - min(accs)}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1:]] or [0, 1, 2])
