"""The model zoo: registry, the MLPerf Tiny parameter counts, options, and float32 heads."""

from __future__ import annotations

import numpy as np
import pytest

from edgeship import train
from edgeship.core.errors import RecipeError

# name -> (input_shape, num_classes, parameters). MLPerf Tiny counts are the
# reference models' (mlcommons/tiny), BatchNorm included.
EXPECTED = {
    "ds_cnn": ((49, 10, 1), 12, 24_908),
    "mobilenet_v1_025": ((96, 96, 3), 2, 221_794),
    "resnet8": ((32, 32, 3), 10, 78_666),
    "fc_autoencoder": ((640,), 0, 269_992),
    "small_cnn": ((8, 8, 1), 10, 78_970),
    "mobilenet_v2": ((96, 96, 3), 2, 412_770),  # alpha 0.35 + our dropout/softmax head
    "text_cnn": ((64,), 3, 74_499),  # vocab 2000, embedding 32, 64 filters of width 5
}


def test_every_registered_model_has_a_pinned_count() -> None:
    assert sorted(EXPECTED) == train.list_models()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parameter_counts_and_output_shapes(name: str) -> None:
    shape, classes, params = EXPECTED[name]
    model = train.create_model(name, shape, classes)
    assert model.count_params() == params
    info = train.model_info(name)
    want_out = shape if info.task == "reconstruction" else (classes,)
    assert tuple(model.output_shape[1:]) == want_out
    assert model.layers[-1].dtype == "float32"


def test_fc_autoencoder_is_registered_as_a_reconstruction_model() -> None:
    assert train.model_info("fc_autoencoder").task == "reconstruction"
    assert train.model_info("ds_cnn").task == "classification"
    assert train.model_info("text_cnn").input_kind == "tokens"


def test_unknown_architecture_lists_the_valid_names() -> None:
    with pytest.raises(RecipeError, match="Valid names: .*ds_cnn.*resnet8") as info:
        train.create_model("resnet9000", (32, 32, 3), 10)
    assert "'resnet9000'" in str(info.value)


def test_mobilenet_v2_alpha_and_input_size_come_from_the_options() -> None:
    small = train.create_model("mobilenet_v2", (64, 64, 3), 4, alpha=0.35)
    wide = train.create_model("mobilenet_v2", (64, 64, 3), 4, alpha=0.5)
    assert small.input_shape == (None, 64, 64, 3)
    assert wide.count_params() > small.count_params()
    with pytest.raises(RecipeError, match="at least 32x32"):
        train.create_model("mobilenet_v2", (16, 16, 3), 4)


def test_wrong_rank_and_unknown_option_are_recipe_errors() -> None:
    with pytest.raises(RecipeError, match="expects 3-D samples"):
        train.create_model("resnet8", (640,), 10)
    with pytest.raises(RecipeError, match="does not take these options"):
        train.create_model("resnet8", (32, 32, 3), 10, alpha=0.5)


def test_text_cnn_takes_int32_token_ids() -> None:
    model = train.create_model("text_cnn", (12,), 3, vocab_size=50)
    assert model.inputs[0].dtype == "int32"
    ids = np.random.default_rng(0).integers(0, 50, (4, 12)).astype(np.int32)
    probs = model.predict(ids, verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_softmax_head_stays_float32_under_mixed_precision() -> None:
    from edgeship.core.tf import tf_modules

    _, keras = tf_modules()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = train.create_model("small_cnn", (8, 8, 1), 10)
        assert model.layers[0].compute_dtype == "float16"  # the body does run in float16
        head = model.get_layer("probs")
        assert head.compute_dtype == "float32"
        assert model.output.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_layer_names_do_not_depend_on_what_the_process_built_before(name: str) -> None:
    """Keras numbers unnamed layers per process: the second build of an architecture used to get other layer
    names, so its TFLite file other tensor names and other bytes. Every zoo layer is named within its model."""
    shape, classes, _ = EXPECTED[name]
    first = [layer.name for layer in train.create_model(name, shape, classes).layers]
    second = [layer.name for layer in train.create_model(name, shape, classes).layers]
    assert first == second
    assert len(set(first)) == len(first)
