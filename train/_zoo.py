"""Model zoo registry: ``create_model(name, input_shape, num_classes, **options)``.

Every classifier ends in a softmax ``Dense`` named ``probs`` whose dtype is
pinned to float32, so it stays float32 under a ``mixed_float16`` policy.

The four MLPerf Tiny reference architectures follow the Keras definitions in
mlcommons/tiny (``benchmark/training/*``) layer for layer; their weight decay
(L2 1e-4 there) is the recipe's ``train.l2`` here, applied to every kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from edgeship.core.errors import RecipeError
from edgeship.core.tf import tf_modules

ModelBuilder = Callable[..., Any]
Task = Literal["classification", "reconstruction"]
InputKind = Literal["image", "tokens", "vector"]


@dataclass(frozen=True)
class ModelInfo:
    """What a zoo entry is for: its task and the kind of input it takes."""

    name: str
    builder: ModelBuilder
    task: Task = "classification"
    input_kind: InputKind = "image"

    @property
    def options(self) -> frozenset[str]:
        """The keyword options the builder takes (``dropout``, ``alpha``, ``vocab_size``, ...)."""
        import inspect

        params = list(inspect.signature(self.builder).parameters.values())[2:]  # after input_shape, num_classes
        return frozenset(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


_MODELS: dict[str, ModelInfo] = {}


def register_model(
    name: str, *, task: Task = "classification", input_kind: InputKind = "image"
) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator: make a builder available to recipes under ``name``."""

    def wrap(fn: ModelBuilder) -> ModelBuilder:
        _MODELS[name] = ModelInfo(name, fn, task, input_kind)
        return fn

    return wrap


def list_models() -> list[str]:
    return sorted(_MODELS)


def model_info(name: str) -> ModelInfo:
    """The registry entry for ``name``; ``RecipeError`` listing valid names when unknown."""
    if name not in _MODELS:
        raise RecipeError(
            f"Unknown architecture in model.arch. Received: {name!r}. Valid names: {', '.join(list_models())}."
        )
    return _MODELS[name]


def create_model(name: str, input_shape: tuple[int, ...], num_classes: int, **options: Any) -> Any:
    """Build an untrained tf_keras model from the zoo (``weights=None``: nothing downloads).

    ``options`` go to the builder (e.g. ``alpha`` for ``mobilenet_v2``,
    ``vocab_size`` for ``text_cnn``, ``dropout`` for most); ``None`` values mean
    the architecture's default.
    """
    info = model_info(name)
    opts = {k: v for k, v in options.items() if v is not None}
    try:
        return info.builder(tuple(int(d) for d in input_shape), int(num_classes), **opts)
    except TypeError as exc:
        if "unexpected keyword" not in str(exc):
            raise
        raise RecipeError(
            f"Architecture {name!r} does not take these options. Received: {sorted(opts)} ({exc})."
        ) from None


class _Names:
    """Layer names numbered within one model: ``names("relu")`` -> ``relu_1``, ``relu_2``, ...

    Keras numbers unnamed layers per process, so the same architecture built
    twice in one process got other layer names, and its TFLite file other
    tensor names and other bytes. Layers with weights keep Keras' stems
    (``conv2d``, ``depthwise_conv2d``, ``batch_normalization``, ``dense``), which
    is how :func:`edgeship.train.load_weights` matches them in older files.
    """

    def __init__(self) -> None:
        self._count: dict[str, int] = {}

    def __call__(self, stem: str) -> str:
        self._count[stem] = self._count.get(stem, 0) + 1
        return f"{stem}_{self._count[stem]}"


def _head(x: Any, num_classes: int, name: str = "probs") -> Any:
    _, keras = tf_modules()
    # float32 even under mixed_float16: a float16 softmax loses small probabilities.
    return keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name=name)(x)


def _need_rank(name: str, input_shape: tuple[int, ...], rank: int, example: str) -> None:
    if len(input_shape) != rank:
        raise RecipeError(
            f"Architecture {name!r} expects {rank}-D samples such as {example}. Received: input shape {input_shape}. "
            "Pick an architecture that matches the dataset."
        )


