"""pytest plugin and assertions for a model's CI tests (``pytest11`` entry point ``edgeship``).

Installed with edgeship, the plugin is active in every pytest run, so this module
imports only the standard library and pytest at import time; the runtime (numpy,
the engines) loads when a fixture or assertion is first used. Never TensorFlow.

Point it at a bundle with ``--edgeship-bundle PATH``, the ini option
``edgeship_bundle = PATH`` (relative to the rootdir) or ``EDGESHIP_BUNDLE=PATH``::

    from edgeship.testing import assert_accuracy, assert_latency_ratio

    def test_accuracy(edgeship_bundle):
        assert_accuracy(edgeship_bundle, at_least=0.97)

    def test_int8_tflite_not_slower(edgeship_bundle):
        assert_latency_ratio(edgeship_bundle, format="tflite", precision="int8", tolerance=0.25)

    def test_one_prediction(edgeship_model, edgeship_eval):
        x, y = edgeship_eval
        assert edgeship_model.predict_labels(x[:1]) == [str(y[0])]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from edgeship.core.bundle import ArtifactRecord

ENV_VAR = "EDGESHIP_BUNDLE"

__all__ = ["assert_accuracy", "assert_check", "assert_latency_ratio", "measure_accuracy"]


# -- pytest hooks and fixtures -------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("edgeship", "edgeship model bundles")
    group.addoption(
        "--edgeship-bundle",
        dest="edgeship_bundle",
        default=None,
        metavar="PATH",
        help=f"bundle folder for the edgeship_* fixtures (else ini edgeship_bundle, else ${ENV_VAR})",
    )
    parser.addini("edgeship_bundle", "bundle folder for the edgeship_* fixtures, relative to the rootdir", default="")


def _configured_bundle(config: pytest.Config) -> Path | None:
    opt = config.getoption("edgeship_bundle", default=None)
    if opt:
        return Path(opt)
    ini = config.getini("edgeship_bundle")
    if ini:
        return Path(config.rootpath, str(ini))
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else None


@pytest.fixture(scope="session")
def edgeship_bundle(pytestconfig: pytest.Config) -> Path:
    """The bundle folder under test (``--edgeship-bundle``, ini ``edgeship_bundle`` or ``$EDGESHIP_BUNDLE``)."""
    path = _configured_bundle(pytestconfig)
    if path is None:
        pytest.fail(
            f"edgeship_bundle fixture: no bundle configured. Received: no --edgeship-bundle, no ini edgeship_bundle, "
            f"no ${ENV_VAR}. Pass --edgeship-bundle build/<name>.",
            pytrace=False,
        )
    from edgeship.runtime import read_manifest

    read_manifest(path)  # a clear BundleError for a wrong folder
    return path


@pytest.fixture(scope="session")
def edgeship_eval(edgeship_bundle: Path) -> tuple[Any, Any]:
    """The bundle's held-out sample ``(x, y)`` from ``eval.npz``."""
    from edgeship.runtime import load_eval

    return load_eval(edgeship_bundle)


@pytest.fixture
def edgeship_load(edgeship_bundle: Path) -> Iterator[Callable[..., Any]]:
    """A factory: ``edgeship_load(format=None, precision=None, threads=None)`` -> loaded Model, closed after the test."""
    from edgeship.runtime import load

    models: list[Any] = []

    def _load(format: str | None = None, precision: str | None = None, threads: int | None = None) -> Any:
        model = load(edgeship_bundle, format=format, precision=precision, threads=threads)
        models.append(model)
        return model

    yield _load
    for m in models:
        m.close()


@pytest.fixture
def edgeship_model(edgeship_load: Callable[..., Any]) -> Any:
    """The bundle's default artifact, loaded (sha256-verified) and closed after the test."""
    return edgeship_load()


# -- assertions ------------------------------------------------------------------------
def _entries(
    bundle: str | os.PathLike[str], format: str | None, precision: str | None
) -> tuple[Path, list[ArtifactRecord]]:
    from edgeship.runtime import BundleError, read_manifest, verify_bundle

    folder = Path(bundle)
    manifest = read_manifest(folder)
    verify_bundle(folder, manifest)
    hits = manifest.artifact(format, precision)
    if not hits:
        have = ", ".join(f"{a.format}/{a.precision}" for a in manifest.artifacts)
        raise BundleError(f"No artifact with format={format!r} precision={precision!r}. Received bundle with: {have}.")
    return folder, hits


def measure_accuracy(bundle: Any, *, format: str | None = None, precision: str | None = None) -> dict[str, float]:
    """Top-1 accuracy on the bundle's ``eval.npz`` per artifact file (or of one loaded ``Model``)."""
    from edgeship.core.metrics import top1_accuracy
    from edgeship.runtime import load_eval, load_file

    if hasattr(bundle, "predict"):  # a loaded Model: evaluate it on its bundle's eval.npz
        x, y = load_eval(Path(bundle.path).parent)
        return {Path(bundle.path).name: top1_accuracy(bundle.predict(x), y)}
    folder, entries = _entries(bundle, format, precision)
    x, y = load_eval(folder)
    result = {}
    for e in entries:
        with load_file(folder / e.file, e.format, precision=e.precision) as model:
            result[e.file] = top1_accuracy(model.predict(x), y)
    return result


