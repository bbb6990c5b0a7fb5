"""MkDocs hooks (mkdocs.yml `hooks:`): the sources griffe reads, and the generated result tables.

edgeship installs `edgeship.train` from `train/`, `edgeship.runtime` from `runtime/`, ...
(setuptools `package-dir` in pyproject.toml). griffe reads sources statically from folders
laid out as the import names, so this hook mirrors the mapping as a tree of symlinks in
`build/docs-api/` (nothing is imported or executed; `__main__.py` never runs). It also
regenerates docs/results.md from benchmarks/*_results.json (benchmarks/render_tables.py).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import tomllib
from mkdocs.plugins import event_priority

ROOT = Path(__file__).resolve().parent.parent
API_SRC = ROOT / "build" / "docs-api"


def link_tree(root: Path = ROOT, out: Path = API_SRC) -> Path:
    """Lay out the package-dir mapping of pyproject.toml as import-name folders of symlinks."""
    setuptools = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping: dict[str, str] = setuptools.get("package-dir", {})
    for pkg in sorted(setuptools["packages"], key=lambda p: p.count(".")):
        src = root / mapping.get(pkg, pkg.replace(".", "/"))
        dest = out.joinpath(*pkg.split("."))
        dest.mkdir(parents=True, exist_ok=True)
        for entry in src.iterdir():
            if entry.suffix in (".py", ".pyi", ".typed") and entry.is_file():
                link = dest / entry.name
                if link.is_symlink() and link.resolve() != entry.resolve():
                    link.unlink()
                if not link.is_symlink():
                    link.symlink_to(entry)
    return out


def render_results() -> None:
    spec = importlib.util.spec_from_file_location("render_tables", ROOT / "benchmarks" / "render_tables.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("render_tables", module)
    spec.loader.exec_module(module)
    text = module.render()
    if not module.OUT.exists() or module.OUT.read_text() != text:
        module.OUT.write_text(text)


@event_priority(100)  # before mkdocstrings' on_config, which keeps only the `paths` that exist
def on_config(config, **kwargs):
    link_tree()
    render_results()
    return config
