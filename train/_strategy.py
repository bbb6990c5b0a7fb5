"""Devices and scale: pick a ``tf.distribute`` strategy and a mixed-precision policy.

The decisions are pure functions of the recipe and the visible devices, so they
are unit-tested on machines without a GPU.
"""

from __future__ import annotations

import json
import os
from typing import Any, Literal

from edgeship.core.errors import RecipeError
from edgeship.core.tf import tf_modules

StrategyName = Literal["auto", "one_device", "mirrored", "multi_worker"]
MixedPrecision = Literal["auto", "off", "mixed_float16"]
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")


def mixed_precision_policy(setting: str, gpu_count: int) -> str:
    """The Keras dtype policy name for a recipe setting and the number of visible GPUs.

    ``"auto"`` turns ``mixed_float16`` on only where it pays: on a GPU.
    ``"mixed_float16"`` forces it (slow on CPU, but allowed); ``"off"`` never.
    """
    if setting == "off":
        return "float32"
    if setting == "mixed_float16":
        return "mixed_float16"
    if setting == "auto":
        return "mixed_float16" if gpu_count > 0 else "float32"
    raise RecipeError(
        f"train.mixed_precision must be 'auto', 'off' or 'mixed_float16'. Received: {setting!r}. Fix the recipe."
    )


def strategy_plan(name: str, gpus: list[str], cpus: list[str], tf_config: str | None) -> tuple[str, list[str]]:
    """Which strategy class to build, and on which devices (pure; see :func:`select_strategy`).

    Returns ``(kind, devices)`` with kind one of ``"default"``, ``"one_device"``,
    ``"mirrored"``, ``"multi_worker"``.
    """
    if name == "auto":
        if len(gpus) > 1:
            return "mirrored", gpus
        if len(gpus) == 1:
            return "one_device", gpus[:1]
        return "default", []
    if name == "one_device":
        return "one_device", (gpus or cpus)[:1]
    if name == "mirrored":
        # Without GPUs, mirror over the logical CPU devices (one replica each).
        return "mirrored", gpus or cpus
    if name == "multi_worker":
        if not tf_config:
            raise RecipeError(
                "train.strategy = 'multi_worker' reads the cluster from the TF_CONFIG environment variable. "
                "Received: TF_CONFIG is not set. Set TF_CONFIG on every worker "
                '(e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}), '
                "or use strategy 'auto'."
            )
        try:
            json.loads(tf_config)
        except json.JSONDecodeError as exc:
            raise RecipeError(
                f"TF_CONFIG must be JSON. Received: {tf_config[:80]!r} ({exc.msg}). Fix TF_CONFIG."
            ) from None
        return "multi_worker", []
    raise RecipeError(f"train.strategy must be one of {', '.join(STRATEGIES)}. Received: {name!r}. Fix the recipe.")


def visible_devices() -> tuple[list[str], list[str]]:
    """Logical GPU and CPU device names TensorFlow sees (initialises TF's devices)."""
    tf, _ = tf_modules()
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    return gpus, cpus


def select_strategy(name: str = "auto") -> Any:
    """A ``tf.distribute.Strategy`` for the recipe's ``train.strategy``.

    ``auto``: every visible GPU (MirroredStrategy for several, OneDevice for one),
    else TensorFlow's default strategy. ``mirrored``: all GPUs, or all logical
    CPUs when there is no GPU. ``multi_worker``: MultiWorkerMirroredStrategy
    from ``TF_CONFIG``.
    """
    tf, _ = tf_modules()
    if name == "multi_worker":  # before anything lists devices: the collective server configures them
        strategy_plan(name, [], [], os.environ.get("TF_CONFIG"))
        return _multi_worker(tf)
    gpus, cpus = visible_devices()
    kind, devices = strategy_plan(name, gpus, cpus, os.environ.get("TF_CONFIG"))
    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "one_device":
        return tf.distribute.OneDeviceStrategy(devices[0])
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    return _multi_worker(tf)


_MULTI_WORKER: list[Any] = []


def _multi_worker(tf: Any) -> Any:
    """One MultiWorkerMirroredStrategy per process (TensorFlow's collective server starts once), with timeouts.

    Every collective op times out after ``collective_timeout()`` seconds, so a
    dead peer fails the survivors' training step instead of hanging it.
    """
    from ._cluster import collective_timeout, worker_role

    if not _MULTI_WORKER:
        worker_role()  # a ClusterError naming the fix, before TensorFlow parses TF_CONFIG its own way
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=collective_timeout())
        _MULTI_WORKER.append(tf.distribute.MultiWorkerMirroredStrategy(communication_options=options))
    return _MULTI_WORKER[0]
