"""The model contract: everything needed to build and run a landmark regressor.

A `ModelSpec` travels inside every checkpoint, so a checkpoint alone is enough to crop a
face (``box_margin``, ``input_size``), feed it (``pixel_mean``/``pixel_std``, 0..255 units)
and read the output (``output_unit``, see `wingface.codec`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from .codec import PointCodec
from .geometry import ALIGNED_CROPS, CROP_MODES
from .schemes import LandmarkScheme, get_scheme

__all__ = ["ModelSpec"]

_PLAIN_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class ModelSpec:
    """A landmark regressor's contract.

    Attributes:
        arch: architecture name, a key of `wingface.models.ARCHITECTURES` (``"cnn6"``, ...).
        scheme: the landmark scheme; fixes L, the number of output points.
        input_size: S, the side of the square model input in pixels.
        output_unit: the codec unit of the output (``"signed"``, ``"unit"`` or ``"pixel"``).
        box_margin: face square enlargement (`wingface.geometry.crops.face_square`).
        batch_norm: whether the network uses batch normalisation.
        pixel_mean: per-channel RGB mean in 0..255 units, subtracted inside the model.
        pixel_std: per-channel RGB std in 0..255 units, divided out inside the model.
        arch_kwargs: plain-data keyword arguments of the architecture builder (e.g. ``width``).
        crop: how the face is cropped: ``"box"`` (the square of a face box, stage 1),
            ``"aligned"`` (the frame of a similarity fit of earlier points to ``reference``)
            or ``"aligned-centred"`` (that frame's rotation and scale, centred on the earlier
            points' own box, so a turned head's far contour stays inside the crop).
        reference: for the aligned crops, the mean shape [L, 2] (any frame) that the
            previous points are aligned to; its box square with ``box_margin`` is the crop.
        uncertainty: the network also predicts each point's expected error (crop pixels;
            see `LandmarkRegressor.predict_with_error`), the source of landmark confidence.
        orientation: an orientation stage (a box stage trained on faces at any roll): a
            cascade uses it only to turn each face's square upright, and the next stage starts
            from that square rather than from its points (`wingface.inference.cascade`).
    """

    arch: str
    scheme: LandmarkScheme
    input_size: int
    output_unit: str = "signed"
    box_margin: float = 0.25
    batch_norm: bool = False
    pixel_mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    pixel_std: tuple[float, float, float] = (127.5, 127.5, 127.5)
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    crop: str = "box"
    reference: tuple[tuple[float, float], ...] | None = None
    uncertainty: bool = False
    orientation: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.arch, str) or not self.arch:
            raise ValueError(f"arch must be a non-empty string, got {self.arch!r}")
        if not isinstance(self.scheme, LandmarkScheme):
            raise TypeError(f"scheme must be a LandmarkScheme, got {type(self.scheme).__name__}")
        if isinstance(self.input_size, bool) or int(self.input_size) != self.input_size or self.input_size < 1:
            raise ValueError(f"input_size must be a positive integer, got {self.input_size!r}")
        PointCodec(int(self.input_size), self.output_unit)  # validates the unit
        if not (math.isfinite(self.box_margin) and self.box_margin > -1.0):
            raise ValueError(f"box_margin must be a finite number > -1, got {self.box_margin!r}")
        object.__setattr__(self, "input_size", int(self.input_size))
        object.__setattr__(self, "box_margin", float(self.box_margin))
        object.__setattr__(self, "batch_norm", bool(self.batch_norm))
        object.__setattr__(self, "uncertainty", bool(self.uncertainty))
        object.__setattr__(self, "orientation", bool(self.orientation))
        if self.orientation and self.crop != "box":
            raise ValueError(f"an orientation stage crops from boxes (crop 'box'), got crop {self.crop!r}")
        object.__setattr__(self, "pixel_mean", _rgb_triple(self.pixel_mean, "pixel_mean", positive=False))
        object.__setattr__(self, "pixel_std", _rgb_triple(self.pixel_std, "pixel_std", positive=True))
        object.__setattr__(self, "arch_kwargs", _plain_kwargs(self.arch_kwargs))
        object.__setattr__(self, "reference", self._checked_reference())

    def _checked_reference(self) -> tuple[tuple[float, float], ...] | None:
        if self.crop not in CROP_MODES:
            raise ValueError(f"crop must be one of {CROP_MODES}, got {self.crop!r}")
        if self.reference is None:
            if self.crop in ALIGNED_CROPS:
                raise ValueError(f"an {self.crop!r} crop needs a reference shape")
            return None
        try:
            ref = tuple((float(x), float(y)) for x, y in self.reference)
        except (TypeError, ValueError):
            raise ValueError("reference must be [L, 2] numbers") from None
        if len(ref) != self.num_points or not all(math.isfinite(v) for p in ref for v in p):
            raise ValueError(f"reference must be {self.num_points} finite (x, y) points, got {len(ref)}")
        return ref

    @property
    def num_points(self) -> int:
        """L, the number of landmarks the model outputs."""
        return self.scheme.num_points

    @property
    def codec(self) -> PointCodec:
        """Codec between crop pixels ``[..., L, 2]`` and the model's output unit."""
        return PointCodec(self.input_size, self.output_unit)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (str, numbers, lists, dicts), as stored in checkpoints."""
        return {
            "arch": self.arch,
            "scheme": self.scheme.to_dict(),
            "input_size": self.input_size,
            "output_unit": self.output_unit,
            "box_margin": self.box_margin,
            "batch_norm": self.batch_norm,
            "pixel_mean": list(self.pixel_mean),
            "pixel_std": list(self.pixel_std),
            "arch_kwargs": dict(self.arch_kwargs),
            "crop": self.crop,
            "reference": [list(p) for p in self.reference] if self.reference is not None else None,
            "uncertainty": self.uncertainty,
            # Only when set: the files of every other model stay readable by older versions.
            **({"orientation": True} if self.orientation else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "model spec") -> "ModelSpec":
        """Build a spec from `to_dict` output; unknown or missing keys raise ValueError naming them.

        ``scheme`` may be a full scheme mapping or the name of a built-in scheme.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"{source}: expected a mapping, got {type(data).__name__}")
        allowed = {f.name for f in fields(cls)}
        required = {"arch", "scheme", "input_size"}
        unknown, missing = set(data) - allowed, required - set(data)
        if unknown:
            raise ValueError(f"{source}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        if missing:
            raise ValueError(f"{source}: missing key(s) {sorted(missing)}")
        values = dict(data)
        scheme = values["scheme"]
        values["scheme"] = (
            get_scheme(scheme) if isinstance(scheme, str)
            else LandmarkScheme.from_dict(scheme, source=f"{source}: scheme")
        )
        try:
            return cls(**values)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: {err}") from None


def _rgb_triple(value: Any, name: str, positive: bool) -> tuple[float, float, float]:
    """Three finite floats (positive ones if ``positive``), or ValueError naming ``name``."""
    try:
        triple = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be three numbers, got {value!r}") from None
    if len(triple) != 3 or not all(math.isfinite(v) and (v > 0 or not positive) for v in triple):
        kind = "positive finite" if positive else "finite"
        raise ValueError(f"{name} must be three {kind} numbers (0..255 units), got {value!r}")
    return triple  # type: ignore[return-value]


def _plain_kwargs(value: Any) -> dict[str, Any]:
    """A copy of ``value`` if it is a str-keyed mapping of plain data, else ValueError."""
    if not isinstance(value, Mapping):
        raise ValueError(f"arch_kwargs must be a mapping, got {type(value).__name__}")
    for key, item in value.items():
        items = item if isinstance(item, (list, tuple)) else [item]
        if not isinstance(key, str) or not all(isinstance(v, _PLAIN_SCALARS) for v in items):
            raise ValueError(f"arch_kwargs[{key!r}] must be plain data (str/number/bool/None or a list of them)")
    return {k: list(v) if isinstance(v, tuple) else v for k, v in value.items()}
