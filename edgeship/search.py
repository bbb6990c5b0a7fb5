"""``edgeship search``: an Optuna study over a recipe's ``[search]`` space, measured on the real int8 artifacts.

Each trial builds the whole pipeline (``edgeship.build.build``) into
``OUT/trials/trial-NNNN`` and reads, from the bundle, the int8 TFLite file's
flash (file bytes), RAM (``estimates.ram_arena_bytes``) and latency (p50 ms
and the ratio to the shipped reference model, from ``baseline.json``), and the
trained float32 model's validation accuracy. Two objectives: maximize
accuracy, minimize latency (ms). The device limits go through Optuna's
constraint support (``Trial.set_constraint``, value <= 0 is feasible). The study lives in SQLite
(``sqlite:///OUT/study.db``) by default, so the same command resumes it up to
the requested number of completed trials.

Hopeless trials are pruned on their per-epoch validation accuracy by Optuna's
``MedianPruner``: after ``PRUNER_WARMUP_EPOCHS`` epochs, a trial whose best
validation accuracy so far is below the median of the completed trials' at the
same epoch stops (state ``PRUNED``, with ``pruned_at_epoch`` in trials.csv).
Optuna's pruners judge single-objective studies only (``Trial.report`` raises
``NotImplementedError`` in a multi-objective one), so each trial's curve is
reported to a companion trial in the single-objective study ``<name>.curves``
in the same storage; workers sharing the study share the curves too.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import dataclasses
import io
import math
import warnings
from pathlib import Path
from typing import Any

from edgeship.core.errors import EdgeshipError, SearchError
from edgeship.core.progress import say
from edgeship.core.tf import require
from edgeship.recipe import Recipe, SearchRange

__all__ = ["Limits", "SearchResult", "search", "trial_recipe"]

#: Where each searched key lives in the recipe.
_SECTION = {"arch": "model", "width": "model", "alpha": "model", "epochs": "train",
            "learning_rate": "train", "dropout": "train", "target_sparsity": "prune"}

#: MedianPruner settings: no pruning until this many trials completed, nor before this many epochs ran.
PRUNER_STARTUP_TRIALS = 3
PRUNER_WARMUP_EPOCHS = 1


#: A running trial writes a heartbeat this often; one silent for GRACE_SECONDS (its process was killed)
#: is marked FAIL when the next trial of the study starts.
HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 30


@dataclasses.dataclass(frozen=True)
class Limits:
    """The device limits a trial must meet; ``None`` is no limit."""

    max_flash: int | None = None
    max_ram: int | None = None
    max_latency_ms: float | None = None

    def violations(self, m: dict[str, float]) -> dict[str, float]:
        """Optuna constraint values, one per limit set: measured / limit - 1 (<= 0 is feasible)."""
        pairs = {"flash": (m["flash_bytes"], self.max_flash), "ram": (m["ram_bytes"], self.max_ram),
                 "latency": (m["latency_ms"], self.max_latency_ms)}
        return {name: value / limit - 1.0 for name, (value, limit) in pairs.items() if limit is not None}


@dataclasses.dataclass(frozen=True)
class SearchResult:
    """What a search wrote: the best trial's number, recipe and measurements, and the output files."""

    best_trial: int
    best: Recipe
    metrics: dict[str, float]
    best_toml: Path
    trials_csv: Path
    report_html: Path


def trial_recipe(recipe: Recipe, params: dict[str, Any]) -> Recipe:
    """``recipe`` with the sampled ``params`` applied and ``[search]`` cleared (validated like any recipe)."""
    data = recipe.to_dict()
    for key, value in params.items():
        if key == "input_size":  # square images; the images: loader resizes to it
            data["data"]["image_size"] = [int(value), int(value)]
        else:
            data[_SECTION[key]][key] = value
    if "target_sparsity" in params:
        data["prune"]["enabled"] = True
    data["search"] = {}
    return Recipe.from_dict(data, source=f"search trial of {recipe.name}")


