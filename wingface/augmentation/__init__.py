"""Training-time augmentation of cached face crops, batched on the training device.

`BatchAugmenter` turns a batch of uint8 source crops and their points into model inputs
(float32 [N, 3, S, S], 0..255) and output-crop points with one warp per batch (its face
squares come from `wingface.geometry.squares`); `geometric` and `photometric` hold the pure batched operations; `AugmentConfig` the
settings.
"""

from .batch import AugmentedBatch, BatchAugmenter
from .config import AugmentConfig

__all__ = [
    "AugmentConfig", "AugmentedBatch", "BatchAugmenter",
]
