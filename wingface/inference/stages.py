"""One model stage at inference: crop faces from an image, run the network, map points back.

A stage knows its contract (`ModelSpec`): crop mode (``box`` or ``aligned``), margin, input
size, and output codec. The network runs on a backend: PyTorch in
`wingface.inference.torch_backend`, onnxruntime in `wingface.inference.onnx_backend`; both
take float32 [N, 3, S, S] (0..255) and return crop pixels [N, L, C]: C = 2 (x, y), or C = 3
for a model with an error head, whose third column is each point's expected error in crop
pixels. Stage outputs keep that layout in
image pixels (the error column scaled with the crop).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..geometry import (ALIGNED_CROPS, Squares, apply_affine, crop_squares, invert_affine, linear_determinant,
                        square_matrix, warp_image)
from ..schemes import LandmarkScheme
from ..spec import ModelSpec

Backend = Callable[[np.ndarray], np.ndarray]

# Faces per network call: about 64k input pixels keep the largest feature maps within the
# shared L3 cache (CNN-7 at 128 px: 4 faces, 16 MB of first-layer output; CNN-6 at 64 px:
# 16). Measured with 2 threads on batches of 32: CNN-7 runs at 4.1 ms per face in calls of
# 4 against 5.2 in calls of 8 and 6.5 in one call of 32.
CACHE_PIXELS = 65536


def run_in_chunks(network: Backend, crops: np.ndarray) -> np.ndarray:
    """``network`` over crops [N, 3, S, S] in cache-sized calls; outputs concatenated on axis 0."""
    step = max(1, CACHE_PIXELS // (crops.shape[-1] * crops.shape[-2]))
    if len(crops) <= step:
        return network(crops)
    return np.concatenate([network(crops[i:i + step]) for i in range(0, len(crops), step)])


def mirror_averaged(backend: Backend, scheme: LandmarkScheme) -> Backend:
    """Test-time flip: the mean of ``backend`` on the crops and, mirrored back, on their mirror
    images (one call on 2N crops, so twice the network cost). Removes left/right bias of the
    network; worth about 3% NME on 300-W (docs/RESULTS.md)."""

    def run(crops: np.ndarray) -> np.ndarray:
        n, size = len(crops), crops.shape[-1]
        both = backend(np.concatenate([crops, crops[..., ::-1]]))
        mirrored = both[n:, scheme.flip_permutation].copy()
        mirrored[..., :2] = scheme.mirror(both[n:, :, :2], size)
        return (both[:n] + mirrored) / 2

    return run


class Stage:
    """A network plus its crop contract.

    Args:
        spec: the model's contract.
        backend: callable mapping crops float32 [N, 3, S, S] to crop pixels [N, L, 2].
    """

    def __init__(self, spec: ModelSpec, backend: Backend) -> None:
        self.spec = spec
        self.backend = backend
        self._reference = None if spec.reference is None else np.asarray(spec.reference)

    def squares(self, landmark_squares: Squares, previous: np.ndarray | None) -> Squares:
        """This stage's crop squares: the frame aligned to the spec's reference shape from the
        previous stage's points [N, L, 2], or without them (a box stage, or an aligned stage
        that starts a cascade) the landmark-box squares enlarged by the margin, which is the
        aligned frame of the reference shape placed in those squares."""
        if self.spec.crop in ALIGNED_CROPS and previous is not None:
            return crop_squares(previous, self.spec.crop, self._reference, self.spec.box_margin)
        c, s, a = landmark_squares
        return Squares(c, s * (1.0 + self.spec.box_margin), a)

    def crops(self, image: np.ndarray, squares: Squares) -> tuple[np.ndarray, np.ndarray]:
        """(crops float32 [N, 3, S, S] 0..255, image->crop matrices [N, 2, 3]) for one image."""
        size = self.spec.input_size
        matrices = square_matrix(squares.center, squares.side, size, squares.angle)
        crops = np.stack([warp_image(image, m, size) for m in matrices]) if len(matrices) else \
            np.zeros((0, size, size, 3), np.uint8)
        return np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32), matrices

    def _shared_crops(self, index: int, image: np.ndarray, squares: Squares, shared: dict | None):
        if shared is None:
            return self.crops(image, squares)
        key = (index, self.spec.input_size, *(np.asarray(a).tobytes() for a in squares))
        if key not in shared:
            shared[key] = self.crops(image, squares)
        return shared[key]

    @property
    def columns(self) -> int:
        """C of this stage's outputs [N, L, C]: 3 with an error head, else 2."""
        return 3 if self.spec.uncertainty else 2

    def run(self, images: Sequence[np.ndarray], squares: Sequence[Squares],
            shared: dict | None = None) -> list[np.ndarray]:
        """Points [N_i, L, C] in each image's pixels (see `columns`); all faces of all images
        in one batch. ``shared`` holds crops across the stages of one cascade call: a stage
        whose crop contract and squares match an earlier one's reuses its crops."""
        parts = [self._shared_crops(i, img, sq, shared) for i, (img, sq) in enumerate(zip(images, squares))]
        counts = [len(m) for _, m in parts]
        empty = np.zeros((0, self.spec.num_points, self.columns))
        if sum(counts) == 0:
            return [empty for _ in images]
        outputs = self.backend(np.concatenate([c for c, _ in parts]))
        result, start = [], 0
        for (_, matrices), n in zip(parts, counts):
            result.append(to_image(outputs[start:start + n], matrices) if n else empty)
            start += n
        return result


def to_image(outputs: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Crop-pixel outputs [N, L, C] -> image pixels through the inverse of the image->crop
    ``matrices`` [N, 2, 3]: points mapped, an error column divided by the crop's scale."""
    back = invert_affine(matrices)
    mapped = outputs.copy()
    mapped[..., :2] = apply_affine(back, outputs[..., :2])
    if outputs.shape[-1] > 2:
        mapped[..., 2] *= np.sqrt(np.abs(linear_determinant(back)))[:, None]
    return mapped
