"""The shipped recipe's commands (benchmarks/shipped_model.py --dry-run): the CPU recipe, and
the GPU one (bf16, large batches, linearly scaled learning rates, torchrun).

Nothing trains here: a dry run prints the commands and runs none.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from wingface.data.cache import prepare_cache
from wingface.data.records import FaceRecord
from wingface.data.synthetic import synthetic_faces
from wingface.schemes import get_scheme

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "shipped_model.py"
JITTER = "'augment.*=<stage-1-residual-jitter>'"


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A compact (JPEG) cache of three synthetic faces."""
    faces = synthetic_faces(3, image_size=64, seed=0)
    records = [FaceRecord(Path(f"face{i}.png"), f.points, image=f.image) for i, f in enumerate(faces)]
    out = tmp_path_factory.mktemp("recipe") / "cache"
    prepare_cache(records, out, get_scheme("300w-68"), crop_size=32, progress=False, jpeg_quality=90)
    return out


def _dry_run(*args: str) -> tuple[dict[str, str], str]:
    """({step name: printed command} of a dry run, its whole output); fails on a non-zero exit."""
    result = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", *args], capture_output=True, text=True,
                            timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    commands = {}
    for line in result.stdout.splitlines():
        if line.startswith("[dry ] "):
            name, _, command = line[len("[dry ] "):].partition(": ")
            commands[name] = command
    return commands, result.stdout


def test_cuda_recipe_scales_batches_and_learning_rates(tiny_cache: Path, tmp_path: Path) -> None:
    work, data = tmp_path / "work", tmp_path / "no-dataset-here"
    commands, out = _dry_run("--device", "cuda", "--cache", str(tiny_cache), "--data", str(data), "--work", str(work))
    assert list(commands) == ["stage 1", "stage 1 residuals", "stage 2", "stage 2 refinement",
                              "stage 2 refinement, every face", "stage 2 centred", "stage 2 centred, every face",
                              "stage 2 at 96 px", "stage 2 at 96 px, every face",
                              "stage 1 full circle", "orientation rotated boxes",
                              "error head", "twin cascade", "cascade", "calibrate"]
    gpu = "device=cuda precision=bf16 checkpoint_minutes=1"
    # CPU recipe: batch 64, lr 2e-3 (stages 1 and 2), batch 16, lr 1e-3 (refinement); lr scales with the batch.
    assert f"data={tiny_cache} {gpu} batch_size=256 optim.lr=0.008 --no-progress" in commands["stage 1"]
    assert f"data={tiny_cache} {gpu} batch_size=128 optim.lr=0.004 {JITTER}" in commands["stage 2"]
    assert f"epochs=80 {gpu} batch_size=128 optim.lr=0.008 {JITTER}" in commands["stage 2 refinement"]
    assert f"epochs=80 val_fraction=0 {gpu} batch_size=128 optim.lr=0.008 {JITTER}" in commands[
        "stage 2 refinement, every face"]
    assert "batch_size=16" not in commands["stage 2 refinement"]
    # The centred fine-tunes: batch 16, lr 5e-4 -> 128, 4e-3.
    assert f"epochs=30 {gpu} batch_size=128 optim.lr=0.004 {JITTER}" in commands["stage 2 centred"]
    # The 96-px fine-tunes set their own crop jitter (no stage-1 residuals): batch 16, lr 5e-4 -> 128, 4e-3.
    assert f"augment.scale=0.1 {gpu} batch_size=128 optim.lr=0.004 --no-progress" in commands["stage 2 at 96 px"]
    assert f"epochs=120 {gpu} batch_size=256 optim.lr=0.008" in commands["stage 1 full circle"]
    # The rotated-box epochs: batch 64, lr 1e-3 -> 256, 4e-3.
    assert f"augment.rotated_box=true epochs=60 {gpu} batch_size=256 optim.lr=0.004" in commands["orientation rotated boxes"]
    # The error head's CPU recipe: batch 32, lr 1e-3.
    assert f"augment.scale=0.15 {gpu} batch_size=128 optim.lr=0.004" in commands["error head"]
    assert commands["stage 1"].startswith(f"wingface train configs/300w-cnn6.yaml out={work / 'stage1-cnn6'} ")
    assert f"--data {tiny_cache}" in commands["stage 1 residuals"]
    assert f"training on the cache {tiny_cache}" in out
    assert f"[skip] evaluate: dataset folder {data} not found" in out
    assert not work.exists()  # a dry run writes nothing


