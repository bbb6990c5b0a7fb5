"""Target platforms: CPUs users deploy to, emulated on this x86-64 machine to run the device runtime there.

Two kinds of emulated platform:

* ``linux-aarch64`` runs in a Debian bookworm ``minbase`` root (``debootstrap
  --arch=arm64``) through ``qemu-user-static`` and ``binfmt_misc``. The root
  holds Python 3.11 and a venv (``/opt/edgeship-venv``) with the aarch64 wheels
  of numpy, onnxruntime and ai-edge-litert, the same versions as the host's when
  it has them, so a parity difference is the architecture's, not a version's.
  Setting the root up downloads (apt, debootstrap, pip) and needs root; it is a
  set-up step (``python -m edgeship.platforms setup``, ``make arm-root``), never
  done by a command that only uses it: :func:`require_root` raises
  :class:`~edgeship.core.errors.PlatformError` saying how to set it up. Every
  run inside the root mounts ``/proc``, ``/sys`` and ``/dev`` (the engines'
  cpuinfo reads them) and unmounts them afterwards, whatever happens.
* ``linux-x86_64-avx2`` (``qemu-x86_64 -cpu Haswell``: AVX2 and FMA, no AVX-512,
  no VNNI) and ``linux-x86_64-sse4`` (``-cpu Nehalem``: SSE4.2, no AVX) run the
  host's own venv python, with the host's edgeship and engines, under qemu
  user-mode emulation (Debian's ``qemu-user``): no root, no chroot, no set-up
  beyond the package. Only the CPU differs: qemu answers CPUID as that CPU, and
  ORT's MLAS and XNNPACK pick their kernels from CPUID. ``/proc/cpuinfo`` is the
  host's there (qemu-user passes it through), so nothing should read features
  from it under emulation; :func:`cpuid_features` is what the engines saw. A
  subprocess the emulated python starts runs natively (no binfmt entry for
  x86-64 on an x86-64 host): the runtime's load probe does, which only checks
  that the file loads.

This module imports the standard library and :mod:`edgeship.core.errors` only
(numpy lazily, in the commands that predict): it also runs inside the root
(``python -m edgeship.platforms predict``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from edgeship.core.errors import PlatformError


@dataclass(frozen=True)
class Platform:
    """A target: its name, Debian architecture, ``uname -m``, qemu binfmt entry and pip platform tags."""

    name: str
    debian_arch: str
    machine: str
    binfmt: str | None  # None: the host's machine (natively, or its venv under qemu-user: ``qemu_cpu``)
    pip_platforms: tuple[str, ...]
    #: For a platform of the host's own machine: the CPU model ``qemu-<machine> -cpu`` emulates for the host's venv.
    qemu_cpu: str | None = None

    @property
    def host_venv(self) -> bool:
        """Whether the host's own venv runs it under qemu user-mode (another CPU of the host's machine): no root."""
        return self.binfmt is None and self.qemu_cpu is not None


_X86_64_TAGS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
PLATFORMS: dict[str, Platform] = {
    "linux-aarch64": Platform("linux-aarch64", "arm64", "aarch64", "qemu-aarch64",
                              ("manylinux_2_28_aarch64", "manylinux_2_27_aarch64", "manylinux_2_17_aarch64",
                               "manylinux2014_aarch64")),
    "linux-x86_64": Platform("linux-x86_64", "amd64", "x86_64", None, _X86_64_TAGS),
    # An x86-64 CPU with AVX2 and FMA, no AVX-512, no VNNI (Haswell to Comet Lake laptops, older servers):
    # ORT's u8s8 kernels saturate there (vpmaddubsw) unless the runtime's session.x64quantprecision holds.
    "linux-x86_64-avx2": Platform("linux-x86_64-avx2", "amd64", "x86_64", None, _X86_64_TAGS, qemu_cpu="Haswell"),
    # SSE4.2, no AVX (Atom / Celeron edge gateways): the engines' SSE kernels.
    "linux-x86_64-sse4": Platform("linux-x86_64-sse4", "amd64", "x86_64", None, _X86_64_TAGS, qemu_cpu="Nehalem"),
}
#: The platforms `check --platform` and ``[export] platforms`` can run here (emulated).
EMULATED = ("linux-aarch64", "linux-x86_64-avx2", "linux-x86_64-sse4")
#: Of those, the ones in an emulated root (set up with ``setup``; the others run the host's venv).
ROOTED = ("linux-aarch64",)
ENGINES = ("numpy", "onnxruntime", "ai-edge-litert")
VENV = "/opt/edgeship-venv"  # inside the root
READY = "/opt/edgeship-venv/edgeship-root.json"  # written last by setup: the root is complete
SUITE = "bookworm"
APT_PACKAGES = ("qemu-user-static", "debootstrap", "binfmt-support")
ENV_ROOT = "EDGESHIP_ARM64_ROOT"
ENV_EMULATED = "EDGESHIP_EMULATED"  # set inside the root: timings there are an emulator's, not the CPU's
LATENCY_UNDER_EMULATION = ("under qemu user-mode emulation (EDGESHIP_EMULATED=1) a latency or latency ratio is the "
                           "emulator's, not a CPU's: no latency figure is asserted or reported from it")


def platform(name: str) -> Platform:
    """The :class:`Platform` called ``name``; PlatformError listing the valid names otherwise."""
    if name not in PLATFORMS:
        raise PlatformError(f"Expected a platform among {', '.join(PLATFORMS)}. Received: {name!r}. "
                            "Fix: pass one of those names.")
    return PLATFORMS[name]


def emulated() -> bool:
    """Whether this process runs under the emulator (the stage sets ``EDGESHIP_EMULATED=1`` in the root)."""
    return os.environ.get(ENV_EMULATED) == "1"


def root_path(name: str = "linux-aarch64") -> Path:
    """Where the root of ``name`` lives: ``$EDGESHIP_ARM64_ROOT``, else ``~/.cache/edgeship/arm64-root``."""
    plat = platform(name)
    if plat.binfmt is None:
        runs = "the host's venv runs under qemu-user, with no root" if plat.host_venv else "this machine runs natively"
        raise PlatformError(f"Expected a platform with an emulated root ({', '.join(ROOTED)}). Received: {name}, "
                            f"which {runs}. Fix: use the host's runtime (`edgeship check --platform {name}` needs "
                            "no set-up).")
    env = os.environ.get(ENV_ROOT)
    return Path(env) if env else Path.home() / ".cache" / "edgeship" / f"{plat.debian_arch}-root"


def _fix(root: Path) -> str:
    return (f"Fix: as root, run `python -m edgeship.platforms setup --root {root}` (or `make arm-root`); "
            "it installs qemu-user-static, debootstrap and binfmt-support and builds the root (about 5 minutes).")


def binfmt_registered(plat: Platform) -> bool:
    return plat.binfmt is not None and Path(f"/proc/sys/fs/binfmt_misc/{plat.binfmt}").is_file() and \
        "enabled" in Path(f"/proc/sys/fs/binfmt_misc/{plat.binfmt}").read_text()


def require_root(name: str = "linux-aarch64", root: Path | None = None) -> Path:
    """The ready root of ``name``; PlatformError saying what is missing and how to set it up.

    Checks: running as root (chroot and mount need it), ``binfmt_misc`` has the
    qemu entry, and the root's set-up finished (its ready file exists).
    """
    plat = platform(name)
    root = root or root_path(name)
    if os.geteuid() != 0:
        raise PlatformError(f"Expected to run as root to chroot into the {name} root. Received: uid {os.geteuid()}. "
                            f"Fix: run as root (sudo), or skip the {name} stage (EDGESHIP_SKIP_ARM=1).")
    if not binfmt_registered(plat):
        raise PlatformError(f"Expected binfmt_misc to have {plat.binfmt} registered, so {name} binaries run here. "
                            f"Received: no /proc/sys/fs/binfmt_misc/{plat.binfmt}. " + _fix(root))
    if not (root / READY.lstrip("/")).is_file():
        raise PlatformError(f"Expected a ready {name} root at {root}. Received: "
                            f"{'an unfinished one' if root.exists() else 'no such folder'}. " + _fix(root))
    return root


# -- set-up (downloads; needs root) ---------------------------------------------------------------
def _run(argv: Sequence[str], log: Callable[[str], None], **kw: object) -> None:
    log("$ " + " ".join(argv))
    proc = subprocess.run(list(argv), capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise PlatformError(f"Expected `{' '.join(argv)}` to succeed. Received: exit {proc.returncode}: "
                            + " | ".join(tail) + ". Fix: read the lines above; rerun the set-up.")


def ensure_host_tools(plat: Platform, log: Callable[[str], None] = print) -> None:
    """apt-get install qemu-user-static, debootstrap and binfmt-support when missing; register binfmt."""
    if os.geteuid() != 0:
        raise PlatformError(f"Expected root to set up the {plat.name} root (apt-get, debootstrap, mount). "
                            f"Received: uid {os.geteuid()}. Fix: run as root, or set EDGESHIP_SKIP_ARM=1 to skip.")
    if not (shutil.which("debootstrap") and shutil.which(f"{plat.binfmt}-static") and shutil.which("update-binfmts")):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        _run(["apt-get", "update", "-qq"], log, env=env)
        _run(["apt-get", "install", "-y", "-qq", *APT_PACKAGES], log, env=env)
    if not Path("/proc/sys/fs/binfmt_misc/register").exists():
        _run(["mount", "-t", "binfmt_misc", "binfmt_misc", "/proc/sys/fs/binfmt_misc"], log)
    if not binfmt_registered(plat):
        _run(["update-binfmts", "--enable", str(plat.binfmt)], log)
    if not binfmt_registered(plat):
        raise PlatformError(f"Expected binfmt_misc to register {plat.binfmt}. Received: not registered after "
                            "update-binfmts. Fix: this machine's kernel or container does not allow binfmt_misc; "
                            "run the stage on a machine that does, or set EDGESHIP_SKIP_ARM=1.")


def host_versions() -> dict[str, str]:
    """The host's engine versions, to install the same ones in the root (unset ones: pyproject's range)."""
    from importlib import metadata

    out = {}
    for dist in ENGINES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


def setup_root(name: str = "linux-aarch64", root: Path | None = None, log: Callable[[str], None] = print,
               mirror: str | None = None) -> Path:
    """Build (or reuse) the emulated root of ``name`` and its venv; returns the root. Needs root and the network.

    debootstrap writes into ``ROOT.tmp`` and is renamed when done, so an
    interrupted set-up never leaves a half root that looks ready; the venv's
    ready file is written last.
    """
    plat = platform(name)
    root = root or root_path(name)
    ensure_host_tools(plat, log)
    timings: dict[str, float] = {}
    if not (root / "usr" / "bin" / "python3").exists():
        tmp = root.with_name(root.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        mirror = mirror or os.environ.get("EDGESHIP_DEBIAN_MIRROR", "http://deb.debian.org/debian")
        t0 = time.perf_counter()
        _run(["debootstrap", f"--arch={plat.debian_arch}", "--variant=minbase",
              "--include=python3,python3-venv,python3-pip,ca-certificates", SUITE, str(tmp), mirror], log)
        timings["debootstrap_s"] = round(time.perf_counter() - t0, 1)
        shutil.rmtree(root, ignore_errors=True)
        tmp.rename(root)
    if not (root / READY.lstrip("/")).is_file():
        _copy_ca_bundle(root)
        t0 = time.perf_counter()
        pins = [f"{d}=={v}" for d, v in host_versions().items()]
        pins = [*(pins or ENGINES), "pytest"]
        # The wheels are fetched by the host's pip (native speed, the host's index settings), then installed
        # offline by the root's pip: pip resolving and downloading under emulation took minutes longer.
        wheels = root / "opt" / "edgeship-wheels"
        shutil.rmtree(wheels, ignore_errors=True)
        _run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--dest", str(wheels),
              "--only-binary=:all:", "--python-version", _root_python(root), "--implementation", "cp",
              *[a for tag in manylinux_tags(plat) for a in ("--platform", tag)], *pins], log)
        with mounted(root):
            _chroot(root, ["/usr/bin/python3", "-m", "venv", VENV], log)
            _chroot(root, [f"{VENV}/bin/pip", "install", "--quiet", "--disable-pip-version-check", "--no-index",
                           "--find-links", "/opt/edgeship-wheels", *pins], log)
        shutil.rmtree(wheels, ignore_errors=True)
        timings["wheels_s"] = round(time.perf_counter() - t0, 1)
        versions = _root_versions(root)
        ready = root / READY.lstrip("/")
        ready.write_text(json.dumps({"platform": name, "suite": SUITE, "versions": versions, "timings_s": timings},
                                    indent=2) + "\n")
        log(f"{name} root ready at {root}: {versions} {timings}")
    return root


def manylinux_tags(plat: Platform) -> list[str]:
    """pip --platform tags a glibc 2.36 system (Debian 12) runs: manylinux 2.17 (2014) up to 2.36."""
    return [f"manylinux_2_{n}_{plat.machine}" for n in range(36, 16, -1)] + [f"manylinux2014_{plat.machine}"]


def _root_python(root: Path) -> str:
    """MAJOR.MINOR of the root's python3 (bookworm: 3.11), from its stdlib folder."""
    versions = sorted(p.name[len("python"):] for p in (root / "usr" / "lib").glob("python3.*") if p.is_dir())
    if not versions:
        raise PlatformError(f"Expected python3 in {root}. Received: no usr/lib/python3.*. Fix: delete {root}, rerun.")
    return versions[-1]


