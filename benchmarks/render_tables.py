"""Write docs/results.md, the measured figures of the docs, from benchmarks/*_results.json.

No figure in the docs is typed by hand: every table comes from a result file, under the
machine it ran on (CPU model and flags), the date and the load average the file records.

What is published:

- accuracy, bytes and memory figures need a file that names its CPU and its date;
- timing figures (latency, throughput, build or training speed) also need a recorded load
  average no higher than ``BUSY_LOAD_PER_CPU`` per CPU, and no note that other jobs shared
  the cores. A timing figure from a busy or unknown machine is not a measurement: it is
  dropped with a line saying it awaits a quiet re-measurement.

A benchmark records its load average as ``machine.load_average = list(os.getloadavg())``
(or ``load_average`` at the top level), taken while it measures.

Usage:
    python benchmarks/render_tables.py            # (re)write docs/results.md
    python benchmarks/render_tables.py --check    # exit 1 when docs/results.md is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "docs" / "results.md"

# Above this 1-minute load average per CPU, another job shared the cores during the timing.
BUSY_LOAD_PER_CPU = 0.75
FLAGS = ("avx2", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp")
BUSY_WORDS = ("shared with", "busy", "other jobs")


@dataclass(frozen=True)
class Machine:
    """Where and when a result file was measured, as far as the file says."""

    cpu: str | None
    flags: tuple[str, ...]
    cpu_count: int | None
    date: str | None
    load_average: tuple[float, ...] | None
    note: str

    @classmethod
    def of(cls, data: dict) -> Machine:
        m = data.get("machine") if isinstance(data.get("machine"), dict) else {}
        m = {**m, **(data.get("cpu") if isinstance(data.get("cpu"), dict) else {})}
        load = m.get("load_average", data.get("load_average"))
        note = " ".join(str(x) for x in (data.get("note"), data.get("machine_note"), data.get("machine")) if isinstance(x, str))
        return cls(
            cpu=m.get("cpu") or m.get("model"),
            flags=tuple(f for f in FLAGS if m.get(f) is True),
            cpu_count=m.get("cpu_count"),
            date=data.get("date") or data.get("measured_at"),
            load_average=tuple(load) if load else None,
            note=note,
        )

    def missing(self, timing: bool) -> str | None:
        """Why figures of this kind cannot be published from this file, or None."""
        lacks = [what for what, have in (("CPU model", self.cpu), ("date", self.date)) if not have]
        if lacks:
            return f"the result file records no {' and no '.join(lacks)}"
        if not timing:
            return None
        if any(w in self.note.lower() for w in BUSY_WORDS):
            return f"it was measured while other jobs shared the cores; the file says “{self.note}”"
        if self.load_average is None:
            return "the result file records no load average, so a quiet machine cannot be told from a busy one"
        limit = BUSY_LOAD_PER_CPU * (self.cpu_count or 1)
        if self.load_average[0] > limit:
            return f"the 1-minute load average was {self.load_average[0]:.2f} (limit {limit:.2f} on this machine)"
        return None

    def line(self) -> str:
        flags = ", ".join(self.flags) if self.flags else "not recorded"
        cpus = f", {self.cpu_count} CPUs" if self.cpu_count else ""
        load = " / ".join(f"{x:.2f}" for x in self.load_average) if self.load_average else "not recorded"
        return f"*Machine: `{self.cpu}`{cpus}; CPU flags: {flags}. Measured {self.date}. Load average: {load}.*"


def table(header: Iterable[str], rows: Iterable[Iterable[object]], align: str = "") -> str:
    header = list(header)
    align = align or "l" * len(header)
    rule = ["---:" if a == "r" else "---" for a in align]
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def n(x: float | int) -> str:
    return f"{x:,}"


def f3(x: float | None) -> str:
    return "" if x is None else f"{x:.3f}"


def dropped(what: str, reason: str, command: str) -> str:
    return f"*{what}: awaits a quiet re-measurement, left out because {reason}. Re-run `{command}` on a quiet machine.*"


def timing_dropped(what: str, m: Machine, command: str) -> list[str]:
    """The :func:`dropped` line for a result file's timing figures, when its machine was not quiet (else none)."""
    reason = m.missing(timing=True)
    return [dropped(what, reason, command)] if reason else []


@dataclass(frozen=True)
class Section:
    title: str
    file: str
    command: str
    about: str
    render: Callable[[dict, Machine, str], list[str]]


