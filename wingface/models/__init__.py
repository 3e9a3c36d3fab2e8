"""Coordinate-regression networks, their contract (`ModelSpec`) and checkpoints.

``ARCHITECTURES`` is the one table of known networks: name -> (builder, default input
size, default batch_norm). A builder takes a `ModelSpec` plus keyword-only
``spec.arch_kwargs`` and returns a `LandmarkRegressor`.
"""

from __future__ import annotations

import inspect
from dataclasses import replace
from typing import Any, Callable, NamedTuple

from ..lookup import lookup
from ..schemes import LandmarkScheme
from .checkpoint import LoadedCheckpoint, load_checkpoint, load_stages, save_cascade, save_checkpoint
from .cnn import SimpleCNN, cnn6, cnn7
from .integral import IntegralCNN, integral
from .complexity import count_parameters, flops_per_face
from .mean_shape import MeanShape, mean_shape
from .regressor import LandmarkRegressor
from .resnet import ResNet, resnet18, resnet50
from ..spec import ModelSpec

__all__ = [
    "ARCHITECTURES", "Architecture", "IntegralCNN", "LandmarkRegressor", "MeanShape", "LoadedCheckpoint", "ModelSpec",
    "ResNet", "SimpleCNN", "build_model", "count_parameters", "create_model", "flops_per_face",
    "load_checkpoint", "load_stages", "save_cascade", "save_checkpoint", "with_input_size",
]


class Architecture(NamedTuple):
    """One row of `ARCHITECTURES`."""

    builder: Callable[..., LandmarkRegressor]
    input_size: int
    batch_norm: bool


ARCHITECTURES: dict[str, Architecture] = {
    "cnn6": Architecture(cnn6, 64, False),
    "cnn7": Architecture(cnn7, 128, False),
    "integral": Architecture(integral, 128, True),
    "resnet18": Architecture(resnet18, 256, True),
    "resnet50": Architecture(resnet50, 256, True),
    "mean-shape": Architecture(mean_shape, 64, False),
}


def create_model(arch: str, scheme: LandmarkScheme, *, input_size: int | None = None,
                 batch_norm: bool | None = None, output_unit: str = "signed", box_margin: float = 0.25,
                 crop: str = "box", reference: Any = None, **arch_kwargs: Any) -> LandmarkRegressor:
    """Build a freshly initialised network by architecture name.

    Args:
        arch: a key of `ARCHITECTURES` (``cnn6``, ``cnn7``, ``integral``, ``resnet18``, ``resnet50``).
        scheme: the landmark scheme (L points).
        input_size: crop side S in pixels; None takes the architecture's default.
        batch_norm: None takes the architecture's default (off for the CNNs, on for ResNets).
        output_unit: codec unit of the [N, L, 2] output (``signed``, ``unit``, ``pixel``).
        box_margin: face square enlargement used to crop faces for this model.
        crop, reference: ``"box"`` crops, or ``"aligned"`` crops with a reference shape [L, 2]
            (see `ModelSpec`).
        **arch_kwargs: builder options (e.g. ``width=0.5``).
    """
    entry = lookup(ARCHITECTURES, arch, "architecture")
    spec = ModelSpec(
        arch=arch, scheme=scheme,
        input_size=entry.input_size if input_size is None else input_size,
        batch_norm=entry.batch_norm if batch_norm is None else batch_norm,
        output_unit=output_unit, box_margin=box_margin, arch_kwargs=arch_kwargs, crop=crop,
        reference=None if reference is None else [[float(x), float(y)] for x, y in reference],
    )
    return build_model(spec)


def build_model(spec: ModelSpec) -> LandmarkRegressor:
    """Build the (untrained) network a spec describes; unknown ``arch_kwargs`` raise ValueError."""
    builder = lookup(ARCHITECTURES, spec.arch, "architecture").builder
    allowed = [p.name for p in inspect.signature(builder).parameters.values() if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(spec.arch_kwargs) - set(allowed))
    if unknown:
        raise ValueError(f"{spec.arch}: unknown arch_kwargs {unknown}; allowed: {allowed}")
    model = builder(spec, **spec.arch_kwargs)
    if spec.uncertainty:
        model.attach_error_head()
    return model


def with_input_size(model: LandmarkRegressor, input_size: int) -> LandmarkRegressor:
    """``model``'s weights in a network for crops of ``input_size`` pixels (a new model; the
    same one when the size is unchanged). Only fully convolutional families (``integral``)
    can change size: ValueError for one whose weights depend on it."""
    if input_size == model.spec.input_size:
        return model
    resized = build_model(replace(model.spec, input_size=input_size))
    try:
        resized.load_state_dict(model.state_dict())
    except RuntimeError:
        raise ValueError(f"{model.spec.arch}: its weights fit {model.spec.input_size}-px crops only; "
                         f"cannot run it at {input_size} px") from None
    return resized
