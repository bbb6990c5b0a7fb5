"""Quantization-aware training with tfmot: QAT and pruning-preserving QAT (PQAT).

QAT: ``quantize_model`` (Default8Bit scheme: per-channel int8 weights, int8
activations with learned ranges) then fine-tune. PQAT: ``quantize_annotate_model``
+ ``quantize_apply`` with ``Default8BitPrunePreserveQuantizeScheme``, which keeps
the zeros of a pruned (stripped) model fixed while training.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from edgeship.core.tf import check_keras2_model, tf_modules, tfmot
from edgeship.train import TrainingData, compile_classifier, fine_tune, set_seed

QatScheme = Literal["qat", "pqat"]


def quantize_aware(
    model: Any,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    scheme: QatScheme = "qat",
    epochs: int = 2,
    batch_size: int = 32,
    learning_rate: float = 1e-4,
    seed: int = 0,
    verbose: int | None = None,
) -> Any:
    """Fine-tune ``model`` with fake quantization; returns the QAT model.

    The result converts to TFLite int8 with :func:`edgeship.export.to_tflite`
    (the converter uses the learned ranges). ``scheme="pqat"`` preserves the
    sparsity of a pruned model. The input model is not modified.
    """
    check_keras2_model(model)
    _, keras = tf_modules()
    mot = tfmot()
    set_seed(seed)
    if scheme == "pqat":
        qscheme = mot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
    elif scheme == "qat":
        qscheme = mot.quantization.keras.default_8bit.Default8BitQuantizeScheme()
    else:
        raise ValueError(f"Unknown QAT scheme. Expected 'qat' or 'pqat'. Received: {scheme!r}.")
    registry = qscheme.get_quantize_registry()
    annotate = mot.quantization.keras.quantize_annotate_layer

    def wrap(layer: Any) -> Any:
        if isinstance(layer, keras.layers.InputLayer):
            return layer.__class__.from_config(layer.get_config())
        fresh = layer.__class__.from_config(layer.get_config())
        if registry.supports(layer):
            return annotate(fresh)
        # A layer the 8-bit registry has no rule for (e.g. BatchNormalization after an
        # activation) trains unquantized; the TFLite converter still quantizes it from
        # the calibration data.
        return annotate(fresh, quantize_config=noop())

    noop = _noop_config_class()
    with mot.quantization.keras.quantize_scope({"_NoOpQuantizeConfig": noop}):
        annotated = keras.models.clone_model(model, clone_function=wrap)
        annotated.set_weights(model.get_weights())
        qat_model = mot.quantization.keras.quantize_apply(annotated, qscheme)
    compile_classifier(qat_model, learning_rate)
    fine_tune(qat_model, TrainingData(x_train, y_train, x_val, y_val), epochs=epochs, batch_size=batch_size,
              verbose=verbose)
    return qat_model


def qat_float_weights(qat_model: Any, like: Any) -> Any:
    """A float tf_keras model shaped like ``like`` holding the QAT-trained weights.

    The QAT wrappers keep each layer's float variables as ``<layer>/<weight>``
    (the kernel before fake quantization); they are copied into a clone of
    ``like``, so ONNX Runtime's quantizer can start from QAT-adapted weights.
    """
    _, keras = tf_modules()
    out = keras.models.clone_model(like)
    out.set_weights(like.get_weights())
    trained = {}
    for layer in qat_model.layers:
        for var, value in zip(layer.weights, layer.get_weights()):
            trained.setdefault(var.name.split(":")[0], value)
    copied = 0
    for layer in out.layers:
        if not layer.weights:
            continue
        keys = [f"{layer.name}/{w.name.split('/')[-1].split(':')[0]}" for w in layer.weights]
        if all(k in trained and trained[k].shape == tuple(w.shape) for k, w in zip(keys, layer.weights)):
            layer.set_weights([trained[k] for k in keys])
            copied += 1
    if copied == 0:
        raise ValueError("No QAT weights matched the float model's layers; pass the model quantize_aware started from.")
    compile_classifier(out, 1e-4)
    return out


_NOOP: list[Any] = []


def _noop_config_class() -> Any:
    """A tfmot ``QuantizeConfig`` that leaves a layer unquantized (built lazily: tfmot imports TF)."""
    if not _NOOP:

        class _NoOpQuantizeConfig(tfmot().quantization.keras.QuantizeConfig):  # type: ignore[misc]
            def get_weights_and_quantizers(self, layer: Any) -> list[Any]:
                return []

            def get_activations_and_quantizers(self, layer: Any) -> list[Any]:
                return []

            def set_quantize_weights(self, layer: Any, quantize_weights: Any) -> None:
                pass

            def set_quantize_activations(self, layer: Any, quantize_activations: Any) -> None:
                pass

            def get_output_quantizers(self, layer: Any) -> list[Any]:
                return []

            def get_config(self) -> dict[str, Any]:
                return {}

        _NOOP.append(_NoOpQuantizeConfig)
    return _NOOP[0]


def named_like(qat_model: Any, like: Any) -> Any:
    """``qat_model`` with its outputs renamed to ``like``'s output names.

    ``quantize_apply`` prefixes layer names with ``quant_``, which would rename
    the exported model's outputs; a linear identity layer restores them.
    """
    _, keras = tf_modules()
    outs = qat_model.outputs
    named = [keras.layers.Activation("linear", name=n)(o) for n, o in zip(like.output_names, outs)]
    return keras.Model(qat_model.inputs, named if len(named) > 1 else named[0], name=like.name)
