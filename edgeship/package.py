"""One file to copy to a device: ``edgeship package BUNDLE --platform linux-aarch64 -o FILE``.

FILE is a `shiv <https://shiv.readthedocs.io>`_ zipapp (PEP 441, ``#!/usr/bin/env
python3``) holding:

* the wheels of numpy, onnxruntime and ai-edge-litert (and with ``--with serve``
  uvicorn, starlette, httptools, prometheus-client) for the target platform and
  CPython version, downloaded at package time with ``pip download --platform ...
  --only-binary=:all:`` (nothing downloads on the device);
* edgeship's device code (``edgeship`` + ``edgeship.runtime``, no build side);
* the bundle.

On the device (only ``python3`` needed)::

    ./FILE predict x.npy [--labels]      # edgeship predict BUNDLE x.npy
    ./FILE bench [--runs 200]            # edgeship bench BUNDLE
    ./FILE serve [--port 8000]           # edgeship serve BUNDLE (packaged --with serve)
    ./FILE check                         # edgeship check BUNDLE (its baseline)
    ./FILE info                          # what the file holds

shiv unpacks the file once into ``~/.shiv`` (``SHIV_ROOT`` overrides). A file run
on another architecture or Python version prints one line saying which it needs
and exits 2, before any compiled module is imported.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from edgeship import platforms
from edgeship.core.errors import BundleError, MissingExtraError, PlatformError, WheelMissingError

ENGINES = ["numpy>=1.26,<3", "onnxruntime>=1.20,<2", "ai-edge-litert>=2.0,<3"]
SERVE = ["uvicorn>=0.30,<1", "httptools>=0.6", "starlette>=0.37", "prometheus-client>=0.20,<1"]
EXTRAS = {"serve": SERVE}
PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14")  # probed to say which versions have a wheel
ENTRY_MODULE = "edgeship_packaged"
BUNDLE_DIR = "edgeship_packaged_bundle"


def _platform_tags(plat: platforms.Platform) -> list[str]:
    """pip --platform tags: manylinux 2.17 (2014) up to glibc 2.36 (Debian 12, Raspberry Pi OS bookworm)."""
    return platforms.manylinux_tags(plat)


def _pip_target_args(plat: platforms.Platform, python: str) -> list[str]:
    args = ["--only-binary=:all:", "--python-version", python, "--implementation", "cp"]
    for tag in _platform_tags(plat):
        args += ["--platform", tag]
    return args


def _pip(args: list[str], timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=timeout)


def _has_wheel(requirement: str, plat: platforms.Platform, python: str) -> bool:
    """Whether ``requirement`` has a wheel for the platform and Python (metadata only: ``--dry-run``)."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = _pip(["install", "--dry-run", "--quiet", "--no-deps", "--ignore-installed", "--target", tmp,
                     *_pip_target_args(plat, python), requirement], timeout=600)
    return proc.returncode == 0


def _missing_wheel(requirements: list[str], plat: platforms.Platform, python: str, pip_error: str) -> PlatformError:
    """The typed error for a failed download: which package has no wheel, and where it has one."""
    for req in requirements:
        if _has_wheel(req, plat, python):
            continue
        where = [v for v in PYTHONS if v != python and _has_wheel(req, plat, v)]
        other = [p.name for p in platforms.PLATFORMS.values() if p is not plat and _has_wheel(req, p, python)]
        exists = (f"Python {', '.join(where)} on {plat.name}" if where else f"no Python version on {plat.name}")
        if other:
            exists += f"; Python {python} on {', '.join(other)}"
        return WheelMissingError(
            f"Expected a wheel of {req} for {plat.name}, CPython {python}. Received: none on the package index; "
            f"it has wheels for {exists}. Fix: pass --python with one of those versions (the device's python3 "
            "must be that version), or another --platform.")
    tail = " | ".join(pip_error.strip().splitlines()[-6:])
    return PlatformError(f"Expected pip to download the wheels for {plat.name}, CPython {python}. Received: {tail}. "
                         "Fix: check the network and the package index (pip config list).")


def download_wheels(requirements: list[str], plat: platforms.Platform, python: str, dest: Path) -> list[Path]:
    """``pip download`` every requirement (and its dependencies) as wheels for ``plat`` and CPython ``python``."""
    proc = _pip(["download", "--quiet", "--dest", str(dest), *_pip_target_args(plat, python), *requirements])
    if proc.returncode != 0:
        raise _missing_wheel(requirements, plat, python, proc.stderr)
    return sorted(dest.glob("*.whl"))


def _check_python(python: str) -> str:
    if not re.fullmatch(r"3\.\d{1,2}", python):
        raise PlatformError(f"Expected --python as MAJOR.MINOR, e.g. 3.11. Received: {python!r}. "
                            "Fix: pass the device's `python3 --version` without the patch number.")
    return python


