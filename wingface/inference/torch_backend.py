"""The PyTorch backend: a `LandmarkRegressor` as a stage's network (see `wingface.inference.stages`).

Kept apart from the stages so that the onnxruntime path never imports torch.
"""

from __future__ import annotations

import numpy as np
import torch

from ..models import LandmarkRegressor
from ..models.precision import autocast, resolve_precision
from .stages import run_in_chunks


class TorchBackend:
    """Runs a `LandmarkRegressor` in inference mode; returns crop pixels [N, L, C] float64.

    Args:
        model: the network.
        device: ``cpu`` or ``cuda``.
        precision: ``fp32``, or ``bf16`` (autocast; the output layer stays float32, see
            `wingface.models.precision`), which falls back to fp32 with one log line on a
            device without native bfloat16. `precision` holds what runs.
    """

    def __init__(self, model: LandmarkRegressor, device: str | torch.device = "cpu", precision: str = "fp32") -> None:
        self.device = torch.device(device)
        self.model = model.eval().to(self.device).to(memory_format=torch.channels_last)
        self.precision = resolve_precision(precision, self.device)

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """Crops float32 [N, 3, S, S] (0..255) -> crop pixels float64 [N, L, C] (see the module)."""
        if self.device.type != "cpu":
            return self._run(crops)
        return run_in_chunks(self._run, crops)

    @torch.inference_mode()
    def _run(self, crops: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(crops).to(self.device).contiguous(memory_format=torch.channels_last)
        with autocast(self.precision, self.device):
            out = self.model.predict_with_error(x)
        return out.double().cpu().numpy()