def _suggest(trial: Any, space: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, spec in space.items():
        if isinstance(spec, SearchRange):
            params[key] = trial.suggest_float(key, spec.low, spec.high, log=spec.log)
        else:
            params[key] = trial.suggest_categorical(key, list(spec))
    return params


def measure(bundle: Path) -> dict[str, float]:
    """Flash, RAM, latency (p50 ms and ratio to the reference) of the int8 TFLite file, and validation accuracy."""
    from edgeship.runtime import BASELINE_FILE, read_baseline, read_manifest

    manifest = read_manifest(bundle)  # through the bundle records, as every reader of a manifest
    found = manifest.artifact("tflite", "int8")
    if not found:
        raise SearchError(f"Expected an int8 TFLite file in {bundle}. Received: "
                          f"{[a.file for a in manifest.artifacts]}. Fix: add \"int8\" to [quantize] tflite.")
    art = found[0]
    timed = read_baseline(bundle / BASELINE_FILE)["artifacts"][art.file]
    metrics = manifest.metrics
    acc = metrics.keras_float32_val_accuracy if metrics else None
    return {
        "accuracy": float(acc if acc is not None else metrics.keras_reference_accuracy),  # type: ignore[union-attr]
        "latency_ms": float(timed["latency_ms"]["p50"]),
        "latency_ratio": float(timed["latency_ratio"]),
        "flash_bytes": float(art.bytes),
        "ram_bytes": float(art.estimates.ram_arena_bytes),  # type: ignore[union-attr]
    }


class _Objective:
    """One trial: sample, build into OUT/trials/trial-NNNN, measure, record the constraints."""

    def __init__(self, recipe: Recipe, out: Path, limits: Limits, curves: Any) -> None:
        self.recipe, self.out, self.limits, self.curves = recipe, out, limits, curves
        self.space = recipe.search.declared()

    def __call__(self, trial: Any) -> tuple[float, float]:
        from edgeship.build import build

        optuna = require("optuna", "edgeship search")
        params = _suggest(trial, self.space)
        recipe = trial_recipe(self.recipe, params)
        trial.set_user_attr("recipe", recipe.to_dict())
        bundle = self.out / "trials" / f"trial-{trial.number:04d}"
        say(f"search trial {trial.number}: {params}")
        curve = _Curve(optuna, self.curves, trial)
        try:
            build(recipe, bundle, on_epoch=curve.epoch)
        except optuna.TrialPruned:
            curve.end(optuna.trial.TrialState.PRUNED)
            say(f"search trial {trial.number}: pruned after epoch {len(curve.values)}")
            raise
        except EdgeshipError as exc:  # e.g. a budget the sampled point cannot meet: this trial fails, the study goes on
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
            curve.end(optuna.trial.TrialState.FAIL)
            raise
        except BaseException:
            curve.end(optuna.trial.TrialState.FAIL)
            raise
        m = measure(bundle)
        curve.end(optuna.trial.TrialState.COMPLETE, m["accuracy"])
        for key, value in m.items():
            trial.set_user_attr(key, value)
        for name, value in self.limits.violations(m).items():
            trial.set_constraint(name, value)  # Optuna's constraint support: the samplers prefer feasible trials
        trial.set_user_attr("bundle", str(bundle))
        return m["accuracy"], m["latency_ms"]


class _Curve:
    """One trial's per-epoch validation accuracy, reported to its companion trial in ``<name>.curves``."""

    def __init__(self, optuna: Any, curves: Any, trial: Any) -> None:
        self.optuna, self.curves, self.trial = optuna, curves, trial
        self.shadow = curves.ask()
        self.shadow.set_user_attr("search_trial", trial.number)
        self.values: list[float] = []

    def epoch(self, epoch: int, logs: dict[str, float]) -> None:
        """Keras' epoch end: report ``val_accuracy``; raise ``optuna.TrialPruned`` when the pruner says so."""
        acc = logs.get("val_accuracy")
        if acc is None:
            return
        self.values.append(acc)
        self.trial.set_user_attr("val_accuracy_curve", list(self.values))
        self.shadow.report(acc, epoch)
        if self.shadow.should_prune():
            self.trial.set_user_attr("pruned_at_epoch", epoch + 1)
            raise self.optuna.TrialPruned(
                f"validation accuracy {max(self.values):.4f} by epoch {epoch + 1} is below the median of the "
                "completed trials at that epoch")

    def end(self, state: Any, value: float | None = None) -> None:
        with contextlib.suppress(Exception):  # bookkeeping for the pruner; never hides the trial's own outcome
            self.curves.tell(self.shadow, value if state == self.optuna.trial.TrialState.COMPLETE else None,
                             state=state)


def search(recipe: Recipe, out: str | Path, trials: int, limits: Limits = Limits(),
           storage: str | None = None, workers: int = 1) -> SearchResult:
    """Run (or resume) the study until it holds ``trials`` completed trials; write best.toml, trials.csv, the report.

    ``workers`` > 1 starts that many processes on this machine against the same
    storage; each stops when the study holds ``trials`` completed trials (a
    trial already running then still finishes, so the study may end up to
    ``workers - 1`` trials past the count).

    Raises:
        SearchError: no completed trial meets every limit (names the closest one),
            the recipe has no ``[search]`` keys, or a worker process died.
    """
    optuna = require("optuna", "edgeship search")
    out = Path(out)
    _check_recipe(recipe)
    out.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{(out / 'study.db').absolute()}"
    study = _open_study(optuna, recipe, url, 0)
    done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    if trials > done:
        say(f"search: {done} completed trial(s) in the study, running {trials - done} more on {workers} worker(s)")
        try:
            if workers == 1:
                _optimize(recipe, out, limits, url, trials, 0)
            else:
                _spawn(recipe, out, limits, url, trials, workers)
        except KeyboardInterrupt:  # Ctrl-C: the outputs reflect what finished, then the interrupt goes on
            with contextlib.suppress(SearchError):
                _write_outputs(optuna, _open_study(optuna, recipe, url, 0), out, limits)
            raise
    return _write_outputs(optuna, _open_study(optuna, recipe, url, 0), out, limits)


def _optimize(recipe: Recipe, out: Path, limits: Limits, url: str, trials: int, worker: int) -> None:
    """One worker: run trials until the study holds ``trials`` completed ones."""
    optuna = require("optuna", "edgeship search")
    study = _open_study(optuna, recipe, url, worker)
    done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    stop = optuna.study.MaxTrialsCallback(trials, states=(optuna.trial.TrialState.COMPLETE,))
    curves = _open_curves(optuna, recipe, url)
    study.optimize(_Objective(recipe, out, limits, curves), n_trials=max(0, trials - done), catch=(EdgeshipError,),
                   callbacks=[stop])


def _worker_main(recipe: dict[str, Any], out: str, limits: Limits, url: str, trials: int, worker: int) -> None:
    from edgeship.core import progress as _progress

    _progress.configure("quiet")
    _optimize(Recipe.from_dict(recipe), Path(out), limits, url, trials, worker)


def _spawn(recipe: Recipe, out: Path, limits: Limits, url: str, trials: int, workers: int) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # TensorFlow does not survive fork
    procs = [ctx.Process(target=_worker_main, args=(recipe.to_dict(), str(out), limits, url, trials, i))
             for i in range(workers)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        raise
    failed = [(i, p.exitcode) for i, p in enumerate(procs) if p.exitcode != 0]
    if failed:
        raise SearchError(f"Expected {workers} search workers to exit 0. Received: exit codes {failed} "
                          "(worker, code). Fix: see the worker's error above; finished trials are kept, rerun to resume.")


def _check_recipe(recipe: Recipe) -> None:
    """Fail before the first trial on what every trial would fail on."""
    from edgeship import train

    if not recipe.search.declared():
        raise SearchError(f"Expected a [search] table with at least one key in recipe {recipe.name}. "
                          "Received: none. Fix: add e.g. [search] width = [8, 16].")
    if "int8" not in recipe.quantize.tflite or "tflite" not in recipe.export.formats or not recipe.quantize.enabled:
        raise SearchError(f"Expected a recipe that ships an int8 TFLite file (search measures it). Received: "
                          f"[quantize] tflite = {recipe.quantize.tflite}, [export] formats = {recipe.export.formats}. "
                          "Fix: add \"int8\" to [quantize] tflite and \"tflite\" to [export] formats.")
    for arch in recipe.search.arch or []:
        train.model_info(arch)  # RecipeError listing the zoo's names


def _open_study(optuna: Any, recipe: Recipe, url: str, worker: int) -> Any:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Heartbeats: a trial whose process was killed is marked FAIL by the next run after the grace period.
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5; they are what marks a killed trial
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_SECONDS,
                                             grace_period=GRACE_SECONDS)
    try:
        existing = len(optuna.load_study(study_name=recipe.name, storage=storage).trials)
    except KeyError:  # no such study yet
        existing = 0
    # Seeded past the trials the study has (and apart per worker), so a resumed run does not repeat their points.
    sampler = optuna.samplers.NSGAIISampler(seed=recipe.seed + existing + 1000 * worker)
    return optuna.create_study(study_name=recipe.name, storage=storage, load_if_exists=True, sampler=sampler,
                               directions=["maximize", "minimize"])


def _open_curves(optuna: Any, recipe: Recipe, url: str) -> Any:
    """The single-objective companion study the MedianPruner judges per-epoch validation accuracy in."""
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
    pruner = optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=PRUNER_WARMUP_EPOCHS)
    return optuna.create_study(study_name=f"{recipe.name}.curves", storage=optuna.storages.RDBStorage(
        url, engine_kwargs=engine), load_if_exists=True, direction="maximize", pruner=pruner)


