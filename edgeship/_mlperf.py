"""The MLPerf Tiny reference files (mlcommons/tiny, Apache-2.0): names, sizes, and where to find them.

Used by ``benchmarks/mlperf_tiny.py`` and the tests that take the files as
third-party inputs. The int8 files and the float32 KWS file (816 KB together)
are committed under ``tests/data/mlperf_tiny/`` with their LICENSE, so a clean
clone's CI never depends on a folder beside the repository; the three larger
float32 files are read from the shared folder when it is there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "EDGESHIP_MLPERF_DIR"
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ReferenceFile:
    task: str  # kws, vww, ic, ad
    arch: str  # the zoo entry of the same architecture
    precision: str
    file: str
    bytes: int


REFERENCE_FILES = (
    ReferenceFile("ad", "fc_autoencoder", "float32", "ad01_fp32.tflite", 1_067_648),
    ReferenceFile("ad", "fc_autoencoder", "int8", "ad01_int8.tflite", 276_976),
    ReferenceFile("ic", "resnet8", "float32", "pretrainedResnet.tflite", 318_144),
    ReferenceFile("ic", "resnet8", "int8", "pretrainedResnet_quant.tflite", 98_496),
    ReferenceFile("kws", "ds_cnn", "float32", "kws_ref_model_float32.tflite", 43_392),
    ReferenceFile("kws", "ds_cnn", "int8", "kws_ref_model.tflite", 53_936),
    ReferenceFile("vww", "mobilenet_v1_025", "float32", "vww_96_float.tflite", 866_284),
    ReferenceFile("vww", "mobilenet_v1_025", "int8", "vww_96_int8.tflite", 333_288),
)


def search_dirs() -> list[Path]:
    """Where reference files are looked for, in order: ``$EDGESHIP_MLPERF_DIR``, the repo's
    ``tests/data/mlperf_tiny``, ``../shared/mlperf_tiny`` beside the repo, ``/work/shared/mlperf_tiny``."""
    dirs = [Path(os.environ[ENV_VAR])] if os.environ.get(ENV_VAR) else []
    dirs += [REPO / "tests" / "data" / "mlperf_tiny", REPO.parent / "shared" / "mlperf_tiny",
             Path("/work/shared/mlperf_tiny")]
    return dirs


def find_reference(name: str) -> Path | None:
    """The first readable copy of reference file ``name`` whose size is the published one, else ``None``."""
    want = next((r.bytes for r in REFERENCE_FILES if r.file == name), None)
    for d in search_dirs():
        p = d / name
        try:
            if p.is_file() and os.access(p, os.R_OK) and (want is None or p.stat().st_size == want):
                return p
        except OSError:
            continue
    return None


def reference(task: str, precision: str) -> ReferenceFile:
    for r in REFERENCE_FILES:
        if r.task == task and r.precision == precision:
            return r
    raise ValueError(f"Expected a task in kws, vww, ic, ad and precision float32 or int8. Received: {task}/{precision}.")