_ENTRY = '''"""The entry point of a file made by `edgeship package`: checks the platform, then runs edgeship's CLI."""
import os
import platform
import sys

TARGET = {target}
COMMANDS = ("predict", "bench", "serve", "check", "info")


def _fail(text):
    print("edgeship package: " + text, file=sys.stderr)
    sys.exit(2)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    python = "%d.%d" % sys.version_info[:2]
    machine = platform.machine().lower().replace("arm64", "aarch64").replace("amd64", "x86_64")
    if sys.platform != "linux" or machine != TARGET["machine"] or python != TARGET["python"]:
        _fail("this file was built for %s with Python %s; this is %s-%s with Python %s. Rebuild it on the build "
              "machine: edgeship package BUNDLE --platform %s-%s --python %s -o FILE"
              % (TARGET["platform"], TARGET["python"], sys.platform, machine, python, sys.platform, machine, python))
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        print("usage: %s {{predict X.npy|bench|check|info%s}} [options]  (bundle %r, %s, Python %s)"
              % (os.path.basename(sys.argv[0]), "|serve" if TARGET["serve"] else "", TARGET["bundle"],
                 TARGET["platform"], TARGET["python"]), file=sys.stderr)
        sys.exit(0 if args and args[0] in ("-h", "--help") else 2)
    if args[0] == "serve" and not TARGET["serve"]:
        _fail("this file was built without the server. Rebuild it with: edgeship package BUNDLE --platform %s "
              "--python %s --with serve -o FILE" % (TARGET["platform"], TARGET["python"]))
    bundle = os.path.join(here, "{bundle_dir}")
    if args[0] == "info":
        print(dict(TARGET, path=bundle))
        return 0
    from edgeship.cli import main as cli

    if args[0] == "serve":  # served under the bundle's name, not the folder's
        bundle = TARGET["bundle"] + "=" + bundle
    return cli([args[0], bundle, *args[1:]])


if __name__ == "__main__":
    sys.exit(main())
'''


def package(bundle: str | Path, out: str | Path, *, platform: str = "linux-aarch64", python: str = "3.11",
            extras: tuple[str, ...] = (), log=print) -> Path:  # type: ignore[no-untyped-def]
    """Write the one-file package of ``bundle`` for ``platform`` / CPython ``python`` to ``out`` (atomically).

    Raises:
        PlatformError: an unknown platform or a malformed Python version.
        WheelMissingError: a package has no wheel for that platform and Python (names what exists).
        MissingExtraError: shiv is not installed (``pip install "edgeship[package]"``).
        BundleError: ``bundle`` is not a bundle folder whose files match its manifest.
    """
    from edgeship.runtime import read_manifest, verify_bundle

    plat = platforms.platform(platform)
    python = _check_python(python)
    for extra in extras:
        if extra not in EXTRAS:
            raise PlatformError(f"Expected --with among {', '.join(EXTRAS)}. Received: {extra!r}. Fix: drop it.")
    bundle, out = Path(bundle), Path(out)
    manifest = read_manifest(bundle)
    verify_bundle(bundle, manifest)
    shiv = shutil.which("shiv", path=os.path.dirname(sys.executable)) or shutil.which("shiv")
    if shiv is None:
        raise MissingExtraError('edgeship package needs shiv. Received: no `shiv` command. '
                                'Fix: pip install "edgeship[package]"')
    if not out.parent.is_dir():
        raise BundleError(f"Expected -o in an existing folder. Received: {out}. Fix: create {out.parent}.")
    requirements = ENGINES + [r for e in extras for r in EXTRAS[e]]
    with tempfile.TemporaryDirectory(prefix="edgeship-package-") as tmp:
        work = Path(tmp)
        log(f"downloading wheels for {plat.name}, CPython {python}: {' '.join(requirements)}")
        wheels = download_wheels(requirements, plat, python, work / "wheels")
        site = work / "site-packages"
        proc = _pip(["install", "--quiet", "--no-deps", "--no-index", "--target", str(site),
                     *_pip_target_args(plat, python), *map(str, wheels)])
        if proc.returncode != 0:
            raise PlatformError(f"Expected the downloaded wheels to unpack. Received: {proc.stderr.strip()[-400:]}. "
                                "Fix: rerun; report it if it persists.")
        shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts of the host's layout; unused
        platforms.stage_host_runtime(site)
        shutil.copytree(bundle, site / BUNDLE_DIR, ignore=shutil.ignore_patterns("device_profile.json", "*.tmp"))
        target = {"platform": plat.name, "machine": plat.machine, "python": python, "serve": "serve" in extras,
                  "bundle": manifest.name}
        (site / f"{ENTRY_MODULE}.py").write_text(_ENTRY.format(target=repr(target), bundle_dir=BUNDLE_DIR))
        tmp_out = out.with_name(f".{out.name}.tmp")
        proc = subprocess.run([shiv, "--site-packages", str(site), "-e", f"{ENTRY_MODULE}:main",
                               "-p", "/usr/bin/env python3", "--compressed", "--reproducible",
                               "-o", str(tmp_out)], capture_output=True, text=True)
        if proc.returncode != 0:
            tmp_out.unlink(missing_ok=True)
            raise PlatformError(f"Expected shiv to write {out}. Received: {proc.stderr.strip()[-400:]}. "
                                "Fix: check shiv's installation.")
        os.replace(tmp_out, out)
    versions = {w.name.split("-")[0]: w.name.split("-")[1] for w in wheels}
    log(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): {json.dumps(versions)}")
    return out
