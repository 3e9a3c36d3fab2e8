"""Tests for multi-process training: two CPU processes with gloo, by hand and under torchrun.

Each multi-process test starts fresh Python processes (importing torch takes a few
seconds each on a shared CPU), so the file takes about half a minute; the sharding test
needs no processes.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from wingface.augmentation import AugmentConfig, BatchAugmenter
from wingface.cli.main import main
from wingface.data.cache import load_cache
from wingface.models import load_checkpoint
from wingface.schemes import get_scheme
from wingface.training.pipeline import TrainData
from wingface.training.state import load_state

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with gloo is not available in this torch build")

REPO = Path(__file__).resolve().parents[1]
SCHEME = get_scheme("300w-68")
SEED = 5
# 60 faces, val_fraction 0.2: 48 training faces; a global batch of 8 is 4 per rank, 6 steps per epoch.
BASE = ("epochs=1", "batch_size=8", "threads=1", "device=cpu", "model.input_size=32",
        "pdb.enabled=false", "val_fraction=0.2", f"seed={SEED}")
STEPS = 3
TIMEOUT_S = 120  # per process group; a hang (e.g. a rank waiting on a dead peer) fails instead of blocking

# One rank of a hand-made process group (the environment torchrun would set): train, then
# save this rank's final weights and the face indices of every batch it trained on.
_WORKER = """
import sys
import numpy as np
import torch
from wingface.config import load_config
from wingface.training.config import TrainConfig
from wingface.training.trainer import Trainer

cfg = load_config(TrainConfig, None, sys.argv[2:])
trainer = Trainer(cfg, progress=False)
seen = []
train_step = trainer._train_step
trainer._train_step = lambda indices: seen.append(np.array(indices)) or train_step(indices)
trainer.fit()
torch.save({"rank": trainer.ctx.rank, "world_size": trainer.ctx.world_size,
            "weights": trainer.model.state_dict(), "indices": torch.from_numpy(np.stack(seen))}, sys.argv[1])
"""


@pytest.fixture
def cache(synthetic_cache: Path) -> Path:
    """A prepared 60-face synthetic cache (96-pixel crops); multi-process runs need one ready."""
    return synthetic_cache


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **extra}


def _same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _train_data(cache: Path, pdb: bool) -> TrainData:
    faces = load_cache(cache)
    return TrainData(faces, BatchAugmenter(AugmentConfig(), faces.scheme, 32), val_fraction=0.2,
                     pdb_bins=9 if pdb else None)


@pytest.mark.parametrize("pdb", [False, True])
def test_ranks_draw_disjoint_shares_that_cover_the_epoch(cache: Path, pdb: bool) -> None:
    data = _train_data(cache, pdb)
    whole = data.epoch_indices(2, SEED, 8)  # one process, global batch 8
    shares = [data.epoch_indices(2, SEED, 4, rank, 2) for rank in range(2)]
    assert all(s.shape == (data.steps_per_epoch(4, 2), 4) for s in shares)
    for step in range(len(whole)):
        # Each global batch is split between the ranks: together they train on the same faces
        # (with PDB, the same multiset) as one process with the whole batch would.
        together = np.concatenate([shares[0][step], shares[1][step]])
        assert sorted(together) == sorted(whole[step])
    if not pdb:  # without PDB's repeats no face appears on both ranks
        assert not set(shares[0].ravel()) & set(shares[1].ravel())


def test_two_gloo_processes_end_with_identical_weights(cache: Path, tmp_path: Path) -> None:
    port = str(_free_port())
    settings = [f"data={cache}", f"out={tmp_path / 'run'}", *BASE, f"max_steps={STEPS}"]
    procs = []
    for rank in range(2):
        env = _env(MASTER_ADDR="127.0.0.1", MASTER_PORT=port, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2")
        with open(tmp_path / f"rank{rank}.err", "w") as err:
            procs.append(subprocess.Popen([sys.executable, "-c", _WORKER, str(tmp_path / f"rank{rank}.pt"), *settings],
                                          cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err))
    try:
        codes = [p.wait(timeout=TIMEOUT_S) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert codes == [0, 0], "\n".join((tmp_path / f"rank{r}.err").read_text()[-3000:] for r in range(2))

    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert [(r["rank"], r["world_size"]) for r in ranks] == [(0, 2), (1, 2)]
    w0, w1 = ranks[0]["weights"], ranks[1]["weights"]
    assert _same_weights(w0, w1)

    seen = [r["indices"].numpy() for r in ranks]
    assert all(s.shape == (STEPS, 4) for s in seen)
    assert not set(seen[0].ravel()) & set(seen[1].ravel())
    whole = _train_data(cache, pdb=False).epoch_indices(0, SEED, 8)[:STEPS]
    assert sorted(np.concatenate(seen, axis=None)) == sorted(whole.ravel())
    # Rank 0 wrote the run's files, holding the weights both ranks share.
    assert load_state(tmp_path / "run" / "last.pt")["world_size"] == 2
    assert _same_weights(load_checkpoint(tmp_path / "run" / "best.pt").model.state_dict(), w0)


def test_torchrun_cli_trains_and_a_single_process_cannot_resume_it(cache: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "wingface.cli.main", "train", f"data={cache}", f"out={out}", *BASE, f"max_steps={STEPS}",
               "--no-progress"]
    done = subprocess.run(command, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "done: 1 epochs" in done.stdout
    load_checkpoint(out / "best.pt", expect_scheme=SCHEME)
    state = load_state(out / "last.pt")
    assert (state["world_size"], state["global_step"]) == (2, STEPS)

    assert main(["train", "--resume", str(out), "--no-progress"]) == 2
    assert "written by 2 processes" in capsys.readouterr().err