def assert_accuracy(
    bundle: Any, at_least: float, *, format: str | None = None, precision: str | None = None
) -> dict[str, float]:
    """Fail unless every selected artifact reaches ``at_least`` top-1 accuracy on ``eval.npz``.

    Args:
        bundle: Bundle folder, or a loaded ``edgeship.runtime.Model`` from a bundle.
        at_least: Minimum accuracy in [0, 1].
        format, precision: Restrict to matching artifacts (default: all of them).

    Returns:
        The measured accuracy per artifact file.
    """
    if not isinstance(at_least, (int, float)) or not 0.0 <= at_least <= 1.0:
        raise ValueError(f"assert_accuracy expects at_least in [0, 1]. Received: {at_least!r}.")
    acc = measure_accuracy(bundle, format=format, precision=precision)
    low = {k: v for k, v in acc.items() if v < at_least}
    if low:
        raise AssertionError(
            f"accuracy below {at_least:.4f} on eval.npz: "
            + ", ".join(f"{k} {v:.4f}" for k, v in low.items())
            + (
                f" (passing: {', '.join(f'{k} {v:.4f}' for k, v in acc.items() if k not in low)})"
                if len(low) < len(acc)
                else ""
            )
        )
    return acc


def assert_latency_ratio(
    bundle: str | os.PathLike[str],
    *,
    at_most: float | None = None,
    tolerance: float | None = None,
    baseline: str | os.PathLike[str] | None = None,
    format: str | None = None,
    precision: str | None = None,
    rounds: int | None = None,
) -> dict[str, float]:
    """Fail when an artifact's latency, as a ratio to the reference workload, is too high.

    The ratio is timed in this process, interleaved with the fixed reference model
    on the same engine and thread count (see ``edgeship check``), so it holds on a
    slower or busier CI machine where a wall-clock limit would flake.

    Args:
        bundle: Bundle folder.
        at_most: An absolute ceiling on the ratio. When ``None``, compare with the
            baseline: the ratio may exceed the baseline's by ``tolerance``.
        tolerance: Relative allowance over the baseline ratio (default: the
            baseline's stored tolerance, else 0.25).
        baseline: Baseline file (default ``BUNDLE/baseline.json``).
        format, precision: Restrict to matching artifacts (default: all).
        rounds: Interleaved timing rounds (default: the baseline's, else 15).

    Returns:
        The measured ratio per artifact file.
    """
    from edgeship.runtime import BASELINE_FILE, load_eval, read_baseline, resolve_tolerances
    from edgeship.runtime import CHECK_ROUNDS as DEFAULT_ROUNDS

    folder, entries = _entries(bundle, format, precision)
    base = None if at_most is not None else read_baseline(Path(baseline) if baseline else folder / BASELINE_FILE)
    timing = (base or {}).get("timing") or {}
    threads = timing.get("threads", 1)
    tol = resolve_tolerances(base or {}, {"latency": tolerance})["latency"]
    x, _ = load_eval(folder)
    n_rounds = int(rounds or timing.get("rounds") or DEFAULT_ROUNDS)
    ratios, bad = {}, []
    for e in entries:
        ratios[e.file] = ratio = _latency_ratio(folder, e, x, threads=threads, rounds=n_rounds)
        limit = float(at_most) if at_most is not None else _baseline_limit(base, e.file, tol)
        if limit is None:
            bad.append(f"{e.file}: not in the baseline")
        elif ratio > limit:
            bad.append(f"{e.file} {ratio:.3f}x > {limit:.3f}x")
    if bad:
        raise AssertionError("latency ratio to the reference too high: " + "; ".join(bad))
    return ratios


def _latency_ratio(folder: Path, entry: Any, x: Any, *, threads: int, rounds: int) -> float:
    """One artifact's latency as a ratio to the reference workload, timed interleaved with it."""
    from edgeship.runtime import load_file, measure_latency_ratio
    from edgeship.runtime import timing_input as _timing_input

    with load_file(folder / entry.file, entry.format, threads=threads, precision=entry.precision) as model:
        return measure_latency_ratio(model, _timing_input(model, x), rounds=rounds, threads=threads)["ratio"]


def _baseline_limit(base: dict[str, Any] | None, file: str, tol: float) -> float | None:
    """The baseline's ratio for ``file`` raised by ``tol``; ``None`` when the baseline has no entry for it."""
    ref = (base["artifacts"].get(file) or {}).get("latency_ratio") if base else None
    return None if ref is None else ref * (1 + tol)


def assert_check(
    bundle: str | os.PathLike[str],
    baseline: str | os.PathLike[str] | None = None,
    **tolerances: float,
) -> Any:
    """The whole ``edgeship check`` gate as one assertion; the failure message is its table.

    ``tolerances``: ``accuracy_tol``, ``latency_tol``, ``size_tol``, ``rounds``.
    """
    from edgeship.runtime import check_bundle

    result = check_bundle(bundle, baseline, **tolerances)
    if not result.passed:
        raise AssertionError("edgeship check failed:\n" + result.table())
    return result
