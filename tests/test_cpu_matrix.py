"""Older x86 CPUs, emulated: ORT's u8s8 saturation and its fix, and `check --platform linux-x86_64-avx2 / -sse4`.

The host's own venv runs under ``qemu-x86_64 -cpu Haswell`` (AVX2, no VNNI) or ``-cpu Nehalem`` (SSE4.2, no
AVX): Debian's ``qemu-user``, no root. Without qemu-x86_64 these skip saying so, unless
``EDGESHIP_REQUIRE_QEMU_X86=1`` (``.ci/run`` installs qemu-user and sets it), where they fail.

The qemu runs take 2-4 s each; the ones on the whole default bundle are marked ``slow``. The reference is the host's output with the runtime's defaults: exact on any host (a VNNI CPU does not
saturate; on one without VNNI the runtime sets ``session.x64quantprecision``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import get_args

import numpy as np
import pytest

from edgeship import platforms
from edgeship.cli import main
from edgeship.core.errors import PlatformError
from edgeship.recipe import ExportConfig
from edgeship.runtime import load

FIX_ENV = "EDGESHIP_X64_QUANT_PRECISION"
X86_EMULATED = [name for name in platforms.EMULATED if platforms.PLATFORMS[name].host_venv]
_PREDICT = """
import sys, numpy as np
from edgeship.runtime import load
with load(sys.argv[1], probe=False) as model:
    np.save(sys.argv[3], model.predict(np.load(sys.argv[2])))
