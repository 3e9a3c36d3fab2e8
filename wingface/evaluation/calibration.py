"""Calibrating an error head: one scale that makes its expected errors match the observed ones.

An error head trained on crops jittered more widely than a cascade's own (so that it learns
what a bad crop looks like) ranks faces well but overstates typical errors. Under its
Laplace model (`wingface.losses.uncertainty`), the maximum-likelihood rescaling of
predicted errors ``b`` by one factor ``k`` against observed errors ``d`` is
``k = mean(d / b)``. A cascade reports ``(1 - s) * b + s * g``, blended with the stages'
disagreement ``g`` (`wingface.inference.cascade.with_disagreement`), so ``k`` is the scale
of ``b`` that makes that blend's ``mean(d / ((1 - s) * k * b + s * g)) = 1`` (the same
``k`` when s = 0). It is measured through the whole cascade on faces the model was not
trained on (the training run's validation split) and folded into the head's last bias, so
the model file stays a plain checkpoint. A final model fit on every face has no such faces:
its twin, trained by the same recipe without the validation split, errs on them as a model
of that recipe errs on unseen faces, and its errors stand in for the observed ones.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from scipy.optimize import brentq

from ..geometry import squares_from_points
from ..inference.cascade import DISAGREEMENT_SHARE, Cascade, blend_errors, disagreement
from ..models import LandmarkRegressor


def error_readings(cascade: Cascade, images: Sequence[np.ndarray], points: Sequence[np.ndarray],
                   twin: Cascade | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """What calibration compares, for the cascade run from the ground-truth landmark box of
    each face: (its last stage's outputs [N, L, 3] (x, y, expected error; image pixels), the
    observed errors [N, L] (pixels), the stages' disagreement [N, L] (pixels; None when no
    box stage ran before the last)).

    Args:
        images: RGB uint8 [H, W, 3] per face.
        points: the true landmarks [L, 2] (image pixels) per face.
        twin: a cascade of the same recipe that was not trained on these faces; when given,
            its errors are the observed ones (``cascade`` was trained on them).
    """
    squares = [squares_from_points(np.asarray(p)[None], margin=0.0) for p in points]  # the landmark boxes
    finals, box_points = cascade.readings(list(images), squares)
    if finals[0].shape[-1] < 3:
        raise ValueError("the cascade's last stage has no error head: nothing to calibrate")
    out = np.concatenate(finals)
    reading = out if twin is None else np.concatenate(twin.readings(list(images), squares)[0])
    observed = np.linalg.norm(reading[..., :2] - np.stack(points), axis=-1)
    spread = None if box_points is None else disagreement(out, np.concatenate(box_points))
    return out, observed, spread


def error_scale(cascade: Cascade, images: Sequence[np.ndarray], points: Sequence[np.ndarray],
                twin: Cascade | None = None) -> dict[str, float]:
    """``{"scale": k, "faces": N, "predicted_px": mean b, "observed_px": mean d}`` for the
    cascade's last stage, from `error_readings` (same arguments)."""
    out, observed, spread = error_readings(cascade, images, points, twin)
    predicted = out[..., 2]
    scale = float(np.mean(observed / predicted)) if spread is None else blend_scale(observed, predicted, spread)
    return {"scale": scale, "faces": len(out),
            "predicted_px": float(predicted.mean()), "observed_px": float(observed.mean())}


def blend_scale(observed: np.ndarray, predicted: np.ndarray, spread: np.ndarray,
                share: float = DISAGREEMENT_SHARE) -> float:
    """k with ``mean(observed / blend_errors(k * predicted, spread, share)) = 1`` (all arrays
    [...] in pixels; `wingface.inference.cascade.blend_errors`)."""

    def excess(k: float) -> float:
        return float(np.mean(observed / blend_errors(k * predicted, spread, share))) - 1.0

    low, high = 1e-6, 1e6
    if excess(low) <= 0.0:
        raise ValueError("the stages' disagreement alone already exceeds the observed errors: cannot calibrate")
    return float(brentq(excess, low, high, xtol=1e-12, rtol=1e-10))


@torch.no_grad()
def rescale_error_head(model: LandmarkRegressor, scale: float) -> None:
    """Multiply every expected error of ``model``'s error head by ``scale`` (> 0), in place."""
    if getattr(model, "error_head", None) is None:
        raise ValueError(f"{model.spec.arch}: no error head to rescale")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
    model.error_head[-1].bias += math.log(scale)
