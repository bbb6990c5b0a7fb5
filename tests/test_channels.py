"""Structured channel pruning: dependency groups, exact rebuilds, zero-channel removal, zoo coverage, parity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ZOO_CLASSIFIERS = {
    "small_cnn": (8, 8, 1), "resnet8": (32, 32, 3), "ds_cnn": (49, 10, 1),
    "mobilenet_v1_025": (96, 96, 3), "mobilenet_v2": (96, 96, 3),
}


def _keras() -> Any:
    from edgeship.core.tf import tf_modules

    return tf_modules()[1]


def _randomise(model: Any, seed: int = 0) -> Any:
    """Random weights everywhere (BN statistics included), so a wrong slice shows in the outputs."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if type(layer).__name__ == "BatchNormalization":
            ws = [rng.uniform(0.5, 1.5, w.shape) if i in (0, 3) else rng.normal(0, 0.2, w.shape) for i, w in enumerate(ws)]
        else:
            ws = [rng.normal(0, 0.3, w.shape) for w in ws]
        layer.set_weights([w.astype("float32") for w in ws])
    return model


def _residual() -> Any:
    layers = _keras().layers
    inp = layers.Input((8, 8, 3))
    x = layers.Activation("relu")(layers.BatchNormalization()(layers.Conv2D(8, 3, padding="same", name="stem")(inp)))
    y = layers.Activation("relu")(layers.BatchNormalization()(layers.Conv2D(6, 3, padding="same", name="c1")(x)))
    y = layers.BatchNormalization(name="bn_c2")(layers.Conv2D(8, 3, padding="same", name="c2")(y))
    x = layers.Activation("relu")(layers.add([x, y]))
    x = layers.Conv2D(5, 1, name="after")(x)
    out = layers.Dense(3, activation="softmax", name="probs")(layers.GlobalAveragePooling2D()(x))
    return _randomise(_keras().Model(inp, out))


def _depthwise() -> Any:
    layers = _keras().layers
    inp = layers.Input((9, 9, 2))
    x = layers.ReLU(6.0)(layers.BatchNormalization()(layers.Conv2D(8, 3, strides=2, padding="same", name="c1")(inp)))
    x = layers.ZeroPadding2D(1)(x)
    x = layers.BatchNormalization()(layers.DepthwiseConv2D(3, name="dw")(x))
    x = layers.ReLU(6.0)(x)
    x = layers.BatchNormalization()(layers.Conv2D(6, 1, name="pw")(x))
    x = layers.AveragePooling2D(2)(layers.Activation("relu")(x))
    out = layers.Dense(4, activation="softmax", name="probs")(layers.Flatten()(x))
    return _randomise(_keras().Model(inp, out))


def _concatenate() -> Any:
    layers = _keras().layers
    inp = layers.Input((6, 6, 3))
    a = layers.Conv2D(8, 3, padding="same", name="a")(inp)
    b = layers.Conv2D(6, 1, padding="same", name="b")(inp)
    x = layers.Activation("relu")(layers.BatchNormalization()(layers.Concatenate()([a, b])))
    x = layers.Conv2D(7, 3, padding="same", name="c")(x)
    x = layers.Dense(5, activation="relu", name="d")(layers.Flatten()(layers.MaxPooling2D(2)(x)))
    out = layers.Dense(3, activation="softmax", name="probs")(x)
    return _randomise(_keras().Model(inp, out))


def _sequential() -> Any:
    keras = _keras()
    layers = keras.layers
    return _randomise(keras.Sequential([
        layers.Input((6, 6, 1)), layers.Conv2D(6, 3, activation="relu", name="c1"), layers.BatchNormalization(),
        layers.Conv2D(5, 3, activation="relu", name="c2"), layers.BatchNormalization(), layers.Flatten(),
        layers.Dropout(0.3), layers.Dense(7, activation="relu", name="d1"), layers.Dense(3, activation="softmax", name="probs"),
    ]))


