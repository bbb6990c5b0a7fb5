"""Verified loading: sha256, the structural TFLite/ONNX checks, and the child-process probe."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from edgeship.runtime import IntegrityError, ModelFileError, load
from edgeship.runtime import _verify as v
from edgeship.runtime._probe import probe_model_bytes

pytestmark = pytest.mark.device  # runtime only: also runs in the emulated arm64 root


def test_schema_slots_match_litert_schema() -> None:
    """The verifier's vtable slots are the ones in LiteRT's generated schema."""
    import ai_edge_litert

    src = (Path(ai_edge_litert.__file__).parent / "schema_py_generated.py").read_text()

    def slots(cls: str) -> dict[str, int]:
        body = re.search(rf"\nclass {cls}\(object\):(.*?)\nclass ", src, re.S).group(1)  # type: ignore[union-attr]
        out = {}
        for m in re.finditer(r"    def (\w+)\(self\):\n(.*?)(?=\n    def |\Z)", body, re.S):
            o = re.search(r"Offset\((\d+)\)", m.group(2))
            if o:
                out[m.group(1)] = int(o.group(1))
        return out

    def camel(name: str) -> str:
        return "".join(p.capitalize() for p in name.split("_"))

    tables = {"Model": v.MODEL, "OperatorCode": v.OPERATOR_CODE, "SubGraph": v.SUBGRAPH, "Tensor": v.TENSOR,
              "Operator": v.OPERATOR, "Buffer": v.BUFFER, "QuantizationParameters": v.QUANTIZATION,
              "SparsityParameters": v.SPARSITY, "DimensionMetadata": v.DIM_METADATA, "Metadata": v.METADATA,
              "SignatureDef": v.SIGNATURE_DEF, "TensorMap": v.TENSOR_MAP}
    for cls, ours in tables.items():
        theirs = slots(cls)
        for field, slot in ours.items():
            name = camel(field)
            found = theirs.get(name, theirs.get(name + "Length"))  # scalars / tables, or vectors
            assert found == slot, (cls, field, slot, found)
    from ai_edge_litert.schema_py_generated import BuiltinOptions

    assert {BuiltinOptions.ConcatEmbeddingsOptions, BuiltinOptions.ReshapeOptions, BuiltinOptions.SqueezeOptions} == set(v.OPTIONS_INT_VECTORS)
    assert {BuiltinOptions.IfOptions, BuiltinOptions.WhileOptions, BuiltinOptions.CallOnceOptions} == set(v.OPTIONS_SUBGRAPHS)


def _locate(data: bytes) -> dict[str, int]:
    """Byte positions of a few fields in a real model, found with the verifier's reader."""
    fb = v._Flatbuffer(data)
    model = fb.table(fb.u32(0), "Model")
    sg = fb.tables(model, v.MODEL["subgraphs"], "s")[0]
    tensors = fb.tables(sg, v.SUBGRAPH["tensors"], "t")
    ops = fb.tables(sg, v.SUBGRAPH["operators"], "o")
    op = next(o for o in ops if fb.field(o, v.OPERATOR["opcode_index"]))  # a field that is present
    const = next(t for t in tensors if fb.scalar(t, v.TENSOR["buffer"], "<I") and len(fb.int_array(t, v.TENSOR["shape"], "s")))
    start, _ = fb.vector_field(const, v.TENSOR["shape"], 4, "shape")
    in_start, _ = fb.vector_field(op, v.OPERATOR["inputs"], 4, "inputs")
    return {
        "root": 0,
        "model_vtable_soffset": fb.u32(0),
        "tensor_buffer": fb.field(const, v.TENSOR["buffer"]),
        "op_opcode": fb.field(op, v.OPERATOR["opcode_index"]),
        "op_input": in_start,
        "const_dim0": start,
    }


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("root", 10**8, "outside"),
        ("model_vtable_soffset", -(10**8), "vtable"),
        ("tensor_buffer", 9999, "refers to buffer 9999"),
        ("op_opcode", 200, "uses opcode 200"),
        ("op_input", 5000, "refers to index 5000"),
        ("const_dim0", 1000, "needs .* bytes but its buffer"),
        ("const_dim0", -5, "negative dimension"),
    ],
)
def test_crafted_tflite_is_rejected_before_litert(default_bundle: Path, tmp_path: Path, field: str, value: int, message: str) -> None:
    data = bytearray((default_bundle / "model.float32.tflite").read_bytes())
    pos = _locate(bytes(data))[field]
    struct.pack_into("<i" if value < 0 else "<I", data, pos, value)
    bad = tmp_path / "crafted.tflite"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=message):
        v.check_model_bytes(bytes(data), "tflite", bad.name)
    with pytest.raises(ModelFileError, match=message):
        load(bad)


