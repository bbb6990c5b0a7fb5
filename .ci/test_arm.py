"""The aarch64 stage (`make test-arm`): the runtime's tests inside an emulated arm64 Debian root.

1. Set up or reuse the root (edgeship.platforms.setup_root: apt, binfmt, debootstrap, engine wheels).
2. Build the default bundle on the host (TensorFlow lives there only), unless $EDGESHIP_TEST_BUNDLE names one.
3. Install this checkout's edgeship wheel (--no-deps) into the root's venv.
4. Run the tests marked `device` inside the root (EDGESHIP_EMULATED=1: latency assertions skip there).
5. Run the tests marked `emulated` on the host: cross-platform parity and packages, which use the root.

Where the machine cannot run it (no root rights, no binfmt_misc), it fails saying so, unless EDGESHIP_SKIP_ARM=1.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from edgeship import platforms
from edgeship.core.errors import PlatformError

REPO = Path(__file__).resolve().parents[1]


def say(text: str) -> None:
    print(f"test-arm: {text}", flush=True)


def main() -> int:
    if os.environ.get("EDGESHIP_SKIP_ARM") == "1":
        say("skipped: EDGESHIP_SKIP_ARM=1")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped CI run still unmounts /proc, /sys, /dev
    t_start = time.perf_counter()
    try:
        root = platforms.setup_root("linux-aarch64", log=say)
    except PlatformError as exc:
        print(f"test-arm: error: {exc}\ntest-arm: set EDGESHIP_SKIP_ARM=1 to skip this stage on such a machine",
              file=sys.stderr)
        return 2
    t_root = time.perf_counter()
    say(f"root ready in {t_root - t_start:.0f} s: {root}")

    work = REPO / "build" / "test-arm"
    bundle = Path(os.environ.get("EDGESHIP_TEST_BUNDLE") or work / "bundle")
    if not (bundle / "manifest.json").is_file():
        say(f"building the default bundle on the host into {bundle}")
        shutil.rmtree(bundle, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "edgeship", "build", "-q", "--out", str(bundle)], check=True)
    t_bundle = time.perf_counter()

    wheels = work / "wheel"
    shutil.rmtree(wheels, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)], check=True)
    wheel = next(wheels.glob("edgeship-*.whl"))

    with platforms.mounted(root), platforms.workdir(root) as (host, inside):
        shutil.copy(wheel, host / wheel.name)
        shutil.copytree(bundle, host / "bundle")
        shutil.copytree(REPO / "tests", host / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(REPO / "pyproject.toml", host / "pyproject.toml")
        proc = platforms.chroot_run(root, ["pip", "install", "-q", "--no-deps", "--force-reinstall",
                                           "--disable-pip-version-check", f"{inside}/{wheel.name}"], capture=False)
        if proc.returncode:
            return proc.returncode
        t_install = time.perf_counter()
        say(f"edgeship installed (--no-deps) in the root in {t_install - t_bundle:.0f} s; running the device tests")
        env = {"EDGESHIP_TEST_BUNDLE": f"{inside}/bundle", "EDGESHIP_FUZZ_FILES": "12", "EDGESHIP_THREAD_CALLS": "40", "TMPDIR": f"{inside}/tmp"}
        (host / "tmp").mkdir()
        # Only the files holding device tests: the others import TensorFlow at collection.
        files = sorted(f"tests/{p.name}" for p in (REPO / "tests").glob("test_*.py") if "mark.device" in p.read_text())
        proc = platforms.chroot_run(root, ["python", "-m", "pytest", "-p", "no:cacheprovider", "-q", "--durations=8", "-m", "device",
                                           *files, *sys.argv[1:]], env=env, cwd=inside, capture=False)
        t_device = time.perf_counter()
        say(f"device tests in the arm64 root: exit {proc.returncode}, {t_device - t_install:.0f} s")
        if proc.returncode:
            return proc.returncode
    env = {**os.environ, "EDGESHIP_TEST_BUNDLE": str(bundle), "EDGESHIP_ARM_STAGE": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "emulated", "tests"], env=env, cwd=REPO)
    t_end = time.perf_counter()
    say(f"host tests against the root: exit {proc.returncode}, {t_end - t_device:.0f} s")
    say(f"stage wall time {t_end - t_start:.0f} s (root {t_root - t_start:.0f} s, bundle {t_bundle - t_root:.0f} s)")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