GRAPHS = {"residual": _residual, "depthwise": _depthwise, "concatenate": _concatenate, "sequential": _sequential}
#: Channels zeroed and removed in each graph: producer layer and output channel.
REMOVE = {
    "residual": [("stem", 1), ("stem", 6), ("c1", 0)],
    "depthwise": [("c1", 2), ("c1", 5), ("pw", 3)],
    "concatenate": [("a", 0), ("a", 7), ("b", 2), ("c", 4), ("d", 1)],
    "sequential": [("c1", 0), ("c2", 3), ("d1", 6)],
}


def _zero_groups(model: Any, pairs: list[tuple[str, int]]) -> None:
    """Zero every weight that feeds the channels of the groups of ``pairs``: the channels then carry exact zeros."""
    from edgeship.compress._channel_graph import analyse

    g = analyse(model)
    index = {owner: slot for slot, owner in enumerate(g.owner)}
    dead = {g.find(index[p]) for p in pairs}
    for layer in model.layers:
        if layer.name not in g.outputs or not layer.get_weights():
            continue
        out = np.isin(g.roots(g.outputs[layer.name]), list(dead))
        kind = type(layer).__name__
        ws = layer.get_weights()
        if kind in ("Conv2D", "Dense"):
            ws[0][..., out] = 0.0
            ws[1][out] = 0.0
        elif kind == "DepthwiseConv2D":
            ws[1][out] = 0.0
        elif kind == "BatchNormalization":  # gamma, beta, mean, variance: output beta - gamma * mean / sd = 0
            ws[1][out] = 0.0
            ws[2][out] = 0.0
        layer.set_weights(ws)


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_rebuild_without_removal_is_bit_exact(name: str) -> None:
    from edgeship.compress import prune_channels

    model = GRAPHS[name]()
    x = np.random.default_rng(1).normal(size=(5, *model.input_shape[1:])).astype("float32")
    same, report = prune_channels(model, 1.0)
    assert report.removed_groups == 0 and report.params[0] == report.params[1]
    assert np.array_equal(same(x).numpy(), model(x).numpy())


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_removing_zero_channels_keeps_the_outputs(name: str) -> None:
    from edgeship.compress import prune_channels

    model = GRAPHS[name]()
    _zero_groups(model, REMOVE[name])
    x = np.random.default_rng(2).normal(size=(6, *model.input_shape[1:])).astype("float32")
    narrow, report = prune_channels(model, remove=REMOVE[name])
    assert report.removed_groups == len(REMOVE[name]) and report.params[1] < report.params[0]
    assert report.macs[1] < report.macs[0]
    np.testing.assert_allclose(narrow(x).numpy(), model(x).numpy(), atol=1e-5, rtol=1e-5)
    # Outside the residual graph (where stem and c2 are tied) each pair is one channel of its layer.
    assert all(report.channels[layer][1] == report.channels[layer][0] - sum(p[0] == layer for p in REMOVE[name])
               for layer in {p[0] for p in REMOVE[name]} if name != "residual")


def test_residual_add_ties_both_sides_to_the_same_indices() -> None:
    from edgeship.compress import channel_groups, prune_channels

    model = _residual()
    groups = [g for g in channel_groups(model) if not g.pinned]
    tied = [g for g in groups if {m[0] for m in g.members} == {"stem", "c2"}]
    assert len(tied) == 8 and all(dict(g.members)["stem"] == dict(g.members)["c2"] for g in tied)
    assert {g.cluster for g in tied} != {g.cluster for g in groups if {m[0] for m in g.members} == {"c1"}}
    narrow, report = prune_channels(model, 0.5)
    assert report.channels["stem"] == (8, 4) and report.channels["c2"] == (8, 4) and report.channels["c1"] == (6, 3)
    kept_stem = _kept_columns(model.get_layer("stem"), narrow.get_layer("stem"))
    kept_c2 = _kept_columns(model.get_layer("c2"), narrow.get_layer("c2"))
    assert kept_stem == kept_c2 and len(kept_stem) == 4
    kept_bn = [int(np.argmin(np.abs(model.get_layer("bn_c2").get_weights()[0] - v)))
               for v in narrow.get_layer("bn_c2").get_weights()[0]]
    assert kept_bn == kept_stem


