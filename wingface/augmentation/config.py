"""Augmentation settings as plain data: the one place where their defaults live.

Geometric jitter is relative to the face square (rotation in degrees, shift as a fraction
of the square's side, zoom as a log-uniform factor); photometric settings are
probabilities or jitter ranges applied to the output crop (sigmas in output pixels).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from numbers import Real
from typing import Any, Mapping

from ..lookup import lookup

__all__ = ["AugmentConfig"]

_PROBABILITIES = ("flip", "blur", "occlusion", "greyscale")
_JITTERS = ("brightness", "contrast", "saturation")
_RANGES = ("blur_sigma", "occlusion_side")
_SWITCHES = ("rotated_box",)


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation of face crops.

    Attributes:
        rotation_deg: in-plane rotation drawn uniformly in +-rotation_deg degrees (0..180).
        shift: translation of the face square per image axis, uniform in +-shift x side.
        scale: zoom drawn log-uniformly in [1 / (1 + scale), 1 + scale] (scale 0.1: +-10%).
        flip: probability of a horizontal mirror (points swapped with the scheme's flip pairs).
        blur: probability of a Gaussian blur.
        blur_sigma: (low, high) blur sigma in output pixels, drawn uniformly.
        occlusion: probability of one rectangle of random colour or noise over the crop.
        occlusion_side: (low, high) fractions of the output side for the rectangle's width
            and height, each drawn uniformly.
        brightness, contrast, saturation: factors drawn uniformly in [1 - v, 1 + v] (0..1).
        greyscale: probability of turning the crop grey (after the colour jitter).
        rotated_box: a rotated face is framed by the square of its rotated landmarks'
            axis-aligned box, as a detector or ground-truth box frames a face rolled in the
            image (the face looks up to 1.4 times smaller at 45 degrees); off, it keeps the
            size of its upright square. For an orientation stage, which reads such faces.
    """

    rotation_deg: float = 30.0
    shift: float = 0.08
    scale: float = 0.1
    flip: float = 0.5
    blur: float = 0.2
    blur_sigma: tuple[float, float] = (0.3, 1.5)
    occlusion: float = 0.3
    occlusion_side: tuple[float, float] = (0.1, 0.3)
    brightness: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.25
    greyscale: float = 0.1
    rotated_box: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _RANGES:
                object.__setattr__(self, f.name, _as_range(f.name, value))
            elif f.name in _SWITCHES:
                if not isinstance(value, bool):
                    raise ValueError(f"{f.name}: expected true or false, got {value!r}")
            else:
                _check_number(f.name, value)
        for name in _PROBABILITIES + _JITTERS:
            _check_between(name, getattr(self, name), 0.0, 1.0)
        _check_between("rotation_deg", self.rotation_deg, 0.0, 180.0)
        _check_between("shift", self.shift, 0.0, 1.0)
        _check_between("scale", self.scale, 0.0, 1.0)
        if self.occlusion_side[1] > 1.0:
            raise ValueError(f"occlusion_side: fractions must be at most 1, got {self.occlusion_side}")

    @classmethod
    def off(cls) -> "AugmentConfig":
        """No jitter at all: the crop is exactly the face square (for evaluation)."""
        zero = {f.name: 0.0 for f in fields(cls) if f.name not in _RANGES + _SWITCHES}
        return cls(**zero)

    def geometry_only(self) -> "AugmentConfig":
        """This config with every photometric operation switched off."""
        return replace(self, blur=0.0, occlusion=0.0, brightness=0.0, contrast=0.0,
                       saturation=0.0, greyscale=0.0)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (ranges as lists), as stored in training configs and checkpoints."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "augmentation") -> "AugmentConfig":
        """Build a config from plain data; missing keys keep their defaults, unknown keys raise
        ValueError naming the key (with a "did you mean" hint) and ``source``."""
        known = {f.name: f.name for f in fields(cls)}
        try:
            for key in data:
                lookup(known, key, "augmentation setting")
            return cls(**data)
        except (TypeError, ValueError) as err:
            raise type(err)(f"{source}: {err}") from None


def _check_number(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise TypeError(f"{name}: expected a finite number, got {value!r}")


def _check_between(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name}: must lie in [{low:g}, {high:g}], got {value!r}")


def _as_range(name: str, value: Any) -> tuple[float, float]:
    """Validate a (low, high) pair (a list, as read from YAML, is accepted) and return it as a tuple."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name}: expected a (low, high) pair, got {value!r}")
    for v in value:
        _check_number(name, v)
    if not 0 < value[0] <= value[1]:
        raise ValueError(f"{name}: need 0 < low <= high, got {value!r}")
    return float(value[0]), float(value[1])
