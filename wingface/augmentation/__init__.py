"""Training-time augmentation of cached face crops, batched on the training device.

`BatchAugmenter` turns a batch of uint8 source crops and their points into model inputs
(float32 [N, 3, S, S], 0..255) and output-crop points with one warp per batch; `squares`
gives the face squares (stage 1 from boxes, stage 2 from a similarity alignment);
`geometric` and `photometric` hold the pure batched operations; `AugmentConfig` the
settings.
"""

from .batch import AugmentedBatch, BatchAugmenter
from .config import AugmentConfig
from .squares import Squares, squares_from_alignment, squares_from_points

__all__ = [
    "AugmentConfig", "AugmentedBatch", "BatchAugmenter", "Squares",
    "squares_from_alignment", "squares_from_points",
]
