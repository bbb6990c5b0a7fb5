"""Probe-load model bytes in a child process before the calling process does.

No static check can promise that an engine will not crash on a file (a kernel's
own assumptions, an allocation that aborts), and LiteRT's Python path does not
even run the flatbuffers verifier (tensorflow#115308, LiteRT#10080). So bytes
that pass :mod:`._verify` and were never seen before are first loaded, allocated
and run once on zeros in a throw-away process. If that process dies (a signal,
an abort, a memory limit, a timeout), the caller gets a typed ``ModelFileError``
and its own process never touches the bytes.

Cost: one helper process per Python process (a "zygote" that imports the engine
once, then forks a child per probe, so each probe costs milliseconds plus the
model's load time), started on the first probe and stopping by itself after
``IDLE_SECONDS`` idle. Passed probes are remembered by sha256 in memory and on
disk (``$EDGESHIP_CACHE_DIR``, default ``~/.cache/edgeship/probed``), keyed with
the engine versions, so a device probes each file once.

Set ``EDGESHIP_PROBE=0`` (or ``load(..., probe=False)``) to skip the probe; the
structural check in :mod:`._verify` still runs.

This file also runs as the zygote script itself (``python _probe.py``); that
part imports nothing from edgeship.
"""

from __future__ import annotations

import json
import os
import struct
import sys

_HEADER = struct.Struct("<8sQii")  # format, byte count, threads, timeout seconds
IDLE_SECONDS = 60.0
DEFAULT_TIMEOUT = 60
# The probe child may use this much more address space than the zygote: a crafted
# shape that asks for more makes the allocation fail in the child, not here.
MEMORY_HEADROOM = 4 << 30

# -- the zygote side (runs as a script; stdlib + numpy + the engine only) -----


def _read_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return b""
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


# Same order as _backends.TFLITE_ENGINES (this file also runs as a plain script, so it
# cannot import that module; a test keeps the two tuples equal). TensorFlow is only the
# last fallback, imported by name when no lighter engine is installed.
_TFLITE_ENGINES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow")


def _tflite_interpreter() -> type:
    import importlib

    for name in _TFLITE_ENGINES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        return module.lite.Interpreter if name == "tensorflow" else module.Interpreter
    raise ImportError("no TFLite engine installed; pip install ai-edge-litert")


_ORT_NUMPY = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
    "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(int16)": "int16", "tensor(int32)": "int32",
    "tensor(int64)": "int64", "tensor(bool)": "bool",
}


def _probe_here(content: bytes, fmt: str, threads: int, engines: dict[str, object]) -> dict[str, object]:
    """Load and run once; a Python error at load is reported, one at run is not (no crash)."""
    import numpy as np

    if fmt == "tflite":
        cls = engines["tflite"]
        kwargs = {"model_content": content}
        if threads > 0:
            kwargs["num_threads"] = threads
        try:
            interp = cls(**kwargs)  # type: ignore[operator]
            interp.allocate_tensors()
        except Exception as exc:
            return {"ok": False, "stage": "load", "error": f"{type(exc).__name__}: {exc}"}
        try:
            for d in interp.get_input_details():
                interp.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
            interp.invoke()
            for d in interp.get_output_details():
                interp.get_tensor(d["index"])
        except Exception:
            pass
        return {"ok": True}
    ort = engines["onnx"]
    options = ort.SessionOptions()  # type: ignore[attr-defined]
    options.log_severity_level = 4
    if threads > 0:
        options.intra_op_num_threads = threads
    try:
        session = ort.InferenceSession(content, sess_options=options, providers=["CPUExecutionProvider"])  # type: ignore[attr-defined]
    except Exception as exc:
        return {"ok": False, "stage": "load", "error": f"{type(exc).__name__}: {exc}"}
    try:
        feeds = {}
        for arg in session.get_inputs():
            shape = [d if isinstance(d, int) and d > 0 else 1 for d in arg.shape]
            feeds[arg.name] = np.zeros(shape, _ORT_NUMPY[arg.type])
        session.run(None, feeds)
    except Exception:
        pass
    return {"ok": True}


