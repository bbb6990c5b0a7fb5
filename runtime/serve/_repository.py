"""The served models: loading, metadata, inference and reload, on the runtime's public API only."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.runtime import InputError, Model, load

from ._errors import NotFoundError, ServeError
from ._protocol import InferRequest, classify, datatype_of, tensor_metadata

VERSION = "1"
#: Outputs an anomaly detector's responses add to its reconstruction, and the score rule they follow.
SCORE_OUTPUT, DECISION_OUTPUT, ANOMALY_SCORE = "anomaly_score", "anomaly", "mse"


@dataclass
class Served:
    """One bundle under its name: the loaded model and what the protocol says about it."""

    name: str
    path: Path
    model: Model
    takes_text: bool
    loaded_at: float = field(default_factory=time.time)
    reloads: int = 0
    #: Requests running on this model now; a retired model closes when the last one ends.
    users: int = 0
    retired: bool = False

    @contextlib.contextmanager
    def use(self) -> Iterator[Served]:
        """Hold the model open while a request runs on it, across a reload that retires it."""
        self.users += 1
        try:
            yield self
        finally:
            self.users -= 1
            if self.retired and self.users == 0:
                self.model.close()

    def retire(self) -> None:
        """Replaced by a reload: close now if idle, else when its last request ends."""
        self.retired = True
        if self.users == 0:
            self.model.close()

    def metadata(self) -> dict[str, Any]:
        m = self.model
        inputs = [tensor_metadata(i, datatype="BYTES" if self.takes_text else _fed(i)) for i in m.inputs]
        if self.takes_text:
            inputs[0]["shape"] = [-1]
        params: dict[str, Any] = {"format": m.format, "precision": m.precision, "engine": m.engine,
                                  "file": m.path.name}
        if m.labels:
            params["labels"] = list(m.labels)
        outputs = [tensor_metadata(o, datatype=_fed(o)) for o in m.outputs]
        threshold = self.threshold
        if threshold is not None:
            params.update(anomaly_threshold=threshold, anomaly_score=ANOMALY_SCORE)
            outputs += [{"name": SCORE_OUTPUT, "datatype": "FP64", "shape": [-1]},
                        {"name": DECISION_OUTPUT, "datatype": "BOOL", "shape": [-1]}]
        return {"name": self.name, "versions": [VERSION], "platform": f"edgeship_{m.format}",
                "inputs": inputs, "outputs": outputs, "parameters": params}

    @property
    def threshold(self) -> float | None:
        """The anomaly threshold of an anomaly detector (one input, its reconstruction out), else ``None``."""
        m = self.model
        t = (m.anomaly or {}).get("threshold")
        if isinstance(t, bool) or not isinstance(t, (int, float)) or len(m.inputs) != 1 or len(m.outputs) != 1:
            return None
        return float(t) if m.inputs[0].shape == m.outputs[0].shape else None

    def arrange(self, request: InferRequest) -> Any:
        """The request's inputs as ``predict`` takes them; sets ``request.batch_size``."""
        names = [i.public_name for i in self.model.inputs]
        given = [_given(request.inputs, i) for i in self.model.inputs]  # the public name, or the tensor's
        if None in given or set(request.inputs) - set(given):
            raise InputError(f"Model {self.name} expects inputs {names}. Received: {sorted(request.inputs)}. "
                             f"Name each input as GET /v2/models/{self.name} lists them.")
        arrays = [request.inputs[g] for g in given]
        first = arrays[0]
        if first.dtype == object:  # BYTES: strings for a text bundle's tokenizer
            if not self.takes_text:
                raise InputError(f"Model {self.name} expects input {tensor_metadata(self.model.inputs[0])}. "
                                 "Received: BYTES. Send numbers with the datatype the metadata lists.")
            strings = list(first.reshape(-1))
            request.batch_size = len(strings)
            return strings
        request.batch_size = int(first.shape[0]) if first.ndim else 1
        return first if len(arrays) == 1 else arrays

    def outputs(self, request: InferRequest, result: Any, x: Any = None) -> list[tuple[str, np.ndarray, bool]]:
        """The (name, array, binary) triples the response carries, per the request's ``outputs``.

        An anomaly detector's response also carries ``anomaly_score`` (the reconstruction
        error of each sample of ``x``, as ``Model.score``) and ``anomaly`` (score above the
        bundle's threshold, as ``Model.predict_anomaly``).
        """
        outs = self.model.outputs
        arrays = dict(zip((o.public_name for o in outs), result if isinstance(result, list) else [result]))
        aliases = {o.name: o.public_name for o in outs}  # a request may name an output by its tensor name
        threshold = self.threshold
        if threshold is not None and x is not None and not isinstance(result, list):
            from edgeship.core.metrics import reconstruction_error

            score = reconstruction_error(np.asarray(x, dtype=np.float32), result)
            arrays[SCORE_OUTPUT], arrays[DECISION_OUTPUT] = score, score > threshold
        if request.outputs is None:
            return [(name, a, request.binary_default) for name, a in arrays.items()]
        chosen = []
        for want in request.outputs:
            name = aliases.get(want.name, want.name)
            if name not in arrays:
                raise InputError(f"Model {self.name} has outputs {list(arrays)}. Received: a request for "
                                 f"{want.name!r}. Ask for an output GET /v2/models/{self.name} lists.")
            a = arrays[name]
            if want.classification:
                a = classify(a, want.classification, self.model.labels)
            chosen.append((want.name, a, want.binary))
        return chosen


