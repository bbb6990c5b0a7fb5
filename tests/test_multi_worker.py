"""``train.strategy = "multi_worker"``: two real worker processes on loopback train the digits recipe together.

Each worker is ``python -m edgeship build`` with its own ``TF_CONFIG`` (two
free ports on 127.0.0.1); TensorFlow's MultiWorkerMirroredStrategy all-reduces
the gradients. Bounded: every process has a subprocess timeout, and the
collectives time out after ``EDGESHIP_COLLECTIVE_TIMEOUT`` seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgeship import train

RECIPE = """
name = "digits-multi-worker"
[train]
strategy = "multi_worker"
epochs = {epochs}
[prune]
enabled = false
[quantize]
tflite = ["int8"]
[export]
formats = ["tflite"]
measure_rss = false
"""
TIMEOUT = 240  # seconds per worker process, far above a healthy run (about a minute on 2 shared cores)


def _start(tmp_path: Path, epochs: int) -> tuple[list[subprocess.Popen[bytes]], list[Path], Path]:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE.format(epochs=epochs), encoding="utf-8")
    out = tmp_path / "bundle"
    procs, logs = [], []
    for i, tf_config in enumerate(train.local_cluster(2)):
        env = {**os.environ, "TF_CONFIG": tf_config, "EDGESHIP_COLLECTIVE_TIMEOUT": "20"}
        logs.append(tmp_path / f"worker-{i}.log")
        with logs[-1].open("wb") as log:
            procs.append(subprocess.Popen([sys.executable, "-m", "edgeship", "build", str(recipe), "--out", str(out),
                                           "-v"], env=env, stdout=log, stderr=subprocess.STDOUT))
    return procs, logs, out


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=30)


def _weights(path: Path) -> dict[str, np.ndarray]:
    import h5py

    found: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: found.__setitem__(name, np.asarray(obj)) if isinstance(obj, h5py.Dataset)
                     else None)
    return found



def test_worker_role_reads_tf_config() -> None:
    from edgeship.core.errors import ClusterError

    configs = train.local_cluster(2)
    roles = [train.worker_role(c) for c in configs]
    assert [(r.index, r.workers, r.is_chief) for r in roles] == [(0, 2, True), (1, 2, False)]
    assert roles[1].weights_folder("/x/bundle") == Path("/x/bundle.worker-1")
    cfg = json.loads(configs[0])
    assert len({h.rsplit(":", 1)[1] for h in cfg["cluster"]["worker"]}) == 2
    assert all(h.startswith("127.0.0.1:") for h in cfg["cluster"]["worker"])
    with pytest.raises(ClusterError, match="task index in 0..1"):
        train.worker_role(json.dumps({**cfg, "task": {"type": "worker", "index": 2}}))
    with pytest.raises(ClusterError, match="Expected TF_CONFIG to be JSON"):
        train.worker_role('{"cluster": {}}')


@pytest.mark.slow
def test_two_workers_train_the_same_weights_and_the_chief_alone_writes_the_bundle(tmp_path: Path) -> None:
    procs, logs, out = _start(tmp_path, epochs=5)
    try:
        codes = [p.wait(timeout=TIMEOUT) for p in procs]
    finally:
        _stop(procs)
    assert codes == [0, 0], [log.read_text(errors="replace")[-2000:] for log in logs]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["metrics"]["keras_reference_accuracy"] >= 0.95
    worker = out.with_name("bundle.worker-1")
    assert sorted(p.name for p in worker.iterdir()) == ["trained.weights.h5"]  # no bundle from the non-chief
    chief_w, worker_w = _weights(out / "training" / "trained.weights.h5"), _weights(worker / "trained.weights.h5")
    assert chief_w.keys() == worker_w.keys() and len(chief_w) > 4
    for name in chief_w:
        np.testing.assert_array_equal(chief_w[name], worker_w[name], err_msg=name)


@pytest.mark.slow
def test_a_worker_that_dies_is_a_typed_error_on_the_chief_not_a_hang(tmp_path: Path) -> None:
    procs, logs, out = _start(tmp_path, epochs=500)  # far longer than the test waits: it must be cut short
    try:
        deadline = time.monotonic() + TIMEOUT
        while "Epoch 2/" not in logs[0].read_text(errors="replace"):
            assert time.monotonic() < deadline and procs[0].poll() is None, logs[0].read_text(errors="replace")[-2000:]
            time.sleep(0.5)
        procs[1].kill()  # SIGKILL mid-training
        code = procs[0].wait(timeout=TIMEOUT)
    finally:
        _stop(procs)
    log = logs[0].read_text(errors="replace")
    assert code == 2, log[-2000:]
    assert "ClusterError: Expected all 2 workers in TF_CONFIG to keep training together" in log
    assert not out.exists()
