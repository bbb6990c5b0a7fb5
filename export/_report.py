"""``report.md`` and a self-contained ``report.html`` for a bundle.

Both are rendered from the manifest's records (:mod:`edgeship.core.bundle`; a dict is
read through :class:`~edgeship.core.bundle.Manifest` first) and, when given, the
``baseline.json`` measurements: per-call latency and the ratio to the reference
workload. Only sections whose data exists are rendered (an export has no
evaluation or pruning tables, a run without a baseline no latency). ``report.html`` inlines everything (CSS, the Pareto plot as a
base64 PNG): it opens offline, from a mail attachment or a CI artifact.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgeship.core.bundle import Baseline, Compression, Manifest, ModelMetrics, OutputParity
from edgeship.core.task import AnomalyDetection, Classification, task_of

from ._blocks import Cell, Plot, Section, Table, Text, cell_text, escape
from ._report_anomaly import RocPlot, anomaly_sections, roc_png


def as_records(manifest: Manifest | dict[str, Any], baseline: Baseline | dict[str, Any] | None = None
               ) -> tuple[Manifest, Baseline | None]:
    """The manifest (and baseline) as records; dicts are validated (``BundleError`` naming a bad field)."""
    m = manifest if isinstance(manifest, Manifest) else Manifest.from_json(manifest)
    b = baseline if baseline is None or isinstance(baseline, Baseline) else Baseline.from_json(baseline)
    return m, b


# -- data gathering (shared by both renderers) -----------------------------------
def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def variant_rows(
    manifest: Manifest | dict[str, Any], baseline: Baseline | dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """One row per artifact: file, format, precision, bytes, gzip, accuracy, drop, p50/p99 ms, ratio, RAM."""
    m, bl = as_records(manifest, baseline)
    rows = []
    for a in m.artifacts:
        b = bl.artifacts.get(a.file) if bl is not None else None
        met, est = a.metrics, a.estimates
        lat = (b.latency_ms if b is not None else None) or {}
        rows.append(
            {
                "file": a.file,
                "format": a.format,
                "precision": a.precision,
                "bytes": _num(a.bytes),
                "gzip_bytes": _num(met.gzip_bytes if met else None),
                "accuracy": _num(met.accuracy if met else b.accuracy if b else None),
                "accuracy_drop": _num(met.accuracy_drop if met else None),
                "roc_auc": _num(met.roc_auc if met else b.roc_auc if b else None),
                "p50_ms": _num(lat.get("p50")),
                "p99_ms": _num(lat.get("p99")),
                "latency_ratio": _num(b.latency_ratio if b else None),
                "ram_bytes": _num(est.ram_arena_bytes if est else b.ram_bytes if b else None),
                "rss_bytes": _num(est.rss_increase_bytes if est else None),
                "parity": a.parity.passed if a.parity else None,
            }
        )
    return rows


def _columns(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(key, header, kind) of the variant-table columns that have data in some row."""
    cols = [
        ("file", "file", "s"),
        ("format", "format", "s"),
        ("precision", "precision", "s"),
        ("bytes", "size (bytes)", "int"),
        ("gzip_bytes", "gzip (bytes)", "int"),
        ("accuracy", "accuracy", "f4"),
        ("accuracy_drop", "drop vs keras", "d4"),
        ("roc_auc", "ROC AUC", "f4"),
        ("p50_ms", "p50 (ms)", "f3"),
        ("p99_ms", "p99 (ms)", "f3"),
        ("latency_ratio", "latency / reference", "x"),
        ("ram_bytes", "RAM arena (bytes)", "int"),
        ("rss_bytes", "RSS increase (bytes)", "int"),
        ("parity", "parity", "b"),
    ]
    return [c for c in cols if any(r.get(c[0]) is not None for r in rows)]


def _fmt(v: Any, kind: str) -> str:
    if v is None:
        return "–"
    if kind == "int":
        return f"{int(v):,}"
    if kind == "f4":
        return f"{v:.4f}"
    if kind == "d4":
        return f"{v:+.4f}"
    if kind == "f3":
        return f"{v:.3f}"
    if kind == "x":
        return f"{v:.2f}x"
    if kind == "b":
        return "pass" if v else "FAIL"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _compression(m: Manifest) -> Compression:
    """The compression section, empty when the manifest has none (an export without pruning tables)."""
    return m.compression or Compression(sparsity={}, schedule={}, prune_attempts=(), quantization_attempts=(), sqnr_db={})


