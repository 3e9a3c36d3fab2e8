"""ResNet-18 and ResNet-50 landmark regressors (He et al. 2016), written without torchvision.

Layout follows torchvision/timm (stride on the 3x3 conv in bottlenecks, "ResNet v1.5"):
stem conv7x7/2 + BN + ReLU + maxpool3x3/2, four stages (strides 1, 2, 2, 2), then the
head: global average pooling + FC(2L). A 256 px input ends in an 8 x 8 feature map. BN is
always on. The last BN of every residual branch starts at zero gamma, so each block starts
as the identity (Goyal et al. 2017).

Blocks, then the model, then tiny variant factories.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence, Type

import torch
from torch import nn

from .regressor import LandmarkRegressor
from ..spec import ModelSpec

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "resnet18", "resnet50"]


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    """conv (no bias, 'same' padding for odd kernels) + BN."""
    return [nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout)]


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    """Identity, or a 1x1 conv + BN projection when the shape changes."""
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(*_conv_bn(cin, cout, 1, stride))


class BasicBlock(nn.Module):
    """Two 3x3 convs: [N, Cin, H, W] -> [N, planes, H / stride, W / stride]."""

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            *_conv_bn(in_channels, planes, 3, stride), nn.ReLU(inplace=True),
            *_conv_bn(planes, planes, 3),
        )
        self.shortcut = _shortcut(in_channels, planes, stride)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.branch(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand: [N, Cin, H, W] -> [N, 4 planes, H / s, W / s]."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out = planes * self.expansion
        self.branch = nn.Sequential(
            *_conv_bn(in_channels, planes, 1), nn.ReLU(inplace=True),
            *_conv_bn(planes, planes, 3, stride), nn.ReLU(inplace=True),
            *_conv_bn(planes, out, 1),
        )
        self.shortcut = _shortcut(in_channels, out, stride)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.branch(x) + self.shortcut(x))


class ResNet(LandmarkRegressor):
    """ResNet trunk + global-average-pool regression head.

    Trunk output: [N, C, ~S / 32, ~S / 32] features with C = 512 x width x block expansion
    (512 for ResNet-18, 2048 for ResNet-50); the head pools them to C numbers.
    """

    def __init__(self, spec: ModelSpec, block: Type[BasicBlock | Bottleneck], layers: Sequence[int],
                 width: float = 1.0) -> None:
        """
        Args:
            spec: the contract; ``spec.batch_norm`` must be True.
            block: `BasicBlock` or `Bottleneck`.
            layers: number of blocks in each of the four stages.
            width: multiplier on the stage widths 64-128-256-512 (rounded, at least 1).
        """
        super().__init__(spec)
        if not spec.batch_norm:
            raise ValueError(f"{spec.arch} always uses batch norm; batch_norm=False is not supported")
        if width <= 0 or len(layers) != 4:
            raise ValueError(f"{spec.arch}: need width > 0 and four stages, got {width}, {list(layers)}")
        planes = [max(1, round(p * width)) for p in (64, 128, 256, 512)]
        stages: OrderedDict[str, nn.Module] = OrderedDict(
            stem=nn.Sequential(*_conv_bn(3, planes[0], 7, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)),
        )
        channels = planes[0]
        for i, (p, n) in enumerate(zip(planes, layers)):
            blocks = []
            for j in range(n):
                blocks.append(block(channels, p, stride=2 if (i > 0 and j == 0) else 1))
                channels = p * block.expansion
            stages[f"layer{i + 1}"] = nn.Sequential(*blocks)
        self.trunk = nn.Sequential(stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 2 * spec.num_points))
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, (BasicBlock, Bottleneck)):
                nn.init.zeros_(m.branch[-1].weight)


def resnet18(spec: ModelSpec, *, width: float = 1.0) -> ResNet:
    """ResNet-18 (BasicBlock, 2-2-2-2); default input 256 px."""
    return ResNet(spec, BasicBlock, (2, 2, 2, 2), width)


def resnet50(spec: ModelSpec, *, width: float = 1.0) -> ResNet:
    """ResNet-50 (Bottleneck, 3-4-6-3); default input 256 px."""
    return ResNet(spec, Bottleneck, (3, 4, 6, 3), width)
