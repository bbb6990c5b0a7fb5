"""The pytest plugin (``edgeship.testing``), exercised with pytest's own ``pytester``.

The inner test runs are real pytest sessions in a subprocess, so the plugin is
loaded the way a user's CI loads it: through the ``pytest11`` entry point.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
from edgeship.testing import assert_accuracy, assert_latency_ratio

def test_accuracy_ok(edgeship_bundle):
    acc = assert_accuracy(edgeship_bundle, at_least=0.9)
    assert len(acc) == 4

def test_accuracy_too_strict(edgeship_bundle):
    assert_accuracy(edgeship_bundle, at_least=0.9999, format="tflite", precision="int8")

def test_model_fixture(edgeship_model, edgeship_eval):
    x, y = edgeship_eval
    assert edgeship_model.predict(x[:2]).shape == (2, 10)
    assert_accuracy(edgeship_model, at_least=0.9)

def test_load_factory(edgeship_load):
    m = edgeship_load(format="onnx", precision="int8")
    assert m.format == "onnx" and m.precision == "int8"

def test_latency_ceiling_ok(edgeship_bundle):
    ratios = assert_latency_ratio(edgeship_bundle, at_most=1000.0, format="onnx", rounds=2)
    assert set(ratios) == {"model.float32.onnx", "model.int8.onnx"}

def test_latency_ceiling_impossible(edgeship_bundle):
    assert_latency_ratio(edgeship_bundle, at_most=1e-6, format="tflite", precision="float32", rounds=2)

def test_latency_against_baseline(edgeship_bundle):
    assert_latency_ratio(edgeship_bundle, tolerance=100.0, precision="int8", rounds=2)
"""


def test_plugin_is_registered_as_pytest11_entry_point(tmp_path: Path) -> None:
    # Outside the source tree: a stale edgeship.egg-info there (an old setuptools build output,
    # gitignored) would shadow the installed metadata for a process started in the repo root.
    code = (
        "from importlib.metadata import entry_points; print({e.name: e.value for e in entry_points(group='pytest11')})"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True, cwd=tmp_path
    )
    assert "'edgeship': 'edgeship.testing'" in out.stdout


def test_plugin_fixtures_and_assertions(pytester: pytest.Pytester, default_bundle: Path) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("--edgeship-bundle", str(default_bundle), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: accuracy below 0.9999 on eval.npz: model.int8.tflite 0.9*",
            "*AssertionError: latency ratio to the reference too high: model.float32.tflite *x > 0.000x*",
        ]
    )


def test_bundle_from_ini_and_env(
    pytester: pytest.Pytester, default_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_one="def test_it(edgeship_bundle):\n    assert edgeship_bundle.name == 'default'\n")
    pytester.makeini(f"[pytest]\nedgeship_bundle = {default_bundle}\n")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    pytester.makeini("[pytest]\n")
    monkeypatch.setenv("EDGESHIP_BUNDLE", str(default_bundle))
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_no_bundle_configured_fails_with_the_fix(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGESHIP_BUNDLE", raising=False)
    pytester.makepyfile(test_one="def test_it(edgeship_bundle):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*no bundle configured*Pass --edgeship-bundle*"])
    assert "--edgeship-bundle" in pytester.runpytest_subprocess("--help").stdout.str()


def test_assert_check_reports_the_table(pytester: pytest.Pytester, bundle_copy: Path) -> None:
    import json

    path = bundle_copy / "baseline.json"
    data = json.loads(path.read_text())
    data["artifacts"]["model.float32.onnx"]["accuracy"] = 1.0  # the baseline was better: a regression now
    path.write_text(json.dumps(data))
    pytester.makepyfile(
        test_gate=textwrap.dedent("""
        from edgeship.testing import assert_check

        def test_gate(edgeship_bundle):
            assert_check(edgeship_bundle, latency_tol=100.0, rounds=2)
    """)
    )
    result = pytester.runpytest_subprocess("--edgeship-bundle", str(bundle_copy), "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*edgeship check failed:*", "*model.float32.onnx*accuracy*1.0000*FAIL*"])


def test_assert_accuracy_rejects_a_bad_threshold(default_bundle: Path) -> None:
    from edgeship.testing import assert_accuracy

    with pytest.raises(ValueError, match=r"at_least in \[0, 1\]. Received: 97"):
        assert_accuracy(default_bundle, at_least=97)


def test_plugin_import_is_light() -> None:
    code = textwrap.dedent("""
        import sys
        import edgeship.testing
        heavy = sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'tensorflow', 'tf_keras', 'onnxruntime',
                                                                'ai_edge_litert', 'matplotlib', 'onnx'})
        print(heavy)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.strip() == "[]"
