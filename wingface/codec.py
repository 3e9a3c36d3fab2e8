"""Point codec: converts landmark coordinates between crop pixels and a model's output unit.

Units (S = model input size in pixels, pixel centres at 0..S-1):
- ``"pixel"``:  u = x                      (pixels_per_unit = 1)
- ``"unit"``:   u = (x + 0.5) / S          in [0, 1] over the crop (pixels_per_unit = S)
- ``"signed"``: u = 2 (x + 0.5) / S - 1    in [-1, 1] over the crop (pixels_per_unit = S / 2)

Losses are told ``pixels_per_unit`` so that Wing's w and eps always mean input pixels,
whatever unit the model regresses.
"""

from __future__ import annotations

from dataclasses import dataclass

from .lookup import lookup

_SCALES = {"pixel": lambda s: 1.0, "unit": lambda s: float(s), "signed": lambda s: s / 2.0}
_OFFSETS = {"pixel": lambda s: 0.0, "unit": lambda s: 0.0, "signed": lambda s: -1.0}
OUTPUT_UNITS = tuple(_SCALES)


@dataclass(frozen=True)
class PointCodec:
    """Maps crop-pixel points to model units and back; works on numpy arrays and torch tensors."""

    input_size: int
    unit: str = "signed"

    def __post_init__(self) -> None:
        lookup(_SCALES, self.unit, "output unit")
        if self.input_size < 1:
            raise ValueError(f"input_size must be positive, got {self.input_size}")

    @property
    def pixels_per_unit(self) -> float:
        """How many input pixels one output unit spans."""
        return _SCALES[self.unit](self.input_size)

    def _half_pixel(self) -> float:
        return 0.0 if self.unit == "pixel" else 0.5

    def encode(self, points_px):
        """Crop pixels [..., L, 2] -> model units."""
        return (points_px + self._half_pixel()) / self.pixels_per_unit + _OFFSETS[self.unit](self.input_size)

    def decode(self, units):
        """Model units [..., L, 2] -> crop pixels."""
        return (units - _OFFSETS[self.unit](self.input_size)) * self.pixels_per_unit - self._half_pixel()