def mlperf(d: dict, m: Machine, cmd: str) -> list[str]:
    tasks = d["tasks"]
    rows = []
    for t in tasks.values():
        s8, s32, lat = t["sizes"]["int8"], t["sizes"]["float32"], t["latency"]
        metric = "AUC" if t["task"]["anomaly"] else "top-1"
        q = f"{metric} {lat['model.float32.tflite']['quality']:.3f} / {lat['model.int8.tflite']['quality']:.3f}"
        rows.append([f"{t['task']['title']} (`{t['task']['arch']}`)", n(t["build"]["params"]),
                     f"{n(s8['ours_bytes'])} ({n(s8['reference_bytes'])})",
                     f"{n(s32['ours_bytes'])} ({n(s32['reference_bytes'])})", q])
    st = d.get("settings", {})
    out = [f"- **{k}** `{t['task']['arch']}`: {t['task']['stand_in']}; {st.get('epochs', {}).get(k, '?')} epochs."
           for k, t in tasks.items()]
    if "quantization" in st:
        out += [f"- Quantization: {st['quantization']}."]
    out += ["", "Sizes and quality (quality on the stand-in test split, through `edgeship.runtime`; "
           "in brackets the MLPerf Tiny reference file of that precision):", "",
           table(["task (arch)", "params", "int8 TFLite bytes (ref)", "float32 TFLite bytes (ref)",
                  "quality float32 / int8 TFLite"], rows, "lrrrl"), ""]
    parity = []
    for key, t in tasks.items():
        for prec in ("int8", "float32"):
            p = t["sizes"][prec]["parity"]
            parity.append([key, prec, "yes" if p["same_io"] else "no", "yes" if p["same_operators"] else "no",
                           "; ".join(p["differences"]) or "none"])
    out += ["Structure against the reference files (`edgeship.runtime` model comparison: I/O shapes and "
            "dtypes, operator types and counts, weight dtypes per operator; scales are not judged):", "",
            table(["task", "precision", "same I/O", "same operators", "differences"], parity), ""]
    slower = [k for k, t in tasks.items()
              if t["latency"]["model.int8.tflite"]["median_us"] > t["latency"]["model.float32.tflite"]["median_us"]]
    reason = m.missing(timing=True) or ""
    if slower:
        reason += ("; " if reason else "") + (
            f"its LiteRT int8 files ran slower than float32 for {', '.join(slower)}, where a quiet interleaved "
            "run on the same kind of CPU (AVX-512 VNNI, XNNPACK, one thread) measured int8 faster")
    if reason:
        out.append(dropped("Latency per engine and precision, and how close `load()`'s pick came to the fastest",
                           reason, cmd))
    return out


def small_data(d: dict, m: Machine, cmd: str) -> list[str]:
    arts = ("model.float32.tflite", "model.int8.tflite", "model.float32.onnx", "model.int8.onnx")
    rows = []
    for name, ds in d["datasets"].items():
        med = ds["median"]
        rows.append([f"`{name}`", ds["data"]["classes"], n(ds["data"]["images"]), f3(med["majority"]),
                     f3(med["linear"]), f3(med["float32"]), *(f3(med["artifacts"].get(a)) for a in arts),
                     f"{med['succeeded']} / {med['succeeded'] + med['failed']}"])
    seeds = ", ".join(str(s) for s in d["recipe_seeds"])
    out = [f"Test-split accuracy, median over recipe seeds {seeds} ({d['recipe']}):", "",
           table(["dataset", "classes", "images", "majority", "linear", "Keras float32", *arts, "builds ok"],
                 rows, "lrrrrrrrrrr"), ""]
    out += timing_dropped("Build seconds", m, cmd)
    return out


def multi_worker(d: dict, m: Machine, cmd: str) -> list[str]:
    rows = [[r["workers"], r["epochs"], f"{r['keras_float32_test_accuracy']:.4f}", f"{r['int8_tflite_test_accuracy']:.4f}",
             {True: "yes (bit for bit)", False: "no", None: "–"}[r["weights_identical_across_workers"]]]
            for r in d["results"]]
    out = ["The chief's bundle, test split (360 digits):", "",
           table(["workers", "epochs", "Keras float32 test acc", "int8 TFLite test acc", "trained weights identical"],
                 rows, "rrrrl"), ""]
    out += timing_dropped("Training steps per second and wall time", m, cmd)
    return out


def input_pipeline(d: dict, m: Machine, cmd: str) -> list[str]:
    rows = [[n(r["images"]), f"{r['decoded_mb']:,.0f} MiB", f"`{r['stream']}`", f"{r['peak_rss_mb']:,.0f} MiB"]
            for r in d["peak_rss"]]
    bars = d["bars"]
    out = ["Peak RSS (`ru_maxrss` of a fresh process running a one-epoch `edgeship build`):", "",
           table(["folder", "decoded float32", "`stream`", "peak RSS"], rows, "rrlr"), "",
           f"Streamed, the peak grew by {bars['rss_growth_mb']:,.0f} MiB for {bars['extra_decoded_mb']:,.0f} MiB more "
           f"decoded images ({bars['rss_growth_fraction_of_extra']:.1%}; the bar is < 25%: "
           f"{'met' if bars['rss_bar_met'] else 'missed'}).", ""]
    out += timing_dropped("Build seconds and training steps per second per pipeline", m, cmd)
    return out