def _given(inputs: dict[str, Any], info: Any) -> str | None:
    """The key under which a request holds ``info``'s tensor: its public name, else its tensor name."""
    for key in (info.public_name, info.name):
        if key in inputs:
            return key
    return None


def _fed(info: Any) -> str:
    """What a client sends or gets: float32 for quantized tensors (the runtime (de)quantizes)."""
    return "FP32" if info.quantized else datatype_of(info.dtype)


def parse_bundle_arg(arg: str) -> tuple[str, Path]:
    """``PATH`` or ``NAME=PATH``; the name defaults to the bundle folder's (or model file stem's) name."""
    name, sep, rest = arg.partition("=")
    if sep and name and "/" not in name and not Path(arg).exists():
        return name, Path(rest)
    path = Path(arg)
    return (path.stem if path.is_file() else path.resolve().name), path


class Repository:
    """The bundles served, each loaded with the same format/precision/threads choice."""

    def __init__(self, bundles: list[str], *, format: str | None = None, precision: str | None = None,
                 threads: int | None = None) -> None:
        self._choice: dict[str, Any] = {"format": format, "precision": precision, "threads": threads}
        self.models: dict[str, Served] = {}
        for arg in bundles:
            name, path = parse_bundle_arg(arg)
            if name in self.models:
                raise ServeError(f"Expected one bundle per name. Received: two named {name!r} "
                                    f"({self.models[name].path}, {path}). Name one NAME=PATH.")
            self.models[name] = self._load(name, path)

    def _load(self, name: str, path: Path) -> Served:
        model = load(path, **self._choice)  # verifies sha256 and structure, probes new bytes
        try:
            takes_text = _probe(model)
        except Exception:
            model.close()
            raise
        return Served(name, path, model, takes_text)

    def get(self, name: str, version: str | None = None) -> Served:
        served = self.models.get(name)
        if served is None:
            raise NotFoundError(f"Expected a served model name in {sorted(self.models)}. Received: {name!r}. "
                                "Fix: GET /v2/models/{name} with one of those names.")
        if version not in (None, VERSION):
            raise NotFoundError(f"Expected model {name} version {VERSION}. Received: version {version!r}. "
                                f"Fix: drop /versions/... or use /versions/{VERSION}.")
        return served

    def prepare_reload(self, name: str) -> Served:
        """Load ``name`` again from disk and run it once (any thread); raises if the bundle is bad."""
        old = self.get(name)
        new = self._load(name, old.path)
        new.reloads = old.reloads + 1
        return new

    def swap(self, new: Served) -> None:
        """Serve ``new`` in place of the model of its name (call on the event loop); the old closes when idle."""
        old = self.models[new.name]
        self.models[new.name] = new
        old.retire()


def _probe(model: Model) -> bool:
    """Run the model once on zeros (it works end to end); True when it takes strings (a text bundle)."""
    try:
        model.predict([""])
        return True
    except InputError:
        pass
    zeros = [np.zeros([1, *(d or 1 for d in i.shape[1:])], np.float32 if i.quantized else i.dtype)
             for i in model.inputs]
    model.predict(zeros[0] if len(zeros) == 1 else zeros)
    return False