def _sparsity(m: Manifest) -> dict[str, float]:
    sp = _compression(m).sparsity or (m.metrics or ModelMetrics()).sparsity or {}
    return {str(k): float(v) for k, v in sp.items() if _num(v) is not None}


def _parity_rows(m: Manifest) -> list[dict[str, Any]]:
    """One row per (artifact or pair, output) from per-artifact parity and the cross-format check."""
    rows = []
    sources = [(a.file, a.parity) for a in m.artifacts if a.parity is not None]
    cross = m.parity.cross_format if m.parity is not None else None
    if cross is not None:
        sources.append((cross.pair or "cross-format", cross))
    for name, p in sources:
        limit = ", ".join(f"{k} {v}" for k, v in (p.limits or {}).items())
        outputs: dict[str, OutputParity | None] = dict(p.outputs) or {"–": None}
        for out, o in outputs.items():
            rows.append(
                {
                    "artifact": name,
                    "output": out,
                    "check": p.check or ("cross" if p.pair is not None else ""),
                    "max_abs_diff": _num(o.max_abs_diff) if o else None,
                    "sqnr_db": _num(o.sqnr_db) if o else None,
                    "top1_agreement": _num(o.top1_agreement) if o else None,
                    "limits": limit,
                    "passed": p.passed,
                    "failures": "; ".join(p.failures),
                }
            )
    for plat, cp in ((m.parity.cross_platform or {}) if m.parity is not None else {}).items():
        limit = ", ".join(f"{k} {v}" for k, v in cp.limits.items())
        for file, a in cp.artifacts.items():  # edgeship check --platform: the same file on the target vs the host
            rows.append({"artifact": f"{file} on {plat}", "output": "all", "check": f"cross-platform {a.check}",
                         "max_abs_diff": _num(a.max_abs_diff), "sqnr_db": _num(a.sqnr_db),
                         "top1_agreement": _num(a.top1_agreement), "limits": limit, "passed": a.passed,
                         "failures": "; ".join(f for f in cp.failures if f.startswith(f"{file}:"))})
    return rows


