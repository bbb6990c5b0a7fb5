"""Build output: one line per stage, epochs folded in, -q / -v / --log-json, the terminal display."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edgeship.cli import main
from edgeship.core import progress as _progress


@pytest.fixture
def mode() -> Iterator[None]:
    """Restore the output mode a test sets."""
    before = _progress.mode()
    yield
    _progress.configure(before)


def _two_stages() -> dict[str, float]:
    timings: dict[str, float] = {}
    _progress.say("recipe tiny")
    with _progress.stage("data", timings):
        _progress.say("  setting up")
        _progress.say("  100 train / 20 val")
    with pytest.raises(RuntimeError), _progress.stage("export", timings):
        raise RuntimeError("converter crashed")
    return timings


def test_plain_lines_one_per_stage_with_its_result(mode: None, capsys: pytest.CaptureFixture[str]) -> None:
    _progress.configure("normal")  # stderr is not a terminal under pytest: plain lines
    timings = _two_stages()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "[edgeship] recipe tiny"
    assert lines[1].startswith("[edgeship] data done in ") and lines[1].endswith(" s: 100 train / 20 val")
    assert lines[2].startswith("[edgeship] export failed after ")
    assert len(lines) == 3 and "\r" not in "".join(lines)
    assert list(timings) == ["data"]  # a failed stage records no timing, as before


def test_verbose_prints_every_line(mode: None, capsys: pytest.CaptureFixture[str]) -> None:
    _progress.configure("verbose")
    _two_stages()
    lines = capsys.readouterr().err.splitlines()
    assert lines[:4] == ["[edgeship] recipe tiny", "[edgeship] data ...", "[edgeship]   setting up",
                         "[edgeship]   100 train / 20 val"]
    assert lines[4].startswith("[edgeship] data done in ") and lines[5] == "[edgeship] export ..."


def test_quiet_prints_nothing_and_still_times(mode: None, capsys: pytest.CaptureFixture[str]) -> None:
    _progress.configure("quiet")
    assert list(_two_stages()) == ["data"]
    assert capsys.readouterr().err == ""


def test_log_json_one_event_per_stage(mode: None, capsys: pytest.CaptureFixture[str]) -> None:
    _progress.configure("json")
    _two_stages()
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [e["event"] for e in events] == ["message", "stage_end", "stage_end"]
    data, export = events[1], events[2]
    assert data["stage"] == "data" and data["ok"] and data["seconds"] >= 0
    assert data["details"] == ["setting up", "100 train / 20 val"]
    assert export["stage"] == "export" and export["ok"] is False


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="Received: 'loud'"):
        _progress.configure("loud")


def _tiny_fit() -> None:
    from edgeship.train import TrainingData, compile_classifier, create_model, fine_tune

    rng = np.random.default_rng(0)
    x, y = rng.random((32, 8, 8, 1), dtype=np.float32), rng.integers(0, 3, 32)
    model = create_model("small_cnn", (8, 8, 1), 3)
    compile_classifier(model, 1e-3)
    fine_tune(model, TrainingData(x, y, x[:8], y[:8]), epochs=2, batch_size=16)


def test_epochs_fold_into_the_stage(mode: None, capfd: pytest.CaptureFixture[str]) -> None:
    _progress.configure("json")
    with _progress.stage("train"):
        _tiny_fit()
    err = capfd.readouterr().err
    events = [json.loads(line) for line in err.splitlines()]  # no Keras line in between: every line is JSON
    assert len(events) == 1 and events[0]["epochs"] == 2
    assert set(events[0]["metrics"]) >= {"loss", "val_loss", "accuracy", "val_accuracy"}


def test_verbose_keeps_keras_epoch_lines(mode: None, capfd: pytest.CaptureFixture[str]) -> None:
    _progress.configure("verbose")
    with _progress.stage("train"):
        _tiny_fit()
    out = capfd.readouterr()
    assert "Epoch 2/2" in out.out + out.err


_TTY_SCRIPT = """
from edgeship.core import progress as p
with p.stage("train"):
    p.epoch(1, 4, {"loss": 0.5, "val_accuracy": 0.75})
    p.say("  accuracy 0.9")
with p.stage("export"):
    pass
"""


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal (pty)")
def test_terminal_gets_a_live_line_per_stage() -> None:
    import pty

    pytest.importorskip("rich")
    main_fd, child_fd = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "100"}
    proc = subprocess.Popen([sys.executable, "-c", _TTY_SCRIPT], stderr=child_fd, stdout=subprocess.DEVNULL, env=env)
    os.close(child_fd)
    chunks = []
    while True:
        try:
            chunk = os.read(main_fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(timeout=60) == 0
    os.close(main_fd)
    text = b"".join(chunks).decode("utf-8", "replace")
    assert "✓" in text and "train" in text and "accuracy 0.9" in text and "export" in text
    assert "[edgeship]" not in text  # the display, not the plain lines


def _tiny_recipe(tmp_path: Path) -> Path:
    recipe = tmp_path / "tiny.toml"
    recipe.write_text('name = "tiny"\n[train]\nepochs = 2\nearly_stopping_patience = 2\n[prune]\nenabled = false\n'
                      '[quantize]\ncalibration_samples = 32\n[export]\nformats = ["tflite"]\n')
    return recipe


@pytest.mark.slow
def test_build_quiet_and_log_json(tmp_path: Path, mode: None, capfd: pytest.CaptureFixture[str]) -> None:
    recipe = _tiny_recipe(tmp_path)
    assert main(["build", str(recipe), "--out", str(tmp_path / "q"), "--quiet"]) == 0
    out = capfd.readouterr()
    assert out.err == "" and out.out.splitlines() == [f"bundle: {(tmp_path / 'q').absolute()}"]

    assert main(["build", str(recipe), "--out", str(tmp_path / "j"), "--log-json"]) == 0
    events = [json.loads(line) for line in capfd.readouterr().err.splitlines()]
    stages = [e["stage"] for e in events if e["event"] == "stage_end"]
    assert stages[:3] == ["data", "baselines: majority class, logistic regression", "train"]
    assert "export model.int8.tflite" in stages and all(e["ok"] for e in events if e["event"] == "stage_end")
    assert next(e for e in events if e.get("stage") == "train")["epochs"] == 2
    assert _progress.mode() == "normal"  # the CLI restores the mode it set


def test_log_json_error_is_one_json_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", str(tmp_path / "missing.toml"), "--log-json"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    event = json.loads(line)
    assert event["event"] == "error" and event["error"] == "RecipeError" and "missing.toml" in event["message"]
