"""The ``edgeship`` command. Runtime commands need only the base install."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from edgeship import __version__
from edgeship.runtime import EdgeshipError


class UsageError(EdgeshipError, ValueError):
    """The command line itself is wrong: an unknown option, a missing argument, a value of the wrong type."""


class _Parser(argparse.ArgumentParser):
    """argparse, except that a usage error is one typed line like every other error, not usage text + exit."""

    def error(self, message: str) -> NoReturn:
        self._usage_error(self.prog, message)

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:  # named after the subcommand, whose --help lists the options
            command = getattr(parsed, "command", None)
            self._usage_error(f"{self.prog} {command}" if command else self.prog,
                              f"unrecognized arguments: {' '.join(extra)}")
        return parsed

    @staticmethod
    def _usage_error(prog: str, message: str) -> NoReturn:
        raise UsageError(f"Expected a valid `{prog}` command line. Received: {message}. Fix: see `{prog} --help`.")


def _cmd_build(args: argparse.Namespace) -> int:
    from edgeship.recipe import load_recipe

    recipe = load_recipe(args.recipe)
    out = Path(args.out) if args.out else Path("build") / recipe.name
    from edgeship.build import build

    bundle = build(recipe, out)
    if not (bundle / "manifest.json").is_file():  # a non-chief multi-worker: the chief writes the bundle
        print(f"worker weights: {bundle.absolute()} (the chief writes the bundle)")
        return 0
    print(f"bundle: {bundle.absolute()}")
    if args.progress != "quiet":
        print(f"report: {(bundle / 'report.md').absolute()}")
        print(f"report: {(bundle / 'report.html').absolute()}")
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from edgeship.recipe import load_recipe
    from edgeship.search import Limits, search

    recipe = load_recipe(args.recipe)
    limits = Limits(max_flash=args.max_flash, max_ram=args.max_ram, max_latency_ms=args.max_latency_ms)
    result = search(recipe, args.out, args.trials, limits, storage=args.storage, workers=args.workers)
    print(f"best: trial {result.best_trial}, accuracy {result.metrics['accuracy']:.4f}, "
          f"{result.metrics['latency_ms']:.4f} ms, {int(result.metrics['flash_bytes'])} B flash")
    for path in (result.best_toml, result.trials_csv, result.report_html):
        print(f"wrote: {path.absolute()}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from edgeship._arrays import check_export_npz
    from edgeship.build import export_saved_model

    if Path(args.data).suffix.lower() == ".npz":
        check_export_npz(args.data)  # before TensorFlow loads: one typed line per malformed archive
    bundle = export_saved_model(args.model, args.data, args.out, recipe_path=args.recipe)
    print(f"bundle: {bundle.absolute()}")
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from edgeship.runtime import format_report

    try:  # the build extra completes shapes of foreign ONNX files; the runtime alone suffices
        from edgeship.export import inspect_file
    except ImportError:
        from edgeship.runtime import inspect_file
    report = inspect_file(args.file, measure=args.rss)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from edgeship._arrays import read_npy
    from edgeship.runtime import load

    with load(args.path, format=args.format, precision=args.precision, threads=args.threads) as model:
        x = read_npy(args.input)
        output = _output_path(args.output) if args.output else None  # before predicting, not after
        y = model.predict(x)
        if output is not None:
            np.save(output, y if not isinstance(y, list) else y[0])
            print(f"saved {output}")
        if args.labels and model.labels:
            for name in model.predict_labels(x):
                print(name)
        if output is None and not args.labels:
            with np.printoptions(precision=5, suppress=True, threshold=10_000):
                print(y)
    return 0


def _output_path(value: str) -> Path:
    """Where ``predict --output`` writes: np.save adds ``.npy`` when missing; its folder must exist."""
    from edgeship.runtime import InputError

    path = Path(value if value.endswith(".npy") or Path(value).is_dir() else value + ".npy")
    problem = ("is a folder" if path.is_dir() else
               f"is in {path.parent}, which does not exist" if not path.parent.is_dir() else None)
    if problem:
        raise InputError(f"Expected --output to be a .npy file path in an existing folder. Received: {value}, which "
                         f"{problem}. Fix: create the folder or pick another path.")
    return path


def _fmt_row(r: dict[str, Any]) -> str:
    lat = r["latency_ms"]
    acc = r.get("accuracy")
    acc_s = f"{acc:.4f}" if isinstance(acc, float) else "-"
    size = f"{r['bytes']:,}" if isinstance(r.get("bytes"), int) else "-"
    mark = "*" if r.get("fastest_within_budget") else ("x" if r.get("within_budget") is False else "")
    return (
        f"{r['file']:<24} {r.get('format', ''):<7} {str(r.get('precision', '')):<9} {size:>10} "
        f"{acc_s:>8} {lat['p50']:>9.4f} {lat['p99']:>9.4f} {r['throughput_per_s']:>9.0f} {r['init_ms']:>8.1f} {r['runs']:>7} {mark}"
    )


def _cmd_bench(args: argparse.Namespace) -> int:
    from edgeship.runtime import bench_bundle, benchmark, is_bundle

    kw = {"threads": args.threads, "warmup": args.warmup, "runs": args.runs, "min_seconds": args.min_seconds,
          "thread_sweep": args.sweep}
    if is_bundle(Path(args.path)):
        rows, profile = bench_bundle(args.path, accuracy_budget=args.accuracy_budget, record=not args.no_record,
                                     rounds=args.rounds, loads=args.loads, **kw)
    else:
        rows, profile = [benchmark(args.path, **kw)], None  # type: ignore[list-item]
    if args.json:
        print(json.dumps(rows if profile is not None or len(rows) > 1 else rows[0], indent=2))
        return 0
    print(f"{'file':<24} {'format':<7} {'precision':<9} {'bytes':>10} {'accuracy':>8} {'p50 ms':>9} {'p99 ms':>9} "
          f"{'per s':>9} {'init ms':>8} {'runs':>7}")
    for r in rows:
        print(_fmt_row(r))
        for s in r.get("sweep", []):
            print(f"{'':<24}   threads={s['threads']:<3} p50 {s['p50_ms']:.4f} ms  p99 {s['p99_ms']:.4f} ms  "
                  f"{s['throughput_per_s']:.0f}/s")
    if profile is not None:
        chosen = next(r for r in rows if r.get("fastest_within_budget"))
        metric = "AUC" if chosen.get("metric") == "roc_auc" else "top-1"
        print(f"* fastest within the accuracy budget ({metric} at most {chosen['accuracy_budget']:.4f} below the best "
              f"float32) on this device, by the median of {chosen['rounds']} interleaved rounds x {chosen['loads']} loads "
              f"({chosen['median_ms']:.4f} ms; the no-profile rule's pick is kept when within 5% of the fastest): "
              f"{chosen['file']}" + ("" if args.no_record else f"; recorded in {profile}"))
        if any(r.get("within_budget") is False for r in rows):
            print("x outside the accuracy budget")
        from edgeship.runtime import describe, read_manifest

        rule = describe(read_manifest(Path(args.path)), Path(args.path))
        print(f"without a device profile load() returns {rule['file']} ({rule['reason']})")
    return 0


def _cmd_check_platform(args: argparse.Namespace) -> int:
    from edgeship.core.errors import ParityError
    from edgeship.crossplatform import LIMITS, check_platform, table

    limits = {k: v for k, v in (("float_max_abs_diff", args.float_atol), ("min_sqnr_db", args.min_sqnr_db),
                                ("min_top1_agreement", args.min_top1)) if v is not None}
    try:
        result = check_platform(args.bundle, args.platform, limits={**LIMITS, **limits}, record=not args.no_record)
    except ParityError as exc:  # a parity miss is a failed gate (exit 1), recorded in the manifest
        _error(exc, "normal")
        return 1
    print(json.dumps(result.to_json(), indent=2) if args.json else table(result))
    if not args.no_record:
        print(f"recorded: parity.cross_platform[{result.platform!r}] in {Path(args.bundle) / 'manifest.json'}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from edgeship.runtime import check_bundle, update_baseline

    if args.platform:
        return _cmd_check_platform(args)

    tols = {"accuracy": args.accuracy_tol, "latency": args.latency_tol, "size": args.size_tol}
    if args.update:
        path, data = update_baseline(args.bundle, args.baseline, rounds=args.rounds, tolerances=tols)
        if args.json:
            print(json.dumps(data, indent=2))
            return 0
        print(f"{'artifact':<24} {'accuracy':>8} {'bytes':>10} {'latency/ref':>11} {'p50 ms':>8} {'p99 ms':>8}")
        for name, a in data["artifacts"].items():
            acc = f"{a['accuracy']:.4f}" if a["accuracy"] is not None else "-"
            print(f"{name:<24} {acc:>8} {a['bytes']:>10,} {a['latency_ratio']:>10.3f}x "
                  f"{a['latency_ms']['p50']:>8.4f} {a['latency_ms']['p99']:>8.4f}")
        print(f"baseline written: {path}")
        return 0
    result = check_bundle(args.bundle, args.baseline, rounds=args.rounds,
                          accuracy_tol=args.accuracy_tol, latency_tol=args.latency_tol, size_tol=args.size_tol)
    print(json.dumps(result.to_json(), indent=2) if args.json else result.table())
    return 0 if result.passed else 1


def _cmd_serve(args: argparse.Namespace) -> int:
    from edgeship.core.errors import MissingExtraError

    try:
        import prometheus_client  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(f"edgeship serve needs the serve extra. Received: no module {exc.name!r}. "
                                'Fix: pip install "edgeship[serve]"') from None
    from edgeship.runtime.serve import ServeOptions, run

    options = ServeOptions(
        bundles=args.bundles, host=args.host, port=args.port, format=args.format, precision=args.precision,
        threads=args.threads, max_body_bytes=args.max_body_bytes, max_concurrency=args.max_concurrency,
        request_timeout=args.request_timeout, header_timeout=args.header_timeout,
        shutdown_timeout=args.shutdown_timeout, auth_token_file=args.auth_token_file, log_file=args.log_file,
        max_batch_size=args.max_batch_size, batch_delay_us=args.batch_delay_us,
        max_samples=args.max_samples, max_connections=args.max_connections,
    )
    return run(options)


def _cmd_package(args: argparse.Namespace) -> int:
    from edgeship.package import package

    out = package(args.bundle, args.output, platform=args.platform, python=args.python, extras=tuple(args.with_),
                  log=lambda s: print(s, file=sys.stderr))
    print(f"package: {out.absolute()}")
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from edgeship.core.bundle import manifest_json_schema

    print(json.dumps(manifest_json_schema(), indent=2))
    return 0


def _count(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, received {text!r}")
        return value

    return parse


def _non_negative(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, received {text!r}")
    return value


def _thread_list(text: str) -> list[int]:
    """An argparse type: thread counts such as ``1,2,4``."""
    parts = [t.strip() for t in text.split(",") if t.strip()]
    if not parts or not all(t.isdigit() and int(t) >= 1 for t in parts):
        raise argparse.ArgumentTypeError(f"expected thread counts >= 1 separated by commas, e.g. 1,2,4, received {text!r}")
    return [int(t) for t in parts]


def _output_flags() -> argparse.ArgumentParser:
    """-q / -v / --log-json for the commands that report build progress on stderr (edgeship.core.progress)."""
    parent = _Parser(add_help=False)
    group = parent.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", dest="progress", action="store_const", const="quiet",
                       help="print only errors and the final result line")
    group.add_argument("-v", "--verbose", dest="progress", action="store_const", const="verbose",
                       help="print every detail: Keras epoch lines, TensorFlow and converter logs")
    group.add_argument("--log-json", dest="progress", action="store_const", const="json",
                       help="one JSON object per stage on stderr, for scripts that parse progress")
    parent.set_defaults(progress="normal")
    return parent


def _add_search_parser(sub: Any, output: argparse.ArgumentParser) -> None:
    """``edgeship search``'s options (edgeship.search: an Optuna study over the recipe's [search] table)."""
    p = sub.add_parser("search", parents=[output],
                       help="search the recipe's [search] space for the most accurate model within device limits")
    p.add_argument("recipe", help="recipe TOML file with a [search] table")
    p.add_argument("--trials", type=_count(1), required=True, help="completed trials the study should hold")
    p.add_argument("--max-flash", type=_count(1), help="largest int8 TFLite file, bytes")
    p.add_argument("--max-ram", type=_count(1), help="largest tensor-arena estimate, bytes")
    p.add_argument("--max-latency-ms", type=_non_negative, help="largest p50 latency on this machine, ms")
    p.add_argument("--storage", help="Optuna storage URL (default: sqlite:///OUT/study.db; resumes when it exists)")
    p.add_argument("--workers", type=_count(1), default=1, help="processes on this machine sharing the study (default 1)")
    p.add_argument("--out", required=True, help="folder for trials/, best.toml, trials.csv, search_report.html")
    p.set_defaults(func=_cmd_search)


def _add_serve_parser(sub: Any) -> None:
    """``edgeship serve``'s options (the server itself is edgeship.runtime.serve, in the serve extra)."""
    p = sub.add_parser("serve", help="serve bundles over the Open Inference Protocol (KServe v2 REST); "
                                     'needs pip install "edgeship[serve]"')
    p.add_argument("bundles", nargs="+", metavar="BUNDLE", help="bundle folder or model file; NAME=PATH names it")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_count(0), default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--format", choices=["tflite", "onnx"])
    p.add_argument("--precision")
    p.add_argument("--threads", type=_count(1), help="engine threads per model (default: the engine's own)")
    p.add_argument("--max-body-bytes", type=_count(1), default=8 * 1024 * 1024,
                   help="largest request body (default 8 MiB); larger gets 413")
    p.add_argument("--max-concurrency", type=_count(1), default=64,
                   help="requests in flight before 503 + Retry-After (default 64)")
    p.add_argument("--max-samples", type=_count(1), default=64, help="samples per request (default 64); more get 413")
    p.add_argument("--max-connections", type=_count(0), default=0,
                   help="open connections (default 0: up to 4096, below the file-descriptor limit)")
    p.add_argument("--request-timeout", type=_non_negative, default=30.0, help="seconds to receive a body (default 30)")
    p.add_argument("--header-timeout", type=_non_negative, default=5.0,
                   help="seconds to receive a request's headers (default 5); slower clients are cut off")
    p.add_argument("--shutdown-timeout", type=_non_negative, default=10.0,
                   help="seconds SIGTERM waits for requests in flight (default 10)")
    p.add_argument("--auth-token-file", help="require Authorization: Bearer <token in this file> (health stays open)")
    p.add_argument("--log-file", help="append the JSON log lines here instead of stderr")
    p.add_argument("--max-batch-size", type=_count(0), default=0,
                   help="dynamic batching: up to this many samples per predict (default 0: off)")
    p.add_argument("--batch-delay-us", type=_count(0), default=500,
                   help="dynamic batching: wait this long for more requests (default 500)")
    p.set_defaults(func=_cmd_serve)


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="edgeship", description="Keras model to verified device artifacts.")
    parser.add_argument("--version", action="version", version=f"edgeship {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    output = _output_flags()

    p = sub.add_parser("build", parents=[output], help="train, compress and export a recipe into a bundle")
    p.add_argument("recipe", nargs="?", help="recipe TOML file (default: the built-in digits recipe)")
    p.add_argument("--out", help="bundle folder to write (default: build/<recipe name>)")
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser("export", parents=[output], help="export a saved tf_keras model (no retraining) into a bundle")
    p.add_argument("--model", required=True, help="saved tf_keras model: .keras, .h5 or a SavedModel folder")
    p.add_argument("--data", required=True,
                   help="recipe TOML (its dataset gives calibration + eval splits) or .npz with x, y "
                        "[, x_calibration, labels]")
    p.add_argument("--out", required=True, help="bundle folder to write")
    p.add_argument("--recipe", help="recipe TOML for the quantize/export settings when --data is .npz "
                                    "(default: the built-in recipe)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("inspect", help="describe a .tflite/.onnx file: I/O, operators, metadata, RAM/flash")
    p.add_argument("file", help=".tflite or .onnx file")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--rss", action="store_true", help="also measure the peak RSS increase (child process)")
    p.set_defaults(func=_cmd_inspect)

    _add_search_parser(sub, output)
    _add_runtime_parsers(sub)
    _add_serve_parser(sub)

    p = sub.add_parser("package", help="one file to copy to a device: runtime, engine wheels for the platform, "
                                       'the bundle (shiv zipapp; needs pip install "edgeship[package]")')
    p.add_argument("bundle", help="bundle folder")
    p.add_argument("--platform", required=True, help="linux-aarch64 (Raspberry Pi OS 64-bit, Jetson) or linux-x86_64")
    p.add_argument("--python", default="3.11", help="the device's CPython MAJOR.MINOR (default 3.11)")
    p.add_argument("--with", dest="with_", action="append", default=[], choices=["serve"],
                   help="also pack the server (FILE serve)")
    p.add_argument("-o", "--output", required=True, help="file to write")
    p.set_defaults(func=_cmd_package)

    p = sub.add_parser("schema", help="print the JSON Schema (draft 2020-12) of a bundle's manifest.json")
    p.set_defaults(func=_cmd_schema)
    return parser




def _verbose_flag() -> argparse.ArgumentParser:
    """-v for the device-side commands: the engines' own log lines too (LiteRT's XNNPACK line)."""
    parent = _Parser(add_help=False)
    parent.add_argument("-v", "--verbose", dest="progress", action="store_const", const="verbose", default="normal",
                        help="also print the engines' own log lines (e.g. LiteRT's XNNPACK delegate line)")
    return parent


def _add_runtime_parsers(sub: Any) -> None:
    """predict, bench and check: the device-side commands (numpy + engines only)."""
    verbose = _verbose_flag()
    p = sub.add_parser("predict", parents=[verbose], help="run a bundle or model file on a .npy input")
    p.add_argument("path", help="bundle folder, .tflite or .onnx file")
    p.add_argument("input", help=".npy file, float32, batch first")
    p.add_argument("--output", help="save the outputs to this .npy file instead of printing")
    p.add_argument("--labels", action="store_true", help="print the top-1 label of each sample")
    p.add_argument("--format", choices=["tflite", "onnx"])
    p.add_argument("--precision")
    p.add_argument("--threads", type=_count(1), help="engine threads (default: the engine's own)")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("bench", parents=[verbose], help="measure latency of a model file or every artifact of a bundle")
    p.add_argument("path", help="bundle folder, .tflite or .onnx file")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--runs", type=_count(1), default=100, help="at least this many timed runs (default 100)")
    p.add_argument("--warmup", type=_count(0), default=10, help="untimed runs first (default 10)")
    p.add_argument("--min-seconds", type=_non_negative, default=1.0, help="time at least this long (default 1.0)")
    p.add_argument("--threads", type=_count(1), help="engine threads (default: the engine's own)")
    p.add_argument("--sweep", type=_thread_list, help="also measure these thread counts, e.g. 1,2,4")
    p.add_argument("--rounds", type=_count(1), default=21,
                   help="bundle: interleaved rounds, one block of calls per artifact each (default 21); "
                        "the fastest is chosen by the median over rounds")
    p.add_argument("--loads", type=_count(1), default=3,
                   help="bundle: separate loads of each artifact, all timed side by side (default 3); a variant's "
                        "figure is the median over its loads, as one load's speed depends on where its weights landed")
    p.add_argument("--accuracy-budget", type=_non_negative,
                   help="largest top-1 drop vs the best float32 artifact (default: the recipe's, else 0.01)")
    p.add_argument("--no-record", action="store_true", help="do not write device_profile.json into the bundle")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("check", parents=[verbose], help="regression gate: re-measure a bundle against its baseline.json (exit 1 on regression)")
    p.add_argument("bundle", help="bundle folder")
    p.add_argument("--baseline", help="baseline file (default: BUNDLE/baseline.json)")
    p.add_argument("--accuracy-tol", type=float, help="allowed accuracy drop, absolute (default 0.01 = 1 point)")
    p.add_argument("--latency-tol", type=float, help="allowed rise of the latency ratio to the reference, relative (default 0.25)")
    p.add_argument("--size-tol", type=float, help="allowed growth of file size and RAM estimate, relative (default 0.05)")
    p.add_argument("--rounds", type=_count(1), help="interleaved timing rounds (default: the baseline's, 15)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--update", action="store_true", help="measure the bundle and write the baseline instead of checking")
    p.add_argument("--platform", choices=["linux-aarch64", "linux-x86_64-avx2", "linux-x86_64-sse4"],
                   help="instead: run every artifact on this platform (linux-aarch64: the emulated arm64 root, `make "
                        "arm-root`; linux-x86_64-avx2 / -sse4: this venv under qemu-x86_64 -cpu Haswell / Nehalem, "
                        "apt-get install qemu-user) and compare with this machine; records parity.cross_platform in "
                        "the manifest (exit 1 on a miss)")
    p.add_argument("--float-atol", type=_non_negative, help="--platform: float artifacts' max abs diff (default 1e-5)")
    p.add_argument("--min-sqnr-db", type=float, help="--platform: quantized artifacts' SQNR, dB (default 30)")
    p.add_argument("--min-top1", type=_non_negative, help="--platform: quantized top-1 agreement (default 0.99)")
    p.add_argument("--no-record", action="store_true", help="--platform: do not write the result into the manifest")
    p.set_defaults(func=_cmd_check)


def _error(exc: BaseException, mode: str) -> None:
    """The one line an error gets on stderr: text, or a JSON event under --log-json."""
    kind, text = type(exc).__name__, " ".join(line.strip() for line in str(exc).splitlines())
    if mode == "json":
        print(json.dumps({"event": "error", "error": kind, "message": text}), file=sys.stderr)
    else:
        print(f"edgeship: error: {kind}: {text}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    from edgeship.core import progress as _progress

    argv = sys.argv[1:] if argv is None else list(argv)
    mode = "json" if "--log-json" in argv else "normal"  # until the line parses: a usage error in JSON too
    before = _progress.mode()
    try:
        args = make_parser().parse_args(argv)
        mode = getattr(args, "progress", "normal")
        _progress.configure(mode)
        return int(args.func(args))
    except EdgeshipError as exc:
        _error(exc, mode)
        return 2
    except KeyboardInterrupt:
        print("edgeship: interrupted", file=sys.stderr)
        return 130
    finally:
        _progress.configure(before)


if __name__ == "__main__":
    sys.exit(main())
