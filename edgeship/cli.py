"""The ``edgeship`` command. Runtime commands need only the base install."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edgeship import __version__
from edgeship.runtime._errors import EdgeshipError


def _cmd_build(args: argparse.Namespace) -> int:
    from edgeship.recipe import load_recipe

    recipe = load_recipe(args.recipe)
    out = Path(args.out) if args.out else Path("build") / recipe.name
    from edgeship.build import build

    bundle = build(recipe, out)
    print(f"bundle: {bundle.absolute()}")
    print(f"report: {(bundle / 'report.md').absolute()}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from edgeship.runtime import InputError, load

    with load(args.path, format=args.format, precision=args.precision, threads=args.threads) as model:
        try:
            x = np.load(args.input, allow_pickle=False)
        except (OSError, ValueError) as exc:
            reason = "no such file" if isinstance(exc, FileNotFoundError) else "not a numpy .npy array file"
            raise InputError(
                f"Expected INPUT to be a .npy array file (np.save). Received: {args.input}, {reason}."
            ) from None
        if not isinstance(x, np.ndarray):
            raise InputError(f"Expected INPUT to be a .npy array file. Received: {args.input}, an .npz archive.")
        y = model.predict(x)
        if args.output:
            np.save(args.output, y if not isinstance(y, list) else y[0])
            print(f"saved {args.output}")
        if args.labels and model.labels:
            for name in model.predict_labels(x):
                print(name)
        if not args.output and not args.labels:
            with np.printoptions(precision=5, suppress=True, threshold=10_000):
                print(y)
    return 0


def _fmt_row(r: dict[str, Any]) -> str:
    lat = r["latency_ms"]
    acc = r.get("accuracy")
    acc_s = f"{acc:.4f}" if isinstance(acc, float) else "-"
    return (
        f"{r['file']:<24} {r.get('format', ''):<7} {str(r.get('precision', '')):<9} "
        f"{acc_s:>8} {lat['p50']:>9.4f} {lat['p90']:>9.4f} {lat['p99']:>9.4f} {r['init_ms']:>9.1f} {r['runs']:>7}"
    )


def _cmd_bench(args: argparse.Namespace) -> int:
    from edgeship.runtime import benchmark

    result = benchmark(
        args.path, threads=args.threads, warmup=args.warmup, runs=args.runs, min_seconds=args.min_seconds
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    rows = result if isinstance(result, list) else [result]
    print(f"{'file':<24} {'format':<7} {'precision':<9} {'accuracy':>8} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} {'init ms':>9} {'runs':>7}")
    for r in rows:
        print(_fmt_row(r))
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgeship", description="Keras model to verified device artifacts.")
    parser.add_argument("--version", action="version", version=f"edgeship {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="train, compress and export a recipe into a bundle")
    p.add_argument("recipe", nargs="?", help="recipe TOML file (default: the built-in digits recipe)")
    p.add_argument("--out", help="bundle folder to write (default: build/<recipe name>)")
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser("predict", help="run a bundle or model file on a .npy input")
    p.add_argument("path", help="bundle folder, .tflite or .onnx file")
    p.add_argument("input", help=".npy file, float32, batch first")
    p.add_argument("--output", help="save the outputs to this .npy file instead of printing")
    p.add_argument("--labels", action="store_true", help="print the top-1 label of each sample")
    p.add_argument("--format", choices=["tflite", "onnx"])
    p.add_argument("--precision")
    p.add_argument("--threads", type=int)
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("bench", help="measure latency of a model file or every artifact of a bundle")
    p.add_argument("path", help="bundle folder, .tflite or .onnx file")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--runs", type=int, default=100, help="at least this many timed runs (default 100)")
    p.add_argument("--warmup", type=int, default=10, help="untimed runs first (default 10)")
    p.add_argument("--min-seconds", type=float, default=1.0, help="time at least this long (default 1.0)")
    p.add_argument("--threads", type=int)
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except EdgeshipError as exc:
        print(f"edgeship: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgeship: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