def _rows(optuna: Any, study: Any, limits: Limits) -> list[dict[str, Any]]:
    names = sorted({k for t in study.trials for k in t.params})
    rows = []
    for t in study.trials:
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name}
        row.update({k: t.params.get(k) for k in names})
        for key in ("accuracy", "latency_ms", "latency_ratio", "flash_bytes", "ram_bytes"):
            row[key] = t.user_attrs.get(key)
        complete = t.state == optuna.trial.TrialState.COMPLETE and row["accuracy"] is not None
        # Judged on this run's limits: a resumed search may set other limits than the trials were sampled under.
        row["feasible"] = complete and all(c <= 0 for c in limits.violations(row).values())
        row["pruned_at_epoch"] = t.user_attrs.get("pruned_at_epoch")
        row["error"] = t.user_attrs.get("error", "")
        rows.append(row)
    return rows


def _write_outputs(optuna: Any, study: Any, out: Path, limits: Limits) -> SearchResult:
    rows = _rows(optuna, study, limits)
    trials_csv = out / "trials.csv"
    with trials_csv.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["trial"])
        writer.writeheader()
        writer.writerows(rows)
    report = out / "search_report.html"
    report.write_text(_html(rows, limits, study.study_name), encoding="utf-8")
    feasible = [r for r in rows if r["feasible"]]
    if not feasible:
        raise SearchError(_no_feasible(study, rows, limits))
    best = max(feasible, key=lambda r: (r["accuracy"], -r["latency_ms"]))
    recipe = Recipe.from_dict(study.trials[best["trial"]].user_attrs["recipe"], source="search trial")
    best_toml = out / "best.toml"
    best_toml.write_text(recipe.to_toml(), encoding="utf-8")
    say(f"search: best feasible trial {best['trial']}: accuracy {best['accuracy']:.4f}, "
        f"{best['latency_ms']:.4f} ms, {int(best['flash_bytes'])} B flash -> {best_toml}")
    metrics = {k: best[k] for k in ("accuracy", "latency_ms", "latency_ratio", "flash_bytes", "ram_bytes")}
    return SearchResult(best["trial"], recipe, metrics, best_toml, trials_csv, report)


