"""``report.md`` and a self-contained ``report.html`` for a bundle.

Both are rendered from the manifest (and, when given, the ``baseline.json``
measurements: per-call latency and the ratio to the reference workload). Only
sections whose data exists are rendered, so older or partial manifests still give
a valid report. ``report.html`` inlines everything (CSS, the Pareto plot as a
base64 PNG): it opens offline, from a mail attachment or a CI artifact.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any

Manifest = dict[str, Any]


# -- data gathering (shared by both renderers) -----------------------------------
def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def variant_rows(manifest: Manifest, baseline: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row per artifact: file, format, precision, bytes, gzip, accuracy, drop, p50/p99 ms, ratio, RAM."""
    measured = (baseline or {}).get("artifacts") or {}
    rows = []
    for a in manifest.get("artifacts", []):
        met = a.get("metrics") or {}
        est = a.get("estimates") or {}
        b = measured.get(a.get("file"), {})
        lat = b.get("latency_ms") or {}
        rows.append(
            {
                "file": a.get("file"),
                "format": a.get("format"),
                "precision": a.get("precision"),
                "bytes": _num(a.get("bytes")),
                "gzip_bytes": _num(met.get("gzip_bytes")),
                "accuracy": _num(met.get("accuracy", b.get("accuracy"))),
                "accuracy_drop": _num(met.get("accuracy_drop")),
                "p50_ms": _num(lat.get("p50")),
                "p99_ms": _num(lat.get("p99")),
                "latency_ratio": _num(b.get("latency_ratio")),
                "ram_bytes": _num(est.get("ram_arena_bytes", b.get("ram_bytes"))),
                "rss_bytes": _num(est.get("rss_increase_bytes")),
                "parity": (a.get("parity") or {}).get("passed"),
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


def _evaluation(manifest: Manifest) -> dict[str, Any]:
    ev = (manifest.get("metrics") or {}).get("evaluation")
    return ev if isinstance(ev, dict) else {}


def _sparsity(manifest: Manifest) -> dict[str, float]:
    comp = manifest.get("compression") or {}
    sp = comp.get("sparsity") or (manifest.get("metrics") or {}).get("sparsity") or {}
    return {str(k): float(v) for k, v in sp.items() if _num(v) is not None}


def _parity_rows(manifest: Manifest) -> list[dict[str, Any]]:
    """One row per (artifact or pair, output) from per-artifact parity and the cross-format check."""
    rows = []
    sources = [(a.get("file"), a.get("parity")) for a in manifest.get("artifacts", [])]
    cross = (manifest.get("parity") or {}).get("cross_format")
    if isinstance(cross, dict):
        sources.append((cross.get("pair", "cross-format"), cross))
    for name, p in sources:
        if not isinstance(p, dict):
            continue
        limits = p.get("limits") or {}
        limit = ", ".join(f"{k} {v}" for k, v in limits.items())
        outputs = p.get("outputs") or {"–": {}}
        for out, o in outputs.items():
            rows.append(
                {
                    "artifact": name,
                    "output": out,
                    "check": p.get("check", "cross" if "pair" in p else ""),
                    "max_abs_diff": _num(o.get("max_abs_diff")),
                    "sqnr_db": _num(o.get("sqnr_db")),
                    "top1_agreement": _num(o.get("top1_agreement")),
                    "limits": limit,
                    "passed": p.get("passed"),
                    "failures": "; ".join(p.get("failures") or []),
                }
            )
    return rows


def _attempts(manifest: Manifest) -> list[dict[str, Any]]:
    att = (manifest.get("compression") or {}).get("quantization_attempts") or []
    return [a for a in att if isinstance(a, dict)]


def _accuracy_checks(manifest: Manifest) -> dict[str, Any]:
    """The baselines, the budget, the pruning attempts and the warnings, as text rows both renderers show."""
    m = manifest.get("metrics") or {}
    base = m.get("baselines") if isinstance(m.get("baselines"), dict) else {}
    budget = manifest.get("budget") if isinstance(manifest.get("budget"), dict) else {}
    out: dict[str, Any] = {"warnings": [str(w) for w in manifest.get("warnings") or []]}
    if base:
        rows = [["majority class (always the most frequent training class)", _cell(base.get("majority"))],
                [f"linear ({base.get('linear_model', 'logistic regression')})", _cell(base.get("linear"))]]
        for art in manifest.get("artifacts") or []:
            chance = (art.get("metrics") or {}).get("chance_check") or {}
            if chance:
                rows.append([f"{art.get('file')}: above chance (needs {_cell(chance.get('required_accuracy'))}, "
                             f"p = {_cell(chance.get('p_value'))})", _cell(chance.get("accuracy"))])
        out["baselines"] = rows
    if budget:
        out["budget"] = (
            f"Budget: every artifact within {_cell(budget.get('max_accuracy_drop'))} top-1 "
            f"(judged as {_cell(budget.get('effective_max_drop'))} on {_cell(budget.get('decision_samples'))} "
            f"{budget.get('judged_on', 'decision')} samples) of the {budget.get('reference', 'reference')} "
            f"({_cell(budget.get('reference_val_accuracy'))})."
        )
    att = (manifest.get("compression") or {}).get("prune_attempts") or []
    out["prune_attempts"] = [a for a in att if isinstance(a, dict)]
    return out


def _sqnr(manifest: Manifest) -> dict[str, Any]:
    sq = (manifest.get("compression") or {}).get("sqnr_db") or {}
    return sq if isinstance(sq, dict) else {}


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


def render_markdown(manifest: Manifest, baseline: dict[str, Any] | None = None) -> str:
    """The bundle report as Markdown (``report.md``); the Pareto plot is in ``report.html`` only."""
    m = manifest.get("metrics") or {}
    lines = [f"# edgeship bundle: {manifest.get('name')}", ""]
    lines.append(
        f"Built {manifest.get('created')} by edgeship {manifest.get('edgeship_version')}, "
        f"recipe sha256 `{str(manifest.get('recipe_sha256'))[:12]}`."
    )
    if _num(m.get("keras_float32_accuracy")) is not None:
        lines += [
            "",
            f"Keras float32 test accuracy: {m['keras_float32_accuracy']:.4f}"
            + (
                f"; after compression (reference for the artifacts): {m['keras_reference_accuracy']:.4f}."
                if _num(m.get("keras_reference_accuracy")) is not None
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
        if baseline:
            t = baseline.get("timing") or {}
            lines += [
                "",
                f"Latency: {t.get('threads', 1)} engine thread(s), batch 1, {t.get('rounds')} rounds interleaved "
                "with the reference workload (see baseline.json); the ratio is what `edgeship check` gates.",
            ]
    ev = _evaluation(manifest)
    if ev:
        lines += ["", "## Evaluation", ""]
        if _num(ev.get("accuracy")) is not None:
            lines.append(
                f"Accuracy {ev['accuracy']:.4f}" + (f" on {ev['artifact']}" if ev.get("artifact") else "") + "."
            )
        if isinstance(ev.get("macro"), dict):
            lines.append("Macro: " + ", ".join(f"{k} {_cell(v)}" for k, v in ev["macro"].items()) + ".")
        pc = ev.get("per_class") or {}
        if pc:
            keys = ["precision", "recall", "f1", "support"]
            lines += [""] + _md_table(
                ["class", *keys], [[str(k), *(_cell(v.get(x)) for x in keys)] for k, v in pc.items()], {1, 2, 3, 4}
            )
        cm = ev.get("confusion_matrix")
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
    schedule = (manifest.get("compression") or {}).get("schedule") or {}
    if schedule:
        lines += ["", "## Pruning schedule", ""] + _md_table(
            ["setting", "value"], [[str(k), _cell(v)] for k, v in schedule.items()]
        )
    att = _attempts(manifest)
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
    sq = _sqnr(manifest)
    if sq:
        lines += ["", "## SQNR per tensor (dB)", ""] + _md_table(
            ["tensor", "SQNR dB"], [[_short(k), _cell(v)] for k, v in _flat(sq)], {1}
        )
    return "\n".join(lines) + "\n"


def _labels(manifest: Manifest, n: int) -> list[str]:
    labels = [str(x) for x in (manifest.get("labels") or [])]
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


def render_html(manifest: Manifest, baseline: dict[str, Any] | None = None) -> str:
    """The bundle report as one self-contained HTML page (no external resources)."""
    m = manifest.get("metrics") or {}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>edgeship report: {_h(manifest.get('name'))}</title><style>{_CSS}</style></head><body>",
        f"<h1>edgeship bundle: {_h(manifest.get('name'))}</h1>",
        f'<p class="meta">Built {_h(manifest.get("created"))} by edgeship {_h(manifest.get("edgeship_version"))}, '
        f"recipe sha256 <code>{_h(str(manifest.get('recipe_sha256'))[:12])}</code>"
        + (f", dataset {_h((manifest.get('dataset') or {}).get('name'))}" if manifest.get("dataset") else "")
        + ".</p>",
    ]
    if _num(m.get("keras_float32_accuracy")) is not None:
        parts.append(
            f"<p>Keras float32 test accuracy <b>{m['keras_float32_accuracy']:.4f}</b>"
            + (
                f"; after compression <b>{m['keras_reference_accuracy']:.4f}</b>"
                if _num(m.get("keras_reference_accuracy")) is not None
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
        if baseline:
            t = baseline.get("timing") or {}
            mach = baseline.get("machine") or {}
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
    ev = _evaluation(manifest)
    if ev:
        parts.append("<h2>Evaluation</h2>")
        bits = []
        if _num(ev.get("accuracy")) is not None:
            bits.append(
                f"accuracy <b>{ev['accuracy']:.4f}</b>" + (f" ({_h(ev['artifact'])})" if ev.get("artifact") else "")
            )
        if isinstance(ev.get("macro"), dict):
            bits.append("macro " + ", ".join(f"{_h(k)} {_h(_cell(v))}" for k, v in ev["macro"].items()))
        if bits:
            parts.append("<p>" + "; ".join(bits) + ".</p>")
        cm = ev.get("confusion_matrix")
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
        pc = ev.get("per_class") or {}
        if pc:
            keys = ["precision", "recall", "f1", "support"]
            parts += [
                "<p>Per-class metrics</p>",
                _html_table(
                    ["class", *keys],
                    [[(_h(k), ""), *((_h(_cell(v.get(x))), "n") for x in keys)] for k, v in pc.items()],
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
    att = _attempts(manifest)
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
    sq = _sqnr(manifest)
    if sq:
        parts += [
            "<h2>SQNR per tensor (dB)</h2>",
            _html_table(["tensor", "SQNR dB"], [[(_h(_short(k)), ""), (_h(_cell(v)), "n")] for k, v in _flat(sq)]),
        ]
    timings = manifest.get("timings_s") or {}
    if timings:
        parts += [
            "<h2>Build timings</h2>",
            _html_table(["stage", "seconds"], [[(_h(k), ""), (f"{v:.1f}", "n")] for k, v in timings.items()]),
        ]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_reports(folder: str | Path, manifest: Manifest, baseline: dict[str, Any] | None = None) -> list[Path]:
    """Write ``report.md`` and ``report.html`` into ``folder``; returns their paths."""
    folder = Path(folder)
    md = folder / "report.md"
    md.write_text(render_markdown(manifest, baseline))
    page = folder / "report.html"
    page.write_text(render_html(manifest, baseline), encoding="utf-8")
    return [md, page]
