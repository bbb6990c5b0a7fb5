"""Cross-platform parity: every artifact of a bundle on a target platform (emulated) against the host.

``edgeship check BUNDLE --platform linux-aarch64`` predicts ``eval.npz`` with
every artifact twice, with the same edgeship runtime code: on the host, and in
the emulated arm64 root (:mod:`edgeship.platforms`: aarch64 numpy, onnxruntime
and LiteRT, run by qemu), then compares the outputs per artifact.
``--platform linux-x86_64-avx2`` / ``linux-x86_64-sse4`` run the host's own venv
under ``qemu-x86_64 -cpu Haswell`` / ``Nehalem`` instead (same engines, another
CPU: the kernels the engines pick there). The comparison:

* float artifacts (float32, float16): max abs diff <= ``float_max_abs_diff`` (1e-5);
* quantized artifacts: SQNR >= ``min_sqnr_db`` (30 dB) and top-1 agreement >=
  ``min_top1_agreement`` (0.99), the host's outputs the reference.

The rule is build parity's (:mod:`edgeship.core.parity`): per output, top-1
agreement only on the outputs the bundle's task says hold class scores
(none for an anomaly detector's reconstruction), over the decisive samples.

ARM's int8 kernels are not x86's, so a quantized artifact may differ by a few
output quantization steps; these limits say how much is acceptable. The result
is recorded in the manifest as ``parity.cross_platform[PLATFORM]`` (and in the
report when the build extra is installed); a miss raises
:class:`~edgeship.core.errors.ParityError` after recording it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform as _platform
import tempfile
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from edgeship import platforms
from edgeship.core.bundle import (
    CrossPlatformParity,
    Manifest,
    ParitySummary,
    PlatformArtifactParity,
    is_float_precision,
    write_manifest,
)
from edgeship.core.errors import ParityError, PlatformError
from edgeship.core.parity import compare
from edgeship.core.task import task_of

LIMITS: dict[str, float] = {"float_max_abs_diff": 1e-5, "min_sqnr_db": 30.0, "min_top1_agreement": 0.99}


def host_platform() -> str:
    return f"{_platform.system().lower()}-{_platform.machine()}"


def _device_outputs(bundle: Path, name: str, root: Path) -> tuple[dict[str, np.ndarray], dict[str, str], list[str]]:
    """Every artifact's outputs on eval.npz inside the emulated root of ``name``, with the host's edgeship code;
    the root's engine versions and the CPU features the engines saw there."""
    with platforms.mounted(root), platforms.workdir(root) as (host, inside):
        import shutil

        shutil.copytree(bundle, host / "bundle", ignore=shutil.ignore_patterns("device_profile.json"))
        platforms.stage_host_runtime(host / "py")
        proc = platforms.chroot_run(root, ["python", "-m", "edgeship.platforms", "predict", f"{inside}/bundle",
                                           f"{inside}/out.npz"], env={"PYTHONPATH": f"{inside}/py"}, timeout=3600)
        info = _target_info(proc, bundle, name, f"emulated in {root}", "rebuild the root if it is damaged")
        with np.load(host / "out.npz") as z:
            return {k: z[k] for k in z.files}, platforms.root_versions(root), info.get("cpu_features", [])


def _host_venv_outputs(bundle: Path, name: str) -> tuple[dict[str, np.ndarray], dict[str, str], list[str]]:
    """Every artifact's outputs on eval.npz by the host's venv under qemu-user as ``name``'s CPU; the engine
    versions (the host's) and the CPU features the engines saw (CPUID under qemu)."""
    import shutil

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.npz"
        # A copy without the host's device profile, as in the root: the target's load must not follow the host's.
        shutil.copytree(bundle, Path(tmp) / "bundle", ignore=shutil.ignore_patterns("device_profile.json"))
        proc = platforms.host_venv_run(name, ["-m", "edgeship.platforms", "predict", f"{tmp}/bundle", str(out)])
        info = _target_info(proc, bundle, name, f"the host's venv under qemu -cpu {platforms.platform(name).qemu_cpu}",
                            f"check that `{platforms.QEMU_USER_APT}` works: qemu-x86_64 -cpu Haswell /bin/true")
        with np.load(out) as z:
            return {k: z[k] for k in z.files}, platforms.host_versions(), info.get("cpu_features", [])


