"""bf16 training: the loss falls, the head and loss stay float32, resume keeps the precision,
and a CPU without native bfloat16 (or where it is slower) falls back to fp32 with one log line."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

import wingface.models.precision as precision
import wingface.training.trainer as trainer_module
from wingface.config import load_config
from wingface.models import create_model
from wingface.models.precision import autocast, resolve_precision
from wingface.schemes import get_scheme
from wingface.training.config import TrainConfig
from wingface.training.state import load_state
from wingface.training.trainer import Trainer

CPU = torch.device("cpu")
NATIVE_BF16 = precision.fast_bf16(CPU)
needs_bf16 = pytest.mark.skipif(not NATIVE_BF16, reason="this CPU has no native bfloat16 (AVX512-BF16/AMX)")
BASE = ("epochs=1", "batch_size=8", "threads=1", "device=cpu", "model.input_size=32", "pdb.enabled=false",
        "val_fraction=0.2")


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(trainer_module.RunLog, "_write", lambda self: None)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _config(cache: Path, out: Path, *extra: str) -> TrainConfig:
    return load_config(TrainConfig, None, [f"data={cache}", f"out={out}", *BASE, *extra])


def test_fp32_is_always_fp32() -> None:
    assert resolve_precision("fp32", CPU) == "fp32"


def test_unknown_precision_names_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown precision 'bf8'.*fp32, bf16, auto"):
        resolve_precision("bf8", CPU)


@pytest.mark.parametrize("requested", ["auto", "bf16"])
def test_cpu_without_bf16_falls_back_with_one_log_line(monkeypatch, caplog, requested: str) -> None:
    monkeypatch.setattr(precision, "fast_bf16", lambda device: False)
    with caplog.at_level(logging.INFO, logger="wingface.models.precision"):
        assert resolve_precision(requested, CPU, probe=lambda p: 1.0) == "fp32"
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "no native bfloat16" in lines[0] and "using fp32" in lines[0]


@pytest.mark.parametrize("fp32_s, bf16_s, chosen", [(1.0, 0.5, "bf16"), (1.0, 0.95, "fp32"), (1.0, 1.6, "fp32")])
def test_auto_takes_bf16_only_where_it_is_measured_faster(monkeypatch, caplog, fp32_s, bf16_s, chosen) -> None:
    monkeypatch.setattr(precision, "fast_bf16", lambda device: True)
    times = {"fp32": fp32_s, "bf16": bf16_s}
    with caplog.at_level(logging.INFO, logger="wingface.models.precision"):
        assert resolve_precision("auto", CPU, probe=times.__getitem__) == chosen
    assert f"using {chosen}" in caplog.records[-1].getMessage()
    assert resolve_precision("bf16", CPU, probe=times.__getitem__) == "bf16"  # asked for: no timing


def test_time_training_step_leaves_the_model_untouched() -> None:
    model = create_model("resnet18", get_scheme("300w-68"), input_size=32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seconds = precision.time_training_step(model, (2, 3, 32, 32), CPU, steps=1)
    assert seconds("fp32") > 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BN statistics too
    assert all(p.grad is None for p in model.parameters())


def test_time_training_step_times_a_frozen_model_too() -> None:
    """An error-head run freezes the points' weights: the probe still has a backward to time."""
    model = create_model("cnn6", get_scheme("300w-68"), input_size=32).requires_grad_(False)
    assert precision.time_training_step(model, (2, 3, 32, 32), CPU, steps=1)("fp32") > 0
    assert not any(p.requires_grad for p in model.parameters())


@needs_bf16
def test_bf16_keeps_the_output_layer_and_loss_in_fp32() -> None:
    model = create_model("cnn6", get_scheme("300w-68"), input_size=32).train()
    hidden_dtypes = []
    model.head[-2].register_forward_hook(lambda module, args, out: hidden_dtypes.append(out.dtype))
    with autocast("bf16", CPU):
        out = model(torch.rand(2, 3, 32, 32) * 255)
    assert hidden_dtypes == [torch.bfloat16]  # the hidden layers run in bf16 ...
    assert out.dtype == torch.float32 and model.output_layer.weight.dtype == torch.float32  # ... the output not
    loss = torch.nn.functional.l1_loss(out, torch.zeros_like(out))
    assert loss.dtype == torch.float32
    loss.backward()
    assert all(p.grad.dtype == torch.float32 for p in model.parameters())  # master weights stay fp32


@needs_bf16
def test_a_short_bf16_run_lowers_the_loss(synthetic_cache: Path, tmp_path: Path) -> None:
    # Plain crops and a high rate: the synthetic faces are learnt within 20 short epochs.
    cfg = _config(synthetic_cache, tmp_path / "run", "precision=bf16", "epochs=20", "optim.lr=3e-3",
                  *(f"augment.{k}=0" for k in ("rotation_deg", "shift", "scale", "occlusion", "blur")))
    trainer = Trainer(cfg, progress=False)
    assert trainer.precision == "bf16"
    trainer.fit()
    losses = [float(r["train_loss"]) for r in trainer.log.rows]
    nmes = [float(r["val_nme"]) for r in trainer.log.rows]
    assert losses[-1] < 0.8 * losses[0] and nmes[-1] < 0.8 * nmes[0]


class _Killed(Exception):
    pass


@needs_bf16
def test_bf16_resume_keeps_the_precision_and_replays_exactly(synthetic_cache: Path, tmp_path: Path,
                                                              monkeypatch) -> None:
    settings = ("precision=bf16", "epochs=2", "checkpoint_minutes=0")  # last.pt after every step
    Trainer(_config(synthetic_cache, tmp_path / "whole", *settings), progress=False).fit()
    train_step = Trainer._train_step

    def dies_in_epoch_two(self: Trainer, indices):
        if (self.epoch, self.step_in_epoch) == (1, 2):
            raise _Killed
        return train_step(self, indices)

    monkeypatch.setattr(Trainer, "_train_step", dies_in_epoch_two)
    with pytest.raises(_Killed):
        Trainer(_config(synthetic_cache, tmp_path / "split", *settings), progress=False).fit()
    state = load_state(tmp_path / "split" / "last.pt")
    assert state["precision"] == "bf16" and (state["epoch"], state["step_in_epoch"]) == (1, 2)
    monkeypatch.setattr(Trainer, "_train_step", train_step)
    # The resumed run keeps bf16 even where `auto` would now choose fp32.
    monkeypatch.setattr(precision, "fast_bf16", lambda device: False)
    resumed = Trainer(_config(synthetic_cache, tmp_path / "split", *settings[1:], "precision=auto"), resume=True,
                      progress=False)
    assert resumed.precision == "bf16"
    resumed.fit()
    a, b = load_state(tmp_path / "whole" / "last.pt")["model"], load_state(tmp_path / "split" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bench_train_reports_every_native_precision() -> None:
    from wingface.bench.train_speed import bench_train

    result = bench_train("cnn6", batch_size=4, steps=1, warmup=1, faces=16, threads=1, precision="fp32")
    assert result["precision"] == "fp32" and result["input_size"] == 64
    assert set(result["precisions"]) == ({"fp32", "bf16"} if NATIVE_BF16 else {"fp32"})
    for figures in result["precisions"].values():
        assert figures["model_only_img_s"] > 0 and figures["full_pipeline_img_s"] > 0
    assert result["model_only_img_s"] == result["precisions"]["fp32"]["model_only_img_s"]
    assert np.isfinite(result["pipeline_ms_per_batch"])
