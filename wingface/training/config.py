"""Training configuration: plain dataclasses, the single home of every training default.

Load with ``wingface.config.load_config(TrainConfig, path, overrides)``; override from the
command line with ``key=value`` pairs such as ``model.arch=cnn7 optim.lr=1e-3 epochs=40``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..augmentation.config import AugmentConfig


@dataclass
class ModelConfig:
    """The network to train; see `wingface.models.create_model`."""

    arch: str = "cnn6"
    input_size: int | None = None  # None: the architecture's default (64 for CNN-6, 128 for CNN-7)
    batch_norm: bool | None = None  # None: the architecture's default
    width: float = 1.0  # multiplier on every conv block's channels (CNN-6/7; the FLOPs grow as its square)
    dropout: float = 0.0  # dropout before both FC layers of the CNN-6/7 head (0: none, as in the paper)
    output_unit: str = "signed"  # see wingface.codec; the loss adapts, training does not change
    box_margin: float = 0.25  # the paper's 25% box enlargement
    # "box": the landmark box's square (stage 1); "aligned": the frame of a similarity fit to the
    # mean shape (stage 2; set augment.rotation_deg/shift/scale to stage 1's measured residuals);
    # "aligned-centred": that frame centred on the shape's own box (with `init`, an aligned
    # checkpoint is fine-tuned into it)
    crop: str = "box"
    init: str | None = None  # checkpoint to start from (weights only)
    # add the per-point error head (trained beside the points by a Laplace NLL on their
    # detached errors; the source of landmark confidence)
    uncertainty: bool = False
    freeze_points: bool = False  # train the error head only (the rest of an `init` model is frozen)


@dataclass
class LossConfig:
    """Loss name and its parameters in input pixels (e.g. ``{w: 10, eps: 2}`` for Wing)."""

    name: str = "wing"
    params: dict[str, float] | None = None


@dataclass
class PDBConfig:
    """Pose-based data balancing (paper Sec. 4.2)."""

    enabled: bool = True
    bins: int = 9
    component: int | None = None  # None: the scheme's pose component


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule (per step: linear warm-up, then cosine or step decay)."""

    name: str = "adamw"  # adamw | sgd
    lr: float = 2e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9  # SGD only
    schedule: str = "cosine"  # cosine | step
    warmup_epochs: float = 1.0
    final_lr_ratio: float = 1e-3  # cosine ends at lr * final_lr_ratio
    step_epochs: tuple[int, ...] = ()  # step schedule: epochs where lr is multiplied by step_gamma
    step_gamma: float = 0.1
    grad_clip: float | None = None  # max gradient norm, None for no clipping
    # decay per step of an exponential moving average of the weights (e.g. 0.999), or None;
    # with it, validation, best.pt and the final model are the averaged weights
    ema_decay: float | None = None


@dataclass
class TrainConfig:
    """Everything one training run needs."""

    data: str = ""  # a cache folder (wingface prepare) or a dataset path (prepared into OUT/cache)
    split: str | None = None  # dataset split when `data` is a dataset (default: its training split)
    out: str = "runs/train"
    seed: int = 0
    epochs: int = 60
    batch_size: int = 64
    val_fraction: float = 0.1  # carved from the training data with `split_seed`
    split_seed: int = 0
    # share of the training faces used (a seeded, nested subset: 0.25 is inside 0.5; for
    # data-scaling curves); the validation faces stay the same
    train_fraction: float = 1.0
    threads: int | None = None  # torch CPU threads, None: torch's default
    device: str = "auto"  # auto | cpu | cuda
    channels_last: bool = True
    # fp32 | bf16 | auto (bf16 where the device has native bfloat16, else fp32); see
    # wingface.models.precision: the output layer, loss and optimiser stay in float32
    precision: str = "auto"
    checkpoint_minutes: float = 5.0  # also write a resumable checkpoint this often within an epoch
    max_steps: int | None = None  # stop early after this many steps (smoke tests, benchmarks)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    pdb: PDBConfig = field(default_factory=PDBConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def describe(self) -> dict[str, Any]:
        from ..config import to_dict

        return to_dict(self)
