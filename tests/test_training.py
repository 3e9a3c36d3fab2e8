"""Tests for wingface.training: a full run, resume after SIGKILL, determinism, divergence, config errors.

Every run trains CNN-6 at a 32-pixel input on a 60-face synthetic cache with one CPU thread,
so a run is a fraction of a second once torch is imported. Runs other than the smoke tests
replace the curve plot with a no-op (matplotlib costs over a second per epoch).
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import wingface.evaluation.plots as plots
from wingface.cli.main import main
from wingface.config import load_config
from wingface.data.synthetic import write_synthetic_300w
from wingface.models import load_checkpoint
from wingface.schemes import get_scheme
from wingface.training.config import TrainConfig
from wingface.training.state import load_state
from wingface.training.trainer import Trainer, TrainingDiverged, lr_factor

REPO = Path(__file__).resolve().parents[1]
SCHEME = get_scheme("300w-68")
# 60 faces, val_fraction 0.2: 48 training faces, 6 steps per epoch at batch 8 (PDB off).
BASE = ("epochs=1", "batch_size=8", "threads=1", "device=cpu", "model.input_size=32",
        "pdb.enabled=false", "val_fraction=0.2", "precision=fp32")
STEPS_PER_EPOCH = 6

# Runs `wingface train` in a child process that pauses for good once its last.pt reaches
# (PAUSE_EPOCH, PAUSE_STEP), so the parent's SIGKILL lands mid-epoch without any race.
_PAUSING_CHILD = """
import sys, time
import wingface.evaluation.plots as plots
import wingface.training.trainer as trainer
from wingface.cli.main import main

pause = (int(sys.argv[1]), int(sys.argv[2]))
save_state = trainer.save_state

def save_then_pause(path, state):
    save_state(path, state)
    if (state["epoch"], state["step_in_epoch"]) == pause:
        time.sleep(600)

plots.plot_training_curves = lambda *args, **kwargs: None
trainer.save_state = save_then_pause
sys.exit(main(sys.argv[3:]))
"""


@pytest.fixture
def cache(synthetic_cache: Path) -> Path:
    """A prepared 60-face synthetic cache (96-pixel crops)."""
    return synthetic_cache


@pytest.fixture(autouse=True)
def _restore_threads():
    """Runs set torch's thread count (threads=1); give the other tests theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def no_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plots, "plot_training_curves", lambda *args, **kwargs: None)


def _settings(cache: Path, out: Path, *extra: str) -> list[str]:
    """Command-line settings for a small run; later ``extra`` entries override BASE."""
    return [f"data={cache}", f"out={out}", *BASE, *extra]


def _config(cache: Path, out: Path, *extra: str) -> TrainConfig:
    return load_config(TrainConfig, None, _settings(cache, out, *extra))


def _final_weights(out: Path) -> dict[str, torch.Tensor]:
    return load_state(out / "last.pt")["model"]


def _same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------ full runs