def _flat(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out += _flat(v, key + ".")
        else:
            out.append((key, v))
    return out


def _short(name: str) -> str:
    """TFLite fuses op names with ';' (``conv1/Relu;conv1/BiasAdd;...``): keep the first."""
    return name.split(";", 1)[0]


def _labels(manifest: Manifest, n: int) -> list[str]:
    labels = [str(x) for x in manifest.labels or ()]
    return labels if len(labels) == n else [str(i) for i in range(n)]


def _pf(passed: Any) -> tuple[str, str]:
    return ("pass", "pass") if passed else ("FAIL", "fail")


# -- the report's sections, built once for both renderers ------------------------------
#: The sections a task adds to every report (after the baselines), by task name.
TASK_SECTIONS: dict[str, tuple[Callable[[Manifest, Baseline | None], list[Section]], ...]] = {
    Classification.name: (),
    AnomalyDetection.name: (anomaly_sections,),
}


def report_sections(
    manifest: Manifest | dict[str, Any], baseline: Baseline | dict[str, Any] | None = None
) -> list[Section]:
    """The report's sections in order; only those whose data exists."""
    m, bl = as_records(manifest, baseline)
    builders = (_intro, _warnings, _baselines, *TASK_SECTIONS[task_of(m).name], _budget, _channels, _prune_attempts,
                _variants, _evaluation, _parity, _kernel_sparsity, _schedule, _quantization_attempts, _sqnr, _timings)
    return [s for build in builders for s in build(m, bl)]


def _intro(m: Manifest, bl: Baseline | None) -> list[Section]:
    met = m.metrics or ModelMetrics()
    sha = str(m.recipe_sha256)[:12]
    dataset = f", dataset {escape(m.dataset.name)}" if m.dataset is not None else ""
    built = Text(
        f"Built {m.created} by edgeship {m.edgeship_version}, recipe sha256 `{sha}`.",
        f'<p class="meta">Built {escape(m.created)} by edgeship {escape(m.edgeship_version)}, '
        f"recipe sha256 <code>{escape(sha)}</code>{dataset}.</p>",
    )
    out = [Section(None, [built])]
    if _num(met.keras_float32_accuracy) is not None:
        has_ref = _num(met.keras_reference_accuracy) is not None
        out.append(Section(None, [Text(
            f"Keras float32 test accuracy: {met.keras_float32_accuracy:.4f}"
            + (f"; after compression (reference for the artifacts): {met.keras_reference_accuracy:.4f}." if has_ref
               else "."),
            f"<p>Keras float32 test accuracy <b>{met.keras_float32_accuracy:.4f}</b>"
            + (f"; after compression <b>{met.keras_reference_accuracy:.4f}</b>" if has_ref else "")
            + ".</p>",
        )]))
    return out


def _warnings(m: Manifest, bl: Baseline | None) -> list[Section]:
    return [
        Section(None, [Text(f"> **Warning:** {w}", f'<p class="warn"><b>Warning:</b> {escape(w)}</p>')])
        for w in map(str, m.warnings or ())
    ]


def _baselines(m: Manifest, bl: Baseline | None) -> list[Section]:
    """The majority-class and linear baselines, and each artifact's above-chance gate."""
    base = (m.metrics or ModelMetrics()).baselines
    if base is None:
        return []
    rows = [["majority class (always the most frequent training class)", cell_text(base.majority)],
            [f"linear ({base.linear_model or 'logistic regression'})", cell_text(base.linear)]]
    for art in m.artifacts:
        chance = art.metrics.chance_check if art.metrics else None
        if chance is not None:
            rows.append([f"{art.file}: above chance (needs {cell_text(chance.required_accuracy)}, "
                         f"p = {cell_text(chance.p_value)})", cell_text(chance.accuracy)])
    table = Table(["baseline / gate", "test accuracy"], [[Cell(a), Cell(b, "n")] for a, b in rows], {1})
    return [Section("Baselines", [table])]


def _budget(m: Manifest, bl: Baseline | None) -> list[Section]:
    b = m.budget
    if b is None:
        return []
    return [Section(None, [Text.para(
        f"Budget: every artifact within {cell_text(b.max_accuracy_drop)} {task_of(m).metric_short} "
        f"(judged as {cell_text(b.effective_max_drop)} on {cell_text(b.decision_samples)} "
        f"{b.judged_on} samples) of the {b.reference} "
        f"({cell_text(b.reference_val)})."
    )])]


def _channels(m: Manifest, bl: Baseline | None) -> list[Section]:
    """Structured channel pruning: cost before/after, the measured int8 latency ratio, channels kept, attempts."""
    ch, att = _compression(m).channels, [a.to_json() for a in _compression(m).channel_attempts or ()]
    if not ch:
        return []
    ratio = ch.get("int8_tflite_latency_ratio")
    summary = Table(["", "before", "after"], [
        [Cell("parameters"), Cell(f"{ch['params'][0]:,}"), Cell(f"{ch['params'][1]:,}")],
        [Cell("MACs"), Cell(f"{ch['macs'][0]:,}"), Cell(f"{ch['macs'][1]:,}")],
        [Cell("int8 TFLite bytes"), Cell(f"{ch.get('unpruned_int8_tflite_bytes', 0):,}"),
         Cell(f"{ch.get('int8_tflite_bytes', 0):,}")],
    ], {1, 2})
    note = Text.para(
        f"Channels ranked by {ch.get('ranking')}, keep ratio {ch.get('keep_ratio')}; int8 TFLite latency "
        f"{cell_text(ratio)} x the unpruned int8 model's (interleaved, 1 thread, median of {ch.get('rounds')} rounds)."
        + (f" Left whole: {', '.join(u['layer'] + ' (' + u['kind'] + ')' for u in ch['unsupported'])}."
           if ch.get("unsupported") else ""))
    layers = Table(["layer", "channels before", "channels after"],
                   [[Cell(k), Cell(str(v[0])), Cell(str(v[1]))] for k, v in ch.get("channels", {}).items()], {1, 2})
    keys = list(dict.fromkeys(k for a in att for k in a))
    attempts = Table(keys, [[Cell(cell_text(a.get(k))) for k in keys] for a in att], set(range(1, len(keys) - 1)))
    return [Section("Channel pruning", [note, summary, layers] + ([attempts] if att else []))]


def _prune_attempts(m: Manifest, bl: Baseline | None) -> list[Section]:
    att = [a.to_json() for a in _compression(m).prune_attempts]
    if not att:
        return []
    keys = list(dict.fromkeys(k for a in att for k in a))
    rows = [[Cell(cell_text(a.get(k))) for k in keys] for a in att]
    return [Section("Pruning attempts", [Table(keys, rows, set(range(1, len(keys) - 1)))])]


def _variants(m: Manifest, bl: Baseline | None) -> list[Section]:
    """The variant table (columns with data only), the latency note and the Pareto plot."""
    rows = variant_rows(m, bl)
    if not rows:
        return []
    cols = _columns(rows)
    body = [[_variant_cell(r.get(key), kind) for key, _, kind in cols] for r in rows]
    blocks: list[Table | Text | Plot] = [
        Table([c[1] for c in cols], body, {i for i, c in enumerate(cols) if c[2] not in ("s", "b")})
    ]
    if bl is not None:
        t, mach = bl.timing, bl.machine
        blocks.append(Text(
            f"Latency: {t.get('threads', 1)} engine thread(s), batch 1, {t.get('rounds')} rounds interleaved "
            "with the reference workload (see baseline.json); the ratio is what `edgeship check` gates.",
            f'<p class="meta">Latency: batch 1, {escape(t.get("threads", 1))} engine thread(s), {escape(t.get("rounds"))} rounds '
            f"interleaved with the fixed reference workload, on {escape(mach.get('cpu') or mach.get('machine') or '?')}. "
            "“latency / reference” is what <code>edgeship check</code> gates.</p>",
        ))
    return [Section("Variants", [*blocks, Plot(rows)])]


def _variant_cell(v: Any, kind: str) -> Cell:
    if kind == "b" and v is not None:
        return Cell(_fmt(v, kind), _pf(v)[1])
    return Cell(_fmt(v, kind), "" if kind == "s" else "n")


def _evaluation(m: Manifest, bl: Baseline | None) -> list[Section]:
    """Accuracy and macro scores, per-class scores and the confusion matrix (in that order in Markdown;
    the page shows the matrix first)."""
    ev = (m.metrics or ModelMetrics()).evaluation
    if ev is None:
        return []
    md, bits = [], []
    if _num(ev.accuracy) is not None:
        md.append(f"Accuracy {ev.accuracy:.4f}" + (f" on {ev.artifact}" if ev.artifact else "") + ".")
        bits.append(f"accuracy <b>{ev.accuracy:.4f}</b>" + (f" ({escape(ev.artifact)})" if ev.artifact else ""))
    if ev.macro:
        md.append("Macro: " + ", ".join(f"{k} {cell_text(v)}" for k, v in ev.macro.items()) + ".")
        bits.append("macro " + ", ".join(f"{escape(k)} {escape(cell_text(v))}" for k, v in ev.macro.items()))
    blocks: list[Table | Text | Plot] = [Text("\n".join(md), "<p>" + "; ".join(bits) + ".</p>" if bits else None)]
    per_class = None
    if ev.per_class:
        keys = ["precision", "recall", "f1", "support"]
        rows = [[Cell(str(k)), *(Cell(cell_text(getattr(v, x)), "n") for x in keys)] for k, v in ev.per_class.items()]
        per_class = Table(["class", *keys], rows, {1, 2, 3, 4})
        blocks.append(replace(per_class, only="md"))
    if ev.confusion_matrix:
        blocks += [
            Text("Confusion matrix (rows: true, columns: predicted):",
                 "<p>Confusion matrix (rows: true class, columns: predicted class)</p>"),
            _confusion_table(m, ev.confusion_matrix),
        ]
    if per_class is not None:
        blocks += [Text(None, "<p>Per-class metrics</p>"), replace(per_class, only="html")]
    return [Section("Evaluation", blocks)]


def _confusion_table(m: Manifest, cm: tuple[tuple[int, ...], ...]) -> Table:
    """Rows true, columns predicted; on the page each cell is shaded by its count (blue on the diagonal)."""
    labels = _labels(m, len(cm))
    top = max((max(r) for r in cm if r), default=1) or 1
    rows = []
    for i, row in enumerate(cm):
        cells = [Cell(labels[i], html=f"<b>{escape(labels[i])}</b>")]
        for j, c in enumerate(row):
            shade = int(255 - 190 * (c / top)) if c else 255
            color = f"rgb({shade},{shade},255)" if i == j else f"rgb(255,{shade},{shade})"
            ink = "#fff" if shade < 140 else "#222"
            title = f"true {escape(labels[i])}, predicted {escape(labels[j])}"
            cells.append(Cell(str(c), f'cm" style="background:{color};color:{ink}',
                              f'<span title="{title}">{int(c)}</span>'))
        rows.append(cells)
    return Table(["", *labels], rows, set(range(1, len(cm) + 1)))


def _parity(m: Manifest, bl: Baseline | None) -> list[Section]:
    par = _parity_rows(m)
    if not par:
        return []
    rows = []
    for r in par:
        text, css = _pf(r["passed"])
        rows.append([
            Cell(str(r["artifact"])),
            Cell(str(r["output"])),
            Cell(r["check"]),
            *(Cell(cell_text(r[k]), "n") for k in ("max_abs_diff", "sqnr_db", "top1_agreement")),
            Cell(r["limits"]),
            Cell(text, css, text + (f" – {escape(r['failures'])}" if r["failures"] else "")),
        ])
    headers = ["artifact", "output", "check", "max abs diff", "SQNR dB", "top-1 agreement", "limits", "result"]
    return [Section("Parity", [Table(headers, rows, {3, 4, 5})])]


def _kernel_sparsity(m: Manifest, bl: Baseline | None) -> list[Section]:
    sp = _sparsity(m)
    if not sp:
        return []
    bar = '<span style="display:inline-block;background:#8ab4f8;height:9px;width:{}px"></span>'
    rows = [[Cell(k), Cell(f"{v:.1%}", "n", f"{v:.1%} " + bar.format(int(120 * v)))] for k, v in sp.items()]
    return [Section("Kernel sparsity", [Table(["layer", "zeros"], rows, {1})], html_title="Kernel sparsity per layer")]


def _schedule(m: Manifest, bl: Baseline | None) -> list[Section]:
    schedule = _compression(m).schedule
    if not schedule:
        return []
    rows = [[Cell(str(k)), Cell(cell_text(v))] for k, v in schedule.items()]
    return [Section("Pruning schedule", [Table(["setting", "value"], rows)], only="md")]


def _quantization_attempts(m: Manifest, bl: Baseline | None) -> list[Section]:
    att = [a.to_json() for a in _compression(m).quantization_attempts]
    if not att:
        return []
    keys = list(dict.fromkeys(k for a in att for k in a))
    right = {i for i, k in enumerate(keys) if any(_is_number(a.get(k)) for a in att)}
    rows = [[_attempt_cell(a.get(k), k) for k in keys] for a in att]
    return [Section("Quantization attempts", [Table(keys, rows, right)])]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _attempt_cell(v: Any, key: str) -> Cell:
    """``met_budget`` reads yes/no in Markdown and pass/FAIL on the page."""
    if key == "met_budget" and isinstance(v, bool):
        text, css = _pf(v)
        return Cell(cell_text(v), css, text)
    return Cell(cell_text(v), "n" if isinstance(v, (int, float)) else "")


def _sqnr(m: Manifest, bl: Baseline | None) -> list[Section]:
    sq = _compression(m).sqnr_db
    if not sq:
        return []
    rows = [[Cell(_short(k)), Cell(cell_text(v), "n")] for k, v in _flat(sq)]
    return [Section("SQNR per tensor (dB)", [Table(["tensor", "SQNR dB"], rows, {1})])]


def _timings(m: Manifest, bl: Baseline | None) -> list[Section]:
    timings = m.timings_s or {}
    if not timings:
        return []
    rows = [[Cell(k), Cell(f"{v:.1f}", "n")] for k, v in timings.items()]
    return [Section("Build timings", [Table(["stage", "seconds"], rows, {1})], only="html")]


# -- markdown ------------------------------------------------------------------------
def _md_table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> list[str]:
    right = right or set()
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|",
    ]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return lines


