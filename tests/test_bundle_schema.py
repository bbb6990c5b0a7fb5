"""The bundle's records (edgeship.core.bundle): round trips, schema versions, and the JSON Schema `edgeship schema` prints."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from edgeship.cli import main
from edgeship.core.bundle import (
    SCHEMA_VERSION,
    SQNR_CAP_DB,
    Baseline,
    Manifest,
    OutputParity,
    Variant,
    manifest_json_schema,
)
from edgeship.core.errors import BundleError, SchemaVersionError
from edgeship.runtime import load
from edgeship.runtime._bundle import read_manifest


def _manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "manifest.json").read_text())


def _write(folder: Path, manifest: dict[str, Any]) -> None:
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))


def test_built_manifest_and_baseline_round_trip(default_bundle: Path) -> None:
    d = _manifest(default_bundle)
    assert d["schema_version"] == SCHEMA_VERSION == 1
    m = Manifest.from_json(d)
    assert m.to_json() == d
    assert [a.variant for a in m.artifacts] == [
        Variant(format=f, precision=p) for f in ("tflite", "onnx") for p in ("float32", "int8")
    ]
    assert [a.file for a in m.artifacts] == [a.variant.file for a in m.artifacts]
    b = json.loads((default_bundle / "baseline.json").read_text())
    assert Baseline.from_json(b).to_json() == b


def test_records_are_frozen_and_typed(default_bundle: Path) -> None:
    m = read_manifest(default_bundle)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.name = "other"  # type: ignore[misc]
    int8 = m.artifact("tflite", "int8")[0]
    assert int8.estimates.ram_arena_bytes > 0 and int8.parity.check == "quantized"
    out = next(iter(int8.parity.outputs.values()))
    assert isinstance(out.sqnr_db, float) and out.sqnr_db <= SQNR_CAP_DB and out.top1_rule is not None


def test_manifest_without_schema_version_loads_as_version_1(bundle_copy: Path) -> None:
    """Bundles written before schema_version existed (schema "edgeship.bundle/1" only) still load."""
    d = _manifest(bundle_copy)
    del d["schema_version"]
    _write(bundle_copy, d)
    assert read_manifest(bundle_copy).schema_version == 1
    with load(bundle_copy, format="onnx", precision="float32") as model:
        assert model.labels == d["labels"]


@pytest.mark.parametrize("change", [{"schema_version": 2}, {"schema_version": "1"}, {"schema": "edgeship.bundle/2"}])
def test_unknown_schema_version_is_a_typed_error(bundle_copy: Path, change: dict[str, Any], capsys: Any) -> None:
    d = _manifest(bundle_copy)
    d.update(change)
    if "schema" in change:
        del d["schema_version"]
    _write(bundle_copy, d)
    with pytest.raises(SchemaVersionError, match=r"reads: 1 .*Received: .*(2|'1')"):
        load(bundle_copy)
    assert issubclass(SchemaVersionError, BundleError)
    assert main(["bench", str(bundle_copy)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "SchemaVersionError" in err


def test_malformed_manifest_names_the_field(bundle_copy: Path) -> None:
    d = _manifest(bundle_copy)
    d["artifacts"][1]["bytes"] = "many"
    _write(bundle_copy, d)
    with pytest.raises(BundleError, match=r"artifacts\[1\]\.bytes to be an integer\. Received: 'many'"):
        load(bundle_copy)
    del d["artifacts"][1]["sha256"]
    _write(bundle_copy, d)
    with pytest.raises(BundleError, match=r"artifacts\[1\] to hold 'sha256'"):
        load(bundle_copy)


def test_a_device_needs_only_name_and_artifact_files(bundle_copy: Path, capsys: Any) -> None:
    """Build sections are optional: any writer of model files makes a bundle the runtime loads and validates."""
    d = _manifest(bundle_copy)
    keep = ("file", "sha256", "bytes", "format", "precision")
    minimal = {"schema": d["schema"], "name": "minimal", "artifacts": [{k: a[k] for k in keep} for a in d["artifacts"]]}
    _write(bundle_copy, minimal)
    m = read_manifest(bundle_copy)
    assert m.schema_version == 1 and m.labels is None and m.artifacts[0].metrics is None
    assert m.to_json() == {**minimal, "schema_version": 1}
    from edgeship.runtime._choice import default_choice

    with load(bundle_copy) as model:  # no profile: the no-profile rule, which needs no build sections
        assert model.path.name == default_choice(m, bundle_copy)[0].file and model.labels is None
    jsonschema.Draft202012Validator(_printed_schema(capsys)).validate({**minimal, "schema_version": 1})


def test_unknown_keys_are_kept(default_bundle: Path) -> None:
    """A field added later within one schema version is ignored by readers and written back unchanged."""
    d = _manifest(default_bundle)
    d["signed_by"] = {"key": "k1"}
    d["artifacts"][0]["npu"] = True
    assert Manifest.from_json(d).to_json() == d


def test_output_parity_writes_null_for_undefined_sqnr() -> None:
    q = OutputParity(max_abs_diff=0.5, mean_abs_diff=0.1, quantized=True)
    assert q.to_json() == {"max_abs_diff": 0.5, "mean_abs_diff": 0.1, "sqnr_db": None, "top1_agreement": None,
                           "top1_rule": None}
    assert OutputParity.from_json(q.to_json()) == q
    f = OutputParity(max_abs_diff=0.0, mean_abs_diff=0.0, atol=1e-4)
    assert f.to_json() == {"max_abs_diff": 0.0, "mean_abs_diff": 0.0, "atol": 1e-4}


def _printed_schema(capsys: Any) -> dict[str, Any]:
    assert main(["schema"]) == 0
    return json.loads(capsys.readouterr().out)


def test_schema_cli_validates_a_built_manifest(default_bundle: Path, capsys: Any) -> None:
    schema = _printed_schema(capsys)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema == manifest_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    d = _manifest(default_bundle)
    validator.validate(d)
    assert "120" in json.dumps(schema["$defs"]["OutputParity"]["properties"]["sqnr_db"])  # inf is stored one way


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda d: d["artifacts"][0].update(sha256=5),
        lambda d: d["artifacts"][0].pop("file"),
        lambda d: d.update(artifacts=[]),
        lambda d: d.update(schema_version=2),
        lambda d: d["artifacts"][1]["parity"]["outputs"]["probs"].update(sqnr_db="inf"),
        lambda d: d["artifacts"][0].update(format="tflite-micro"),
        lambda d: d["eval"].update(sha256=None),
        lambda d: d["parity"].pop("cross_format"),
    ],
    ids=["sha256-number", "no-file", "no-artifacts", "version-2", "sqnr-inf-string", "bad-format", "eval-sha256-null",
         "parity-without-cross-format"],
)
def test_schema_rejects_a_corrupted_manifest(default_bundle: Path, capsys: Any, corrupt: Any) -> None:
    validator = jsonschema.Draft202012Validator(_printed_schema(capsys))
    d = _manifest(default_bundle)
    corrupt(d)
    assert not validator.is_valid(d)
    with pytest.raises(BundleError):  # the records refuse what the schema refuses
        Manifest.from_json(d)


def test_schema_command_needs_no_pydantic_or_tensorflow() -> None:
    """`edgeship schema` works on a runtime-only install: the schema comes from stdlib dataclasses."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["pydantic"] = None  # importing it now fails, as on a device install
        from edgeship.cli import main
        main(["schema"])
        heavy = [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tf_keras", "onnx")]
        print(heavy, file=sys.stderr)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["$schema"].endswith("2020-12/schema")
    assert proc.stderr.strip() == "[]"


def test_corrupted_baseline_names_the_field(bundle_copy: Path) -> None:
    from edgeship.runtime._check import read_baseline

    path = bundle_copy / "baseline.json"
    data = json.loads(path.read_text())
    data["artifacts"]["model.int8.onnx"]["latency_ratio"] = "fast"
    path.write_text(json.dumps(data))
    with pytest.raises(BundleError, match=r"model\.int8\.onnx\.latency_ratio to be a number.*check BUNDLE --update"):
        read_baseline(path)