def _limit_memory() -> None:
    try:
        import resource

        with open("/proc/self/statm") as fh:
            vm = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        soft = vm + MEMORY_HEADROOM
        if hard == resource.RLIM_INFINITY or soft < hard:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    except (OSError, ValueError, ImportError):
        pass


def _probe_forked(content: bytes, fmt: str, threads: int, timeout: int, engines: dict[str, object]) -> dict[str, object]:
    import signal

    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the throw-away child
        try:
            os.close(rfd)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.alarm(max(int(timeout), 1))
            _limit_memory()
            if os.environ.get("EDGESHIP_PROBE_SELFTEST") == "abort":  # tests: a crashing engine
                os.abort()
            result = _probe_here(content, fmt, threads, engines)
            os.write(wfd, json.dumps(result).encode())
            os._exit(0)
        except BaseException as exc:  # noqa: BLE001 - report anything, then leave
            try:
                os.write(wfd, json.dumps({"ok": False, "stage": "load", "error": repr(exc)}).encode())
            finally:
                os._exit(1)
    os.close(wfd)
    data = b""
    while True:
        chunk = os.read(rfd, 65536)
        if not chunk:
            break
        data += chunk
    os.close(rfd)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGALRM:
            return {"ok": False, "stage": "timeout", "error": f"no answer within {timeout} s"}
        name = signal.Signals(sig).name if sig in signal.Signals.__members__.values() else str(sig)
        return {"ok": False, "stage": "crash", "error": f"the engine killed the probe process with {name}"}
    try:
        return json.loads(data.decode() or "{}") or {"ok": False, "stage": "crash", "error": "no report"}
    except ValueError:
        return {"ok": False, "stage": "crash", "error": "garbled report"}


def _zygote_main() -> None:
    import select

    # Engines log to fd 1; keep the protocol on a private copy of stdout.
    proto = os.dup(1)
    os.dup2(2, 1)
    inp = sys.stdin.fileno()
    engines: dict[str, object] = {}
    while True:
        ready, _, _ = select.select([inp], [], [], IDLE_SECONDS)
        if not ready:
            return
        header = _read_exact(inp, _HEADER.size)
        if len(header) < _HEADER.size:
            return
        raw_fmt, size, threads, timeout = _HEADER.unpack(header)
        content = _read_exact(inp, size)
        if len(content) < size:
            return
        fmt = raw_fmt.rstrip(b"\0").decode()
        try:
            if fmt not in engines:
                engines[fmt] = _tflite_interpreter() if fmt == "tflite" else __import__("onnxruntime")
            if hasattr(os, "fork"):
                result = _probe_forked(content, fmt, threads, timeout, engines)
            else:  # no fork (Windows): probe here; if this process dies, the parent sees it
                result = _probe_here(content, fmt, threads, engines)
        except ImportError as exc:
            result = {"ok": False, "stage": "engine", "error": f"{exc}"}
        os.write(proto, (json.dumps(result) + "\n").encode())


if __name__ == "__main__":
    _zygote_main()
    sys.exit(0)


# -- the caller side -----------------------------------------------------------

import atexit  # noqa: E402
import hashlib  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402

from ._errors import ModelFileError  # noqa: E402

_lock = threading.Lock()
_worker: subprocess.Popen[bytes] | None = None
_passed: set[str] = set()
_engine_tag: str | None = None


def probe_enabled(probe: bool | None = None) -> bool:
    if probe is not None:
        return bool(probe)
    return os.environ.get("EDGESHIP_PROBE", "1").strip().lower() not in ("0", "false", "no", "off")