def test_truncated_and_wrong_identifier(default_bundle: Path, tmp_path: Path) -> None:
    for name in ("model.int8.tflite", "model.int8.onnx"):
        data = (default_bundle / name).read_bytes()
        for cut in (7, 100, len(data) // 2, len(data) - 1):
            bad = tmp_path / f"cut{cut}{Path(name).suffix}"
            bad.write_bytes(data[:cut])
            with pytest.raises(ModelFileError):
                load(bad)
    data = bytearray((default_bundle / "model.float32.tflite").read_bytes())
    data[4:8] = b"XXXX"
    (tmp_path / "id.tflite").write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="not a TFLite flatbuffer"):
        load(tmp_path / "id.tflite")


def test_real_artifacts_pass_the_structural_check(default_bundle: Path) -> None:
    for path in sorted(default_bundle.glob("model.*")):
        data = path.read_bytes()
        summary = v.verify_tflite(data) if path.suffix == ".tflite" else v.verify_onnx(data)
        assert min(summary.values()) >= 1


def test_bundle_sha256_is_checked(bundle_copy: Path) -> None:
    target = bundle_copy / "model.float32.tflite"
    data = bytearray(target.read_bytes())
    fb = v._Flatbuffer(bytes(data))
    buffers = fb.tables(fb.table(fb.u32(0), "Model"), v.MODEL["buffers"], "b")
    start, length = max((fb.vector_field(b, v.BUFFER["data"], 1, "d") for b in buffers), key=lambda sl: sl[1])
    data[start + length // 2] ^= 1  # a weight byte: a valid model, but not the one the manifest names
    target.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="sha256"):
        load(bundle_copy)
    with load(target) as m:  # as a bare file it is still a loadable model
        assert m.predict(__import__("numpy").zeros((1, 8, 8, 1), "float32")).shape == (1, 10)


def test_probe_turns_an_engine_crash_into_a_typed_error(default_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe child aborting (as a crashing engine does) reaches the caller as ModelFileError."""
    import edgeship.runtime._probe as probe

    monkeypatch.setenv("EDGESHIP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("EDGESHIP_PROBE_SELFTEST", "abort")
    probe._stop_worker()  # a zygote started with this environment
    data = (default_bundle / "model.float32.tflite").read_bytes() + b"\0" * 8  # never seen before
    try:
        with pytest.raises(ModelFileError, match="probe process failed.*SIGABRT"):
            probe_model_bytes(data, "tflite", "x.tflite")
    finally:
        probe._stop_worker()
    monkeypatch.delenv("EDGESHIP_PROBE_SELFTEST")
    probe_model_bytes(data, "tflite", "x.tflite")  # the same bytes pass with a healthy engine
    assert any((tmp_path / "cache" / "probed").iterdir())  # and are remembered by sha256


def test_probe_uses_the_same_tflite_engine_order_as_the_backend() -> None:
    from edgeship.runtime import _backends, _probe

    assert _probe._TFLITE_ENGINES == _backends.TFLITE_ENGINES
    interp = _probe._tflite_interpreter()
    assert interp is _backends.tflite_interpreter_class()[0]
