"""Coordinate-regression losses: L2, L1, smooth L1, Wing (Feng et al. 2018), Soft Wing (Lin et al. 2021).

Units: every loss parameter (Wing's ``w`` and ``eps``, Soft Wing's ``w1``, ``w2``, ``eps``,
smooth L1's ``beta``) is in **pixels of the network input**. A loss module is told
``pixels_per_unit``, how many input pixels one unit of the model's output spans
(``codec.PointCodec.pixels_per_unit``: 1 for ``pixel``, S for ``unit`` [0, 1], S / 2 for
``signed`` [-1, 1] over an S-pixel crop), and converts ``(pred - target)`` to input
pixels before applying the function.

Why this matters: the non-linear losses are not scale-free. Wing with w = 10 means "errors
under ten input pixels get the log treatment". A toolbox that normalises targets to
[0, 1] and keeps w = 10 (MMPose's WFLW Wing config does this) sees errors of at most 1
unit, so Wing never leaves its log branch and behaves like a slightly concave L1; the
paper's curvature trade-off is lost. Here a model regressing pixels and one regressing
[0, 1] or [-1, 1] with the matching ``pixels_per_unit`` get the same loss value and the
same gradient with respect to the pixel-space prediction: training does not depend on
the output normalisation.

Conventions:
- L2 is ``x**2 / 2`` (as in the Wing paper, eq. 2), so its gradient is ``x``.
- Smooth L1 follows PyTorch: ``0.5 x**2 / beta`` if ``|x| < beta`` else ``|x| - beta / 2``.
- The gradient at exactly zero error is that of ``torch.abs`` (sign(0) = 0), so it is
  finite for every loss.
- Values are computed in at least float32 (float16/bfloat16 inputs are upcast); errors
  of 1e4 pixels give finite values and gradients.

Reduction (``CoordinateLoss.forward``): the elementwise function is summed over x and y
and averaged over the visible points of the whole batch (masked points add nothing and
are not counted; an all-masked batch gives 0 with a gradient path).
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from ..lookup import lookup

__all__ = [
    "CoordinateLoss", "L1Loss", "L2Loss", "LOSSES", "SmoothL1Loss", "SoftWingLoss", "WingLoss",
    "create_loss", "l1_loss", "l2_loss", "smooth_l1_loss", "soft_wing_loss", "wing_loss",
]


def _upcast(err: Tensor) -> Tensor:
    """Promote to at least float32 so half-precision inputs keep precision in the log/square."""
    return err.to(torch.promote_types(err.dtype, torch.float32))


def l2_loss(err: Tensor) -> Tensor:
    """Elementwise ``err**2 / 2``; err: signed errors in input pixels, any shape."""
    err = _upcast(err)
    return 0.5 * err * err


def l1_loss(err: Tensor) -> Tensor:
    """Elementwise ``|err|``; err: signed errors in input pixels, any shape."""
    return _upcast(err).abs()


def smooth_l1_loss(err: Tensor, beta: float = 1.0) -> Tensor:
    """Elementwise smooth L1 (PyTorch's form) with ``beta`` in input pixels.

    ``0.5 x**2 / beta`` if ``|x| < beta``, else ``|x| - beta / 2``; err any shape.
    """
    a = _upcast(err).abs()
    return torch.where(a < beta, 0.5 * a * a / beta, a - 0.5 * beta)


def wing_loss(err: Tensor, w: float = 10.0, eps: float = 2.0) -> Tensor:
    """Elementwise Wing loss; err, ``w`` and ``eps`` in input pixels, err any shape.

    ``w ln(1 + |x| / eps)`` if ``|x| < w``, else ``|x| - C`` with ``C = w - w ln(1 + w / eps)``
    (continuous at ``|x| = w``).
    """
    a = _upcast(err).abs()
    c = w - w * math.log1p(w / eps)
    return torch.where(a < w, w * torch.log1p(a / eps), a - c)


def soft_wing_loss(err: Tensor, w1: float = 2.0, w2: float = 20.0, eps: float = 0.5) -> Tensor:
    """Elementwise Soft Wing loss (Lin et al. 2021); err and parameters in input pixels.

    ``|x|`` if ``|x| < w1``, else ``w2 ln(1 + |x| / eps) + B`` with
    ``B = w1 - w2 ln(1 + w1 / eps)`` (continuous at ``|x| = w1``); err any shape.
    """
    a = _upcast(err).abs()
    b = w1 - w2 * math.log1p(w1 / eps)
    return torch.where(a < w1, a, w2 * torch.log1p(a / eps) + b)


def _positive(name: str, value: Any) -> float:
    """Return ``value`` as a finite positive float or raise naming the parameter."""
    if isinstance(value, bool):
        raise TypeError(f"loss parameter {name!r} must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"loss parameter {name!r} must be a number, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"loss parameter {name!r} must be finite and > 0, got {value!r}")
    return v


class CoordinateLoss(nn.Module):
    """Base for coordinate losses on ``[N, L, 2]`` points in the model's output unit.

    Subclasses define ``name`` and ``elementwise(err_px)``; parameters are keyword-only
    and in input pixels.

    Args:
        pixels_per_unit: input pixels per unit of the model output (``PointCodec.pixels_per_unit``).
    """

    name = "base"

    def __init__(self, pixels_per_unit: float = 1.0) -> None:
        super().__init__()
        self.pixels_per_unit = _positive("pixels_per_unit", pixels_per_unit)

    def elementwise(self, err_px: Tensor) -> Tensor:
        """Loss of each signed error ``err_px`` (input pixels, any shape), float32 or wider."""
        raise NotImplementedError

    @property
    def params(self) -> dict[str, float]:
        """The loss parameters in input pixels (without ``pixels_per_unit``)."""
        return {}

    @property
    def config(self) -> dict[str, Any]:
        """Plain data that rebuilds this loss: ``create_loss(**loss.config)``."""
        return {"name": self.name, "pixels_per_unit": self.pixels_per_unit, **self.params}

    def forward(self, pred: Tensor, target: Tensor, visible: Tensor | None = None) -> Tensor:
        """Mean loss per visible point.

        Args:
            pred: [N, L, 2] predictions in the model's output unit.
            target: [N, L, 2] targets in the same unit.
            visible: optional bool or 0/1 float [N, L]; points with False/0 add nothing and
                are not counted. Their targets may be NaN.
        Returns:
            Scalar tensor (float32 or wider): sum over x, y of ``elementwise`` in input
            pixels, averaged over visible points; 0 (with a gradient path) if none is visible.
        """
        if pred.shape != target.shape or pred.ndim != 3 or pred.shape[-1] != 2:
            raise ValueError(
                f"pred and target must both be [N, L, 2]; got {tuple(pred.shape)} and {tuple(target.shape)}"
            )
        err = (_upcast(pred) - _upcast(target)) * self.pixels_per_unit
        if visible is None:
            return self.elementwise(err).sum(-1).mean()
        if tuple(visible.shape) != tuple(pred.shape[:2]):
            raise ValueError(f"visible must be [N, L] = {tuple(pred.shape[:2])}, got {tuple(visible.shape)}")
        weight = visible.to(err.dtype)
        # where() rather than a product so NaN targets of masked points cannot leak NaN.
        err = torch.where(weight[..., None] > 0, err, torch.zeros_like(err))
        per_point = self.elementwise(err).sum(-1) * weight
        return per_point.sum() / weight.sum().clamp(min=1.0)

    def extra_repr(self) -> str:
        items = {**self.params, "pixels_per_unit": self.pixels_per_unit}
        return ", ".join(f"{k}={v:g}" for k, v in items.items())


class L2Loss(CoordinateLoss):
    """``x**2 / 2`` per coordinate, x in input pixels."""

    name = "l2"

    def elementwise(self, err_px: Tensor) -> Tensor:
        return l2_loss(err_px)


class L1Loss(CoordinateLoss):
    """``|x|`` per coordinate, x in input pixels."""

    name = "l1"

    def elementwise(self, err_px: Tensor) -> Tensor:
        return l1_loss(err_px)


class SmoothL1Loss(CoordinateLoss):
    """PyTorch-style smooth L1 per coordinate; ``beta`` in input pixels (> 0)."""

    name = "smooth_l1"

    def __init__(self, *, beta: float = 1.0, pixels_per_unit: float = 1.0) -> None:
        super().__init__(pixels_per_unit)
        self.beta = _positive("beta", beta)

    @property
    def params(self) -> dict[str, float]:
        return {"beta": self.beta}

    def elementwise(self, err_px: Tensor) -> Tensor:
        return smooth_l1_loss(err_px, self.beta)


class WingLoss(CoordinateLoss):
    """Wing loss per coordinate (Feng et al. 2018); ``w`` and ``eps`` in input pixels (> 0)."""

    name = "wing"

    def __init__(self, *, w: float = 10.0, eps: float = 2.0, pixels_per_unit: float = 1.0) -> None:
        super().__init__(pixels_per_unit)
        self.w = _positive("w", w)
        self.eps = _positive("eps", eps)

    @property
    def params(self) -> dict[str, float]:
        return {"w": self.w, "eps": self.eps}

    def elementwise(self, err_px: Tensor) -> Tensor:
        return wing_loss(err_px, self.w, self.eps)


class SoftWingLoss(CoordinateLoss):
    """Soft Wing loss per coordinate (Lin et al. 2021); ``w1 < w2`` and ``eps`` in input pixels."""

    name = "soft_wing"

    def __init__(
        self, *, w1: float = 2.0, w2: float = 20.0, eps: float = 0.5, pixels_per_unit: float = 1.0
    ) -> None:
        super().__init__(pixels_per_unit)
        self.w1 = _positive("w1", w1)
        self.w2 = _positive("w2", w2)
        self.eps = _positive("eps", eps)
        if self.w1 >= self.w2:
            raise ValueError(f"soft_wing needs w1 < w2, got w1={w1!r}, w2={w2!r}")

    @property
    def params(self) -> dict[str, float]:
        return {"w1": self.w1, "w2": self.w2, "eps": self.eps}

    def elementwise(self, err_px: Tensor) -> Tensor:
        return soft_wing_loss(err_px, self.w1, self.w2, self.eps)


LOSSES: Mapping[str, type[CoordinateLoss]] = {
    cls.name: cls for cls in (L2Loss, L1Loss, SmoothL1Loss, WingLoss, SoftWingLoss)
}


def create_loss(name: str, pixels_per_unit: float = 1.0, **params: float) -> CoordinateLoss:
    """Build a loss by name (``l2``, ``l1``, ``smooth_l1``, ``wing``, ``soft_wing``).

    Args:
        name: loss name; a typo raises ValueError with a "did you mean".
        pixels_per_unit: input pixels per unit of the model output.
        **params: the loss's parameters in input pixels (e.g. ``w=10, eps=2`` for Wing);
            unknown names raise ValueError listing the allowed ones.
    """
    cls = lookup(LOSSES, name, "loss")
    allowed = set(inspect.signature(cls).parameters) - {"pixels_per_unit"}
    unknown = set(params) - allowed
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {sorted(unknown)} for loss {name!r} (allowed: {sorted(allowed) or 'none'})"
        )
    return cls(pixels_per_unit=pixels_per_unit, **params)