def render_markdown(manifest: Manifest | dict[str, Any], baseline: Baseline | dict[str, Any] | None = None) -> str:
    """The bundle report as Markdown (``report.md``); the Pareto plot is in ``report.html`` only."""
    manifest, baseline = as_records(manifest, baseline)
    lines = [f"# edgeship bundle: {manifest.name}"]
    for section in report_sections(manifest, baseline):
        if section.only == "html":
            continue
        if section.title is not None:
            lines += ["", f"## {section.title}"]
        for block in section.blocks:
            lines += _md_block(block)
    return "\n".join(lines) + "\n"


def _md_block(block: Any) -> list[str]:
    """The block's lines after the blank line that opens it; nothing for a block the Markdown leaves out."""
    if isinstance(block, Table) and block.only != "html":
        return ["", *_md_table(block.headers, [[c.text for c in r] for r in block.rows], block.right)]
    if isinstance(block, Text) and block.md is not None:
        return ["", block.md] if block.md else [""]
    return []


# -- the Pareto plot -------------------------------------------------------------------
def pareto_png(rows: list[dict[str, Any]]) -> bytes | None:
    """Accuracy against p50 latency, marker area proportional to file size; PNG bytes.

    ``None`` when fewer than one artifact has both numbers, or matplotlib is missing.
    """
    pts = [r for r in rows if r.get("p50_ms") is not None and r.get("accuracy") is not None]
    if not pts:
        return None
    try:
        from matplotlib.figure import Figure  # no pyplot: never touches the user's backend
    except ImportError:
        return None
    fig = Figure(figsize=(7.2, 4.4), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    _scatter(ax, pts)
    front = _pareto_front(pts)
    if len(front) > 1:
        ax.plot(
            [r["p50_ms"] for r in front], [r["accuracy"] for r in front], "--", color="grey", lw=1, label="Pareto front"
        )
        ax.legend(loc="lower right", fontsize=8)
    _frame(ax, pts)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _scatter(ax: Any, pts: list[dict[str, Any]]) -> None:
    """One labelled marker per artifact: colour by format, circle float32, square otherwise, area by size."""
    biggest = max(r["bytes"] or 1 for r in pts)
    colors = {"tflite": "#1f77b4", "onnx": "#d62728"}
    for i, r in enumerate(sorted(pts, key=lambda r: r["p50_ms"])):
        area = 60 + 1400 * (r["bytes"] or 0) / biggest
        ax.scatter(
            r["p50_ms"],
            r["accuracy"],
            s=area,
            alpha=0.55,
            color=colors.get(r["format"], "#555"),
            edgecolors="black",
            linewidths=0.6,
            marker="o" if r["precision"] == "float32" else "s",
        )
        # stagger labels above and below so neighbours with equal accuracy stay readable
        ax.annotate(
            f"{r['file']}\n{int(r['bytes'] or 0):,} B",
            (r["p50_ms"], r["accuracy"]),
            textcoords="offset points",
            xytext=(8, (14, -26, 34, -46)[i % 4]),
            fontsize=7.5,
        )


def _pareto_front(pts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The points no other point beats, fastest first: none is both at least as fast and at least as accurate."""
    return sorted(
        (
            r
            for r in pts
            if not any(
                o is not r
                and o["p50_ms"] <= r["p50_ms"]
                and o["accuracy"] >= r["accuracy"]
                and (o["p50_ms"] < r["p50_ms"] or o["accuracy"] > r["accuracy"])
                for o in pts
            )
        ),
        key=lambda r: r["p50_ms"],
    )


def _frame(ax: Any, pts: list[dict[str, Any]]) -> None:
    """Limits with room for the labels, axis titles, grid."""
    xs = [r["p50_ms"] for r in pts]
    ys = [r["accuracy"] for r in pts]
    xpad = (max(xs) - min(xs)) * 0.25 or max(xs) * 0.2
    ypad = (max(ys) - min(ys)) * 0.3 or 0.01
    ax.set_xlim(max(0.0, min(xs) - xpad), max(xs) + 2.2 * xpad)
    ax.set_ylim(min(ys) - ypad, min(1.0, max(ys) + ypad) + ypad * 0.2)
    ax.set_xlabel("p50 latency, batch 1 (ms)")
    ax.set_ylabel("accuracy (eval.npz)")
    ax.set_title("Accuracy vs latency (marker area ~ file size; circle float32, square int8)", fontsize=9)
    ax.grid(True, alpha=0.3)


# -- HTML -------------------------------------------------------------------------------
_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1180px;color:#222;padding:0 16px}
h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0;font-size:13px} th,td{border:1px solid #ccc;padding:3px 8px}
th{background:#f3f3f3;text-align:left} td.n{text-align:right;font-variant-numeric:tabular-nums}
p.warn{background:#fff4e5;border-left:4px solid #e69500;padding:6px 10px}
.pass{color:#137333;font-weight:600} .fail{color:#b3261e;font-weight:700} .meta{color:#555;font-size:13px}
td.cm{text-align:center;min-width:26px} img{max-width:100%;border:1px solid #eee}
"""


def _html_table(headers: list[str], rows: list[list[tuple[str, str]]]) -> str:
    """rows of (html, css class) cells; the html is already escaped."""
    out = ["<table><thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in headers) + "</tr></thead><tbody>"]
    for r in rows:
        out.append(
            "<tr>"
            + "".join(f'<td class="{cls}">{cell}</td>' if cls else f"<td>{cell}</td>" for cell, cls in r)
            + "</tr>"
        )
    out.append("</tbody></table>")
    return "\n".join(out)


def render_html(manifest: Manifest | dict[str, Any], baseline: Baseline | dict[str, Any] | None = None) -> str:
    """The bundle report as one self-contained HTML page (no external resources)."""
    manifest, baseline = as_records(manifest, baseline)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>edgeship report: {escape(manifest.name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>edgeship bundle: {escape(manifest.name)}</h1>",
    ]
    for section in report_sections(manifest, baseline):
        if section.only == "md":
            continue
        if section.title is not None:
            parts.append(f"<h2>{escape(section.html_title or section.title)}</h2>")
        parts += [p for p in map(_html_block, section.blocks) if p is not None]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _html_block(block: Any) -> str | None:
    """The block's markup; ``None`` for a block the page leaves out (or a plot without data or matplotlib)."""
    if isinstance(block, RocPlot):
        roc = roc_png(block)
        return None if roc is None else (
            f'<img alt="ROC curve" src="data:image/png;base64,{base64.b64encode(roc).decode()}">')
    if isinstance(block, Table):
        if block.only == "md":
            return None
        cells = [[(c.html if c.html is not None else escape(c.text), c.css) for c in r] for r in block.rows]
        return _html_table(block.headers, cells)
    if isinstance(block, Text):
        return block.html
    png = pareto_png(block.rows)
    if not png:
        return None
    return (
        "<h2>Accuracy vs latency</h2>\n"
        f'<img alt="Pareto plot of accuracy against p50 latency" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
    )


def write_reports(
    folder: str | Path, manifest: Manifest | dict[str, Any], baseline: Baseline | dict[str, Any] | None = None
) -> list[Path]:
    """Write ``report.md`` and ``report.html`` into ``folder``; returns their paths."""
    folder = Path(folder)
    manifest, baseline = as_records(manifest, baseline)  # validated once for both renderers
    md = folder / "report.md"
    md.write_text(render_markdown(manifest, baseline))
    page = folder / "report.html"
    page.write_text(render_html(manifest, baseline), encoding="utf-8")
    return [md, page]
