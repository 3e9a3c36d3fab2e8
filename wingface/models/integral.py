"""Integral regression: an encoder-decoder CNN whose per-point heatmaps are read out as the
expected position (soft-argmax; Sun et al. 2018, "Integral human pose regression").

The readout is differentiable, so the network is trained on coordinates with the same
losses as the plain CNNs (Wing in input pixels), while its convolutional output keeps the
translation equivariance that a fully connected head gives up: a point is found where its
evidence is, not decoded from a flattened feature vector. That is the inductive bias that
small training sets lack most.

Layout (128 px input, the CNN-7 stage-2 crop): an encoder of conv3x3 [+ BN] + ReLU blocks,
each followed by 2x2 max-pooling except the last (32-64-128-128-256-256 channels at 128, 64,
32, 16, 8 and 4 px), then a decoder that upsamples x2, adds a 1x1 projection of the encoder
map of that size and applies conv3x3 [+ BN] + ReLU (128-128-64 channels at 8, 16 and 32 px), and a
1x1 conv to L heatmaps of S / 4 px. About 0.77 GFLOP per face at 128 px
(CNN-7: 0.67). Batch norm is on by default.

The error head (``spec.uncertainty``) reads, detached, what the heatmaps say about each
point: the spread (standard deviation in x and y, crop pixels) and the peak probability of
its distribution, [N, 3L].
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .cnn import conv_layers
from .regressor import LandmarkRegressor
from ..spec import ModelSpec

__all__ = ["IntegralCNN", "integral"]


class EncoderDecoder(nn.Module):
    """[N, 3, S, S] normalised image -> [N, C_out, S / 2**k, S / 2**k] features (k = encoder
    levels - decoder levels - 1), with additive skip connections from the encoder."""

    def __init__(self, encoder: Sequence[int], decoder: Sequence[int], batch_norm: bool) -> None:
        super().__init__()
        if len(decoder) >= len(encoder):
            raise ValueError(f"need fewer decoder ({len(decoder)}) than encoder levels ({len(encoder)})")
        self.encoder = nn.ModuleList(nn.Sequential(*conv_layers(cin, cout, batch_norm))
                                     for cin, cout in zip([3, *encoder[:-1]], encoder))
        skips = encoder[-2::-1][:len(decoder)]  # encoder maps the decoder meets, deepest first
        inputs = [encoder[-1], *decoder[:-1]]
        self.lateral = nn.ModuleList(nn.Conv2d(skip, cin, 1) for skip, cin in zip(skips, inputs))
        self.decoder = nn.ModuleList(nn.Sequential(*conv_layers(cin, cout, batch_norm))
                                     for cin, cout in zip(inputs, decoder))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = []
        for i, block in enumerate(self.encoder):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            maps.append(x)
        for skip, lateral, block in zip(maps[-2::-1], self.lateral, self.decoder):
            x = block(F.interpolate(x, scale_factor=2.0, mode="nearest") + lateral(skip))
        return x


class IntegralCNN(LandmarkRegressor):
    """`EncoderDecoder` + 1x1 conv to L heatmaps + soft-argmax readout (see the module docstring)."""

    def __init__(self, spec: ModelSpec, encoder: Sequence[int], decoder: Sequence[int], width: float = 1.0) -> None:
        super().__init__(spec)
        if width <= 0:
            raise ValueError(f"{spec.arch}: need width > 0, got {width}")
        enc = [max(1, round(c * width)) for c in encoder]
        dec = [max(1, round(c * width)) for c in decoder]
        stride = 2 ** (len(enc) - len(dec) - 1)
        if spec.input_size % (2 ** (len(enc) - 1)):
            raise ValueError(f"{spec.arch}: input_size {spec.input_size} must be a multiple of "
                             f"{2 ** (len(enc) - 1)}")
        self.trunk = EncoderDecoder(enc, dec, spec.batch_norm)
        self.heatmaps = nn.Conv2d(dec[-1], spec.num_points, 1)
        side = spec.input_size // stride
        centres = (torch.arange(side, dtype=torch.float32) + 0.5) * stride - 0.5  # crop pixels of each cell
        y, x = (c.flatten() for c in torch.meshgrid(centres, centres, indexing="ij"))  # row-major cells
        # One product with this [h * w, 4] basis reads every moment the readout needs (one
        # MatMul in an export instead of a chain of small reductions).
        self.register_buffer("moment_basis", torch.stack([x, y, x * x, y * y], dim=1), persistent=False)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.normal_(self.heatmaps.weight, std=1e-3)  # flat maps at first: every point starts mid-crop

    def distributions(self, features: torch.Tensor) -> torch.Tensor:
        """Decoder features -> [N, L, h * w] float32 probabilities over the row-major cells (each
        map sums to 1)."""
        logits = self.heatmaps(features)
        with torch.autocast(features.device.type, enabled=False):
            return logits.float().flatten(2).softmax(-1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Decoder features -> [N, L, 2] float32 expected (x, y) in the output unit."""
        return self.codec.encode(self.moments(self.distributions(features))[..., :2])

    def moments(self, prob: torch.Tensor) -> torch.Tensor:
        """[N, L, h * w] probabilities -> [N, L, 4] expected x, y, x^2, y^2 (crop pixels), in
        float32 even under autocast (bf16 would round the points by up to half a pixel)."""
        with torch.autocast(prob.device.type, enabled=False):
            return prob.float() @ self.moment_basis

    def _spread(self, prob: torch.Tensor, moments: torch.Tensor) -> torch.Tensor:
        """Probabilities [N, L, h * w] and their `moments` -> [N, 3L]: std of x, std of y (crop
        pixels), peak probability."""
        std = (moments[..., 2:] - moments[..., :2] ** 2).clamp_min(1e-6).sqrt()
        return torch.cat([std.flatten(1), prob.amax(-1)], dim=1)

    @property
    def error_head_inputs(self) -> int:
        """The error head reads the heatmap spreads (`_spread`): 3L features."""
        return 3 * self.spec.num_points

    def forward_with_error(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[N, 3, S, S] 0..255 crops -> (points [N, L, 2] in the output unit, log expected error
        in crop pixels [N, L], float32). Needs the error head."""
        self._require_error_head()
        prob = self.distributions(self.forward_features(x))
        moments = self.moments(prob)
        with torch.autocast(prob.device.type, enabled=False):
            log_error = self.error_head(self._spread(prob.detach(), moments.detach()))
        return self.codec.encode(moments[..., :2]), log_error

    def set_mean_shape(self, points_px: np.ndarray | torch.Tensor, weight_scale: float = 1e-3) -> None:
        """No-op: the readout needs no mean-shape start (each map finds its point where it is)."""


def integral(spec: ModelSpec, *, width: float = 1.0) -> IntegralCNN:
    """The CNN-7-sized integral regressor (module docstring); ``width`` scales every channel count."""
    return IntegralCNN(spec, (32, 64, 128, 128, 256, 256), (128, 128, 64), width)