@register_model("small_cnn")
def small_cnn(input_shape: tuple[int, ...], num_classes: int, width: int = 48, dropout: float = 0.4) -> Any:
    """3x3 conv (w) -> conv (w) -> 2x2 max-pool -> conv (2w), each conv -> BatchNorm -> ReLU; dropout; softmax.

    With ``width=48`` this is 78,970 parameters for 8x8x1 digits, and reaches
    98-99% test accuracy there (median of 3 seeds, see README). BatchNorm sits
    between the conv and its ReLU so that it folds into the conv's weights
    before export (``edgeship.compress.fold_batchnorm``); after the ReLU it left
    a MUL and an ADD per block in the int8 TFLite graph.
    """
    _need_rank("small_cnn", input_shape, 3, "(8, 8, 1)")
    _, keras = tf_modules()
    layers = keras.layers
    return keras.Sequential(
        [
            layers.Input(input_shape, name="input"),
            layers.Conv2D(width, 3, padding="same", name="conv1"),
            layers.BatchNormalization(name="bn1"),
            layers.Activation("relu", name="relu1"),
            layers.Conv2D(width, 3, padding="same", name="conv2"),
            layers.BatchNormalization(name="bn2"),
            layers.Activation("relu", name="relu2"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(2 * width, 3, padding="same", name="conv3"),
            layers.BatchNormalization(name="bn3"),
            layers.Activation("relu", name="relu3"),
            layers.Flatten(name="flatten"),
            layers.Dropout(dropout, name="dropout"),
            layers.Dense(num_classes, activation="softmax", dtype="float32", name="probs"),
        ],
        name="small_cnn",
    )


@register_model("mobilenet_v2")
def mobilenet_v2(input_shape: tuple[int, ...], num_classes: int, alpha: float = 0.35, dropout: float = 0.2) -> Any:
    """``keras.applications.MobileNetV2`` (``weights=None``, width ``alpha``), global average pool, dropout, softmax.

    Inputs of at least 32x32 with 1 or 3 channels; alpha one of 0.35, 0.5, 0.75, 1.0, 1.3, 1.4.
    """
    _need_rank("mobilenet_v2", input_shape, 3, "(96, 96, 3)")
    if min(input_shape[:2]) < 32:
        raise RecipeError(
            f"mobilenet_v2 needs inputs of at least 32x32. Received: input shape {input_shape}. "
            "Set data.image_size to [32, 32] or more."
        )
    _, keras = tf_modules()
    inputs = keras.layers.Input(input_shape, name="input")
    base = keras.applications.MobileNetV2(
        input_tensor=inputs, alpha=alpha, include_top=False, weights=None
    )
    x = keras.layers.GlobalAveragePooling2D(name="pool")(base.output)  # named: pooling="avg" numbers it per process
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(inputs, _head(x, num_classes), name=f"mobilenet_v2_{alpha:g}")


@register_model("text_cnn", input_kind="tokens")
def text_cnn(
    input_shape: tuple[int, ...],
    num_classes: int,
    vocab_size: int = 2000,
    embedding_dim: int = 32,
    filters: int = 64,
    kernel_size: int = 5,
    dropout: float = 0.3,
) -> Any:
    """int32 token ids ``(sequence_length,)`` -> Embedding -> Conv1D + ReLU -> global max pool -> dropout -> softmax.

    The ``TextVectorization`` layer that turns strings into ids is kept outside
    this model (TFLite cannot run string ops); see ``edgeship.train.text_model``.
    """
    _need_rank("text_cnn", input_shape, 1, "(64,) token ids")
    _, keras = tf_modules()
    layers = keras.layers
    inputs = layers.Input(input_shape, dtype="int32", name="tokens")
    x = layers.Embedding(vocab_size, embedding_dim, name="embedding")(inputs)
    x = layers.Conv1D(filters, min(kernel_size, input_shape[0]), padding="same", activation="relu", name="conv1")(x)
    x = layers.GlobalMaxPooling1D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(inputs, _head(x, num_classes), name="text_cnn")


@register_model("ds_cnn")
def ds_cnn(
    input_shape: tuple[int, ...] = (49, 10, 1), num_classes: int = 12, filters: int = 64, dropout: float = 0.4
) -> Any:
    """MLPerf Tiny keyword spotting DS-CNN: 49x10x1 MFCCs, 12 classes -> 24,908 parameters.

    Conv 10x4/2 (64) + BN + ReLU + dropout 0.2, four depthwise-separable blocks
    (DW 3x3 + BN + ReLU, PW 1x1 + BN + ReLU), dropout, average pool over
    (H/2, W/2), softmax.
    """
    _need_rank("ds_cnn", input_shape, 3, "(49, 10, 1)")
    _, keras = tf_modules()
    layers = keras.layers
    name = _Names()
    inputs = layers.Input(input_shape, name="input")
    x = layers.Conv2D(filters, (10, 4), strides=(2, 2), padding="same", name=name("conv2d"))(inputs)
    x = layers.BatchNormalization(name=name("batch_normalization"))(x)
    x = layers.Activation("relu", name=name("relu"))(x)
    x = layers.Dropout(0.2, name=name("dropout"))(x)
    for _ in range(4):
        x = layers.DepthwiseConv2D(kernel_size=(3, 3), depth_multiplier=1, padding="same",
                                   name=name("depthwise_conv2d"))(x)
        x = layers.BatchNormalization(name=name("batch_normalization"))(x)
        x = layers.Activation("relu", name=name("relu"))(x)
        x = layers.Conv2D(filters, (1, 1), padding="same", name=name("conv2d"))(x)
        x = layers.BatchNormalization(name=name("batch_normalization"))(x)
        x = layers.Activation("relu", name=name("relu"))(x)
    x = layers.Dropout(dropout, name=name("dropout"))(x)
    x = layers.AveragePooling2D(pool_size=(max(1, input_shape[0] // 2), max(1, input_shape[1] // 2)), name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, _head(x, num_classes), name="ds_cnn")


@register_model("mobilenet_v1_025")
def mobilenet_v1_025(input_shape: tuple[int, ...] = (96, 96, 3), num_classes: int = 2, filters: int = 8) -> Any:
    """MLPerf Tiny visual wake words MobileNetV1 (alpha 0.25): 96x96x3, 2 classes -> 221,794 parameters.

    Conv 3x3/2 (8) then 13 depthwise-separable blocks (ReLU, BN, 'same'
    padding, he_normal), average pool over the whole map, softmax.
    """
    _need_rank("mobilenet_v1_025", input_shape, 3, "(96, 96, 3)")
    _, keras = tf_modules()
    layers = keras.layers

    name = _Names()

    def conv_bn(x: Any, n: int, kernel: int, stride: int) -> Any:
        x = layers.Conv2D(n, kernel, strides=stride, padding="same", kernel_initializer="he_normal",
                          name=name("conv2d"))(x)
        x = layers.BatchNormalization(name=name("batch_normalization"))(x)
        return layers.Activation("relu", name=name("relu"))(x)

    def dw_bn(x: Any, stride: int) -> Any:
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", depthwise_initializer="he_normal",
                                   name=name("depthwise_conv2d"))(x)
        x = layers.BatchNormalization(name=name("batch_normalization"))(x)
        return layers.Activation("relu", name=name("relu"))(x)

    inputs = layers.Input(input_shape, name="input")
    x = conv_bn(inputs, filters, 3, 2)
    # (depthwise stride, pointwise filter multiplier) for blocks 2..14 of the reference.
    n = filters
    for stride, grow in [
        (1, 2),
        (2, 2),
        (1, 1),
        (2, 2),
        (1, 1),
        (2, 2),
        (1, 1),
        (1, 1),
        (1, 1),
        (1, 1),
        (1, 1),
        (2, 2),
        (1, 1),
    ]:
        x = dw_bn(x, stride)
        n *= grow
        x = conv_bn(x, n, 1, 1)
    x = layers.AveragePooling2D(pool_size=tuple(int(d) for d in x.shape[1:3]), name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, _head(x, num_classes), name="mobilenet_v1_025")


@register_model("resnet8")
def resnet8(input_shape: tuple[int, ...] = (32, 32, 3), num_classes: int = 10, filters: int = 16) -> Any:
    """MLPerf Tiny image classification ResNet-8 (EEMBC ResNetv1): 32x32x3, 10 classes, 16 filters -> 78,666 parameters.

    Conv 3x3 + BN + ReLU, three residual stacks (16, 32, 64 filters; the last
    two stride 2 with a 1x1 projection shortcut), average pool, softmax.
    """
    _need_rank("resnet8", input_shape, 3, "(32, 32, 3)")
    _, keras = tf_modules()
    layers = keras.layers

    name = _Names()

    def conv(x: Any, n: int, kernel: int = 3, stride: int = 1) -> Any:
        return layers.Conv2D(n, kernel, strides=stride, padding="same", kernel_initializer="he_normal",
                             name=name("conv2d"))(x)

    def bn(x: Any) -> Any:
        return layers.BatchNormalization(name=name("batch_normalization"))(x)

    def relu(x: Any) -> Any:
        return layers.Activation("relu", name=name("relu"))(x)

    inputs = layers.Input(input_shape, name="input")
    x = relu(bn(conv(inputs, filters)))
    for stack in range(3):
        n = filters * 2**stack
        stride = 1 if stack == 0 else 2
        y = relu(bn(conv(x, n, 3, stride)))
        y = bn(conv(y, n))
        if stack > 0:
            x = conv(x, n, 1, stride)
        x = relu(layers.Add(name=name("add"))([x, y]))
    x = layers.AveragePooling2D(pool_size=int(min(x.shape[1:3])), name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    y = layers.Dense(num_classes, activation="softmax", kernel_initializer="he_normal", dtype="float32", name="probs")(
        x
    )
    return keras.Model(inputs, y, name="resnet8")


@register_model("fc_autoencoder", task="reconstruction", input_kind="vector")
def fc_autoencoder(input_shape: tuple[int, ...] = (640,), num_classes: int = 0) -> Any:
    """MLPerf Tiny anomaly detection autoencoder: 640 inputs -> 269,992 parameters.

    Dense 128 x4 -> 8 -> 128 x4, each with BN + ReLU, then a linear Dense back to
    the input size. Not a classifier: it is trained with MSE on normal samples
    and scores anomalies by reconstruction error, so ``num_classes`` is ignored.
    """
    _need_rank("fc_autoencoder", input_shape, 1, "(640,)")
    _, keras = tf_modules()
    layers = keras.layers
    inputs = layers.Input(input_shape, name="input")
    h = inputs
    for i, units in enumerate([128, 128, 128, 128, 8, 128, 128, 128, 128], start=1):
        h = layers.Dense(units, name=f"dense_{i}")(h)
        h = layers.BatchNormalization(name=f"bn_{i}")(h)
        h = layers.Activation("relu", name=f"relu_{i}")(h)
    out = layers.Dense(input_shape[0], dtype="float32", name="reconstruction")(h)
    return keras.Model(inputs, out, name="fc_autoencoder")
