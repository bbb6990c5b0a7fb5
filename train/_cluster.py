"""Multi-worker training: who this process is in ``TF_CONFIG``, and a local cluster on loopback.

``train.strategy = "multi_worker"`` trains with ``tf.distribute.MultiWorkerMirroredStrategy``:
every worker runs the same ``edgeship build`` with its own ``TF_CONFIG``; the
variables start equal (broadcast from the chief) and every step all-reduces the
gradients, so all workers end with the same weights. The chief (task
``chief``, or ``worker`` 0 when the cluster has no ``chief`` job) compresses,
exports and writes the bundle; the other workers stop after training and write
no bundle, only their trained weights to ``OUT.worker-N/trained.weights.h5`` (a
record that they agree with the chief; delete it freely).

A worker that dies mid-training makes the others' collective ops fail: each
collective times out after ``EDGESHIP_COLLECTIVE_TIMEOUT`` seconds (default
``COLLECTIVE_TIMEOUT_SECONDS``) and TensorFlow's cluster health check aborts
them; the build then raises :class:`~edgeship.core.errors.ClusterError`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from pathlib import Path
from typing import Any

from edgeship.core.errors import ClusterError

#: Seconds a collective op (one all-reduce) may wait for the other workers before it fails.
COLLECTIVE_TIMEOUT_SECONDS = 120.0


@dataclasses.dataclass(frozen=True)
class WorkerRole:
    """This process in ``TF_CONFIG``: task type and index, cluster size, and whether it is the chief."""

    task_type: str
    index: int
    workers: int
    is_chief: bool

    def weights_folder(self, out: str | Path) -> Path:
        """Where a non-chief worker leaves its trained weights: ``OUT.worker-N`` beside the bundle."""
        out = Path(out)
        return out.with_name(f"{out.name}.{self.task_type}-{self.index}")


def worker_role(tf_config: str | None = None) -> WorkerRole:
    """Parse ``TF_CONFIG`` (default: the environment variable); raises ``ClusterError`` when it is unusable."""
    text = os.environ.get("TF_CONFIG") if tf_config is None else tf_config
    example = ('{"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]}, '
               '"task": {"type": "worker", "index": 0}}')
    try:
        cfg = json.loads(text or "")
        cluster, task = cfg["cluster"], cfg["task"]
        kind, index = str(task["type"]), int(task["index"])
        size = sum(len(cluster.get(job, [])) for job in ("chief", "worker"))
        known = len(cluster[kind])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ClusterError(f"Expected TF_CONFIG to be JSON with cluster and task, like {example}. "
                           f"Received: {str(text)[:120]!r} ({type(exc).__name__}: {exc}). "
                           "Fix TF_CONFIG on this worker.") from None
    if not 0 <= index < known:
        raise ClusterError(f"Expected TF_CONFIG task index in 0..{known - 1} for job {kind!r}. Received: {index}. "
                           "Fix task.index on this worker.")
    chief = kind == "chief" or (kind == "worker" and index == 0 and not cluster.get("chief"))
    return WorkerRole(kind, index, size, chief)


def collective_timeout() -> float:
    """Seconds per collective op: ``EDGESHIP_COLLECTIVE_TIMEOUT`` or :data:`COLLECTIVE_TIMEOUT_SECONDS`."""
    text = os.environ.get("EDGESHIP_COLLECTIVE_TIMEOUT")
    if text is None:
        return COLLECTIVE_TIMEOUT_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ClusterError(f"Expected EDGESHIP_COLLECTIVE_TIMEOUT to be seconds > 0. Received: {text!r}. "
                           "Fix the variable or unset it.")
    return value


def free_loopback_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 right now (the OS picks them)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def local_cluster(workers: int) -> list[str]:
    """One ``TF_CONFIG`` per worker for a cluster of ``workers`` processes on loopback (worker 0 is the chief)."""
    hosts = [f"127.0.0.1:{p}" for p in free_loopback_ports(workers)]
    return [json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}})
            for i in range(workers)]


def cluster_failure(exc: Any, role: WorkerRole) -> ClusterError:
    """The typed error for a collective op that failed because a peer went away or timed out."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("Graph execution error", "Detected at node", "File ", "[type."))]
    telling = [ln for ln in lines if any(w in ln.lower() for w in ("crash", "down", "deadline", "timed out", "unavail"))]
    first = ((telling or lines or [type(exc).__name__])[0])[:300]
    return ClusterError(
        f"Expected all {role.workers} workers in TF_CONFIG to keep training together. Received on "
        f"{role.task_type} {role.index}: {type(exc).__name__}: {first}. Fix: a worker died or is unreachable "
        "(see its log); restart every worker with the same TF_CONFIG cluster. Collectives time out after "
        f"{collective_timeout():g} s (EDGESHIP_COLLECTIVE_TIMEOUT).")