def test_cuda_recipe_under_torchrun(tiny_cache: Path, tmp_path: Path) -> None:
    commands, _ = _dry_run("--device", "cuda", "--cache", str(tiny_cache), "--nproc", "4", "--work", str(tmp_path))
    torchrun = "torchrun --standalone --nproc-per-node=4 -m wingface.cli.main train "
    for name in ("stage 1", "stage 2", "stage 2 refinement", "stage 2 refinement, every face", "stage 2 centred",
                 "stage 2 centred, every face", "stage 2 at 96 px", "stage 2 at 96 px, every face",
                 "stage 1 full circle",
                 "orientation rotated boxes", "error head"):
        assert commands[name].startswith(torchrun), commands[name]
        assert "device=cuda" in commands[name]
    assert commands["stage 1 residuals"].startswith("wingface cascade residuals ")
    assert commands["cascade"].startswith("wingface cascade build ")


def test_cpu_recipe(tmp_path: Path) -> None:
    data, w = tmp_path / "300w", tmp_path / "work"
    data.mkdir()
    commands, _ = _dry_run("--device", "cpu", "--data", str(data), "--work", str(w))
    cache, model = w / "cache-300w-train", w / "wingface-300w.pt"
    stage2, refine = "configs/300w-integral-stage2.yaml", "epochs=80 batch_size=16 optim.lr=1e-3"
    centred = "model.crop=aligned-centred epochs=30 batch_size=16 optim.lr=5e-4"
    at96 = ("model.crop=aligned-centred batch_size=16 optim.lr=5e-4 model.input_size=96 epochs=48 "
            "augment.rotation_deg=20 augment.shift=0.04 augment.scale=0.1")
    common = f"--data {data} --split 300w-common"
    assert commands == {
        "prepare": f"wingface prepare {data} --split 300w-train --out {cache}",
        "stage 1": f"wingface train configs/300w-cnn6.yaml out={w}/stage1-cnn6 data={cache} --no-progress",
        "stage 1 residuals": f"wingface cascade residuals --model {w}/stage1-cnn6/best.pt --data {cache} "
                             f"--json {w}/results/stage1_residuals.json",
        "stage 2": f"wingface train {stage2} out={w}/stage2-integral data={cache} {JITTER} --no-progress",
        "stage 2 refinement": f"wingface train {stage2} out={w}/stage2-integral-refined data={cache} "
                              f"model.init={w}/stage2-integral/best.pt {refine} {JITTER} --no-progress",
        "stage 2 refinement, every face": f"wingface train {stage2} out={w}/stage2-integral-refined-every-face "
                                          f"data={cache} model.init={w}/stage2-integral/best.pt {refine} "
                                          f"val_fraction=0 {JITTER} --no-progress",
        "stage 2 centred": f"wingface train {stage2} out={w}/stage2-integral-centred data={cache} "
                           f"model.init={w}/stage2-integral-refined/best.pt {centred} {JITTER} --no-progress",
        "stage 2 centred, every face": f"wingface train {stage2} out={w}/stage2-integral-centred-every-face "
                                       f"data={cache} model.init={w}/stage2-integral-refined-every-face/best.pt "
                                       f"{centred} val_fraction=0 {JITTER} --no-progress",
        "stage 2 at 96 px": f"wingface train {stage2} out={w}/stage2-integral-96 data={cache} "
                            f"model.init={w}/stage2-integral-centred/best.pt {at96} --no-progress",
        "stage 2 at 96 px, every face": f"wingface train {stage2} out={w}/stage2-integral-96-every-face data={cache} "
                                        f"model.init={w}/stage2-integral-centred-every-face/best.pt {at96} "
                                        "val_fraction=0 --no-progress",
        "stage 1 full circle": f"wingface train configs/300w-cnn6.yaml out={w}/stage1-cnn6-full-circle data={cache} "
                               f"model.init={w}/stage1-cnn6/best.pt augment.rotation_deg=180 epochs=120 --no-progress",
        "orientation rotated boxes": f"wingface train configs/300w-cnn6.yaml out={w}/orientation-rotated-box "
                                     f"data={cache} model.init={w}/stage1-cnn6-full-circle/best.pt "
                                     "augment.rotation_deg=180 augment.rotated_box=true epochs=60 optim.lr=1e-3 "
                                     "--no-progress",
        "error head": f"wingface train {stage2} out={w}/stage2-error-head data={cache} "
                      f"model.init={w}/stage2-integral-96-every-face/best.pt val_fraction=0 "
                      "model.crop=aligned-centred model.uncertainty=true model.freeze_points=true epochs=8 "
                      "batch_size=32 optim.lr=1e-3 "
                      "optim.weight_decay=0 augment.rotation_deg=20 augment.shift=0.08 augment.scale=0.15 --no-progress",
        "twin cascade": f"wingface cascade build --orientation 1 {w}/orientation-rotated-box/best.pt "
                        f"{w}/stage1-cnn6/best.pt {w}/stage2-integral-96/best.pt --out {w}/cascade-twin.pt",
        "cascade": f"wingface cascade build --orientation 1 {w}/orientation-rotated-box/best.pt "
                   f"{w}/stage1-cnn6/best.pt "
                   f"{w}/stage2-error-head/best.pt --out {w}/cascade-uncalibrated.pt",
        "calibrate": f"wingface cascade calibrate {w}/cascade-uncalibrated.pt --data {cache} --twin "
                     f"{w}/cascade-twin.pt --half --out {model} --json {w}/results/error_calibration.json",
        "evaluate gt": f"wingface evaluate --model {model} {common} --json {w}/results/common_gt.json",
        "evaluate detector": f"wingface evaluate --model {model} {common} --boxes detector "
                             f"--json {w}/results/common_detector.json",
        "evaluate gt_rot30": f"wingface evaluate --model {model} {common} --rotate 30 "
                             f"--json {w}/results/common_gt_rot30.json",
        "evaluate gt_rot60": f"wingface evaluate --model {model} {common} --rotate 60 "
                             f"--json {w}/results/common_gt_rot60.json",
        "evaluate stage1_gt": f"wingface evaluate {common} --model {w}/stage1-cnn6/best.pt "
                              f"--json {w}/results/common_stage1_gt.json",
    }


def test_dry_run_skips_finished_steps_and_evaluates_with_data(tiny_cache: Path, tmp_path: Path) -> None:
    data, work = tmp_path / "300w", tmp_path / "work"
    data.mkdir()
    (work / "results").mkdir(parents=True)
    (work / "results" / "common_gt.json").write_text("{}")
    commands, out = _dry_run("--cache", str(tiny_cache), "--data", str(data), "--work", str(work))
    assert "prepare" not in commands and "evaluate gt" not in commands
    assert f"[skip] evaluate gt: {work / 'results' / 'common_gt.json'} exists" in out
    assert f"--data {data} --split 300w-common --boxes detector" in commands["evaluate detector"]


def test_cache_that_is_not_one_is_named(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--cache", str(tmp_path)],
                            capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode != 0
    assert f"cache {tmp_path} not found" in result.stderr


def test_torchrun_launcher() -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from steps import launcher
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    assert launcher(1) == [sys.executable, "-m", "wingface.cli.main"]
    assert launcher(2) == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           "-m", "wingface.cli.main"]
    with pytest.raises(ValueError, match="nproc"):
        launcher(0)
