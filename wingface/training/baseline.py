"""Fitting the mean-shape baseline: no pixels, just the average shape in the model crop."""

from __future__ import annotations

import numpy as np

from ..geometry import apply_affine, box_from_points, crop_matrix
from ..models import MeanShape, create_model
from ..schemes import LandmarkScheme


def fit_mean_shape(points: np.ndarray, scheme: LandmarkScheme, input_size: int = 64, margin: float = 0.25) -> MeanShape:
    """The baseline model for training shapes [N, L, 2] (image pixels; each face's own landmark box).

    Its output is the mean of the shapes mapped into their box crops, so at test time it places
    that mean shape in whatever box it is given.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 3 or pts.shape[1:] != (scheme.num_points, 2) or len(pts) == 0:
        raise ValueError(f"points: expected [N, {scheme.num_points}, 2] with N > 0, got {pts.shape}")
    crops = apply_affine(crop_matrix(box_from_points(pts), input_size, margin), pts)
    model = create_model("mean-shape", scheme, input_size=input_size, box_margin=margin)
    model.set_mean_shape(np.nanmean(crops, axis=0))
    return model.eval()
