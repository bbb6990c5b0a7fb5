"""Pin the public API, and the dependency rule for the device package."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import edgeship.runtime as runtime

RUNTIME_API = [
    "BackendMissingError", "BundleError", "EdgeshipError", "InputError", "IntegrityError", "Model", "ModelFileError",
    "SchemaVersionError", "TensorInfo", "benchmark", "load", "load_eval", "sha256_file", "time_predict",
]
EDGESHIP_API = [
    "AccuracyBudgetError", "BuildError", "BundleError", "ChanceLevelError", "ClusterError", "DataError", "EdgeshipError",
    "MissingExtraError", "ParityError", "PlatformError", "RecipeError", "SchemaVersionError", "SearchError",
    "WheelMissingError",
]


def test_runtime_exports_are_pinned() -> None:
    assert sorted(runtime.__all__) == sorted(RUNTIME_API)
    for name in runtime.__all__:
        assert hasattr(runtime, name)


def test_edgeship_exports_are_pinned() -> None:
    import edgeship

    assert sorted(edgeship.__all__) == sorted(EDGESHIP_API)
    for name in edgeship.__all__:
        assert hasattr(edgeship, name)


def test_every_error_shares_one_base() -> None:
    """Build-side errors live in edgeship.core.errors, device errors in edgeship.runtime; one base catches all."""
    import edgeship
    from edgeship.core.errors import EdgeshipError

    errors = [getattr(edgeship, n) for n in EDGESHIP_API] + [getattr(runtime, n) for n in RUNTIME_API if n.endswith("Error")]
    assert all(issubclass(e, EdgeshipError) for e in errors)
    assert runtime.EdgeshipError is EdgeshipError and runtime.BundleError is edgeship.BundleError
    assert not {"RecipeError", "ParityError", "BuildError", "AccuracyBudgetError", "ChanceLevelError"} & set(dir(runtime))


def test_build_side_exports() -> None:
    from edgeship import compress, export, train

    assert set(train.__all__) >= {"load_dataset", "create_model", "fit", "list_models", "list_datasets"}
    assert set(compress.__all__) >= {"prune", "sparsity_report"}
    assert set(export.__all__) >= {"to_tflite", "to_onnx", "quantize_onnx", "BundleWriter"}


def _run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_import_runtime_does_not_import_tensorflow_or_other_stages() -> None:
    out = _run(
        """
        import sys
        import edgeship.runtime
        heavy = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'keras', 'onnx', 'tf2onnx', 'pydantic',
                                                              'uvicorn', 'starlette', 'prometheus_client', 'anyio')]
        stages = [m for m in sys.modules
                  if m.startswith(('edgeship.train', 'edgeship.compress', 'edgeship.export', 'edgeship.runtime.serve'))]
        print(heavy, stages)
        """
    )
    assert out.strip() == "[] []"


def test_predict_through_runtime_never_imports_tensorflow(default_bundle: Path) -> None:
    out = _run(
        f"""
        import sys
        import numpy as np
        from edgeship.runtime import load, load_eval
        x, y = load_eval({str(default_bundle)!r})
        for fmt in ('tflite', 'onnx'):
            for prec in ('float32', 'int8'):
                with load({str(default_bundle)!r}, format=fmt, precision=prec) as m:
                    assert m.predict(x[:4]).shape == (4, 10)
        print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'keras')))
        """
    )
    assert out.strip() == "[]"


# Each stage's folder and the edgeship.* packages it must never import (lazy imports inside functions count).
_FORBIDDEN = {
    "runtime": ("edgeship.train", "edgeship.compress", "edgeship.export", "edgeship.build", "edgeship.variants"),
    "runtime/serve": ("edgeship.train", "edgeship.compress", "edgeship.export", "edgeship.build", "edgeship.variants"),
    "train": ("edgeship.compress", "edgeship.export", "edgeship.build", "edgeship.variants"),
    "compress": ("edgeship.export", "edgeship.build", "edgeship.variants"),
    "export": ("edgeship.train", "edgeship.compress", "edgeship.build", "edgeship.variants"),
}


def _imports(path: Path) -> set[str]:
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)  # `from edgeship import export`
    return names


def test_stages_import_one_way() -> None:
    """The README's architecture rule: a stage never imports a stage below it, not even inside a function."""
    root = Path(__file__).resolve().parents[1]
    broken = []
    for folder, forbidden in _FORBIDDEN.items():
        for path in sorted((root / folder).glob("*.py")):
            bad = sorted(n for n in _imports(path) if n.startswith(forbidden))
            if bad:
                broken.append(f"{folder}/{path.name}: {', '.join(bad)}")
    assert not broken, broken