def _target_info(proc: Any, bundle: Path, name: str, how: str, fix: str) -> dict[str, Any]:
    """The JSON line ``python -m edgeship.platforms predict`` printed; PlatformError when it failed."""
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-8:])
        raise PlatformError(f"Expected every artifact of {bundle} to run on {name} ({how}). Received: exit "
                            f"{proc.returncode}: {tail}. Fix: check the bundle loads on the host "
                            f"(`edgeship check {bundle}`); {fix}.")
    info: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    if info.get("machine") != platforms.platform(name).machine:
        raise PlatformError(f"Expected {name} to run as {platforms.platform(name).machine}. Received: "
                            f"{info.get('machine')}. Fix: check the qemu used ({how}).")
    return info


def _host_outputs(bundle: Path) -> dict[str, np.ndarray]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "host.npz"
        platforms.predict_all(bundle, out)
        with np.load(out) as z:
            return {k: z[k] for k in z.files}


def judge(file: str, quantized: bool, host: list[np.ndarray] | dict[str, np.ndarray],
          device: list[np.ndarray] | dict[str, np.ndarray], limits: dict[str, float],
          classifier: Collection[str] | None = None) -> tuple[PlatformArtifactParity, str | None]:
    """One file's outputs on the target against the host's (the reference), by the one parity rule.

    :func:`edgeship.core.parity.compare` with the platform limits: a float file by max abs diff, a quantized
    one by SQNR and top-1 agreement on the decisive samples of the outputs in ``classifier`` (``None``: every
    2-D output with several columns). Returns the record and the failure text (``None`` when it passed).
    """
    ref, got = _named(host), _named(device)
    r = compare(ref, got, quantized=quantized, atol=limits["float_max_abs_diff"],
                min_top1=limits["min_top1_agreement"], min_sqnr_db=limits["min_sqnr_db"], label=file,
                classifier=classifier)
    diffs = [o.max_abs_diff for o in r.outputs.values()]
    diff = max(diffs, key=lambda d: math.inf if isinstance(d, str) else d) if diffs else 0.0
    sqnrs = [o.sqnr_db for o in r.outputs.values()]
    top1s = [o.top1_agreement for o in r.outputs.values() if o.top1_agreement is not None]
    record = PlatformArtifactParity(
        check="quantized" if quantized else "float", max_abs_diff=diff,
        sqnr_db=None if not sqnrs or None in sqnrs else min(s for s in sqnrs if s is not None),
        top1_agreement=min(top1s) if top1s else None, passed=r.passed, outputs=r.outputs)
    return record, "; ".join(r.failures) or None


