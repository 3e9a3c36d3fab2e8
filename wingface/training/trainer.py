"""The trainer: named steps (setup, train an epoch, validate, checkpoint) around one loop.

Single-process on a CPU or GPU, or one process per device under ``torchrun`` with
DistributedDataParallel. Resumable: ``last.pt`` holds model, optimiser, schedule and
position (epoch and step within it); every batch's augmentation is seeded from
(seed, epoch, step, rank), so a resumed run replays exactly the batches it missed.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from scipy.stats import spearmanr
from tqdm import tqdm

from ..augmentation import BatchAugmenter
from ..geometry import ALIGNED_CROPS
from ..config import from_dict, save_config, to_dict
from ..data.cache import FaceCache, load_cache, prepare_cache
from ..data.datasets import open_dataset
from ..evaluation.metrics import nme, normaliser
from ..losses import create_loss, laplace_nll
from ..models import LandmarkRegressor, create_model, load_checkpoint, save_checkpoint, with_input_size
from ..models.precision import autocast, resolve_precision, time_training_step
from .config import TrainConfig
from .distributed import DistContext, init_distributed, shutdown_distributed
from .log import RunLog
from .pipeline import TrainData, batch_seed, reference_shape, split_train_val
from .state import load_state, save_state

log = logging.getLogger(__name__)

VALIDATION_EPOCH = 2**31 - 1  # seeds the jittered validation crops, apart from every training epoch


class TrainingDiverged(RuntimeError):
    """Loss or gradients became NaN/inf; the message names the epoch and step."""


@dataclass
class TrainResult:
    """Where a finished run left its files, and its best validation figure: NME (fraction,
    inter-ocular), or the error head's NLL for a run that trains only the head."""

    out: Path
    best_checkpoint: Path
    best_val_nme: float
    epochs: int


def resolve_cache(cfg: TrainConfig, out: Path, is_main: bool) -> FaceCache:
    """Load ``cfg.data`` as a cache, or prepare the dataset it names into ``OUT/cache`` first."""
    data = Path(cfg.data)
    if not cfg.data:
        raise ValueError("no training data: set data=PATH (a dataset or a `wingface prepare` cache)")
    if (data / "meta.json").is_file():
        return load_cache(data)
    cache_dir = out / "cache"
    if not (cache_dir / "meta.json").is_file():
        if not is_main:
            raise ValueError(f"prepare {cache_dir} before a multi-process run (wingface prepare)")
        reader = open_dataset(data)
        split = cfg.split or reader.default_train_split
        result = reader.read(split)
        for item, reason in result.skipped:
            log.warning("skipped %s: %s", item, reason)
        prepare_cache(result.records, cache_dir, reader.scheme,
                      source={"dataset": str(data), "format": reader.format_name, "split": split})
    return load_cache(cache_dir)


def lr_factor(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Learning-rate multiplier at a global step: linear warm-up, then cosine or step decay."""
    o = cfg.optim
    warm = o.warmup_epochs * steps_per_epoch
    total = cfg.epochs * steps_per_epoch
    if step < warm:
        return (step + 1) / warm
    if o.schedule == "step":
        epoch = step / steps_per_epoch
        return o.step_gamma ** sum(epoch >= e for e in o.step_epochs)
    if o.schedule != "cosine":
        raise ValueError(f"optim.schedule must be 'cosine' or 'step', got {o.schedule!r}")
    progress = min(1.0, (step - warm) / max(1.0, total - warm))
    return o.final_lr_ratio + (1 - o.final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_ema(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.swa_utils.AveragedModel | None:
    """The exponential moving average of ``model``'s weights (and buffers), or None."""
    decay = cfg.optim.ema_decay
    if decay is None:
        return None
    if not 0.0 < decay < 1.0:
        raise ValueError(f"optim.ema_decay must be in (0, 1) or null, got {decay}")
    return torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(decay),
                                               use_buffers=True)


def build_optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    o = cfg.optim
    # No weight decay on biases and norm scales (standard practice; keeps the mean-shape bias).
    trained = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trained if p.ndim > 1]
    no_decay = [p for p in trained if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if o.name == "adamw":
        return torch.optim.AdamW(groups, lr=o.lr)
    if o.name == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=True)
    raise ValueError(f"optim.name must be 'adamw' or 'sgd', got {o.name!r}")


