"""The build recipe: a TOML file validated on load, unknown keys rejected.

Needs pydantic (part of ``edgeship[build]``); the runtime never imports this.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from edgeship._tf import require
from edgeship.runtime._errors import RecipeError

require("pydantic", "Reading a build recipe")

from pydantic import BaseModel, ConfigDict, Field, ValidationError  # noqa: E402


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Section):
    """Which dataset, and how it is split (stratified, fixed by ``seed``)."""

    dataset: str = "digits"
    test_fraction: float = Field(0.2, gt=0.0, lt=0.5)
    val_fraction: float = Field(0.1, gt=0.0, lt=0.5)


class ModelConfig(_Section):
    """Which architecture from the model zoo."""

    arch: str = "small_cnn"


class TrainConfig(_Section):
    """Adam training with early stopping on validation loss (best weights restored)."""

    epochs: int = Field(60, ge=1, le=10_000)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0, lt=1.0)
    early_stopping_patience: int = Field(10, ge=1)


class PruneConfig(_Section):
    """Magnitude pruning (tfmot ``prune_low_magnitude``, ConstantSparsity), then strip."""

    enabled: bool = True
    target_sparsity: float = Field(0.5, ge=0.0, lt=1.0)
    fine_tune_epochs: int = Field(4, ge=1)


class QuantizeConfig(_Section):
    """Full-int8 post-training quantization with a representative dataset."""

    enabled: bool = True
    calibration_samples: int = Field(256, ge=1)


class ExportConfig(_Section):
    """Which formats the bundle holds."""

    formats: list[Literal["tflite", "onnx"]] = Field(default_factory=lambda: ["tflite", "onnx"], min_length=1)
    onnx_opset: int = Field(17, ge=13, le=21)


class Recipe(_Section):
    """A whole build. Round-trips through TOML/JSON; ``sha256`` identifies it."""

    name: str = Field("digits-small-cnn", min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    seed: int = 0
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    prune: PruneConfig = Field(default_factory=PruneConfig)
    quantize: QuantizeConfig = Field(default_factory=QuantizeConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)

    # -- constructors ----------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "recipe") -> Recipe:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise RecipeError(_explain(exc, source)) from None

    @classmethod
    def from_toml(cls, path: str | Path) -> Recipe:
        p = Path(path)
        if not p.is_file():
            raise RecipeError(
                f"Expected a recipe TOML file. Received: {p}, which "
                f"{'is a folder' if p.is_dir() else 'does not exist'}. "
                "Pass a path to a .toml file, or omit it for the built-in default recipe."
            )
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise RecipeError(f"Recipe {p} is not valid TOML: {exc}. Fix the syntax.") from None
        return cls.from_dict(data, source=str(p))

    @classmethod
    def default(cls) -> Recipe:
        text = resources.files("edgeship.recipes").joinpath("default.toml").read_text(encoding="utf-8")
        return cls.from_dict(tomllib.loads(text), source="default recipe")

    # -- views -----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def sha256(self) -> str:
        canon = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()


def load_recipe(path: str | Path | None) -> Recipe:
    """The recipe at ``path``, or the built-in default when ``path`` is None."""
    return Recipe.default() if path is None else Recipe.from_toml(path)


def _valid_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for part in loc[:-1]:
        field = current.model_fields.get(part) if isinstance(part, str) else None
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return []
        current = field.annotation
    return list(current.model_fields)


def _explain(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc)
        if err["type"] == "extra_forbidden":
            section = ".".join(str(p) for p in loc[:-1])
            where = f"[{section}]" if section else "the top level"
            valid = ", ".join(_valid_keys(Recipe, loc))
            lines.append(f"unknown key '{key}' in {where}; valid keys there: {valid}")
        else:
            got = err.get("input")
            got_s = "nothing" if err["type"] == "missing" else repr(got)
            lines.append(f"'{key}': {err['msg']}; received {got_s}")
    return f"Invalid recipe ({source}): " + "; ".join(lines) + ". Fix the recipe file."
