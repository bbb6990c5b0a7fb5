"""Progress of a build on stderr: one line per stage, epochs folded in.

The CLI picks one of four modes with :func:`configure` (the Python API keeps ``normal``):

- ``normal``: in a terminal, a live display from ``rich`` (one line per stage:
  spinner, bar, elapsed time, and the epoch / loss / val_accuracy of a training
  stage, ending as the stage's result); elsewhere (CI, pipes) one plain line
  per finished stage, no carriage returns. Lines said outside a stage (the
  recipe, warnings) print as they come.
- ``verbose``: every detail line, a line at each stage's start and end, Keras'
  own epoch lines, and the engines' native output (see ``edgeship.core.tf.quiet_engine``).
- ``quiet``: nothing; errors and the result are the CLI's to print.
- ``json``: one JSON object per line on stderr: ``{"event": "stage_end", ...}``
  per stage, ``{"event": "message", ...}`` per line said outside a stage.

Without ``rich`` (it comes with the build extra) a terminal gets the plain lines.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

MODES = ("normal", "verbose", "quiet", "json")
_EPOCH_KEYS = ("loss", "val_loss", "accuracy", "val_accuracy")


@dataclasses.dataclass
class _Stage:
    name: str
    t0: float
    details: list[str] = dataclasses.field(default_factory=list)
    epochs: tuple[int, int | None, dict[str, float]] | None = None  # (epoch, of, last logs)
    task: Any = None


_state: dict[str, Any] = {"mode": "normal", "display": None}
_stack: list[_Stage] = []


def configure(mode: str) -> None:
    """Set the output mode for the stages that follow: one of :data:`MODES`."""
    if mode not in MODES:
        raise ValueError(f"Expected an output mode in {MODES}. Received: {mode!r}.")
    _state["mode"] = mode


def mode() -> str:
    return str(_state["mode"])


def verbose() -> bool:
    """True when the user asked for everything, engines' native chatter included (``-v``)."""
    return _state["mode"] == "verbose"


def keras_lines() -> bool:
    """Whether Keras should print its own epoch lines: with ``-v``, or outside any stage in ``normal`` mode."""
    return _state["mode"] == "verbose" or (_state["mode"] == "normal" and not _stack)


def in_stage() -> bool:
    return bool(_stack)


def say(message: str) -> None:
    """A line of progress. Inside a stage it is a detail: the last one becomes the stage's result line."""
    text = message.strip()
    m = _state["mode"]
    if _stack:
        _stack[-1].details.append(text)
        if m == "verbose":
            _write(f"[edgeship] {message}")
        elif _state["display"] is not None:
            _state["display"].update(_stack[-1], status=text)
    elif m in ("normal", "verbose"):
        _write(f"[edgeship] {message}")
    elif m == "json":
        _write(json.dumps({"event": "message", "message": text}))


def epoch(done: int, of: int | None, logs: dict[str, Any]) -> None:
    """Report a finished training epoch (1-based) of the running stage; Keras callbacks call this."""
    if not _stack:
        return
    st = _stack[-1]
    st.epochs = (done, of, {k: float(logs[k]) for k in _EPOCH_KEYS if k in logs})
    if _state["display"] is not None:
        _state["display"].update(st, status=_epoch_text(st), completed=done, total=of)


@contextmanager
def stage(name: str, timings: dict[str, float] | None = None) -> Iterator[None]:
    """Run one named stage; on success its duration in seconds goes into ``timings[name]``."""
    st = _Stage(name, time.perf_counter())
    _begin(st)
    ok = False
    try:
        yield
        ok = True
    finally:
        seconds = time.perf_counter() - st.t0
        _stack.remove(st)
        if ok and timings is not None:
            timings[name] = round(seconds, 3)
        _end(st, seconds, ok)


def _begin(st: _Stage) -> None:
    m = _state["mode"]
    if m == "verbose":
        _write(f"[edgeship] {st.name} ...")
    elif m == "normal" and _state["display"] is None and not _stack and _is_tty():
        _state["display"] = _open_display()
    _stack.append(st)
    if _state["display"] is not None:
        _state["display"].add(st)


def _end(st: _Stage, seconds: float, ok: bool) -> None:
    m = _state["mode"]
    result = st.details[-1] if st.details else (_epoch_text(st) if st.epochs else "")
    display = _state["display"]
    if display is not None:
        display.finish(st, ok, result)
        if not _stack:
            _state["display"] = None
            display.close()
    elif m == "verbose" and ok:
        _write(f"[edgeship] {st.name} done in {seconds:.1f} s")
    elif m == "normal":
        state = f"done in {seconds:.1f} s" if ok else f"failed after {seconds:.1f} s"
        _write(f"[edgeship] {st.name} {state}" + (f": {result}" if result and ok else ""))
    elif m == "json":
        event: dict[str, Any] = {"event": "stage_end", "stage": st.name, "seconds": round(seconds, 3), "ok": ok,
                                 "details": st.details}
        if st.epochs is not None:
            event.update(epochs=st.epochs[0], metrics=st.epochs[2])
        _write(json.dumps(event))


def _epoch_text(st: _Stage) -> str:
    if st.epochs is None:
        return ""
    done, of, logs = st.epochs
    parts = [f"epoch {done}" + (f"/{of}" if of else "")]
    parts += [f"{k} {logs[k]:.4f}" for k in ("loss", "val_accuracy") if k in logs]
    return ", ".join(parts)


def _write(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _is_tty() -> bool:
    try:
        return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


def _open_display() -> Any:
    try:
        from edgeship.core.display import StageDisplay
    except ImportError:  # rich is in the build extra; plain lines without it
        return None
    return StageDisplay(_terminal_stream())


def _terminal_stream() -> TextIO:
    """A private copy of the terminal's stderr: the display keeps drawing while an engine's
    native output is captured at the file-descriptor level (``edgeship.core.tf.quiet_engine``)."""
    try:
        fd = os.dup(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):
        return sys.stderr
    return os.fdopen(fd, "w", buffering=1, encoding=getattr(sys.stderr, "encoding", None) or "utf-8",
                     errors="replace")
