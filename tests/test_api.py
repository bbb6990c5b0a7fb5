"""Pin the public API, and the device package's lightness (the layer whitelist is in test_house.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import edgeship.runtime as runtime

RUNTIME_API = [
    "BackendMissingError", "BundleError", "EdgeshipError", "InputError", "IntegrityError", "Model", "ModelFileError",
    "SchemaVersionError", "TensorInfo", "benchmark", "load", "load_eval", "sha256_file", "time_predict",
    # what the build side and the CLI take from the device side
    "BASELINE_FILE", "CHECK_ROUNDS", "METADATA_SCHEMA", "ONNX_PREFIX", "TFLITE_METADATA_NAME", "arena_estimate",
    "bench_bundle", "check_bundle", "describe", "estimates", "format_report", "inspect_file", "is_bundle", "load_file",
    "measure_bundle", "measure_latency_ratio", "measure_pair_ratio", "onnx_graph", "read_baseline", "read_graph",
    "read_manifest", "resolve_tolerances", "timing_input", "update_baseline", "verify_bundle", "workload",
    "write_baseline",
]
EXPORT_API = [
    "BundleWriter", "ONNX_PRECISIONS", "OnnxQuantConfig", "TFLITE_PRECISIONS", "file_entry", "most_sensitive",
    "onnx_sqnr", "quantize_onnx", "quantize_onnx_dynamic", "tflite_sqnr", "to_onnx", "to_tflite",
    # what the orchestrator takes from export
    "check_artifact", "check_target", "embed_metadata", "inspect_file", "keras_outputs", "metadata_dict",
    "write_reports",
]
COMPRESS_API = [
    "Attempt", "ChannelAttempt", "ChannelGroup", "ChannelReport", "Distillation", "FoldReport", "PruneAttempt",
    "PruneSchedule", "attempts_table", "channel_attempts_table", "channel_budget_error", "channel_groups", "count_macs",
    "default_fine_tune_epochs", "distillation_loss", "distiller", "effective_budget", "excluded_layers",
    "fine_tune_channels", "fold_batchnorm", "iter_channel_attempts", "iter_prune_attempts", "prune",
    "prune_attempts_table", "prune_budget_error", "prune_channels", "prune_to_budget", "qat_float_weights",
    "quantize_aware", "sparsity_report", "tflite_weight_sparsity",
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

    for pkg, pinned in ((export, EXPORT_API), (compress, COMPRESS_API)):
        assert sorted(pkg.__all__) == sorted(pinned), pkg.__name__
        assert all(hasattr(pkg, name) for name in pkg.__all__), pkg.__name__
    # train's records are being reworked: pin what other stages import from it
    assert set(train.__all__) >= {"load_dataset", "create_model", "fit", "list_models", "list_datasets", "chance_check",
                                  "macro_f1"}
    assert all(hasattr(train, name) for name in train.__all__)


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
