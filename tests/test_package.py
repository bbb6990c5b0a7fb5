"""`edgeship package`: one file for a device, run inside the emulated arm64 root with only its python3.

Packaging downloads the platform's wheels (package time, not run time); `make test-arm` runs these.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from arm_helpers import require_arm_root

from edgeship import platforms
from edgeship.core.errors import PlatformError, WheelMissingError
from edgeship.package import package
from edgeship.runtime import load_eval


@pytest.fixture(scope="module")
def aarch64_file(default_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_arm_root()
    out = tmp_path_factory.mktemp("package") / "digits-aarch64.pyz"
    package(default_bundle, out, platform="linux-aarch64", python="3.11")
    return out


@pytest.mark.emulated
def test_aarch64_package_predicts_as_the_installed_runtime_and_benches(aarch64_file: Path, default_bundle: Path) -> None:
    root = require_arm_root()
    x, _ = load_eval(default_bundle)
    with platforms.mounted(root), platforms.workdir(root) as (host, inside):
        np.save(host / "x.npy", x.astype(np.float32))
        (host / "app.pyz").write_bytes(aarch64_file.read_bytes())
        platforms.stage_host_runtime(host / "py")
        import shutil

        shutil.copytree(default_bundle, host / "bundle")
        env = {"PATH": "/usr/bin:/bin", "SHIV_ROOT": f"{inside}/shiv"}  # the system python3 only: no venv
        proc = platforms.chroot_run(root, ["/usr/bin/python3", f"{inside}/app.pyz", "predict", f"{inside}/x.npy",
                                           "--output", f"{inside}/y_app.npy"], env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        code = (f"import numpy as np; from edgeship.runtime import load\n"
                f"with load('{inside}/bundle') as m: np.save('{inside}/y_rt.npy', m.predict(np.load('{inside}/x.npy')))")
        proc = platforms.chroot_run(root, ["python", "-c", code], env={"PYTHONPATH": f"{inside}/py"})
        assert proc.returncode == 0, proc.stderr[-2000:]
        np.testing.assert_array_equal(np.load(host / "y_app.npy"), np.load(host / "y_rt.npy"))  # exactly
        proc = platforms.chroot_run(root, ["/usr/bin/python3", f"{inside}/app.pyz", "bench", "--runs", "3",
                                           "--warmup", "1", "--min-seconds", "0", "--no-record", "--json"], env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert '"latency_ms"' in proc.stdout
        proc = platforms.chroot_run(root, ["/usr/bin/python3", f"{inside}/app.pyz", "serve"], env=env)
        assert proc.returncode == 2 and "built without the server" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.emulated
def test_wrong_platform_is_one_line(aarch64_file: Path) -> None:
    proc = subprocess.run([sys.executable, str(aarch64_file), "predict", "x.npy"], capture_output=True, text=True,
                          env={**os.environ, "SHIV_ROOT": str(aarch64_file.parent / "shiv")}, timeout=600)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "built for linux-aarch64 with Python 3.11" in lines[0], proc.stderr[-2000:]


@pytest.mark.emulated
def test_missing_wheel_is_a_typed_error_naming_what_exists(default_bundle: Path, tmp_path: Path) -> None:
    # ai-edge-litert 2.x has no wheel for CPython 3.9 (nor does numpy 2.x's newest range, for any platform).
    with pytest.raises(WheelMissingError) as info:
        package(default_bundle, tmp_path / "f.pyz", platform="linux-aarch64", python="3.9")
    text = str(info.value)
    assert "linux-aarch64, CPython 3.9" in text and "it has wheels for Python" in text and "3.11" in text
    assert any(pkg in text for pkg in ("numpy", "onnxruntime", "ai-edge-litert"))
    assert not (tmp_path / "f.pyz").exists() and not list(tmp_path.iterdir())  # nothing half-written


def test_bad_platform_and_python_are_typed(default_bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(PlatformError, match="linux-aarch64, linux-x86_64"):
        package(default_bundle, tmp_path / "f.pyz", platform="windows-arm64")
    with pytest.raises(PlatformError, match="MAJOR.MINOR"):
        package(default_bundle, tmp_path / "f.pyz", platform="linux-aarch64", python="3")


@pytest.mark.emulated
def test_serve_package_answers_on_loopback_in_the_root(default_bundle: Path, tmp_path: Path) -> None:
    """Packaged --with serve: `FILE serve` in the root answers health and inference on 127.0.0.1, then stops."""
    import json
    import time
    import urllib.request

    root = require_arm_root()
    app = package(default_bundle, tmp_path / "serve.pyz", platform="linux-aarch64", python="3.11", extras=("serve",))
    x, _ = load_eval(default_bundle)
    with platforms.mounted(root), platforms.workdir(root) as (host, inside):
        (host / "app.pyz").write_bytes(app.read_bytes())
        env = {**platforms._env(), "PATH": "/usr/bin:/bin", "SHIV_ROOT": f"{inside}/shiv"}
        port = 18700 + os.getpid() % 200
        proc = subprocess.Popen(["chroot", str(root), "/usr/bin/env", "-i", *[f"{k}={v}" for k, v in env.items()],
                                 "/usr/bin/python3", f"{inside}/app.pyz", "serve", "--port", str(port)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            base = f"http://127.0.0.1:{port}/v2"
            for _ in range(150):  # at most ~5 minutes for the first unpack and engine start under emulation
                time.sleep(2)
                try:
                    if urllib.request.urlopen(f"{base}/health/ready", timeout=2).status == 200:
                        break
                except OSError:
                    assert proc.poll() is None, proc.stdout.read()[-2000:] if proc.stdout else ""
            name = json.loads((default_bundle / "manifest.json").read_text())["name"]
            meta = json.loads(urllib.request.urlopen(f"{base}/models/{name}", timeout=30).read())
            body = json.dumps({"inputs": [{"name": meta["inputs"][0]["name"], "shape": [1, *x.shape[1:]],
                                           "datatype": "FP32", "data": x[:1].ravel().tolist()}]}).encode()
            req = urllib.request.Request(f"{base}/models/{name}/infer", data=body,
                                         headers={"Content-Type": "application/json"})
            out = json.loads(urllib.request.urlopen(req, timeout=60).read())
            assert len(out["outputs"][0]["data"]) == 10
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