def _kept_columns(before: Any, after: Any) -> list[int]:
    """Which output channels of ``before`` survive in ``after`` (by matching bias values)."""
    bias = before.get_weights()[1]
    return [int(np.argmin(np.abs(bias - v))) for v in after.get_weights()[1]]


def test_ranking_by_batchnorm_gamma_is_recorded() -> None:
    from edgeship.compress import prune_channels

    model = _concatenate()
    narrow, report = prune_channels(model, 0.5, ranking="bn_gamma")
    assert report.ranking == "bn_gamma"
    assert report.ranking_fallback == ["c", "d"]  # no BatchNorm after them: ranked by L1
    assert narrow.get_layer("a").filters + narrow.get_layer("b").filters == 7  # ceil(0.5 * 14)


def test_unsupported_layer_is_reported_and_left_whole() -> None:
    from edgeship.compress import prune_channels

    layers = _keras().layers
    inp = layers.Input((6, 6, 2))
    x = layers.Conv2D(8, 3, padding="same", name="c1")(inp)
    x = layers.LayerNormalization(name="ln")(x)
    x = layers.Conv2D(6, 3, padding="same", name="c2")(x)
    out = layers.Dense(3, activation="softmax", name="probs")(layers.GlobalAveragePooling2D()(x))
    model = _randomise(_keras().Model(inp, out))
    narrow, report = prune_channels(model, 0.5)
    assert [(u.layer, u.kind) for u in report.unsupported] == [("ln", "LayerNormalization")]
    assert report.channels["c1"] == (8, 8) and report.channels["c2"] == (6, 3)
    assert narrow.get_layer("ln").get_weights()[0].shape == (8,)
    assert narrow(np.zeros((1, 6, 6, 2), "float32")).shape == (1, 3)


def test_bad_arguments_raise_recipe_errors() -> None:
    from edgeship.compress import prune_channels
    from edgeship.core.errors import RecipeError

    model = _sequential()
    with pytest.raises(RecipeError, match="keep_ratio"):
        prune_channels(model, 0.0)
    with pytest.raises(RecipeError, match="ranking"):
        prune_channels(model, 0.5, ranking="random")  # type: ignore[arg-type]
    with pytest.raises(RecipeError, match="cannot be removed"):
        prune_channels(model, remove=[("probs", 0)])


@pytest.mark.parametrize("name", sorted(ZOO_CLASSIFIERS))
def test_every_zoo_classifier_prunes_and_runs(name: str) -> None:
    from edgeship import train
    from edgeship.compress import prune_channels

    model = train.create_model(name, ZOO_CLASSIFIERS[name], 4)
    x = np.random.default_rng(0).normal(size=(2, *ZOO_CLASSIFIERS[name])).astype("float32")
    same, _ = prune_channels(model, 1.0)
    assert np.array_equal(same(x).numpy(), model(x).numpy())
    narrow, report = prune_channels(model, 0.5)
    assert not report.unsupported and report.removed_groups > 0
    assert report.params[1] < 0.6 * report.params[0] and report.macs[1] < 0.6 * report.macs[0]
    assert narrow(x).shape == (2, 4) and np.allclose(narrow(x).numpy().sum(-1), 1.0, atol=1e-5)


def test_zoo_guard_every_classifier_is_tested() -> None:
    from edgeship import train

    classifiers = {n for n in train.list_models() if train.model_info(n).task == "classification"
                   and train.model_info(n).input_kind == "image"}
    assert classifiers == set(ZOO_CLASSIFIERS)


