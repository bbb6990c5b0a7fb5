"""``report.md`` and a self-contained ``report.html`` for a bundle.

Both are rendered from the manifest's records (:mod:`edgeship.bundle`; a dict is
read through :class:`~edgeship.bundle.Manifest` first) and, when given, the
``baseline.json`` measurements: per-call latency and the ratio to the reference
workload. Only sections whose data exists are rendered (an export has no
evaluation or pruning tables, a run without a baseline no latency). ``report.html`` inlines everything (CSS, the Pareto plot as a
base64 PNG): it opens offline, from a mail attachment or a CI artifact.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any

from edgeship.bundle import Baseline, Compression, Manifest, ModelMetrics, OutputParity


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
    return rows


def _accuracy_checks(m: Manifest) -> dict[str, Any]:
    """The baselines, the budget, the pruning attempts and the warnings, as text rows both renderers show."""
    base, budget = (m.metrics or ModelMetrics()).baselines, m.budget
    out: dict[str, Any] = {"warnings": [str(w) for w in m.warnings or ()]}
    if base is not None:
        rows = [["majority class (always the most frequent training class)", _cell(base.majority)],
                [f"linear ({base.linear_model or 'logistic regression'})", _cell(base.linear)]]
        for art in m.artifacts:
            chance = art.metrics.chance_check if art.metrics else None
            if chance is not None:
                rows.append([f"{art.file}: above chance (needs {_cell(chance.required_accuracy)}, "
                             f"p = {_cell(chance.p_value)})", _cell(chance.accuracy)])
        out["baselines"] = rows
    if budget is not None:
        out["budget"] = (
            f"Budget: every artifact within {_cell(budget.max_accuracy_drop)} top-1 "
            f"(judged as {_cell(budget.effective_max_drop)} on {_cell(budget.decision_samples)} "
            f"{budget.judged_on} samples) of the {budget.reference} "
            f"({_cell(budget.reference_val_accuracy)})."
        )
    out["prune_attempts"] = list(_compression(m).prune_attempts)
    return out


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


def _cell(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, int):
        return f"{v:,}"
    if v is None:
        return "–"
    return str(v)


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
    met = manifest.metrics or ModelMetrics()
    lines = [f"# edgeship bundle: {manifest.name}", ""]
    lines.append(
        f"Built {manifest.created} by edgeship {manifest.edgeship_version}, "
        f"recipe sha256 `{str(manifest.recipe_sha256)[:12]}`."
    )
    if _num(met.keras_float32_accuracy) is not None:
        lines += [
            "",
            f"Keras float32 test accuracy: {met.keras_float32_accuracy:.4f}"
            + (
                f"; after compression (reference for the artifacts): {met.keras_reference_accuracy:.4f}."
                if _num(met.keras_reference_accuracy) is not None
                else "."
            ),
        ]
    checks = _accuracy_checks(manifest)
    for w in checks["warnings"]:
        lines += ["", f"> **Warning:** {w}"]
    if checks.get("baselines"):
        lines += ["", "## Baselines", ""] + _md_table(["baseline / gate", "test accuracy"], checks["baselines"], {1})
    if checks.get("budget"):
        lines += ["", checks["budget"]]
    if checks["prune_attempts"]:
        keys = list(dict.fromkeys(k for a in checks["prune_attempts"] for k in a))
        lines += ["", "## Pruning attempts", ""] + _md_table(
            keys, [[_cell(a.get(k)) for k in keys] for a in checks["prune_attempts"]], set(range(1, len(keys) - 1))
        )
    rows = variant_rows(manifest, baseline)
    if rows:
        cols = _columns(rows)
        lines += ["", "## Variants", ""]
        lines += _md_table(
            [c[1] for c in cols],
            [[_fmt(r.get(c[0]), c[2]) for c in cols] for r in rows],
            {i for i, c in enumerate(cols) if c[2] not in ("s", "b")},
        )
        if baseline is not None:
            t = baseline.timing
            lines += [
                "",
                f"Latency: {t.get('threads', 1)} engine thread(s), batch 1, {t.get('rounds')} rounds interleaved "
                "with the reference workload (see baseline.json); the ratio is what `edgeship check` gates.",
            ]
    ev = met.evaluation
    if ev is not None:
        lines += ["", "## Evaluation", ""]
        if _num(ev.accuracy) is not None:
            lines.append(f"Accuracy {ev.accuracy:.4f}" + (f" on {ev.artifact}" if ev.artifact else "") + ".")
        if ev.macro:
            lines.append("Macro: " + ", ".join(f"{k} {_cell(v)}" for k, v in ev.macro.items()) + ".")
        pc = ev.per_class
        if pc:
            keys = ["precision", "recall", "f1", "support"]
            lines += [""] + _md_table(
                ["class", *keys], [[str(k), *(_cell(getattr(v, x)) for x in keys)] for k, v in pc.items()], {1, 2, 3, 4}
            )
        cm = ev.confusion_matrix
        if cm:
            labels = _labels(manifest, len(cm))
            lines += ["", "Confusion matrix (rows: true, columns: predicted):", ""]
            lines += _md_table(
                ["", *labels],
                [[labels[i], *(str(c) for c in row)] for i, row in enumerate(cm)],
                set(range(1, len(cm) + 1)),
            )
    par = _parity_rows(manifest)
    if par:
        lines += ["", "## Parity", ""]
        lines += _md_table(
            ["artifact", "output", "check", "max abs diff", "SQNR dB", "top-1 agreement", "limits", "result"],
            [
                [
                    str(r["artifact"]),
                    str(r["output"]),
                    r["check"],
                    _cell(r["max_abs_diff"]),
                    _cell(r["sqnr_db"]),
                    _cell(r["top1_agreement"]),
                    r["limits"],
                    "pass" if r["passed"] else "FAIL",
                ]
                for r in par
            ],
            {3, 4, 5},
        )
    sp = _sparsity(manifest)
    if sp:
        lines += ["", "## Kernel sparsity", ""] + _md_table(
            ["layer", "zeros"], [[k, f"{v:.1%}"] for k, v in sp.items()], {1}
        )
    schedule = _compression(manifest).schedule
    if schedule:
        lines += ["", "## Pruning schedule", ""] + _md_table(
            ["setting", "value"], [[str(k), _cell(v)] for k, v in schedule.items()]
        )
    att = list(_compression(manifest).quantization_attempts)
    if att:
        keys = list(dict.fromkeys(k for a in att for k in a))
        lines += ["", "## Quantization attempts", ""] + _md_table(
            keys,
            [[_cell(a.get(k)) for k in keys] for a in att],
            {
                i
                for i, k in enumerate(keys)
                if any(isinstance(a.get(k), (int, float)) and not isinstance(a.get(k), bool) for a in att)
            },
        )
    sq = _compression(manifest).sqnr_db
    if sq:
        lines += ["", "## SQNR per tensor (dB)", ""] + _md_table(
            ["tensor", "SQNR dB"], [[_short(k), _cell(v)] for k, v in _flat(sq)], {1}
        )
    return "\n".join(lines) + "\n"


def _labels(manifest: Manifest, n: int) -> list[str]:
    labels = [str(x) for x in manifest.labels or ()]
    return labels if len(labels) == n else [str(i) for i in range(n)]


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
    # Pareto front: no other point is both at least as fast and at least as accurate.
    front = sorted(
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
    if len(front) > 1:
        ax.plot(
            [r["p50_ms"] for r in front], [r["accuracy"] for r in front], "--", color="grey", lw=1, label="Pareto front"
        )
        ax.legend(loc="lower right", fontsize=8)
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
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


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


def _h(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _html_table(headers: list[str], rows: list[list[tuple[str, str]]]) -> str:
    """rows of (html, css class) cells; the html is already escaped."""
    out = ["<table><thead><tr>" + "".join(f"<th>{_h(h)}</th>" for h in headers) + "</tr></thead><tbody>"]
    for r in rows:
        out.append(
            "<tr>"
            + "".join(f'<td class="{cls}">{cell}</td>' if cls else f"<td>{cell}</td>" for cell, cls in r)
            + "</tr>"
        )
    out.append("</tbody></table>")
    return "\n".join(out)


def _pf(passed: Any) -> tuple[str, str]:
    return ("pass", "pass") if passed else ("FAIL", "fail")


def render_html(manifest: Manifest | dict[str, Any], baseline: Baseline | dict[str, Any] | None = None) -> str:
    """The bundle report as one self-contained HTML page (no external resources)."""
    manifest, baseline = as_records(manifest, baseline)
    met = manifest.metrics or ModelMetrics()
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>edgeship report: {_h(manifest.name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>edgeship bundle: {_h(manifest.name)}</h1>",
        f'<p class="meta">Built {_h(manifest.created)} by edgeship {_h(manifest.edgeship_version)}, '
        f"recipe sha256 <code>{_h(str(manifest.recipe_sha256)[:12])}</code>"
        + (f", dataset {_h(manifest.dataset.name)}" if manifest.dataset is not None else "")
        + ".</p>",
    ]
    if _num(met.keras_float32_accuracy) is not None:
        parts.append(
            f"<p>Keras float32 test accuracy <b>{met.keras_float32_accuracy:.4f}</b>"
            + (
                f"; after compression <b>{met.keras_reference_accuracy:.4f}</b>"
                if _num(met.keras_reference_accuracy) is not None
                else ""
            )
            + ".</p>"
        )
    checks = _accuracy_checks(manifest)
    for w in checks["warnings"]:
        parts.append(f'<p class="warn"><b>Warning:</b> {_h(w)}</p>')
    if checks.get("baselines"):
        parts += ["<h2>Baselines</h2>", _html_table(
            ["baseline / gate", "test accuracy"], [[(_h(a), ""), (_h(b), "n")] for a, b in checks["baselines"]]
        )]
    if checks.get("budget"):
        parts.append(f"<p>{_h(checks['budget'])}</p>")
    if checks["prune_attempts"]:
        keys = list(dict.fromkeys(k for a in checks["prune_attempts"] for k in a))
        parts += ["<h2>Pruning attempts</h2>", _html_table(
            keys, [[(_h(_cell(a.get(k))), "") for k in keys] for a in checks["prune_attempts"]]
        )]
    rows = variant_rows(manifest, baseline)
    if rows:
        cols = _columns(rows)
        body = []
        for r in rows:
            cells = []
            for key, _, kind in cols:
                v = r.get(key)
                if kind == "b" and v is not None:
                    cells.append(_pf(v))
                else:
                    cells.append((_h(_fmt(v, kind)), "" if kind == "s" else "n"))
            body.append(cells)
        parts += ["<h2>Variants</h2>", _html_table([c[1] for c in cols], body)]
        if baseline is not None:
            t, mach = baseline.timing, baseline.machine
            parts.append(
                f'<p class="meta">Latency: batch 1, {_h(t.get("threads", 1))} engine thread(s), {_h(t.get("rounds"))} rounds '
                f"interleaved with the fixed reference workload, on {_h(mach.get('cpu') or mach.get('machine') or '?')}. "
                "“latency / reference” is what <code>edgeship check</code> gates.</p>"
            )
        png = pareto_png(rows)
        if png:
            parts += [
                "<h2>Accuracy vs latency</h2>",
                f'<img alt="Pareto plot of accuracy against p50 latency" src="data:image/png;base64,{base64.b64encode(png).decode()}">',
            ]
    ev = met.evaluation
    if ev is not None:
        parts.append("<h2>Evaluation</h2>")
        bits = []
        if _num(ev.accuracy) is not None:
            bits.append(f"accuracy <b>{ev.accuracy:.4f}</b>" + (f" ({_h(ev.artifact)})" if ev.artifact else ""))
        if ev.macro:
            bits.append("macro " + ", ".join(f"{_h(k)} {_h(_cell(v))}" for k, v in ev.macro.items()))
        if bits:
            parts.append("<p>" + "; ".join(bits) + ".</p>")
        cm = ev.confusion_matrix
        if cm:
            labels = _labels(manifest, len(cm))
            top = max((max(r) for r in cm if r), default=1) or 1
            body = []
            for i, row in enumerate(cm):
                cells = [(f"<b>{_h(labels[i])}</b>", "")]
                for j, c in enumerate(row):
                    shade = int(255 - 190 * (c / top)) if c else 255
                    color = f"rgb({shade},{shade},255)" if i == j else f"rgb(255,{shade},{shade})"
                    ink = "#fff" if shade < 140 else "#222"
                    cells.append(
                        (
                            f'<span title="true {_h(labels[i])}, predicted {_h(labels[j])}">{int(c)}</span>',
                            f'cm" style="background:{color};color:{ink}',
                        )
                    )
                body.append(cells)
            parts += [
                "<p>Confusion matrix (rows: true class, columns: predicted class)</p>",
                _html_table(["", *labels], body),
            ]
        pc = ev.per_class
        if pc:
            keys = ["precision", "recall", "f1", "support"]
            parts += [
                "<p>Per-class metrics</p>",
                _html_table(
                    ["class", *keys],
                    [[(_h(k), ""), *((_h(_cell(getattr(v, x))), "n") for x in keys)] for k, v in pc.items()],
                ),
            ]
    par = _parity_rows(manifest)
    if par:
        parts += [
            "<h2>Parity</h2>",
            _html_table(
                ["artifact", "output", "check", "max abs diff", "SQNR dB", "top-1 agreement", "limits", "result"],
                [
                    [
                        (_h(r["artifact"]), ""),
                        (_h(r["output"]), ""),
                        (_h(r["check"]), ""),
                        (_h(_cell(r["max_abs_diff"])), "n"),
                        (_h(_cell(r["sqnr_db"])), "n"),
                        (_h(_cell(r["top1_agreement"])), "n"),
                        (_h(r["limits"]), ""),
                        (
                            _pf(r["passed"])[0] + (f" – {_h(r['failures'])}" if r["failures"] else ""),
                            _pf(r["passed"])[1],
                        ),
                    ]
                    for r in par
                ],
            ),
        ]
    sp = _sparsity(manifest)
    if sp:
        parts += [
            "<h2>Kernel sparsity per layer</h2>",
            _html_table(
                ["layer", "zeros"],
                [
                    [
                        (_h(k), ""),
                        (
                            f'{v:.1%} <span style="display:inline-block;background:#8ab4f8;height:9px;width:{int(120 * v)}px"></span>',
                            "n",
                        ),
                    ]
                    for k, v in sp.items()
                ],
            ),
        ]
    att = list(_compression(manifest).quantization_attempts)
    if att:
        keys = list(dict.fromkeys(k for a in att for k in a))
        body = []
        for a in att:
            body.append(
                [
                    (_pf(a[k])[0], _pf(a[k])[1])
                    if k == "met_budget" and isinstance(a[k], bool)
                    else (_h(_cell(a.get(k))), "n" if isinstance(a.get(k), (int, float)) else "")
                    for k in keys
                ]
            )
        parts += ["<h2>Quantization attempts</h2>", _html_table(keys, body)]
    sq = _compression(manifest).sqnr_db
    if sq:
        parts += [
            "<h2>SQNR per tensor (dB)</h2>",
            _html_table(["tensor", "SQNR dB"], [[(_h(_short(k)), ""), (_h(_cell(v)), "n")] for k, v in _flat(sq)]),
        ]
    timings = manifest.timings_s or {}
    if timings:
        parts += [
            "<h2>Build timings</h2>",
            _html_table(["stage", "seconds"], [[(_h(k), ""), (f"{v:.1f}", "n")] for k, v in timings.items()]),
        ]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


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