"""


def _require_qemu() -> None:
    if os.uname().machine != "x86_64":
        pytest.skip("emulates older x86-64 CPUs with the host's venv: needs an x86-64 host")
    if not (shutil.which("qemu-x86_64") or shutil.which("qemu-x86_64-static")):
        if os.environ.get("EDGESHIP_REQUIRE_QEMU_X86") == "1":
            pytest.fail("EDGESHIP_REQUIRE_QEMU_X86=1 but qemu-x86_64 is missing: apt-get install qemu-user")
        pytest.skip("needs qemu-x86_64 (apt-get install qemu-user) to emulate older x86-64 CPUs")


def _saturating_onnx(path: Path, samples: int = 300) -> np.ndarray:
    """A u8s8 QDQ MatMul whose adjacent weight pairs are +127 against activations near 255: each pair sums to more
    than int16 holds (2 * 255 * 127 = 64,770), the condition of onnxruntime PR #12088. Returns its input."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    k, n = 64, 16
    w = np.full((k, n), 127, np.int8)
    w[:, ::2] = rng.choice(np.array([-127, 127], np.int8), size=(k, n // 2))
    inits = [numpy_helper.from_array(np.array(1 / 255, np.float32), "xs"),
             numpy_helper.from_array(np.array(0, np.uint8), "xz"), numpy_helper.from_array(w, "w"),
             numpy_helper.from_array(np.array(0.01, np.float32), "ws"), numpy_helper.from_array(np.array(0, np.int8), "wz")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"]),
             helper.make_node("MatMul", ["xd", "wd"], ["y"])]
    graph = helper.make_graph(nodes, "saturating", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", n])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return rng.uniform(0.6, 1.0, size=(samples, k)).astype(np.float32)


def _emulated_predict(name: str, model: Path, x: np.ndarray, tmp: Path, fix: str) -> np.ndarray:
    """``model``'s outputs on ``x`` through edgeship.runtime, in the host's venv under qemu as ``name``'s CPU."""
    (tmp / "predict.py").write_text(_PREDICT)
    np.save(tmp / "x.npy", x)
    proc = platforms.host_venv_run(name, [str(tmp / "predict.py"), str(model), str(tmp / "x.npy"), str(tmp / "y.npy")],
                                   env={FIX_ENV: fix}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return np.load(tmp / "y.npy")


def _native(model: Path, x: np.ndarray) -> np.ndarray:
    with load(model, probe=False) as m:
        return np.asarray(m.predict(x))


def test_haswell_saturates_without_the_fix_and_not_with_it(tmp_path: Path) -> None:
    _require_qemu()
    x = _saturating_onnx(tmp_path / "saturating.onnx")
    native = _native(tmp_path / "saturating.onnx", x)
    xq = np.clip(np.rint(x / np.float32(1 / 255)), 0, 255)  # QuantizeLinear: float32 divide, round half to even
    import onnx
    from onnx import numpy_helper

    weights = {i.name: numpy_helper.to_array(i) for i in onnx.load(tmp_path / "saturating.onnx").graph.initializer}
    exact = (xq / 255) @ (weights["w"].astype(np.float64) * 0.01)
    assert np.abs(native - exact).max() <= 1e-3  # the host (runtime defaults) does not saturate
    fixed = _emulated_predict("linux-x86_64-avx2", tmp_path / "saturating.onnx", x, tmp_path, "auto")
    unfixed = _emulated_predict("linux-x86_64-avx2", tmp_path / "saturating.onnx", x, tmp_path, "0")
    assert np.abs(fixed - native).max() <= 1e-6
    assert np.abs(unfixed - native).max() > 1.0  # saturated: every pair capped at 32,767


@pytest.mark.slow
def test_default_bundle_int8_onnx_equals_native_under_haswell_only_with_the_fix(default_bundle: Path,
                                                                               tmp_path: Path) -> None:
    _require_qemu()
    model = default_bundle / "model.int8.onnx"
    with np.load(default_bundle / "eval.npz") as z:
        x = z["x"][:300].astype(np.float32)
    native = _native(model, x)
    fixed = _emulated_predict("linux-x86_64-avx2", model, x, tmp_path, "auto")
    unfixed = _emulated_predict("linux-x86_64-avx2", model, x, tmp_path, "0")
    assert np.abs(fixed - native).max() <= 1e-6
    assert np.abs(unfixed - native).max() > 1e-3  # the default bundle's int8 ONNX saturates on AVX2 without VNNI


def test_the_fix_follows_the_cpu_and_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Natively: off on a VNNI CPU (it would cost time and change nothing), on otherwise; under Haswell: on."""
    _require_qemu()
    code = "from edgeship.runtime._backends import x64_quant_precision as f; print(f())"
    host_vnni = "AVX512VNNI" in platforms.cpuid_features()
    native = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert native == str(not host_vnni)
    (tmp_path / "f.py").write_text(code)
    for mode, expected in (("auto", "True"), ("0", "False")):
        proc = platforms.host_venv_run("linux-x86_64-avx2", [str(tmp_path / "f.py")], env={FIX_ENV: mode})
        assert proc.stdout.strip() == expected, (mode, proc.stderr)


def test_cpuid_under_emulation_is_the_emulated_cpu(tmp_path: Path) -> None:
    _require_qemu()
    (tmp_path / "f.py").write_text("import json; from edgeship import platforms; "
                                   "print(json.dumps(platforms.cpuid_features()))")
    seen = {}
    for name in X86_EMULATED:
        proc = platforms.host_venv_run(name, [str(tmp_path / "f.py")])
        assert proc.returncode == 0, proc.stderr
        seen[name] = set(json.loads(proc.stdout))
    assert {"AVX2", "FMA3"} <= seen["linux-x86_64-avx2"] and not {"AVX512F", "AVX512VNNI"} & seen["linux-x86_64-avx2"]
    assert "SSE42" in seen["linux-x86_64-sse4"] and not {"AVX", "AVX2"} & seen["linux-x86_64-sse4"]


@pytest.mark.slow
@pytest.mark.parametrize("name", X86_EMULATED)
def test_check_platform_x86_passes_and_records(name: str, bundle_copy: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    _require_qemu()
    assert main(["check", str(bundle_copy), "--platform", name]) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and f"emulated {platforms.PLATFORMS[name].qemu_cpu}" in out
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    cross = manifest["parity"]["cross_platform"][name]
    assert cross["passed"] is True and cross["emulated"] is True and cross["cpu"] == platforms.PLATFORMS[name].qemu_cpu
    assert set(cross["artifacts"]) == {a["file"] for a in manifest["artifacts"]}
    assert cross["artifacts"]["model.int8.onnx"]["max_abs_diff"] <= 1e-6
    assert "AVX512VNNI" not in cross["cpu_features"] and "SSE42" in cross["cpu_features"]
    assert cross["engines"]["onnxruntime"]
    assert main(["check", str(bundle_copy)]) == 0  # the recorded manifest still verifies


@pytest.mark.slow
def test_check_avx2_without_the_fix_fails_naming_the_int8_onnx(bundle_copy: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    _require_qemu()
    if "AVX512VNNI" not in platforms.cpuid_features():
        pytest.skip("with the fix off the host saturates too (no AVX512-VNNI here), so host and target agree")
    monkeypatch.setenv(FIX_ENV, "0")
    assert main(["check", str(bundle_copy), "--platform", "linux-x86_64-avx2", "--no-record"]) == 1
    err = capsys.readouterr().err
    assert "ParityError" in err and "model.int8.onnx" in err and "model.int8.tflite" not in err


def test_x86_platforms_are_valid_targets() -> None:
    allowed = get_args(get_args(ExportConfig.model_fields["platforms"].annotation)[0])
    assert tuple(allowed) == platforms.EMULATED
    assert ExportConfig(platforms=["linux-x86_64-avx2", "linux-x86_64-sse4"]).platforms == X86_EMULATED
    with pytest.raises(PlatformError, match="needs\\s+no set-up"):
        platforms.root_path("linux-x86_64-avx2")
    with pytest.raises(PlatformError, match="Expected a platform the host's venv runs"):
        platforms.require_host_venv("linux-aarch64")


def test_a_model_the_fix_cannot_apply_to_still_loads_with_a_warning(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """ORT 1.32 refuses session.x64quantprecision when weight DequantizeLinear nodes share a zero point (tf2onnx's
    int8 .tflite conversions do): the runtime loads the model without it and says so."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if not {"AVX2"} <= set(platforms.cpuid_features()):
        pytest.skip("ORT applies session.x64quantprecision only on CPUs with AVX2")
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(np.array(1 / 255, np.float32), "s"), numpy_helper.from_array(np.array(0, np.uint8), "xz"),
             numpy_helper.from_array(np.array(0, np.int8), "wz"),  # one zero point for both weights
             numpy_helper.from_array(rng.integers(-127, 128, (8, 8)).astype(np.int8), "w1"),
             numpy_helper.from_array(rng.integers(-127, 128, (8, 8)).astype(np.int8), "w2")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "xz"], ["xd"])]
    for w in ("w1", "w2"):
        nodes += [helper.make_node("DequantizeLinear", [w, "s", "wz"], [f"{w}d"]),
                  helper.make_node("MatMul", ["xd", f"{w}d"], [f"y{w}"])]
    nodes.append(helper.make_node("Add", ["yw1", "yw2"], ["y"]))
    graph = helper.make_graph(nodes, "shared_zero_point", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "shared.onnx")
    monkeypatch.setenv(FIX_ENV, "1")
    with pytest.warns(RuntimeWarning, match="could not apply session.x64quantprecision=1.*own\\s+zero-point"):
        m = load(tmp_path / "shared.onnx", probe=False)
    with m:
        assert np.asarray(m.predict(np.full((1, 8), 0.5, np.float32))).shape == (1, 8)


# -- found in the same tries on the device (issue 24, item 5) -----------------------------------------
def test_litert_delegate_line_stays_off_stderr_unless_verbose(default_bundle: Path, tmp_path: Path) -> None:
    """LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." once per process, at the first
    allocation: a fresh process per case."""
    with np.load(default_bundle / "eval.npz") as z:
        np.save(tmp_path / "x.npy", z["x"][:2])
    base = [sys.executable, "-m", "edgeship"]
    for argv, shown in ((["predict", str(default_bundle / "model.float32.tflite"), str(tmp_path / "x.npy")], False),
                        (["predict", "-v", str(default_bundle / "model.float32.tflite"), str(tmp_path / "x.npy")], True),
                        (["check", str(default_bundle)], False)):
        proc = subprocess.run([*base, *argv], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        assert ("XNNPACK delegate" in proc.stderr) is shown, (argv, proc.stderr)


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_bundle_folder_honours_the_umask(umask: int, tmp_path: Path) -> None:
    from edgeship.export import BundleWriter

    before = os.umask(umask)
    try:
        with BundleWriter(tmp_path / "bundle") as writer:
            writer.write_bytes("a.bin", b"x")
    finally:
        os.umask(before)
    assert (tmp_path / "bundle").stat().st_mode & 0o777 == 0o777 & ~umask
    assert (tmp_path / "bundle" / "a.bin").stat().st_mode & 0o777 == 0o666 & ~umask