@pytest.mark.slow
def test_channel_pruned_model_exports_with_parity(tmp_path: Path) -> None:
    from edgeship import train
    from edgeship.build import ShipData, write_bundle
    from edgeship.compress import prune_channels
    from edgeship.recipe import Recipe
    from edgeship.variants import CompressData

    ds = train.load_dataset("digits", seed=0)
    train.set_seed(0)
    model = train.create_model("small_cnn", ds.input_shape, ds.num_classes, width=16)
    train.compile_classifier(model, 3e-3)
    model.fit(ds.x_train, ds.y_train, epochs=4, batch_size=64, verbose=0)
    narrow, _ = prune_channels(model, 0.5)
    train.compile_classifier(narrow, 1e-3)
    narrow.fit(ds.x_train, ds.y_train, epochs=2, batch_size=64, verbose=0)
    recipe = Recipe.from_dict({"name": "channels", "budget": {"enabled": False},
                               "export": {"formats": ["tflite", "onnx"], "measure_rss": False}})
    data = ShipData(ds.x_train[:128], ds.x_test, ds.y_test, ds.labels, ds.preprocessing,
                    train.accuracy(narrow, ds.x_test, ds.y_test))
    out = write_bundle(narrow, recipe, tmp_path / "bundle", data,
                       compress_data=CompressData(ds.x_train, ds.y_train, ds.x_val, ds.y_val, seed=0))
    manifest = json.loads((out / "manifest.json").read_text())
    artifacts = manifest["artifacts"]
    assert {(a["format"], a["precision"]) for a in artifacts} >= {("tflite", "int8"), ("onnx", "int8"),
                                                                   ("tflite", "float32"), ("onnx", "float32")}
    assert all(a["parity"]["passed"] for a in artifacts)


def test_recipe_channel_keys() -> None:
    from edgeship.core.errors import RecipeError
    from edgeship.recipe import Recipe

    assert Recipe.default().prune.structure == "unstructured"
    pc = Recipe.from_dict({"prune": {"structure": "channels"}}).prune
    assert pc.keep_ratio == 0.5 and pc.channel_ranking == "l1"
    with pytest.raises(RecipeError, match="needs structure"):
        Recipe.from_dict({"prune": {"channel_ratio": 0.5}})
    with pytest.raises(RecipeError, match="not both"):
        Recipe.from_dict({"prune": {"structure": "channels", "channel_ratio": 0.5, "target_latency_ratio": 0.6}})


@pytest.mark.slow
def test_build_with_channel_pruning_records_attempts_and_cost(tmp_path: Path) -> None:
    from edgeship.build import build
    from edgeship.recipe import Recipe

    recipe = Recipe.from_dict({
        "name": "channels", "train": {"epochs": 12},
        "prune": {"structure": "channels", "channel_ratio": 0.5, "target_sparsity": 0.0, "fine_tune_epochs": 3},
        "distill": {"enabled": True},
        "export": {"formats": ["tflite", "onnx"], "measure_rss": False},
    })
    out = build(recipe, tmp_path / "bundle")
    manifest = json.loads((out / "manifest.json").read_text())
    comp = manifest["compression"]
    ch = comp["channels"]
    assert ch["params"][1] < 0.4 * ch["params"][0] and ch["channels"]["conv3"] == [96, 48]
    assert 0 < ch["int8_tflite_latency_ratio"] < 1.2 and ch["int8_tflite_bytes"] < ch["unpruned_int8_tflite_bytes"]
    attempts = comp["channel_attempts"]
    assert attempts and attempts[-1]["met_budget"] and all(a["structure"] == "channels" and a["distilled"]
                                                           for a in attempts)
    assert not comp["prune_attempts"] and not comp["sparsity"]
    assert all(a["parity"]["passed"] for a in manifest["artifacts"])
    assert "## Channel pruning" in (out / "report.md").read_text()
    import jsonschema

    from edgeship.core.bundle import Manifest, manifest_json_schema

    jsonschema.Draft202012Validator(manifest_json_schema()).validate(manifest)
    assert Manifest.from_json(manifest).compression.channels["channels"]["conv3"] == [96, 48]


def test_channel_backoff_plan_keeps_more_channels() -> None:
    from edgeship.compress.channel_backoff import channel_plan

    assert channel_plan(0.5, 4, 40, budgeted=False) == [("as_recipe", 0.5, 4)]
    assert channel_plan(0.5, 4, 40, budgeted=True) == [
        ("as_recipe", 0.5, 4), ("longer_fine_tune", 0.5, 8), ("keep_more_1", 0.75, 8), ("keep_more_2", 0.875, 8)]


