"""Checkpoints that carry their contract: spec + weights + free plain-data extras.

File layout (a ``torch.save`` dict, readable with ``torch.load(weights_only=True)``)::

    {"format": "wingface-checkpoint", "version": 1, "kind": "model",
     "spec": ModelSpec.to_dict(), "state_dict": {...}, "extra": {...} or None}

``extra`` holds anything plain (str, numbers, bool, None, lists, tuples, str-keyed dicts,
tensors): training state, metrics, notes. It is checked when saving, so every file this
module writes can be loaded without unpickling arbitrary objects.
"""

from __future__ import annotations

import logging
import pickle
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_path
from ..schemes import LandmarkScheme
from .regressor import LandmarkRegressor
from ..spec import ModelSpec

__all__ = ["FORMAT", "VERSION", "LoadedCheckpoint", "load_checkpoint", "load_stages", "save_cascade",
           "save_checkpoint"]

log = logging.getLogger(__name__)

FORMAT = "wingface-checkpoint"
VERSION = 1
# What torch.load raises on truncated, empty or foreign files.
_LOAD_ERRORS = (RuntimeError, EOFError, OSError, KeyError, IndexError, ValueError, UnicodeDecodeError,
                pickle.UnpicklingError)
# Exact types: subclasses such as numpy.float64 pass isinstance(float) but fail weights-only loading.
_SCALARS = (str, int, float, bool, type(None))


@dataclass
class LoadedCheckpoint:
    """A loaded checkpoint: ``model`` (eval mode, float32), its ``spec`` and the saved ``extra``."""

    model: LandmarkRegressor
    spec: ModelSpec
    extra: dict[str, Any] | None


def save_checkpoint(path: str | Path, model: LandmarkRegressor, extra: dict[str, Any] | None = None,
                    *, half: bool = False) -> Path:
    """Write ``model`` with its spec (and ``extra``) to ``path`` atomically; returns the path.

    Args:
        path: destination file; parent folders are created.
        model: the network; its ``spec`` is stored beside the weights.
        extra: optional plain data (see module docstring); TypeError names any other value.
        half: store floating-point tensors as float16 (half the size; loading restores float32).
    """
    if not isinstance(model, LandmarkRegressor):
        raise TypeError(f"model must be a LandmarkRegressor, got {type(model).__name__}")
    if extra is not None and not isinstance(extra, dict):
        raise TypeError(f"extra must be a dict or None, got {type(extra).__name__}")
    _check_plain(extra, "extra")
    payload = {"format": FORMAT, "version": VERSION, "kind": "model", **_model_entry(model, half), "extra": extra}
    return _write(Path(path), payload, half)


def save_cascade(path: str | Path, models: list[LandmarkRegressor], extra: dict[str, Any] | None = None,
                 *, half: bool = False) -> Path:
    """Write several models run in order (a cascade, e.g. CNN-6 then CNN-7) into one file.

    Layout: ``{"kind": "cascade", "stages": [{"spec", "state_dict"}, ...], "extra"}``.
    """
    if not models or not all(isinstance(m, LandmarkRegressor) for m in models):
        raise TypeError("models must be a non-empty list of LandmarkRegressor")
    _check_plain(extra, "extra")
    payload = {"format": FORMAT, "version": VERSION, "kind": "cascade",
               "stages": [_model_entry(m, half) for m in models], "extra": extra}
    return _write(Path(path), payload, half)


def _model_entry(model: LandmarkRegressor, half: bool) -> dict[str, Any]:
    return {"spec": model.spec.to_dict(), "state_dict": {k: _stored(v, half) for k, v in model.state_dict().items()}}


def _write(path: Path, payload: dict[str, Any], half: bool) -> Path:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    log.debug("saved %s %s (%s)", payload["kind"], path, "float16" if half else "float32")
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu",
                    expect_scheme: LandmarkScheme | None = None) -> LoadedCheckpoint:
    """Read a checkpoint written by `save_checkpoint` and rebuild its model.

    Args:
        path: the checkpoint file.
        map_location: device the model ends up on.
        expect_scheme: if given, ValueError unless the checkpoint's scheme has the same
            name and point count.
    Returns:
        `LoadedCheckpoint` with the model in eval mode (float32 weights).
    Raises:
        FileNotFoundError: no such file.
        ValueError (naming the file): corrupt or truncated file, not a wingface checkpoint,
            written by a newer version, bad spec, weights not matching the spec, or the
            wrong scheme.
    """
    path = Path(path)
    payload = _read_payload(path, map_location)
    if payload["kind"] != "model":
        raise ValueError(f"checkpoint {path}: holds a {payload['kind']!r}, not a single model (use load_stages)")
    return _rebuild(path, payload, payload["extra"], expect_scheme, map_location)


