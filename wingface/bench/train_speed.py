"""Training throughput: the model alone on ready tensors versus the whole input pipeline.

Both run the same optimiser step at the same batch size; the difference is what sampling,
PDB and batched augmentation cost. Needs no dataset: synthetic faces are cached first.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..augmentation import AugmentConfig, BatchAugmenter
from ..data.cache import prepare_cache
from ..data.synthetic import synthetic_faces
from ..data.records import FaceRecord
from ..losses import create_loss
from ..models import create_model
from ..models.precision import autocast, fast_bf16, resolve_precision
from ..schemes import get_scheme
from ..training.pipeline import TrainData, batch_seed


def _timed(step: Callable[[int], None], warmup: int, steps: int) -> float:
    """Seconds per call of ``step(i)`` after ``warmup`` untimed calls."""
    for i in range(warmup):
        step(i)
    start = time.perf_counter()
    for i in range(steps):
        step(warmup + i)
    return (time.perf_counter() - start) / steps


def _synthetic_cache(root: Path, faces: int, seed: int):
    from ..data.cache import load_cache

    scheme = get_scheme("300w-68")
    made = synthetic_faces(faces, scheme, image_size=160, seed=seed)
    records = [FaceRecord(image_path=Path(f"synthetic/{i}.png"), points=f.points, image=f.image) for i, f in enumerate(made)]
    prepare_cache(records, root / "cache", scheme, progress=False)
    return load_cache(root / "cache")


def bench_train(arch: str = "cnn6", batch_size: int = 64, steps: int = 10, warmup: int = 3, faces: int = 256,
                channels_last: bool = True, threads: int | None = None, seed: int = 0,
                precision: str = "auto") -> dict[str, Any]:
    """Steady-state training images/s for ``arch`` at every precision the CPU runs natively
    (``precisions``: fp32, and bf16 where supported); the top-level figures are those of
    ``precision`` (``auto``: the faster by the trainer's rule). Returns a JSON-ready dict."""
    if threads:
        torch.set_num_threads(threads)
    cpu = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        cache = _synthetic_cache(Path(tmp), faces, seed)
    measured = {p: _bench_precision(p, arch, cache, batch_size, steps, warmup, channels_last, seed)
                for p in (["fp32", "bf16"] if fast_bf16(cpu) else ["fp32"])}
    # `auto` chooses as the trainer would, from these measurements rather than a fresh probe.
    default = resolve_precision(precision, cpu, probe=lambda p: 1.0 / measured[p]["model_only_img_s"])
    input_size = create_model(arch, cache.scheme).spec.input_size
    return {
        "model": arch, "batch_size": batch_size, "input_size": input_size, "channels_last": channels_last,
        "threads": torch.get_num_threads(), "steps_timed": steps, "precision": default, **measured[default],
        "precisions": measured, "torch": torch.__version__,
    }


def _bench_precision(precision: str, arch: str, cache, batch_size: int, steps: int, warmup: int,
                     channels_last: bool, seed: int) -> dict[str, Any]:
    torch.manual_seed(seed)
    model = create_model(arch, cache.scheme)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=fmt).train()
    loss_fn = create_loss("wing", model.codec.pixels_per_unit)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    augmenter = BatchAugmenter(AugmentConfig(), cache.scheme, model.spec.input_size, margin=model.spec.box_margin)
    data = TrainData(cache, augmenter, val_fraction=0.0, pdb_bins=9)
    epoch = data.epoch_indices(0, seed, batch_size) if data.steps_per_epoch(batch_size) else None
    ready = data.batch(np.arange(batch_size) % len(cache), train=True, generator=torch.Generator().manual_seed(seed))
    device = torch.device("cpu")

    def optimise(images: torch.Tensor, points: torch.Tensor, visible: torch.Tensor) -> None:
        with autocast(precision, device):
            output = model(images.contiguous(memory_format=fmt))
        loss = loss_fn(output.float(), model.codec.encode(points), visible)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def pipeline(i: int):
        rows = epoch[i % len(epoch)] if epoch is not None else np.arange(batch_size) % len(cache)
        return data.batch(rows, train=True, generator=torch.Generator().manual_seed(batch_seed(seed, 0, i, 0)))

    def full_step(i: int) -> None:
        b = pipeline(i)
        optimise(b.images, b.points, b.visible)

    model_s = _timed(lambda i: optimise(ready.images, ready.points, ready.visible), warmup, steps)
    full_s = _timed(full_step, warmup, steps)
    pipeline_s = _timed(pipeline, warmup, steps)
    return {
        "model_only_img_s": round(batch_size / model_s, 1),
        "full_pipeline_img_s": round(batch_size / full_s, 1),
        "pipeline_ms_per_batch": round(1000 * pipeline_s, 2),
        "pipeline_share_of_step": round(pipeline_s / full_s, 4),
    }