def _named(outputs: list[np.ndarray] | dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return dict(outputs) if isinstance(outputs, dict) else {f"output_{i}": o for i, o in enumerate(outputs)}


def compare_platform(host: dict[str, np.ndarray], device: dict[str, np.ndarray], manifest: Manifest,
                     limits: dict[str, float]) -> tuple[dict[str, PlatformArtifactParity], list[str]]:
    """Per artifact: :func:`judge` by its precision, top-1 on the outputs the manifest's task says hold class scores."""
    task = task_of(manifest)
    results: dict[str, PlatformArtifactParity] = {}
    failures: list[str] = []
    for a in manifest.artifacts:
        keys = sorted(k for k in host if k.startswith(f"{a.file}/"))
        if not keys or any(k not in device for k in keys):
            failures.append(f"{a.file}: no outputs from the target")
            continue
        ref = {k.split("/", 1)[1]: host[k] for k in keys}
        got = {k.split("/", 1)[1]: device[k] for k in keys}
        classifier = task.classifier_outputs(ref, manifest.label_list())
        results[a.file], failure = judge(a.file, not is_float_precision(a.precision), ref, got, limits, classifier)
        if failure:
            failures.append(failure)
    return results, failures


def run_files_on_device(files: list[Path], x: np.ndarray, name: str = "linux-aarch64",
                        root: Path | None = None) -> dict[str, list[np.ndarray]]:
    """Predict ``x`` with each model file on ``name`` (emulated); per file name, the outputs."""
    import shutil

    if platforms.platform(name).host_venv:
        with tempfile.TemporaryDirectory() as tmp:
            np.save(Path(tmp) / "x.npy", x)
            proc = platforms.host_venv_run(name, ["-m", "edgeship.platforms", "predict-files", f"{tmp}/x.npy",
                                                  f"{tmp}/out.npz", *map(str, files)])
            return _file_outputs(proc, files, name, Path(tmp) / "out.npz")
    root = platforms.require_root(name, root)
    with platforms.mounted(root), platforms.workdir(root) as (host, inside):
        (host / "models").mkdir()
        for f in files:
            shutil.copy(f, host / "models" / f.name)
        np.save(host / "x.npy", x)
        platforms.stage_host_runtime(host / "py")
        proc = platforms.chroot_run(root, ["python", "-m", "edgeship.platforms", "predict-files", f"{inside}/x.npy",
                                           f"{inside}/out.npz", *[f"{inside}/models/{f.name}" for f in files]],
                                    env={"PYTHONPATH": f"{inside}/py"}, timeout=3600)
        return _file_outputs(proc, files, name, host / "out.npz")


def _file_outputs(proc: Any, files: list[Path], name: str, out: Path) -> dict[str, list[np.ndarray]]:
    if proc.returncode != 0:
        raise PlatformError(f"Expected the files to run on {name}. Received: {proc.stderr.strip()[-800:]}. "
                            "Fix: check they load on the host.")
    with np.load(out) as z:
        return {f.name: [z[k] for k in sorted(z.files) if k.startswith(f"{f.name}/")] for f in files}


def measure_platform(bundle: str | Path, name: str = "linux-aarch64", *, limits: dict[str, float] | None = None,
                     root: Path | None = None) -> CrossPlatformParity:
    """Run every artifact of ``bundle`` on ``name`` (emulated) and compare with the host; records nothing, raises
    only when the target cannot run (``PlatformError``). ``root``: the emulated root (rooted platforms only)."""
    from edgeship.runtime import read_manifest, verify_bundle

    bundle = Path(bundle)
    limits = {**LIMITS, **(limits or {})}
    manifest = read_manifest(bundle)
    verify_bundle(bundle, manifest)
    plat = platforms.platform(name)
    if plat.host_venv:
        platforms.require_host_venv(name)
        device, engines, features = _host_venv_outputs(bundle, name)
        cpu = str(plat.qemu_cpu)
    else:
        root = platforms.require_root(name, root)
        device, engines, features = _device_outputs(bundle, name, root)
        cpu = platforms.qemu_cpu()
    host = _host_outputs(bundle)
    artifacts, failures = compare_platform(host, device, manifest, limits)
    samples = len(next(iter(host.values()))) if host else 0
    return CrossPlatformParity(platform=name, host=host_platform(), emulated=True, passed=not failures,
                               samples=samples, limits=limits, artifacts=artifacts, failures=tuple(failures),
                               engines=engines, cpu=cpu, cpu_features=tuple(features) or None)


def check_platform(bundle: str | Path, name: str = "linux-aarch64", *, limits: dict[str, float] | None = None,
                   record: bool = True, root: Path | None = None) -> CrossPlatformParity:
    """:func:`measure_platform`, recorded in the manifest (``record``), and a miss raised.

    Raises:
        PlatformError: ``name`` is not an emulated platform, or its root is not set up here.
        ParityError: an artifact misses a limit (recorded first, with ``passed: false``).
    """
    from edgeship.runtime import read_manifest

    result = measure_platform(bundle, name, limits=limits, root=root)
    if record:
        record_result(Path(bundle), read_manifest(Path(bundle)), result)
    if not result.passed:
        raise parity_error(Path(bundle), result)
    return result


def parity_error(bundle: Path, result: CrossPlatformParity) -> ParityError:
    """The error a cross-platform miss raises."""
    return ParityError(f"Expected every artifact of {bundle} to give the host's outputs on {result.platform} within "
                       f"{_limits_text(result.limits)}. Received: {'; '.join(result.failures)}. Fix: ship the float "
                       "artifact for this platform, or rebuild with a quantization that holds there (the manifest "
                       "records the figures under parity.cross_platform).")


def _limits_text(limits: dict[str, float]) -> str:
    return (f"float max abs diff <= {limits['float_max_abs_diff']}, quantized SQNR >= {limits['min_sqnr_db']} dB "
            f"and top-1 agreement >= {limits['min_top1_agreement']} (on the decisive samples of class scores)")


def record_result(bundle: Path, manifest: Manifest, result: CrossPlatformParity) -> None:
    """Write ``parity.cross_platform[platform]`` into manifest.json (the one writer), then the reports when possible."""
    parity = manifest.parity or ParitySummary(passed=result.passed, allowed_failure=False, failures=(),
                                              cross_format=None)
    cross = {**(parity.cross_platform or {}), result.platform: result}
    updated = dataclasses.replace(manifest, parity=dataclasses.replace(parity, cross_platform=cross))
    write_manifest(bundle, updated)
    try:
        from edgeship.export import write_reports
    except ImportError:  # the device install: the manifest holds the figures; reports are the build's
        return
    from edgeship.runtime import BASELINE_FILE, read_baseline

    baseline = read_baseline(bundle / BASELINE_FILE) if (bundle / BASELINE_FILE).is_file() else None
    write_reports(bundle, updated, baseline)


def table(result: CrossPlatformParity) -> str:
    """The text the CLI prints: one row per artifact."""
    how = f"emulated {result.cpu}" if result.emulated else "native"
    lines = [f"cross-platform parity: {result.platform} ({how}) vs host "
             f"{result.host}, {result.samples} eval samples; limits: {_limits_text(result.limits)}",
             f"{'artifact':<24} {'check':<9} {'max abs diff':>12} {'SQNR dB':>8} {'top-1':>7}  result"]
    if result.cpu_features:
        lines.insert(1, f"CPU features the engines saw there: {features_text(result.cpu_features)}")
    for file, a in result.artifacts.items():
        sq = f"{a.sqnr_db:.1f}" if a.sqnr_db is not None else "-"
        diff = a.max_abs_diff if isinstance(a.max_abs_diff, str) else f"{a.max_abs_diff:.3g}"
        top1 = "-" if a.top1_agreement is None else f"{a.top1_agreement:.4f}"
        lines.append(f"{file:<24} {a.check:<9} {diff:>12} {sq:>8} {top1:>7}  "
                     f"{'pass' if a.passed else 'FAIL'}")
    lines.append("PASSED" if result.passed else "FAILED: " + "; ".join(result.failures))
    return "\n".join(lines)


#: The features that decide which int8 / float kernels the engines pick, per machine (for the one-line summary).
_KEY_FEATURES = {"x86": ("SSE41", "SSE42", "AVX", "AVX2", "FMA3", "AVX512F", "AVX512VNNI"),
                 "arm": ("ASIMD", "ASIMDHP", "ASIMDDP", "ASIMDFHM", "SVE")}


def features_text(features: Collection[str]) -> str:
    """``SSE42 AVX AVX2 FMA3; no AVX512F AVX512VNNI``: the deciding features present, then those absent."""
    keys = _KEY_FEATURES["arm" if "ASIMD" in features or "NEON" in features else "x86"]
    has = [k for k in keys if k in features]
    lacks = [k for k in keys if k not in features]
    return " ".join(has) + (f"; no {' '.join(lacks)}" if lacks else "")


def as_json(result: CrossPlatformParity) -> dict[str, Any]:
    return result.to_json()
