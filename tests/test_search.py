"""``edgeship search``: real tiny builds (digits, small_cnn width 4-8, 2 epochs, int8 TFLite only)."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest
import tomllib

pytest.importorskip("optuna", reason="edgeship search needs optuna (the build extra)")

from edgeship.cli import main  # noqa: E402
from edgeship.core.errors import RecipeError, SearchError  # noqa: E402
from edgeship.recipe import Recipe  # noqa: E402

TINY = """
name = "tiny-search"
[model]
arch = "small_cnn"
width = 8
[train]
epochs = 2
[prune]
enabled = false
[quantize]
tflite = ["int8"]
[budget]
enabled = false
[export]
formats = ["tflite"]
measure_rss = false
[search]
width = [4, 8]
learning_rate = {low = 0.001, high = 0.01, log = true}
"""


@pytest.fixture
def recipe_file(tmp_path: Path) -> Path:
    path = tmp_path / "search.toml"
    path.write_text(TINY, encoding="utf-8")
    return path


#: The searched study's trials; the same file also holds the pruner's companion study "tiny-search.curves".
STUDY_TRIALS = "(SELECT t.* FROM trials t JOIN studies s USING (study_id) WHERE s.study_name = 'tiny-search')"


def _completed(db: Path) -> int:
    with sqlite3.connect(db) as con:
        return con.execute(f"SELECT COUNT(*) FROM {STUDY_TRIALS} WHERE state = 'COMPLETE'").fetchone()[0]


def test_search_table_rejects_unknown_keys_and_bad_ranges() -> None:
    with pytest.raises(RecipeError, match="unknown key 'search.depth'"):
        Recipe.from_dict({"search": {"depth": [1, 2]}})
    with pytest.raises(RecipeError, match="low < high"):
        Recipe.from_dict({"search": {"dropout": {"low": 0.5, "high": 0.1}}})
    ok = Recipe.from_dict({"search": {"arch": ["small_cnn"], "dropout": {"low": 0.1, "high": 0.5}}})
    assert list(ok.search.declared()) == ["arch", "dropout"]


def test_recipe_toml_round_trip() -> None:
    r = Recipe.from_dict({"model": {"width": 8}, "search": {"width": [4, 8]}})
    again = Recipe.from_dict(tomllib.loads(r.to_toml()))
    assert again == r and again.sha256() == r.sha256()


def test_search_rejects_unknown_arch_before_any_trial(recipe_file: Path, tmp_path: Path) -> None:
    from edgeship.search import search

    bad = Recipe.from_toml(recipe_file).model_copy(update={"search": Recipe.from_dict(
        {"search": {"arch": ["no_such_net"]}}).search})
    with pytest.raises(RecipeError, match="no_such_net"):
        search(bad, tmp_path / "out", trials=1)
    assert not (tmp_path / "out" / "study.db").exists()


@pytest.mark.slow
def test_search_writes_best_toml_that_rebuilds_the_same_recipe(recipe_file: Path, tmp_path: Path) -> None:
    from edgeship.build import build

    out = tmp_path / "out"
    assert main(["search", str(recipe_file), "--trials", "2", "--out", str(out), "-q"]) == 0
    rows = list(csv.DictReader((out / "trials.csv").open(encoding="utf-8")))
    assert [r["state"] for r in rows] == ["COMPLETE", "COMPLETE"]
    assert all(float(r["flash_bytes"]) > 0 and float(r["latency_ms"]) > 0 for r in rows)
    assert "data:image/png;base64," in (out / "search_report.html").read_text(encoding="utf-8")
    best = Recipe.from_toml(out / "best.toml")
    best_row = max(rows, key=lambda r: float(r["accuracy"]))
    trial = json.loads((out / "trials" / f"trial-{int(best_row['trial']):04d}" / "manifest.json").read_text())
    assert best.sha256() == trial["recipe_sha256"]
    assert best.model.width == int(best_row["width"]) and not best.search.declared()
    again = json.loads((build(best, tmp_path / "again") / "manifest.json").read_text())
    assert again["recipe_sha256"] == trial["recipe_sha256"]


@pytest.mark.slow
def test_search_resumes_to_the_requested_trial_count(recipe_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["search", str(recipe_file), "--out", str(out), "-q", "--trials"]
    assert main([*args, "1"]) == 0
    assert _completed(out / "study.db") == 1
    assert main([*args, "2"]) == 0
    assert _completed(out / "study.db") == 2
    assert main([*args, "2"]) == 0  # already there: no new trial
    assert _completed(out / "study.db") == 2
    assert sorted(p.name for p in (out / "trials").iterdir()) == ["trial-0000", "trial-0001"]


@pytest.mark.slow
def test_impossible_limit_is_a_typed_error_naming_the_closest_trial(
        recipe_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgeship.search import Limits, search

    out = tmp_path / "out"
    assert main(["search", str(recipe_file), "--trials", "1", "--max-flash", "10", "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "SearchError" in err and "closest is trial 0" in err
    assert (out / "trials.csv").is_file() and not (out / "best.toml").exists()
    with pytest.raises(SearchError, match="flash <= 10"):  # same study, resumed: nothing to run, still infeasible
        search(Recipe.from_toml(recipe_file), out, trials=1, limits=Limits(max_flash=10))


@pytest.mark.slow
def test_two_workers_share_one_study_without_losing_or_duplicating_trials(recipe_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["search", str(recipe_file), "--trials", "2", "--workers", "2", "--out", str(out), "-q"]) == 0
    with sqlite3.connect(out / "study.db") as con:
        numbers = [n for (n,) in con.execute(f"SELECT number FROM {STUDY_TRIALS} WHERE state = 'COMPLETE'")]
    assert len(numbers) >= 2 and len(set(numbers)) == len(numbers)  # a trial in flight may finish past the count
    assert sorted(p.name for p in (out / "trials").iterdir()) == [f"trial-{n:04d}" for n in sorted(numbers)]
    rows = list(csv.DictReader((out / "trials.csv").open(encoding="utf-8")))
    assert sorted(int(r["trial"]) for r in rows if r["state"] == "COMPLETE") == sorted(numbers)


@pytest.mark.slow
def test_kill_9_mid_trial_marks_it_failed_and_a_resume_reaches_the_count(
        recipe_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from edgeship import search as search_mod

    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "edgeship", "search", str(recipe_file), "--trials", "2", "--out", str(out), "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "study.db").exists():
            with sqlite3.connect(out / "study.db", timeout=30) as con:
                if con.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'trials'").fetchone()[0] and \
                        con.execute(f"SELECT COUNT(*) FROM {STUDY_TRIALS} WHERE state = 'RUNNING'").fetchone()[0]:
                    break
        time.sleep(0.2)
    time.sleep(1)  # past the trial's first heartbeat, well before its build ends
    assert proc.poll() is None, "the search ended before a trial could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    monkeypatch.setattr(search_mod, "GRACE_SECONDS", 1)  # the killed trial's last heartbeat is older than this
    time.sleep(2)
    search_mod.search(Recipe.from_toml(recipe_file), out, trials=2)
    with sqlite3.connect(out / "study.db") as con:
        states = [s for (s,) in con.execute(f"SELECT state FROM {STUDY_TRIALS} ORDER BY number")]
    assert states.count("COMPLETE") == 2 and states[0] == "FAIL", states


def test_input_size_is_searched_for_image_sets_only() -> None:
    from edgeship.search import trial_recipe

    images = Recipe.from_dict({"data": {"dataset": "images:/photos"}, "search": {"input_size": [16, 32]}})
    assert trial_recipe(images, {"input_size": 32}).data.image_size == [32, 32]
    with pytest.raises(RecipeError, match="search.input_size.*only images:PATH datasets.*'digits'"):
        Recipe.from_dict({"search": {"input_size": [16, 32]}})
    with pytest.raises(RecipeError, match="search.input_size.0"):
        Recipe.from_dict({"data": {"dataset": "images:/photos"}, "search": {"input_size": [2]}})


@pytest.mark.slow
def test_a_hopeless_trial_is_pruned_on_its_validation_accuracy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One learning trial completes; then a learning rate too small to learn is stopped after its warm-up epochs."""
    from edgeship import search as search_mod

    monkeypatch.setattr(search_mod, "PRUNER_STARTUP_TRIALS", 1)
    base = tomllib.loads(TINY)
    base["train"].update(epochs=6, early_stopping_patience=6)
    out = tmp_path / "out"
    base["search"] = {"learning_rate": {"low": 0.004, "high": 0.006, "log": True}}
    search_mod.search(Recipe.from_dict(base), out, trials=1)
    base["search"] = {"learning_rate": {"low": 1e-8, "high": 2e-8, "log": True}}  # cannot move off chance level
    result = search_mod.search(Recipe.from_dict(base), out, trials=2)  # one more trial: pruned, so none completes
    rows = list(csv.DictReader((out / "trials.csv").open(encoding="utf-8")))
    assert [r["state"] for r in rows] == ["COMPLETE", "PRUNED"]
    pruned_at = int(rows[1]["pruned_at_epoch"])
    assert search_mod.PRUNER_WARMUP_EPOCHS < pruned_at < 6  # judged only after the warm-up, and stopped early
    assert not (out / "trials" / "trial-0001").exists()  # a pruned build writes no bundle
    assert result.best_trial == 0