def test_fit_writes_run_files_and_a_loadable_best_model(cache: Path, tmp_path: Path) -> None:
    cfg = _config(cache, tmp_path / "run", "pdb.enabled=true", "epochs=2", "max_steps=3")
    result = Trainer(cfg, progress=False).fit()
    out = tmp_path / "run"
    for name in ("best.pt", "last.pt", "log.csv", "curves.png", "config.yaml"):
        assert (out / name).is_file(), name
    assert result.epochs == 1  # max_steps ends the run inside epoch 1
    assert result.best_checkpoint == out / "best.pt"
    assert math.isfinite(result.best_val_nme) and result.best_val_nme > 0
    loaded = load_checkpoint(out / "best.pt", expect_scheme=SCHEME)
    assert loaded.model.spec.input_size == 32
    with torch.inference_mode():
        pred = loaded.model(torch.full((1, 3, 32, 32), 128.0))
    assert pred.shape == (1, SCHEME.num_points, 2) and torch.isfinite(pred).all()
    assert load_config(TrainConfig, out / "config.yaml") == cfg
    rows = (out / "log.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("1,3,")
    assert math.isfinite(float(rows[1].split(",")[3]))  # val_nme


def test_cli_trains_from_yaml_plus_overrides_on_a_dataset_folder(tmp_path: Path, no_plots: None,
                                                                 capsys: pytest.CaptureFixture) -> None:
    dataset = write_synthetic_300w(tmp_path / "300w", n_train=30, n_test=4, image_size=96)
    config_file = tmp_path / "small.yaml"
    config_file.write_text(yaml.safe_dump({
        "data": str(dataset), "batch_size": 8, "threads": 1, "device": "cpu", "val_fraction": 0.2,
        "model": {"input_size": 32}, "optim": {"lr": 1e-3, "weight_decay": 0.0},
    }))
    out = tmp_path / "run"
    code = main(["train", str(config_file), f"out={out}", "epochs=1", "max_steps=2", "optim.lr=5e-4", "--no-progress"])
    assert code == 0
    assert "done: 1 epochs" in capsys.readouterr().out
    saved = load_config(TrainConfig, out / "config.yaml")
    assert saved.optim.lr == 5e-4  # the override beats the file
    assert saved.optim.weight_decay == 0.0 and saved.batch_size == 8  # the file beats the defaults
    assert (out / "cache" / "meta.json").is_file()  # the dataset was prepared into OUT/cache
    load_checkpoint(out / "best.pt", expect_scheme=SCHEME)


# --------------------------------------------------------------------- resume


def _run_until_paused(settings: list[str], out: Path, pause: tuple[int, int], logs: Path) -> None:
    """Start `wingface train` in a child, wait for its last.pt to reach ``pause``, then SIGKILL it."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(logs / "child.out", "w") as stdout, open(logs / "child.err", "w") as stderr:
        child = subprocess.Popen([sys.executable, "-c", _PAUSING_CHILD, *map(str, pause), "train", *settings,
                                  "--no-progress"], cwd=REPO, env=env, stdout=stdout, stderr=stderr)
    try:
        deadline = time.monotonic() + 180  # a safety net only: the child waits at `pause` for good
        position = None
        while position != pause:
            assert child.poll() is None, f"child exited early:\n{(logs / 'child.err').read_text()}"
            assert time.monotonic() < deadline, "child never reached the pause point"
            time.sleep(0.05)
            if (out / "last.pt").is_file():
                state = load_state(out / "last.pt")
                position = (state["epoch"], state["step_in_epoch"])
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_resume_after_sigkill_continues_and_matches_an_uninterrupted_run(
        cache: Path, tmp_path: Path, no_plots: None, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = ("epochs=2", "checkpoint_minutes=0", "seed=3")
    killed = tmp_path / "killed"
    pause = (1, 2)  # epoch 2 (0-based 1), after its second step
    _run_until_paused(_settings(cache, killed, *extra), killed, pause, tmp_path)
    state = load_state(killed / "last.pt")
    assert state["step_in_epoch"] > 0 and state["global_step"] == STEPS_PER_EPOCH + 2
    assert len(state["log"]) == 1 and (killed / "best.pt").is_file()  # epoch 1 finished before the kill

    trained: list[tuple[int, int]] = []
    train_step = Trainer._train_step

    def counting_step(self: Trainer, indices: np.ndarray) -> float:
        trained.append((self.epoch, self.step_in_epoch))
        return train_step(self, indices)

    monkeypatch.setattr(Trainer, "_train_step", counting_step)
    # A resumed run may change the resources it runs on (here the thread count), not its recipe.
    assert main(["train", "--resume", str(killed), "threads=1", "--no-progress"]) == 0
    # It picked up exactly where the kill left it, and ran only the missing steps.
    assert trained == [(1, s) for s in range(2, STEPS_PER_EPOCH)]
    final = load_state(killed / "last.pt")
    assert (final["epoch"], final["step_in_epoch"], final["global_step"]) == (2, 0, 2 * STEPS_PER_EPOCH)
    assert [int(row["epoch"]) for row in final["log"]] == [1, 2]
    seconds = [float(row["seconds"]) for row in final["log"]]
    assert seconds[1] >= seconds[0] > 0  # the wall time counts the killed process too
    assert [r.split(",")[0] for r in (killed / "log.csv").read_text().splitlines()[1:]] == ["1", "2"]
    load_checkpoint(killed / "best.pt", expect_scheme=SCHEME)

    monkeypatch.setattr(Trainer, "_train_step", train_step)
    whole = tmp_path / "whole"
    Trainer(_config(cache, whole, *extra), progress=False).fit()
    # Batches are seeded from (seed, epoch, step, rank) and the optimiser and schedule are
    # restored, so on one CPU thread the resumed run is bit-for-bit the uninterrupted one.
    assert _same_weights(_final_weights(killed), _final_weights(whole))


def test_resume_needs_a_last_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["train", "--resume", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "no training state to resume from" in err and "last.pt" in err


def test_resume_takes_no_other_settings(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "--resume", str(tmp_path), "epochs=3"]) == 2
    err = capsys.readouterr().err
    assert "its own config" in err and "threads=" in err and "epochs=3" in err


# ---------------------------------------------------------------- determinism


def test_same_seed_gives_identical_weights_and_another_seed_does_not(cache: Path, tmp_path: Path,
                                                                      no_plots: None) -> None:
    weights = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        Trainer(_config(cache, tmp_path / name, f"seed={seed}", "max_steps=4"), progress=False).fit()
        weights[name] = _final_weights(tmp_path / name)
    assert _same_weights(weights["a"], weights["b"])
    assert not _same_weights(weights["a"], weights["c"])


# ----------------------------------------------------------------- divergence


def test_nan_loss_raises_naming_epoch_and_step_and_keeps_the_earlier_best(cache: Path, tmp_path: Path,
                                                                           no_plots: None) -> None:
    out = tmp_path / "run"
    trainer = Trainer(_config(cache, out, "epochs=2"), progress=False)
    loss_fn = trainer.loss_fn

    def nan_in_epoch_2(pred: torch.Tensor, target: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        loss = loss_fn(pred, target, visible)
        return loss * math.nan if (trainer.epoch, trainer.step_in_epoch) == (1, 2) else loss

    trainer.loss_fn = nan_in_epoch_2
    with pytest.raises(TrainingDiverged, match=r"loss is nan at epoch 2, step 3"):
        trainer.fit()
    best = load_checkpoint(out / "best.pt", expect_scheme=SCHEME)  # epoch 1's, intact
    assert all(torch.isfinite(p).all() for p in best.model.state_dict().values())


def test_infinite_gradient_raises(cache: Path, tmp_path: Path, no_plots: None) -> None:
    out = tmp_path / "run"
    trainer = Trainer(_config(cache, out), progress=False)
    loss_fn = trainer.loss_fn

    def infinite_gradient(pred: torch.Tensor, target: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        # sqrt has an infinite slope at 0: a finite loss whose gradient is not.
        return loss_fn(pred, target, visible) + torch.sqrt(pred.sum() * 0)

    trainer.loss_fn = infinite_gradient
    with pytest.raises(TrainingDiverged, match=r"gradient norm is (nan|inf) at epoch 1, step 1"):
        trainer.fit()
    assert not (out / "best.pt").exists()


def test_cli_reports_divergence_in_one_line(cache: Path, tmp_path: Path, no_plots: None,
                                            capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    code = main(["train", *_settings(cache, out, "optim.lr=1e30"), "--no-progress"])
    err = capsys.readouterr().err
    assert code != 0
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("wingface train: error:") and "at epoch 1, step" in line
    assert not (out / "best.pt").exists()


# -------------------------------------------------------------- configuration


@pytest.mark.parametrize("override, hint",
                         [("epoch=3", "epochs"), ("optim.lrr=0.1", "lr"), ("modle.arch=cnn7", "model")])
def test_unknown_override_key_is_a_usage_error_with_a_hint(cache: Path, tmp_path: Path, override: str, hint: str,
                                                           capsys: pytest.CaptureFixture) -> None:
    assert main(["train", f"data={cache}", f"out={tmp_path}", override]) == 2
    assert f"did you mean {hint!r}" in capsys.readouterr().err
    assert not (tmp_path / "config.yaml").exists()


def test_unknown_yaml_key_is_a_usage_error_with_a_hint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config_file = tmp_path / "bad.yaml"
    config_file.write_text("optim:\n  lr: 0.1\n  wieght_decay: 0.0\n")
    assert main(["train", str(config_file)]) == 2
    err = capsys.readouterr().err
    assert str(config_file) in err and "did you mean 'weight_decay'" in err


def test_lr_schedule_warms_up_then_decays_to_the_final_ratio() -> None:
    cfg = load_config(TrainConfig, None, ["epochs=10", "optim.warmup_epochs=1", "optim.final_lr_ratio=0.01"])
    factors = [lr_factor(cfg, step, 5) for step in range(50)]
    assert factors[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert all(a >= b for a, b in zip(factors[4:], factors[5:]))
    assert factors[-1] == pytest.approx(0.01, abs=2e-3)
    step_cfg = load_config(TrainConfig, None, ["epochs=10", "optim.warmup_epochs=0", "optim.schedule=step",
                                               "optim.step_epochs=[4, 8]", "optim.step_gamma=0.1"])
    assert [lr_factor(step_cfg, e * 5, 5) for e in (0, 3, 4, 7, 8, 9)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def test_train_fraction_takes_nested_subsets_and_keeps_the_validation_faces() -> None:
    from wingface.training.pipeline import split_train_val, subset

    train, val = split_train_val(400, 0.1, 0)
    quarter, half, whole = (subset(train, f, 0) for f in (0.25, 0.5, 1.0))
    assert len(quarter) == 90 and len(half) == 180 and np.array_equal(whole, train)
    assert set(quarter) <= set(half) <= set(train) and not set(half) & set(val)
    with pytest.raises(ValueError, match="train_fraction"):
        subset(train, 0.0, 0)


def test_ema_weights_are_what_is_saved_and_resume_keeps_them(cache: Path, tmp_path: Path, no_plots: None) -> None:
    out = tmp_path / "ema"
    cfg = _config(cache, out, "epochs=1", "optim.ema_decay=0.5")
    trainer = Trainer(cfg, progress=False)
    trainer.fit()
    state = load_state(out / "last.pt")
    ema = {k[len("module."):]: v for k, v in state["ema"].items() if k.startswith("module.")}
    assert not _same_weights(ema, state["model"])  # the average lags the raw weights
    best = torch.load(out / "best.pt", map_location="cpu", weights_only=True)["state_dict"]
    assert _same_weights(best, {k: ema[k] for k in best})  # one epoch: best.pt is the final average
    resumed = Trainer(cfg, resume=True, progress=False)
    assert _same_weights(resumed.ema.state_dict(), state["ema"])
    with pytest.raises(ValueError, match="ema_decay"):
        Trainer(_config(cache, tmp_path / "bad", "optim.ema_decay=1.5"), progress=False)


def test_model_width_scales_the_channels_and_the_checkpoint_keeps_it(cache: Path, tmp_path: Path,
                                                                      no_plots: None) -> None:
    Trainer(_config(cache, tmp_path / "wide", "model.width=1.5", "epochs=1", "max_steps=1"), progress=False).fit()
    Trainer(_config(cache, tmp_path / "base", "epochs=1", "max_steps=1"), progress=False).fit()
    wide, base = (load_checkpoint(tmp_path / name / "best.pt", expect_scheme=SCHEME).model for name in ("wide", "base"))
    assert wide.spec.arch_kwargs == {"width": 1.5} and base.spec.arch_kwargs == {}
    assert sum(p.numel() for p in wide.parameters()) > sum(p.numel() for p in base.parameters())


def test_an_aligned_checkpoint_is_fine_tuned_into_the_centred_frame(cache: Path, tmp_path: Path,
                                                                     no_plots: None) -> None:
    Trainer(_config(cache, tmp_path / "aligned", "model.crop=aligned", "epochs=1", "max_steps=1"), progress=False).fit()
    first = tmp_path / "aligned" / "best.pt"
    Trainer(_config(cache, tmp_path / "centred", "model.crop=aligned-centred", f"model.init={first}", "epochs=1",
                    "max_steps=1"), progress=False).fit()
    aligned, centred = (load_checkpoint(tmp_path / name / "best.pt", expect_scheme=SCHEME).model.spec
                        for name in ("aligned", "centred"))
    assert aligned.crop == "aligned" and centred.crop == "aligned-centred"
    assert centred.reference == aligned.reference  # the same mean shape, another centre


def test_an_integral_checkpoint_is_fine_tuned_at_another_input_size(cache: Path, tmp_path: Path,
                                                                    no_plots: None) -> None:
    """The fully convolutional integral network keeps its weights at a new crop size."""
    net = ("model.arch=integral", "model.width=0.25", "model.crop=aligned-centred")
    Trainer(_config(cache, tmp_path / "at64", *net, "model.input_size=64", "epochs=1", "max_steps=1"),
            progress=False).fit()
    first = load_checkpoint(tmp_path / "at64" / "best.pt", expect_scheme=SCHEME).model
    init = f"model.init={tmp_path / 'at64' / 'best.pt'}"
    Trainer(_config(cache, tmp_path / "at32", *net, "model.input_size=32", init, "epochs=1", "max_steps=1",
                    "optim.lr=1e-12"), progress=False).fit()
    second = load_checkpoint(tmp_path / "at32" / "best.pt", expect_scheme=SCHEME).model
    assert (first.spec.input_size, second.spec.input_size) == (64, 32)
    assert second.spec.reference == first.spec.reference
    torch.testing.assert_close(second.heatmaps.weight, first.heatmaps.weight, atol=1e-6, rtol=1e-4)