class Trainer:
    """Trains one model from a `TrainConfig`; ``fit()`` runs it to the end (or resumes it)."""

    def __init__(self, cfg: TrainConfig, *, resume: bool = False, progress: bool = True) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.resume = resume
        self.ctx: DistContext = init_distributed(cfg.device)
        self.progress = progress and self.ctx.is_main
        self._setup()

    # ----------------------------------------------------------------- setup
    def _setup(self) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        if self.ctx.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.out / "config.yaml")
        cache = resolve_cache(cfg, self.out, self.ctx.is_main)
        self.model = self._build_model(cache)
        spec = self.model.spec
        augmenter = BatchAugmenter(cfg.augment, cache.scheme, spec.input_size, margin=spec.box_margin)
        pdb_bins = cfg.pdb.bins if cfg.pdb.enabled else None
        self.data = TrainData(cache, augmenter, crop=spec.crop, reference=spec.reference, val_fraction=cfg.val_fraction,
                              split_seed=cfg.split_seed, train_fraction=cfg.train_fraction, pdb_bins=pdb_bins, pdb_component=cfg.pdb.component)
        if not cfg.model.init and not self.resume:
            self.model.set_mean_shape(self.data.mean_crop_shape())
        self.model.to(self.ctx.device)
        self.precision = "fp32" if self.resume else self._choose_precision()  # a resumed run: _load_state
        if cfg.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.net = self.model
        if self.ctx.enabled:
            ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)
        self.with_error = self.model.spec.uncertainty
        self.loss_fn = create_loss(cfg.loss.name, spec.codec.pixels_per_unit, **(cfg.loss.params or {}))
        self.optimizer = build_optimizer(cfg, self.model)
        self.ema = build_ema(cfg, self.model)
        self.per_rank_batch = max(1, cfg.batch_size // self.ctx.world_size)
        self.steps_per_epoch = self.data.steps_per_epoch(self.per_rank_batch, self.ctx.world_size)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(cfg, step, self.steps_per_epoch))
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.best_nme = math.inf
        self.log = RunLog(self.out)
        if self.resume:
            self._load_state()

    def _choose_precision(self) -> str:
        """`resolve_precision`'s choice for a new run (for ``auto``, timed on this model at this
        batch size)."""
        size = self.model.spec.input_size
        shape = (max(1, self.cfg.batch_size // self.ctx.world_size), 3, size, size)
        # Several processes could time differently and disagree: they take bf16 wherever it is native.
        probe = None if self.ctx.enabled else time_training_step(self.model, shape, self.ctx.device)
        precision = resolve_precision(self.cfg.precision, self.ctx.device, probe=probe)
        if self.ctx.is_main:
            log.info("training in %s on %s", precision, self.ctx.device)
        return precision

    def _build_model(self, cache: FaceCache) -> LandmarkRegressor:
        m = self.cfg.model
        if m.freeze_points and not (m.init and m.uncertainty):
            raise ValueError("model.freeze_points trains only the error head: it needs model.init=CHECKPOINT "
                             "and model.uncertainty=true")
        if m.init:
            model = load_checkpoint(m.init, expect_scheme=cache.scheme).model
            if m.crop != model.spec.crop and {m.crop, model.spec.crop} <= set(ALIGNED_CROPS):
                # Fine-tuning into the other aligned frame: same reference, another centre.
                log.info("model.crop: %s -> %s (from %s)", model.spec.crop, m.crop, m.init)
                model.spec = replace(model.spec, crop=m.crop)
            if m.input_size is not None and m.input_size != model.spec.input_size:
                log.info("model.input_size: %d -> %d (from %s)", model.spec.input_size, m.input_size, m.init)
                model = with_input_size(model, m.input_size)
        else:
            train_idx, _ = split_train_val(len(cache), self.cfg.val_fraction, self.cfg.split_seed)
            reference = reference_shape(cache.points[train_idx]) if m.crop in ALIGNED_CROPS else None
            # only what differs from the builder's defaults, so older checkpoints' specs stay equal
            arch_kwargs = {**({"width": m.width} if m.width != 1.0 else {}),
                           **({"dropout": m.dropout} if m.dropout else {})}
            model = create_model(m.arch, cache.scheme, input_size=m.input_size, batch_norm=m.batch_norm,
                                 output_unit=m.output_unit, box_margin=m.box_margin, crop=m.crop, reference=reference,
                                 **arch_kwargs)
        if m.uncertainty:
            model.attach_error_head()
        if m.freeze_points:
            for name, param in model.named_parameters():
                param.requires_grad_(name.startswith("error_head."))
        return _training_mode(model, m.freeze_points)

    @property
    def final_model(self) -> LandmarkRegressor:
        """The weights that are validated and saved: the moving average when there is one."""
        return self.model if self.ema is None else self.ema.module

    # ------------------------------------------------------------ checkpoints
    def _state(self) -> dict[str, Any]:
        return {
            "config": to_dict(self.cfg), "spec": self.model.spec.to_dict(),
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch, "global_step": self.global_step,
            "best_nme": self.best_nme, "log": self.log.rows, "world_size": self.ctx.world_size,
            "precision": self.precision, "ema": None if self.ema is None else self.ema.state_dict(),
        }

    def _save_state(self) -> None:
        if self.ctx.is_main:
            save_state(self.out / "last.pt", self._state())

    def _load_state(self) -> None:
        state = load_state(self.out / "last.pt")
        if state["world_size"] != self.ctx.world_size:
            raise ValueError(f"{self.out}/last.pt was written by {state['world_size']} processes; "
                             f"resume with the same number (now {self.ctx.world_size})")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.epoch, self.step_in_epoch = state["epoch"], state["step_in_epoch"]
        self.global_step, self.best_nme = state["global_step"], state["best_nme"]
        self.precision = state.get("precision", "fp32")  # a resumed run keeps the precision it started in
        self.log = RunLog(self.out, state["log"])
        log.info("resumed %s at epoch %d, step %d", self.out, self.epoch + 1, self.step_in_epoch)

    # --------------------------------------------------------------- training
    def _train_step(self, indices: np.ndarray) -> float:
        gen = torch.Generator().manual_seed(batch_seed(self.cfg.seed, self.epoch, self.step_in_epoch, self.ctx.rank))
        batch = self.data.batch(indices, train=True, generator=gen)
        images = batch.images.to(self.ctx.device, non_blocking=True)
        if self.cfg.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        points, visible = batch.points.to(self.ctx.device), batch.visible.to(self.ctx.device)
        with autocast(self.precision, self.ctx.device):
            output = self.net(images, with_error=self.with_error)
        if self.with_error:
            output, log_error = output
        loss = self.loss_fn(output.float(), self.model.codec.encode(points), visible)
        if self.with_error:
            distance = torch.linalg.vector_norm(self.model.codec.decode(output.float()) - points, dim=-1)
            error_loss = laplace_nll(log_error, distance, visible)
            loss = error_loss if self.cfg.model.freeze_points else loss + error_loss
        where = f"epoch {self.epoch + 1}, step {self.step_in_epoch + 1}"
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"loss is {loss.item()} at {where}; lower optim.lr or check the data")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.cfg.optim.grad_clip or math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        if not torch.isfinite(grad_norm):
            raise TrainingDiverged(f"gradient norm is {grad_norm.item()} at {where}; lower optim.lr or set optim.grad_clip")
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        return float(loss.item())

    def _train_epoch(self) -> tuple[float, float]:
        """Train the rest of the current epoch; returns (mean loss, images per second)."""
        batches = self.data.epoch_indices(self.epoch, self.cfg.seed, self.per_rank_batch,
                                          self.ctx.rank, self.ctx.world_size)
        _training_mode(self.model, self.cfg.model.freeze_points)
        losses, start, last_save = [], time.perf_counter(), time.monotonic()
        bar = tqdm(total=len(batches), initial=self.step_in_epoch, desc=f"epoch {self.epoch + 1}/{self.cfg.epochs}",
                   unit="batch", disable=not self.progress, dynamic_ncols=True, leave=False)
        while self.step_in_epoch < len(batches):
            if self.cfg.max_steps is not None and self.global_step >= self.cfg.max_steps:
                break
            losses.append(self._train_step(batches[self.step_in_epoch]))
            self.step_in_epoch += 1
            self.global_step += 1
            rate = len(losses) * self.per_rank_batch * self.ctx.world_size / (time.perf_counter() - start)
            bar.set_postfix(loss=f"{losses[-1]:.3f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}", img_s=f"{rate:.0f}")
            bar.update()
            if time.monotonic() - last_save >= self.cfg.checkpoint_minutes * 60:
                self._save_state()
                last_save = time.monotonic()
        bar.close()
        seconds = time.perf_counter() - start
        done = len(losses) * self.per_rank_batch * self.ctx.world_size
        return (float(np.mean(losses)) if losses else float("nan")), done / max(seconds, 1e-9)

    @torch.inference_mode()
    def validate(self) -> dict[str, float]:
        """Validation figures: mean NME (fractions, inter-ocular and inter-pupil) on the clean
        validation crops and, with an error head, on crops jittered like training (fixed seed):
        its Laplace NLL (``error_nll``) and the rank correlation of predicted and actual per-face
        error (``error_rho``). ``selection`` is what picks best.pt (lower is better)."""
        pred, target, _ = self._predict_val(jitter=False)
        scheme = self.data.cache.scheme
        metrics = {kind: float(nme(pred, target, normaliser(target, scheme, kind)).mean())
                   for kind in ("inter_ocular", "inter_pupil")}
        metrics["selection"] = metrics["inter_ocular"]
        if self.with_error:
            pred, target, log_error = self._predict_val(jitter=True)
            distance = np.linalg.norm(pred - target, axis=-1)
            metrics["error_nll"] = float(np.mean(log_error + distance * np.exp(-log_error)))
            metrics["error_rho"] = float(spearmanr(np.exp(log_error).mean(1), distance.mean(1))[0])
            if self.cfg.model.freeze_points:
                metrics["selection"] = metrics["error_nll"]
        return metrics

    def _predict_val(self, jitter: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(predicted [N, L, 2], target [N, L, 2] crop pixels, log errors [N, L] or None)."""
        idx = self.data.val_idx if len(self.data.val_idx) else self.data.train_idx[:256]
        model = self.final_model.eval()
        preds, targets, log_errors = [], [], []
        for i in range(0, len(idx), 256):
            gen = torch.Generator().manual_seed(batch_seed(self.cfg.seed, VALIDATION_EPOCH, i, 0)) if jitter else None
            batch = self.data.batch(idx[i:i + 256], train=jitter, generator=gen)
            images = batch.images.to(self.ctx.device)
            if self.cfg.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with autocast(self.precision, self.ctx.device):
                output = model(images, with_error=self.with_error)
            if self.with_error:
                output, log_error = output
                log_errors.append(log_error.float().cpu().numpy())
            preds.append(model.codec.decode(output.float()).cpu().numpy())
            targets.append(batch.points.numpy())
        errors = np.concatenate(log_errors) if log_errors else None
        return np.concatenate(preds), np.concatenate(targets), errors

    def _end_epoch(self, train_loss: float, rate: float, started: float, first_epoch: int, earlier_s: float) -> None:
        """Validate, log and checkpoint; ``started``, ``first_epoch``: when and at which epoch this
        process began (a resumed run), ``earlier_s``: the wall seconds of the processes before it."""
        metrics = self.validate()
        self.epoch += 1
        self.step_in_epoch = 0
        improved = metrics["selection"] < self.best_nme
        if improved:
            self.best_nme = metrics["selection"]
        if not self.ctx.is_main:
            return
        self.log.add({
            "epoch": self.epoch, "step": self.global_step, "train_loss": f"{train_loss:.5f}",
            "val_nme": f"{100 * metrics['inter_ocular']:.3f}",  # inter-ocular, %
            "val_nme_inter_pupil": f"{100 * metrics['inter_pupil']:.3f}",
            **({"val_error_nll": f"{metrics['error_nll']:.4f}", "val_error_rho": f"{metrics['error_rho']:.4f}"}
               if self.with_error else {}),
            "lr": f"{self.scheduler.get_last_lr()[0]:.3e}", "images_per_s": f"{rate:.1f}",
            "seconds": f"{earlier_s + time.perf_counter() - started:.1f}",  # all processes of the run
        })
        extra = {"epoch": self.epoch, "val_nme_inter_ocular": metrics["inter_ocular"],
                 "val_nme_inter_pupil": metrics["inter_pupil"], "train_config": to_dict(self.cfg)}
        if improved:
            save_checkpoint(self.out / "best.pt", self.final_model, extra=extra)
        self._save_state()
        eta = (time.perf_counter() - started) / max(1, self.epoch - first_epoch) * (self.cfg.epochs - self.epoch)
        error = (f"  error head NLL {metrics['error_nll']:.3f} rank corr {metrics['error_rho']:.3f}"
                 if self.with_error else "")
        log.info("epoch %d/%d  loss %.4f  val NME %.2f%% (inter-ocular) %.2f%% (inter-pupil)%s%s  %.0f img/s  ETA %s",
                 self.epoch, self.cfg.epochs, train_loss, 100 * metrics["inter_ocular"], 100 * metrics["inter_pupil"],
                 error, "  *best*" if improved else "", rate, _clock(eta))

    def fit(self) -> TrainResult:
        """Train until ``cfg.epochs`` (or ``cfg.max_steps``); returns where the best model is."""
        started, first_epoch = time.perf_counter(), self.epoch
        earlier_s = float(self.log.rows[-1]["seconds"]) if self.log.rows else 0.0
        try:
            while self.epoch < self.cfg.epochs:
                loss, rate = self._train_epoch()
                self._end_epoch(loss, rate, started, first_epoch, earlier_s)
                if self.cfg.max_steps is not None and self.global_step >= self.cfg.max_steps:
                    break
        finally:
            shutdown_distributed(self.ctx)
        return TrainResult(self.out, self.out / "best.pt", self.best_nme, self.epoch)


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def config_from_state(out: str | Path) -> TrainConfig:
    """The configuration a run was started with, read from its ``last.pt``."""
    return from_dict(TrainConfig, load_state(Path(out) / "last.pt")["config"])


def _training_mode(model: torch.nn.Module, freeze_points: bool) -> torch.nn.Module:
    """``model`` in training mode; with ``freeze_points`` only its error head trains, the rest
    stays in eval mode, so batch-norm statistics and dropout cannot move the frozen points."""
    model.train()
    if freeze_points:
        for name, module in model.named_modules():
            if name and "error_head" not in name.split("."):
                module.eval()
    return model