def _copy_ca_bundle(root: Path) -> None:
    """The host's CA bundle, so pip inside the root reaches the registry through the same proxies as the host."""
    for src in ("/etc/ssl/certs/ca-certificates.crt",):
        if Path(src).is_file():
            dst = root / src.lstrip("/")
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
    for conf in ("/etc/pip.conf", "/etc/resolv.conf"):
        if Path(conf).is_file():
            shutil.copyfile(conf, root / conf.lstrip("/"))


def _root_versions(root: Path) -> dict[str, str]:
    code = ("import json; from importlib import metadata as m; "
            f"print(json.dumps({{d: m.version(d) for d in {list(ENGINES)!r}}}))")
    with mounted(root):
        proc = chroot_run(root, [f"{VENV}/bin/python", "-c", code], timeout=600)
    if proc.returncode != 0:
        raise PlatformError(f"Expected the engines to import in {root}. Received: {proc.stderr.strip()[-500:]}. "
                            f"Fix: delete {root} and rerun the set-up.")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def root_versions(root: Path) -> dict[str, str]:
    """The engine versions the ready file of ``root`` records."""
    return json.loads((root / READY.lstrip("/")).read_text()).get("versions", {})


# -- running inside ---------------------------------------------------------------------------------
@contextlib.contextmanager
def mounted(root: Path) -> Iterator[Path]:
    """/proc, /sys and /dev mounted in ``root`` for the block; unmounted afterwards, also on errors."""
    done: list[Path] = []
    try:
        for kind, src, target in (("proc", "proc", "proc"), ("sysfs", "sysfs", "sys"), ("bind", "/dev", "dev")):
            path = root / target
            path.mkdir(exist_ok=True)
            if os.path.ismount(path):
                continue  # another run holds it; it unmounts it
            argv = ["mount", "--bind", src, str(path)] if kind == "bind" else ["mount", "-t", kind, src, str(path)]
            proc = subprocess.run(argv, capture_output=True, text=True)
            if proc.returncode != 0:
                raise PlatformError(f"Expected to mount {target} in {root}. Received: {proc.stderr.strip()}. "
                                    "Fix: run as root on a machine that allows mount.")
            done.append(path)
            if target == "proc":
                done += _fake_cpuinfo(root)
        yield root
    finally:
        for path in reversed(done):
            if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(path)], capture_output=True)


