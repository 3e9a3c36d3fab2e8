"""Numeric precision of a network's arithmetic: ``fp32``, ``bf16`` or ``auto``.

bf16 runs under ``torch.autocast``: convolutions and the hidden layers compute in bfloat16,
while master weights, optimiser state, the output layer (see `LandmarkRegressor.forward_head`)
and the loss stay in float32. bf16 keeps 8 mantissa bits, a quarter to half a pixel at the
output's scale, which is why the coordinates themselves are never rounded to it.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import time
from typing import Callable

import torch

from ..lookup import lookup

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "auto")
BF16_MARGIN = 0.9  # auto takes bf16 only when it is at least 10% faster than fp32


def fast_bf16(device: torch.device) -> bool:
    """Whether ``device`` runs bfloat16 matrix arithmetic natively (AVX512-BF16 or AMX on a
    CPU; compute capability 8.0 or newer on CUDA)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    return False


def resolve_precision(precision: str, device: torch.device, probe: Callable[[str], float] | None = None) -> str:
    """``fp32`` or ``bf16`` for a requested precision on ``device``.

    ``auto`` means bf16 where the device has native bfloat16 and, on a CPU, where ``probe``
    (seconds per step at a precision, e.g. `time_training_step`) finds it faster: CPUs with
    AVX512-BF16 but no AMX can run bf16 convolutions slower than fp32. An explicit ``bf16``
    on a device without native support falls back to fp32 (emulated bf16 is slower and no
    more useful). Every fallback or choice says so in one log line.
    """
    lookup({p: p for p in PRECISIONS}, precision, "precision")
    if precision == "fp32":
        return "fp32"
    if not fast_bf16(device):
        log.warning("precision %s: %s has no native bfloat16 arithmetic (AVX512-BF16/AMX); using fp32",
                    precision, device.type.upper())
        return "fp32"
    if precision == "bf16" or device.type != "cpu" or probe is None:
        return "bf16"
    fp32_s, bf16_s = probe("fp32"), probe("bf16")
    chosen = "bf16" if bf16_s < BF16_MARGIN * fp32_s else "fp32"
    log.info("precision auto: a step takes %.1f ms in fp32, %.1f ms in bf16 on this CPU; using %s",
             1000 * fp32_s, 1000 * bf16_s, chosen)
    return chosen


def time_training_step(model: torch.nn.Module, shape: tuple[int, ...], device: torch.device,
                       steps: int = 3) -> Callable[[str], float]:
    """A probe for `resolve_precision`: seconds per forward + backward of a copy of ``model`` on
    random crops of ``shape`` [N, 3, S, S] (the copy keeps the original's weights and batch
    statistics untouched)."""
    # Every weight trainable in the copy: a run that freezes some still needs a backward to time.
    probe_model = copy.deepcopy(model).to(device).train().requires_grad_(True)
    x = (torch.rand(shape, device=device) * 255).contiguous(memory_format=torch.channels_last)

    def seconds(precision: str) -> float:
        def step() -> None:
            with autocast(precision, device):
                out = probe_model(x)
            out.float().square().mean().backward()

        step()  # warm-up: kernel selection and allocation
        start = time.perf_counter()
        for _ in range(steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / steps

    return seconds


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context that runs a forward pass at ``precision`` (already resolved) on ``device``."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