def load_stages(path: str | Path, map_location: str | torch.device = "cpu",
                expect_scheme: LandmarkScheme | None = None) -> list[LoadedCheckpoint]:
    """The models of a cascade file, in order, or a one-element list for a single-model checkpoint."""
    path = Path(path)
    payload = _read_payload(path, map_location)
    entries = payload["stages"] if payload["kind"] == "cascade" else [payload]
    return [_rebuild(path, e, payload["extra"], expect_scheme, map_location) for e in entries]


def _rebuild(path: Path, entry: dict[str, Any], extra: Any, expect_scheme: LandmarkScheme | None,
             map_location: str | torch.device) -> LoadedCheckpoint:
    from . import build_model  # the architecture table imports this module

    spec = ModelSpec.from_dict(entry["spec"], source=f"checkpoint {path}: spec")
    if expect_scheme is not None:
        _check_scheme(path, spec.scheme, expect_scheme)
    model = build_model(spec)
    state = {k: v.float() if v.is_floating_point() else v for k, v in entry["state_dict"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"checkpoint {path}: weights do not match architecture {spec.arch!r}: {err}") from None
    model.to(map_location).eval()
    return LoadedCheckpoint(model=model, spec=spec, extra=extra)


def _read_payload(path: Path, map_location: str | torch.device) -> dict[str, Any]:
    """torch.load ``path`` (weights only) and check format, version and kind."""
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except _LOAD_ERRORS as err:
        raise ValueError(f"checkpoint {path}: unreadable (corrupt, truncated or not a torch file): "
                         f"{type(err).__name__}: {str(err)[:200]}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"checkpoint {path}: not a wingface checkpoint (no format {FORMAT!r})")
    version = payload.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise ValueError(f"checkpoint {path}: format version {version!r} is newer than this "
                         f"wingface reads ({VERSION}); upgrade wingface")
    kind = payload.get("kind")
    if kind not in ("model", "cascade"):
        raise ValueError(f"checkpoint {path}: unknown content {kind!r} (expected a model or a cascade)")
    missing = ({"spec", "state_dict", "extra"} if kind == "model" else {"stages", "extra"}) - set(payload)
    if missing:
        raise ValueError(f"checkpoint {path}: missing key(s) {sorted(missing)}")
    return payload


def _check_scheme(path: Path, found: LandmarkScheme, expected: LandmarkScheme) -> None:
    """ValueError unless two schemes agree in name and point count."""
    if (found.name, found.num_points) != (expected.name, expected.num_points):
        raise ValueError(
            f"checkpoint {path} was trained for scheme {found.name!r} ({found.num_points} points), "
            f"expected {expected.name!r} ({expected.num_points} points)"
        )


def _stored(tensor: torch.Tensor, half: bool) -> torch.Tensor:
    """A CPU copy of a state tensor, float16 when ``half`` and floating point."""
    tensor = tensor.detach().cpu()
    return tensor.half() if half and tensor.is_floating_point() else tensor


def _check_plain(value: Any, where: str) -> None:
    """TypeError naming the first value under ``where`` that weights-only loading would refuse."""
    if type(value) in (dict, OrderedDict):
        for key, item in value.items():
            if type(key) not in (str, int):
                raise TypeError(f"{where}: keys must be str or int, got {type(key).__name__}")
            _check_plain(item, f"{where}[{key!r}]")
    elif type(value) in (list, tuple):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
    elif type(value) not in _SCALARS and not isinstance(value, torch.Tensor):
        raise TypeError(f"{where}: {type(value).__name__} is not plain data (use str, numbers, "
                        "bool, None, lists, dicts or tensors)")
