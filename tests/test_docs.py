"""The README stays a front page, the version lives in one place, and measured figures are generated."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

import edgeship

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
README_MAX_LINES = 400

# Files that may name versions besides edgeship/__init__.py: the history, and the records of
# past measurements (which edgeship version measured them).
VERSION_MAY_APPEAR = {"CHANGELOG.md"}
VERSION_MAY_APPEAR_GLOBS = ("benchmarks/*_results.json",)


def _render_tables():
    spec = importlib.util.spec_from_file_location("render_tables", ROOT / "benchmarks" / "render_tables.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["render_tables"] = module
    spec.loader.exec_module(module)
    return module


def _tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / p for p in out.decode().split("\0") if p]


def test_readme_is_at_most_400_lines() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines, expected at most {README_MAX_LINES}: move the detail into a page under docs/"
    )


def test_readme_relative_links_resolve() -> None:
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]
    assert local, "expected README.md to link into docs/"
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_version_is_written_in_one_place() -> None:
    version = edgeship.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"expected a MAJOR.MINOR.PATCH version, got {version!r}"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in pyproject["project"], "pyproject.toml must not repeat the version: use dynamic"
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "edgeship.__version__"}

    allowed = {ROOT / p for p in VERSION_MAY_APPEAR}
    for pattern in VERSION_MAY_APPEAR_GLOBS:
        allowed.update(ROOT.glob(pattern))
    found = []
    for path in _tracked_files():
        if path in allowed or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if re.search(rf"(?<![\d.]){re.escape(version)}(?![\d.])", text):
            found.append(str(path.relative_to(ROOT)))
    assert found == ["edgeship/__init__.py"], (
        f"expected the version {version} written only in edgeship/__init__.py; found it in {found}"
    )


def test_changelog_has_a_section_for_this_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## [{edgeship.__version__}]" in text


def test_license_is_the_apache_2_text() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_results_page_is_what_the_result_files_give() -> None:
    rt = _render_tables()
    assert rt.OUT.read_text(encoding="utf-8") == rt.render(), (
        "docs/results.md differs from benchmarks/*_results.json: run python benchmarks/render_tables.py "
        "(never edit the page by hand)"
    )


MEASURED = {"cpu": "Intel(R) Xeon(R) Processor", "cpu_count": 2, "avx2": True, "avx512_vnni": True}


@pytest.mark.parametrize(
    ("data", "timing", "published"),
    [
        ({"date": "2026-11-26", "machine": MEASURED}, False, True),  # accuracy: needs CPU and date only
        ({"date": "2026-11-26", "machine": MEASURED}, True, False),  # timing without a load average
        ({"date": "2026-11-26", "machine": {**MEASURED, "load_average": [0.9, 0.8, 0.7]}}, True, True),
        ({"date": "2026-11-26", "machine": {**MEASURED, "load_average": [7.0, 6.5, 6.0]}}, True, False),
        ({"date": "2026-11-26", "machine": {**MEASURED, "load_average": [0.5, 0.5, 0.5]},
          "note": "2 cores shared with other jobs"}, True, False),
        ({"machine": MEASURED}, False, False),  # no date
        ({"date": "2026-11-26", "machine": {"cpu_count": 2}}, False, False),  # no CPU model
    ],
)
def test_render_rule_drops_figures_it_cannot_vouch_for(data: dict, timing: bool, published: bool) -> None:
    rt = _render_tables()
    reason = rt.Machine.of(data).missing(timing=timing)
    assert (reason is None) == published, reason


def test_busy_timing_figures_are_left_out_with_a_line(tmp_path: Path) -> None:
    rt = _render_tables()
    busy = {"date": "2026-11-26", "machine": {**MEASURED, "load_average": [7.0, 6.5, 6.0]},
            "results": [{"workers": 1, "epochs": 10, "keras_float32_test_accuracy": 0.98,
                         "int8_tflite_test_accuracy": 0.98, "weights_identical_across_workers": None,
                         "train_steps_per_s": 58.94}]}
    (tmp_path / "multi_worker_results.json").write_text(__import__("json").dumps(busy))
    page = rt.render(tmp_path)
    assert "58.94" not in page
    assert "awaits a quiet re-measurement" in page and "load average was 7.00" in page
    assert "0.9800" in page  # accuracy is published under its machine line
    assert "Load average: 7.00 / 6.50 / 6.00" in page
