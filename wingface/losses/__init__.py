"""The loss family for coordinate regression; every parameter is in input pixels.

See ``wingface.losses.coordinate`` for the unit convention (``pixels_per_unit``) and why
it keeps Wing's ``w`` meaningful whatever unit a model regresses.
"""

from .coordinate import (
    LOSSES,
    CoordinateLoss,
    L1Loss,
    L2Loss,
    SmoothL1Loss,
    SoftWingLoss,
    WingLoss,
    create_loss,
    l1_loss,
    l2_loss,
    smooth_l1_loss,
    soft_wing_loss,
    wing_loss,
)
from .uncertainty import laplace_nll

__all__ = [
    "CoordinateLoss", "L1Loss", "L2Loss", "LOSSES", "SmoothL1Loss", "SoftWingLoss", "WingLoss",
    "create_loss", "l1_loss", "laplace_nll", "l2_loss", "smooth_l1_loss", "soft_wing_loss", "wing_loss",
]
