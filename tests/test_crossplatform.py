"""Cross-architecture parity (`edgeship check --platform linux-aarch64`) in the emulated arm64 root.

These need the root `make arm-root` sets up: `make test-arm` runs them (EDGESHIP_ARM_STAGE=1, where a missing
root fails); elsewhere they skip saying so.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from arm_helpers import require_arm_root

from edgeship import platforms
from edgeship.cli import main
from edgeship.core.errors import PlatformError


@pytest.mark.emulated
def test_check_platform_records_parity_within_limits(bundle_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_arm_root()
    assert main(["check", str(bundle_copy), "--platform", "linux-aarch64"]) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and "model.int8.tflite" in out
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    cross = manifest["parity"]["cross_platform"]["linux-aarch64"]
    assert cross["passed"] is True and cross["emulated"] is True and cross["samples"] > 0
    assert cross["limits"] == {"float_max_abs_diff": 1e-5, "min_sqnr_db": 30.0, "min_top1_agreement": 0.99}
    assert set(cross["artifacts"]) == {a["file"] for a in manifest["artifacts"]}
    for file, a in cross["artifacts"].items():
        if "float" in file:
            assert a["check"] == "float" and a["max_abs_diff"] <= 1e-5
        else:
            assert a["check"] == "quantized" and a["sqnr_db"] >= 30 and a["top1_agreement"] >= 0.99
    assert cross["engines"]["onnxruntime"] and cross["cpu"]
    jsonschema = pytest.importorskip("jsonschema")
    from edgeship.core.bundle import manifest_json_schema

    jsonschema.validate(manifest, manifest_json_schema())  # the schema knows parity.cross_platform
    assert "on linux-aarch64" in (bundle_copy / "report.md").read_text()
    from edgeship.runtime import load

    with load(bundle_copy) as m:  # the rewritten manifest still loads
        assert m.path.parent == bundle_copy


@pytest.mark.emulated
def test_tampered_limit_fails_with_exit_1(bundle_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_arm_root()
    # No float artifact matches x86 bit for bit on aarch64 (diff ~1e-7): a zero tolerance is a miss.
    assert main(["check", str(bundle_copy), "--platform", "linux-aarch64", "--float-atol", "0"]) == 1
    err = capsys.readouterr().err
    # the one parity rule's wording (edgeship.core.parity): per output, the float tolerance as atol
    assert "ParityError" in err and "model.float32.tflite: output" in err and "> atol 0" in err
    cross = json.loads((bundle_copy / "manifest.json").read_text())["parity"]["cross_platform"]["linux-aarch64"]
    assert cross["passed"] is False and cross["limits"]["float_max_abs_diff"] == 0.0 and cross["failures"]


def test_unknown_platform_and_missing_root_are_typed(bundle_copy: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["check", str(bundle_copy), "--platform", "linux-riscv64"]) == 2  # argparse choices: one line
    monkeypatch.setenv(platforms.ENV_ROOT, str(tmp_path / "no-root"))
    from edgeship.crossplatform import check_platform

    with pytest.raises(PlatformError, match="(Expected a ready linux-aarch64 root|Expected binfmt|Expected to run as)"):
        check_platform(bundle_copy, "linux-aarch64")


def test_recipe_platforms_are_validated() -> None:
    from edgeship.core.errors import RecipeError
    from edgeship.recipe import Recipe

    assert Recipe.default().export.platforms == []
    data = Recipe.default().to_dict()
    data["export"]["platforms"] = ["linux-aarch64"]
    assert Recipe.from_dict(data).export.platforms == ["linux-aarch64"]
    data["export"]["platforms"] = ["linux-riscv64"]
    with pytest.raises(RecipeError, match="linux-aarch64"):
        Recipe.from_dict(data)
