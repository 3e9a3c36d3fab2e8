"""Base class of the coordinate-regression networks.

A `LandmarkRegressor` is a trunk (image -> feature map) and a head (feature map -> 2L
numbers ending in an ``nn.Linear``). The base class owns the contract (`ModelSpec`), the
input normalisation, the mean-shape initialisation and the optional error head, so the
families in `cnn` and `resnet` only build the two modules.

The error head (``spec.uncertainty``) reads the output layer's input features *detached*:
it learns to predict each point's error without ever changing the points themselves, so
it can be added to, and trained on, a finished model.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from ..codec import PointCodec
from ..spec import ModelSpec

__all__ = ["LandmarkRegressor"]


class LandmarkRegressor(nn.Module):
    """A network mapping face crops to landmark coordinates.

    Subclasses set ``self.trunk`` (``[N, 3, S, S]`` normalised image -> features) and
    ``self.head`` (an ``nn.Sequential`` whose last module is ``nn.Linear(..., 2L)``).

    Input: float32 ``[N, 3, S, S]`` RGB crops with values 0..255 (S = ``spec.input_size``),
    any memory format. Output: ``[N, L, 2]`` (x, y) in ``spec.output_unit``.
    """

    trunk: nn.Module
    head: nn.Sequential

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        # Not persistent: the spec in the checkpoint is the one source of the normalisation.
        self.register_buffer("pixel_mean", torch.tensor(spec.pixel_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(spec.pixel_std).view(1, 3, 1, 1), persistent=False)

    @property
    def codec(self) -> PointCodec:
        """Codec between crop pixels and this model's output unit."""
        return self.spec.codec

    @property
    def output_layer(self) -> nn.Linear:
        """The final ``nn.Linear`` producing the 2L coordinates."""
        return self.head[-1]

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 3, S, S] 0..255 RGB -> the same shape standardised with the spec's mean/std."""
        return (x - self.pixel_mean) / self.pixel_std

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 3, S, S] 0..255 RGB -> trunk features [N, C, h, w]."""
        return self.trunk(self.normalize(x))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Trunk features [N, C, h, w] -> points [N, L, 2] float32 in the output unit.

        Under bf16 autocast the output layer still runs in float32: its result is the
        coordinates, and bf16's 8 mantissa bits would round them by up to half a pixel.
        """
        return self._points(self.head[:-1](features))

    def _points(self, hidden: torch.Tensor) -> torch.Tensor:
        """The output layer on hidden features [N, F] -> points [N, L, 2], in float32 even under
        autocast."""
        if not torch.is_autocast_enabled(hidden.device.type):
            out = self.output_layer(hidden)
        else:
            with torch.autocast(hidden.device.type, enabled=False):
                out = self.output_layer(hidden.float())
        return out.unflatten(-1, (self.spec.num_points, 2))

    def forward(self, x: torch.Tensor, with_error: bool = False):
        """[N, 3, S, S] 0..255 RGB crops -> [N, L, 2] points in the output unit; with
        ``with_error``, also the error head's [N, L] log expected errors (crop pixels)."""
        # `is True`: the TorchScript ONNX exporter passes defaults as tensors (tensor(False)).
        if with_error is True:
            return self.forward_with_error(x)
        return self.forward_head(self.forward_features(x))

    @property
    def error_head_inputs(self) -> int:
        """Size of the features the error head reads: the output layer's input here."""
        return self.output_layer.in_features

    def attach_error_head(self, hidden: int = 256) -> None:
        """Add the per-point error head (a small MLP, [N, `error_head_inputs`] -> [N, L]
        log-errors) if absent, and mark the spec ``uncertainty=True``. Its output starts at
        log(2 px) for every point."""
        if getattr(self, "error_head", None) is not None:
            return
        self.error_head = nn.Sequential(nn.Linear(self.error_head_inputs, hidden), nn.ReLU(inplace=True),
                                        nn.Linear(hidden, self.spec.num_points))
        nn.init.zeros_(self.error_head[-1].weight)
        nn.init.constant_(self.error_head[-1].bias, math.log(2.0))
        self.error_head.to(next(self.parameters()).device)
        self.spec = replace(self.spec, uncertainty=True)

    def _require_error_head(self) -> None:
        if getattr(self, "error_head", None) is None:
            raise ValueError(f"{self.spec.arch}: this model has no error head (spec.uncertainty is False)")

    def forward_with_error(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[N, 3, S, S] 0..255 crops -> (points [N, L, 2] in the output unit, log of each point's
        expected error in crop pixels [N, L], float32). Needs the error head."""
        self._require_error_head()
        hidden = self.head[:-1](self.forward_features(x))
        points = self._points(hidden)
        with torch.autocast(hidden.device.type, enabled=False):
            log_error = self.error_head(hidden.detach().float())
        return points, log_error

    def predict_with_error(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 3, S, S] 0..255 crops -> [N, L, 3] crop pixels: x, y and the point's expected
        error (pixels); [N, L, 2] (x, y only) for a model without the error head."""
        if getattr(self, "error_head", None) is None:
            return self.predict_pixels(x)
        points, log_error = self.forward_with_error(x)
        return torch.cat([self.codec.decode(points), log_error.exp().unsqueeze(-1)], dim=-1)

    def predict_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 3, S, S] 0..255 RGB crops -> [N, L, 2] points in crop pixels (0-based centres).

        Gradients follow the caller's mode; wrap in ``torch.inference_mode()`` for inference.
        """
        return self.codec.decode(self(x))

    @torch.no_grad()
    def set_mean_shape(self, points_px: np.ndarray | torch.Tensor, weight_scale: float = 1e-3) -> None:
        """Start training from a mean shape: output-layer bias = encoded shape, weights tiny.

        Args:
            points_px: [L, 2] mean shape in crop pixels of this model's input.
            weight_scale: output-layer weights are drawn with std ``weight_scale / sqrt(fan_in)``,
                so the untrained output moves about ``weight_scale`` x (feature RMS) output
                units away from the mean shape.
        """
        points = torch.as_tensor(np.asarray(points_px, dtype=np.float32))
        expected = (self.spec.num_points, 2)
        if tuple(points.shape) != expected:
            raise ValueError(f"mean shape must be {list(expected)} crop pixels, got {list(points.shape)}")
        if not torch.isfinite(points).all():
            raise ValueError("mean shape contains non-finite values")
        layer = self.output_layer
        layer.bias.copy_(self.codec.encode(points).reshape(-1))
        nn.init.normal_(layer.weight, std=weight_scale / layer.in_features ** 0.5)
