from __future__ import annotations

from pathlib import Path

import pytest

from edgeship.core.errors import RecipeError
from edgeship.recipe import Recipe, load_recipe


def test_default_recipe_is_digits_small_cnn_pruned_int8() -> None:
    r = Recipe.default()
    assert r.data.dataset == "digits"
    assert r.model.arch == "small_cnn"
    assert r.prune.enabled and r.prune.target_sparsity == 0.5
    assert r.quantize.enabled
    assert load_recipe(None) == r


def test_unknown_key_is_rejected_and_named(tmp_path: Path) -> None:
    p = tmp_path / "r.toml"
    p.write_text('[train]\nepochs = 3\nepoch = 4\n')
    with pytest.raises(RecipeError) as info:
        Recipe.from_toml(p)
    msg = str(info.value)
    assert "train.epoch" in msg and "epochs" in msg and str(p) in msg
    assert "\n" not in msg


def test_unknown_top_level_key(tmp_path: Path) -> None:
    p = tmp_path / "r.toml"
    p.write_text('colour = "blue"\n')
    with pytest.raises(RecipeError, match="unknown key 'colour' in the top level"):
        Recipe.from_toml(p)


def test_bad_value_names_key_and_received(tmp_path: Path) -> None:
    p = tmp_path / "r.toml"
    p.write_text('[prune]\ntarget_sparsity = 1.5\n')
    with pytest.raises(RecipeError, match=r"prune.target_sparsity.*1.5"):
        Recipe.from_toml(p)


def test_missing_recipe_file(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="does not exist"):
        Recipe.from_toml(tmp_path / "nope.toml")


def test_invalid_toml(tmp_path: Path) -> None:
    p = tmp_path / "r.toml"
    p.write_text("[train\n")
    with pytest.raises(RecipeError, match="not valid TOML"):
        Recipe.from_toml(p)


def test_round_trip_and_hash_stable() -> None:
    r = Recipe.default()
    again = Recipe.from_dict(r.to_dict())
    assert again == r and again.sha256() == r.sha256()
    changed = Recipe.from_dict({**r.to_dict(), "seed": 7})
    assert changed.sha256() != r.sha256()