def whole_file(what: str) -> Callable[[dict, Machine, str], list[str]]:
    """A result file whose figures are all timing, or that cannot name its machine."""

    def render(d: dict, m: Machine, cmd: str) -> list[str]:
        reason = m.missing(timing=True)
        return [dropped(what, reason, cmd)] if reason else [f"*{what}: no renderer yet; see the result file.*"]

    return render


SECTIONS = (
    Section("MLPerf Tiny", "mlperf_tiny_results.json", "python benchmarks/mlperf_tiny.py",
            "The four MLPerf Tiny architectures of the zoo (`ds_cnn`, `mobilenet_v1_025`, `resnet8`, "
            "`fc_autoencoder`), built by edgeship on stand-in data of each reference input shape made from "
            "scikit-learn's digits (nothing downloads), against the eight reference `.tflite` files of "
            "mlcommons/tiny. The stand-ins are much easier than the real datasets: the quality figures say "
            "nothing about the real tasks.", mlperf),
    Section("Accuracy on small real-photo folders", "small_data_results.json",
            "python benchmarks/small_data.py --seeds 0,1,2",
            "Photo folders cut from images that pip packages ship (`benchmarks/photo_sets.py`); the recipe "
            "names only the dataset, every other setting is edgeship's default.", small_data),
    Section("Multi-worker training on loopback", "multi_worker_results.json", "python benchmarks/multi_worker.py",
            "The built-in digits recipe with `strategy = \"multi_worker\"`, on a cluster of 1 and of 2 worker "
            "processes on 127.0.0.1 (`edgeship.train.local_cluster`).", multi_worker),
    Section("Image folders streamed from disk", "input_pipeline_results.json", "python benchmarks/input_pipeline.py",
            "Generated PNG class folders (96x96x3) of two sizes; `small_cnn`, one epoch, int8 TFLite only.",
            input_pipeline),
    Section("Structured channel pruning", "structured_pruning_results.json",
            "python benchmarks/structured_pruning.py",
            "`small_cnn` and `resnet8` on digits, channels pruned (L1) and fine-tuned on the labels or "
            "distilled from the trained model.", whole_file("Accuracy drops, sizes and latency ratios")),
    Section("Cross-architecture parity: x86-64 against aarch64", "cross_platform_results.json",
            "python benchmarks/cross_platform.py",
            "The default bundle and the MLPerf Tiny reference files on this machine and in the emulated arm64 "
            "root, host outputs as the reference.", whole_file("Per-artifact differences")),
    Section("Runtime overhead and import cost", "runtime_results.json", "make bench",
            "What `edgeship.runtime` costs over raw engine calls on the same model object, interleaved call "
            "by call (`benchmarks/overhead.py`), and the import cost (`benchmarks/import_cost.py`).",
            whole_file("Overhead per call and import seconds")),
    Section("Serving under load", "serve_results.json", "python benchmarks/serve_load.py",
            "`edgeship serve` on the digits bundle, an asyncio load generator on keep-alive loopback connections.",
            whole_file("Latency and requests per second")),
    Section("Compression on digits", "compress_results.json", "python benchmarks/compress_digits.py --seed S",
            "`small_cnn` on digits: 50% and 80% sparsity, full-int8 TFLite, PQAT against plain QAT.",
            whole_file("Accuracy, gzip ratios and kept zeros")),
)

HEAD = """# Measured results

<!-- Generated by benchmarks/render_tables.py from benchmarks/*_results.json: do not edit by hand. -->

Every figure on this page is generated from a result file in `benchmarks/`
(`make docs` regenerates it), under the machine, date and load average that file records.
Accuracy, size and memory figures need a file that names its CPU and date. Timing figures also
need a quiet machine: a recorded 1-minute load average of at most {limit} per CPU and no note of
other jobs sharing the cores. A figure that does not meet this is left out with a line saying so.
Whether int8 is faster than float32 depends on the CPU and the engine's kernels:
`edgeship bench` measures it on your device.
"""


def render(results: Path = HERE) -> str:
    parts = [HEAD.format(limit=BUSY_LOAD_PER_CPU)]
    for s in SECTIONS:
        path = results / s.file
        parts += [f"## {s.title}", "", s.about, "", f"Command: `{s.command}`; results: `benchmarks/{s.file}`.", ""]
        if not path.exists():
            parts += [f"*No result file yet: run `{s.command}`.*", ""]
            continue
        data = json.loads(path.read_text())
        m = Machine.of(data)
        reason = m.missing(timing=False)
        if reason:
            parts += [dropped("Every figure of this benchmark", reason, s.command), ""]
            continue
        parts += [m.line(), "", *s.render(data, m, s.command), ""]
    return "\n".join(parts).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if docs/results.md is not what the files give")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run python benchmarks/render_tables.py", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