#: The CPU qemu emulates ($EDGESHIP_QEMU_CPU overrides): a Cortex-A76, as on a Raspberry Pi 5 (NEON + dot product).
#: Not qemu's default "max" CPU: with it (SVE2, SME, i8mm, ... under qemu 7.2) LiteRT's int8 kernels give wrong
#: outputs (top-1 0.11 on the default bundle), a CPU no edge device has; cortex-a72 (Pi 4) and -a76 agree with x86.
QEMU_CPU = "cortex-a76"
#: What /proc/cpuinfo shows inside the root: that CPU (Cortex-A76) once per host core.
#: qemu-user 7.2 passes the host's x86 /proc/cpuinfo through, and the engines' cpuinfo library (XNNPACK, ORT)
#: crashes parsing it on aarch64 (SIGSEGV when an Interpreter or InferenceSession is made). The kernels the
#: engines pick follow the emulated CPU's HWCAP bits (getauxval), not this text.
_CPUINFO = ("processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 "
            "atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\n"
            "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: 0xd0b\n"
            "CPU revision\t: 1\n\n")


def _fake_cpuinfo(root: Path) -> list[Path]:
    """Bind an aarch64 /proc/cpuinfo over the mounted one; the mount point to undo (empty if it failed)."""
    src = root / "etc" / "edgeship-cpuinfo"
    src.write_text("".join(_CPUINFO.format(i=i) for i in range(os.cpu_count() or 1)))
    target = root / "proc" / "cpuinfo"
    proc = subprocess.run(["mount", "--bind", str(src), str(target)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise PlatformError(f"Expected to bind an aarch64 cpuinfo over {target}. Received: {proc.stderr.strip()}. "
                            "Fix: run as root on a machine that allows bind mounts.")
    return [target]


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"PATH": f"{VENV}/bin:/usr/local/bin:/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
            ENV_EMULATED: "1", "PYTHONDONTWRITEBYTECODE": "1", "QEMU_CPU": qemu_cpu(), **(extra or {})}


def qemu_cpu() -> str:
    """The CPU model qemu emulates in the root (:data:`QEMU_CPU`, or ``$EDGESHIP_QEMU_CPU``)."""
    return os.environ.get("EDGESHIP_QEMU_CPU", QEMU_CPU)


def chroot_run(root: Path, argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: str = "/",
               timeout: float = 3600, capture: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside ``root`` (mounted by the caller) with a clean environment; returns the process."""
    script = f"cd {cwd} && exec \"$@\""
    return subprocess.run(["chroot", str(root), "/usr/bin/env", "-i", *[f"{k}={v}" for k, v in _env(env).items()],
                           "/bin/sh", "-c", script, "sh", *argv],
                          capture_output=capture, text=True, timeout=timeout)


def _chroot(root: Path, argv: Sequence[str], log: Callable[[str], None]) -> None:
    log("(chroot) $ " + " ".join(argv))
    proc = chroot_run(root, argv, timeout=3600)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise PlatformError(f"Expected `{' '.join(argv)}` to succeed inside {root}. Received: exit "
                            f"{proc.returncode}: " + " | ".join(tail) + ". Fix: read the lines above; rerun.")


@contextlib.contextmanager
def workdir(root: Path) -> Iterator[tuple[Path, str]]:
    """A fresh folder inside ``root``: (host path, path inside); removed afterwards."""
    inside = f"/tmp/edgeship-{uuid.uuid4().hex[:12]}"
    host = root / inside.lstrip("/")
    host.mkdir(parents=True)
    try:
        yield host, inside
    finally:
        shutil.rmtree(host, ignore_errors=True)


def stage_host_runtime(dest: Path) -> Path:
    """Copy the host's ``edgeship`` package and ``edgeship.runtime`` (Python files) into ``dest/edgeship``.

    Put on ``PYTHONPATH`` inside the root, the device runs the same edgeship
    code as the host: only numpy, the engines and the CPU differ.
    """
    import edgeship
    import edgeship.runtime

    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    top = dest / "edgeship"
    shutil.copytree(Path(edgeship.__file__).parent, top, ignore=ignore, dirs_exist_ok=True)
    shutil.rmtree(top / "runtime", ignore_errors=True)
    shutil.copytree(Path(edgeship.runtime.__file__).parent, top / "runtime", ignore=ignore)
    return dest


# -- the host's venv under qemu user-mode (another CPU of the host's machine) -------------------------
QEMU_USER_APT = "qemu-user"  # Debian's package with qemu-x86_64 (qemu-user-static has qemu-x86_64-static)
#: The warnings qemu 7.2 prints once per process for the CPU model's features TCG cannot emulate (Haswell's
#: pcid, x2apic, tsc-deadline, hle, invpcid, rtm: none is an instruction the engines use).
_TCG_WARNING = "TCG doesn't support requested feature"


def qemu_user(plat: Platform) -> str:
    """The path of ``qemu-<machine>`` (or its ``-static`` build); PlatformError saying how to install it."""
    for exe in (f"qemu-{plat.machine}", f"qemu-{plat.machine}-static"):
        found = shutil.which(exe)
        if found:
            return found
    raise PlatformError(f"Expected qemu-{plat.machine} (qemu user-mode emulation) on PATH to run {plat.name}. "
                        f"Received: neither qemu-{plat.machine} nor qemu-{plat.machine}-static. Fix: "
                        f"`apt-get install qemu-user` (Debian, Ubuntu); it needs no root to run.")


def require_host_venv(name: str) -> str:
    """For a :attr:`Platform.host_venv` platform: qemu's path, after checking this host can run it."""
    import platform as _platform

    plat = platform(name)
    if not plat.host_venv:
        raise PlatformError(f"Expected a platform the host's venv runs under qemu-user "
                            f"({', '.join(p for p in EMULATED if PLATFORMS[p].host_venv)}). Received: {name}. "
                            "Fix: pass one of those names.")
    machine = _platform.machine().lower().replace("amd64", "x86_64")
    if machine != plat.machine:
        raise PlatformError(f"Expected a {plat.machine} host to emulate {name} (its own venv under qemu-user). "
                            f"Received: a {machine} host. Fix: run the check on a {plat.machine} machine.")
    return qemu_user(plat)


def host_venv_run(name: str, argv: Sequence[str], *, env: dict[str, str] | None = None,
                  timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    """``python ARGV`` with this interpreter (the host's venv) under ``qemu-<machine> -cpu <qemu_cpu>``.

    The environment is this process's, with ``EDGESHIP_EMULATED=1`` (no latency figure is taken from it) and
    ``env``; qemu's per-process warnings about CPU features TCG lacks are dropped from stderr.
    """
    qemu = require_host_venv(name)
    cpu = str(platform(name).qemu_cpu)
    proc = subprocess.run([qemu, "-cpu", cpu, sys.executable, *argv], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, ENV_EMULATED: "1", **(env or {})})
    proc.stderr = "".join(line for line in proc.stderr.splitlines(keepends=True) if _TCG_WARNING not in line)
    return proc


def cpuid_features() -> list[str]:
    """The CPU features numpy's dispatcher found (CPUID on x86, HWCAP on ARM): what the engines dispatch on.

    ORT's MLAS and XNNPACK (cpuinfo) read CPUID the same way; under qemu it is the emulated CPU's. Empty
    when this numpy does not expose its table.
    """
    import importlib

    for module in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
        try:
            table = importlib.import_module(module).__cpu_features__
        except (ImportError, AttributeError):
            continue
        return sorted(k for k, v in table.items() if v)
    return []


# -- the command run inside the root: every artifact's outputs on eval.npz --------------------------
def predict_all(bundle: Path, out: Path) -> dict[str, object]:
    """Predict ``eval.npz`` with every artifact of ``bundle``; save ``{file}/{i}`` arrays to ``out`` (npz)."""
    from edgeship.runtime import load, load_eval, read_manifest

    manifest = read_manifest(bundle)
    x, _ = load_eval(bundle)
    arrays: dict[str, object] = {}
    for a in manifest.artifacts:
        with load(bundle, format=a.format, precision=a.precision) as model:
            y = model.predict(x)
        _keep(arrays, a.file, y)
    return _save(arrays, out)


def predict_files(x_path: Path, out: Path, files: Sequence[Path]) -> dict[str, object]:
    """Predict the array in ``x_path`` with each model file (probe off: files a benchmark names); save to ``out``."""
    import numpy as np

    from edgeship.runtime import load

    x = np.load(x_path)
    arrays: dict[str, object] = {}
    for f in files:
        with load(f, probe=False) as model:
            y = model.predict(x)
        _keep(arrays, Path(f).name, y)
    return _save(arrays, out)


def _keep(arrays: dict[str, object], name: str, y: object) -> None:
    """Store each output of one prediction under ``NAME/INDEX``."""
    import numpy as np

    for i, part in enumerate(y if isinstance(y, list) else [y]):
        arrays[f"{name}/{i}"] = np.asarray(part)


def _save(arrays: dict[str, object], out: Path) -> dict[str, object]:
    """Write ``arrays`` to ``out`` atomically; this interpreter's machine, Python version and CPU features."""
    import platform as _platform

    import numpy as np

    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, out)
    return {"machine": _platform.machine(), "python": _platform.python_version(), "cpu_features": cpuid_features()}


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m edgeship.platforms", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("setup", help="build or reuse the emulated root (root, network)")
    s.add_argument("--platform", default="linux-aarch64", choices=list(ROOTED))
    s.add_argument("--root", type=Path)
    s = sub.add_parser("path", help="print the root's path")
    s.add_argument("--platform", default="linux-aarch64", choices=list(ROOTED))
    s = sub.add_parser("predict", help="(inside the root) predict eval.npz with every artifact")
    s.add_argument("bundle", type=Path)
    s.add_argument("out", type=Path)
    s = sub.add_parser("predict-files", help="(inside the root) predict X.npy with each model file")
    s.add_argument("x", type=Path)
    s.add_argument("out", type=Path)
    s.add_argument("files", type=Path, nargs="+")
    args = p.parse_args(argv)
    try:
        if args.cmd == "setup":
            setup_root(args.platform, args.root, log=lambda s: print(s, file=sys.stderr, flush=True))
        elif args.cmd == "path":
            print(root_path(args.platform))
        elif args.cmd == "predict-files":
            print(json.dumps(predict_files(args.x, args.out, args.files)))
        else:
            print(json.dumps(predict_all(args.bundle, args.out)))
    except PlatformError as exc:
        print(f"edgeship: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