def test_channel_attempts_record_every_try_and_fail_typed() -> None:
    from edgeship import compress
    from edgeship.core.errors import AccuracyBudgetError

    model = _sequential()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1200, 6, 6, 1)).astype("float32")
    y = rng.integers(0, 3, 1200)
    tries = list(compress.iter_channel_attempts(model, x, y, x[:64], y[:64], channel_ratio=0.5, fine_tune_epochs=1,
                                                reference_accuracy=1.0, budget=0.0, batch_size=128,
                                                distill=compress.Distillation()))
    attempts = [a for a, _, _ in tries]
    assert [a.step for a in attempts] == ["as_recipe", "longer_fine_tune", "keep_more_1", "keep_more_2"]
    assert all(not a.met_budget and a.distilled for a in attempts)
    assert attempts[0].params < attempts[2].params <= attempts[-1].params <= model.count_params()
    assert attempts[0].to_json()["structure"] == "channels"
    err = compress.channel_budget_error(attempts, 0.0, 1.0)
    assert isinstance(err, AccuracyBudgetError) and "keep_more_2" in str(err) and "Fix:" in str(err)


def test_latency_search_measures_int8_tflite_against_the_unpruned_file() -> None:
    from edgeship._channels import LATENCY_SEARCH_RATIOS, ratio_for_latency

    model = _sequential()
    calibration = np.random.default_rng(0).normal(size=(16, 6, 6, 1)).astype("float32")
    ratio, tried = ratio_for_latency(model, calibration, 10.0, "l1")  # any ratio meets x10: the widest is taken
    assert ratio == LATENCY_SEARCH_RATIOS[0] and len(tried) == 1
    t = tried[0]
    assert t["int8_tflite_latency_ratio"] > 0 and t["int8_tflite_bytes"] <= t["unpruned_int8_tflite_bytes"]


def test_nested_model_and_channel_mixing_softmax_are_left_whole() -> None:
    from edgeship.compress import prune_channels

    keras = _keras()
    layers = keras.layers
    inner = keras.Sequential([layers.Input((6, 6, 8)), layers.Conv2D(4, 3, padding="same")], name="inner")
    inp = layers.Input((6, 6, 2))
    x = layers.Activation("softmax", name="sm")(layers.Conv2D(8, 3, padding="same", name="c1")(inp))
    x = layers.Conv2D(6, 1, name="c3")(inner(layers.Conv2D(8, 3, padding="same", name="c2")(x)))
    model = _randomise(keras.Model(inp, layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling2D()(x))))
    narrow, report = prune_channels(model, 0.5)
    assert {(u.layer, u.kind) for u in report.unsupported} == {("sm", "Activation"), ("inner", "Sequential")}
    assert report.channels["c1"] == (8, 8) and report.channels["c2"] == (8, 8) and report.channels["c3"] == (6, 3)
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 2)).astype("float32")
    same, _ = prune_channels(model, 1.0)
    assert np.array_equal(same(x).numpy(), model(x).numpy()) and narrow(x).shape == (2, 3)


@pytest.mark.slow
def test_build_prunes_channels_then_unstructured(tmp_path: Path) -> None:
    from edgeship.build import build
    from edgeship.recipe import Recipe

    recipe = Recipe.from_dict({
        "name": "channels-then-sparsity", "train": {"epochs": 10},
        "prune": {"structure": "channels", "channel_ratio": 0.75, "target_sparsity": 0.5, "fine_tune_epochs": 3,
                  "channel_ranking": "bn_gamma"},
        "export": {"formats": ["tflite"], "measure_rss": False},
    })
    out = build(recipe, tmp_path / "bundle")
    comp = json.loads((out / "manifest.json").read_text())["compression"]
    assert comp["channels"]["ranking"] == "bn_gamma" and comp["channels"]["channels"]["conv1"] == [48, 36]
    assert comp["channel_attempts"][-1]["met_budget"] and comp["prune_attempts"][-1]["met_budget"]
    assert comp["sparsity"]["conv1"] == pytest.approx(0.5, abs=0.01)