def cache_dir() -> Path | None:
    base = os.environ.get("EDGESHIP_CACHE_DIR")
    if base == "":
        return None
    if base:
        return Path(base) / "probed"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "edgeship" / "probed"


def _engines() -> str:
    global _engine_tag
    if _engine_tag is None:
        from importlib import metadata

        parts = []
        for dist in ("ai-edge-litert", "tflite-runtime", "tensorflow", "onnxruntime"):
            try:
                parts.append(f"{dist}={metadata.version(dist)}")
            except metadata.PackageNotFoundError:
                continue
        _engine_tag = ";".join(parts)
    return _engine_tag


def _key(digest: str, fmt: str) -> str:
    return f"{digest}.{fmt}"


def _seen_on_disk(key: str) -> bool:
    folder = cache_dir()
    if folder is None:
        return False
    try:
        return (folder / key).read_text() == _engines()
    except OSError:
        return False


def _remember(key: str) -> None:
    _passed.add(key)
    folder = cache_dir()
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{key}.{os.getpid()}"
        tmp.write_text(_engines())
        os.replace(tmp, folder / key)
    except OSError:
        pass  # a read-only device still works; it probes again next process


def _start_worker() -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    # The zygote forks; keep it single-threaded (no BLAS/OpenMP pools before fork).
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return subprocess.Popen(
        [sys.executable, "-u", str(Path(__file__).resolve())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        close_fds=True,
    )


def _ask(content: bytes, fmt: str, threads: int, timeout: int) -> dict[str, object]:
    global _worker
    for _attempt in range(2):
        if _worker is None or _worker.poll() is not None:
            _worker = _start_worker()
        proc = _worker
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(_HEADER.pack(fmt.encode(), len(content), threads, timeout))
            proc.stdin.write(content)
            proc.stdin.flush()
            line = proc.stdout.readline()
        except (BrokenPipeError, OSError):
            line = b""
        if line:
            try:
                return json.loads(line)
            except ValueError:
                return {"ok": False, "stage": "crash", "error": "garbled probe report"}
        # The zygote is gone. Where there is no fork, the probe itself took it down;
        # with fork it went idle just as we wrote: start a fresh one and retry once.
        _stop_worker()
        if not hasattr(os, "fork"):
            break
    return {"ok": False, "stage": "crash", "error": "the probe process died"}


def _stop_worker() -> None:
    global _worker
    proc, _worker = _worker, None
    if proc is None:
        return
    try:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()
    finally:
        if proc.stdout:
            proc.stdout.close()


atexit.register(_stop_worker)


def probe_model_bytes(content: bytes, fmt: str, name: str, threads: int | None = None, probe: bool | None = None) -> None:
    """Load and run ``content`` once in a child process unless it passed before.

    Raises:
        ModelFileError: the engine crashed, timed out or refused the bytes there.
    """
    if not probe_enabled(probe):
        return
    key = _key(hashlib.sha256(content).hexdigest(), fmt)
    if key in _passed:
        return
    if _seen_on_disk(key):
        _passed.add(key)
        return
    timeout = int(os.environ.get("EDGESHIP_PROBE_TIMEOUT", DEFAULT_TIMEOUT))
    with _lock:
        result = _ask(content, fmt, int(threads or 0), timeout)
    if result.get("ok"):
        _remember(key)
        return
    stage, error = result.get("stage"), str(result.get("error", "")).strip().splitlines()
    detail = error[0] if error else "no detail"
    engine = "LiteRT" if fmt == "tflite" else "ONNX Runtime"
    if stage == "engine":
        return  # no engine to probe with; loading will raise BackendMissingError
    if stage == "load":
        raise ModelFileError(
            f"{name}: {engine} could not load the model ({detail}). Expected a valid .{fmt} model; re-export it."
        )
    raise ModelFileError(
        f"{name}: loading it in a probe process failed — {detail}. Expected a model the engine can run; "
        "this file would have crashed the calling process. Re-export it."
    )
