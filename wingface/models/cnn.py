"""The paper's plain CNNs: CNN-6 (64 px input) and CNN-7 (128 px input).

Each block is conv3x3 (stride 1, padding 1) [+ BN] + ReLU + 2x2 max-pool, halving the
feature map; the head is FC + ReLU + FC(2L). The paper names no batch norm, so it is off
by default; ``batch_norm=True`` adds it after every conv.

- CNN-6: channels 32-64-128-256-512, FC 1024; 64 -> 2 px; about 0.16 GFLOP per face.
- CNN-7: one more block and 64 kernels in the first conv. The paper's channel list is
  unconfirmed; 64-64-128-128-256-512 with FC 1024 gives about 0.67 GFLOP per face at 128 px,
  close to the paper's stated cost.

(FLOPs = 2 x multiply-adds.)
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from .regressor import LandmarkRegressor
from ..spec import ModelSpec

__all__ = ["SimpleCNN", "cnn6", "cnn7"]


def conv_layers(in_channels: int, out_channels: int, batch_norm: bool) -> list[nn.Module]:
    """conv3x3 (stride 1, padding 1) [+ BN] + ReLU: [N, Cin, H, W] -> [N, Cout, H, W]."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    return [*layers, nn.ReLU(inplace=True)]


def conv_block(in_channels: int, out_channels: int, batch_norm: bool) -> nn.Sequential:
    """`conv_layers` + maxpool2: [N, Cin, H, W] -> [N, Cout, H // 2, W // 2]."""
    return nn.Sequential(*conv_layers(in_channels, out_channels, batch_norm), nn.MaxPool2d(2))


class SimpleCNN(LandmarkRegressor):
    """A stack of `conv_block` s followed by FC + ReLU + FC(2L).

    The final feature map is ``S // 2**blocks`` pixels square (S = ``spec.input_size``), so
    the first FC layer's size follows the input size; S must be at least ``2**blocks``.
    """

    def __init__(self, spec: ModelSpec, channels: Sequence[int], fc_features: int = 1024,
                 width: float = 1.0, dropout: float = 0.0) -> None:
        """
        Args:
            spec: the contract (input size, scheme, batch_norm, ...).
            channels: output channels of each block, before ``width`` scaling.
            fc_features: size of the hidden fully connected layer.
            width: multiplier on every block's channel count (rounded, at least 1).
            dropout: probability of zeroing each input of both FC layers while training (0: the
                paper's head, no dropout modules).
        """
        super().__init__(spec)
        if width <= 0 or fc_features < 1 or not channels or not 0.0 <= dropout < 1.0:
            raise ValueError(f"{spec.arch}: need width > 0, fc_features >= 1, 0 <= dropout < 1 and at least "
                             "one block")
        final = spec.input_size // 2 ** len(channels)
        if final < 1:
            raise ValueError(
                f"{spec.arch}: input_size {spec.input_size} is too small for {len(channels)} "
                f"2x poolings (need at least {2 ** len(channels)})"
            )
        widths = [max(1, round(c * width)) for c in channels]
        self.trunk = nn.Sequential(*(
            conv_block(cin, cout, spec.batch_norm) for cin, cout in zip([3, *widths[:-1]], widths)
        ))
        drop = [nn.Dropout(dropout)] if dropout > 0 else []
        self.head = nn.Sequential(
            nn.Flatten(),
            *drop,
            nn.Linear(widths[-1] * final * final, fc_features),
            nn.ReLU(inplace=True),
            *drop,
            nn.Linear(fc_features, 2 * spec.num_points),
        )
        self._init_weights()

    def _init_weights(self) -> None:
        # He init keeps activations from vanishing in the BN-free default configuration.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)


_CHANNELS = {
    "cnn6": (32, 64, 128, 256, 512),
    "cnn7": (64, 64, 128, 128, 256, 512),
}


def cnn6(spec: ModelSpec, *, width: float = 1.0, fc_features: int = 1024, dropout: float = 0.0) -> SimpleCNN:
    """CNN-6 (paper input 64 px); ``width`` scales the channels, ``fc_features`` the hidden FC,
    ``dropout`` regularises the head."""
    return SimpleCNN(spec, _CHANNELS["cnn6"], fc_features, width, dropout)


def cnn7(spec: ModelSpec, *, width: float = 1.0, fc_features: int = 1024, dropout: float = 0.0) -> SimpleCNN:
    """CNN-7 (paper input 128 px); ``width`` scales the channels, ``fc_features`` the hidden FC,
    ``dropout`` regularises the head."""
    return SimpleCNN(spec, _CHANNELS["cnn7"], fc_features, width, dropout)