def _no_feasible(study: Any, rows: list[dict[str, Any]], limits: Limits) -> str:
    measured = [r for r in rows if r["accuracy"] is not None]
    if not measured:
        return (f"Expected at least one completed trial in study {study.study_name}. Received: {len(rows)} trial(s), "
                "none completed (see trials.csv, column error). Fix: widen the [search] space or the budget.")
    closest = min(measured, key=lambda r: sum(max(0.0, c) for c in limits.violations(r).values()))
    return (f"Expected a trial within {_limits_text(limits)}. Received: none of {len(measured)} completed trial(s); "
            f"closest is trial {closest['trial']} ({int(closest['flash_bytes'])} B flash, "
            f"{int(closest['ram_bytes'])} B RAM, {closest['latency_ms']:.4f} ms). "
            "Fix: relax the limits or search smaller models.")


def _limits_text(limits: Limits) -> str:
    parts = [f"{name} {value}" for name, value in
             (("flash <=", limits.max_flash), ("RAM <=", limits.max_ram), ("latency ms <=", limits.max_latency_ms))
             if value is not None]
    return ", ".join(parts) or "no limits"


def _plot(rows: list[dict[str, Any]], limits: Limits) -> str:
    """The accuracy-vs-latency scatter (feasible, infeasible, Pareto front), as a base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    done = [r for r in rows if r["accuracy"] is not None]
    fig, ax = plt.subplots(figsize=(6, 4))
    for feasible, style in ((True, "o"), (False, "x")):
        pts = [r for r in done if r["feasible"] == feasible]
        ax.scatter([r["latency_ms"] for r in pts], [r["accuracy"] for r in pts], marker=style,
                   label="meets limits" if feasible else "misses a limit")
    front = _pareto([r for r in done if r["feasible"]])
    if front:
        ax.plot([r["latency_ms"] for r in front], [r["accuracy"] for r in front], "-", color="green", label="Pareto front")
    if limits.max_latency_ms is not None:
        ax.axvline(limits.max_latency_ms, color="red", linestyle="--", label=f"max latency {limits.max_latency_ms} ms")
    ax.set_xlabel("int8 TFLite latency, p50 ms")
    ax.set_ylabel("validation accuracy (float32)")
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _pareto(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows no other row beats on both accuracy (higher) and latency (lower), by latency."""
    front, best = [], -math.inf
    for r in sorted(rows, key=lambda r: (r["latency_ms"], -r["accuracy"])):
        if r["accuracy"] > best:
            front.append(r)
            best = r["accuracy"]
    return front


def _html(rows: list[dict[str, Any]], limits: Limits, name: str) -> str:
    import html

    cols = list(rows[0]) if rows else []
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(r[c]))}</td>" for c in cols) + "</tr>" for r in rows)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>edgeship search: {html.escape(name)}</title>"
            "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body>"
            f"<h1>edgeship search: {html.escape(name)}</h1><p>Limits: {html.escape(_limits_text(limits))}. "
            f"Flash and RAM limits are not on the axes: trials that miss them are drawn as x.</p>"
            f"<img alt='Pareto front' src='data:image/png;base64,{_plot(rows, limits)}'>"
            f"<table><tr>{head}</tr>{body}</table></body></html>")


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)
