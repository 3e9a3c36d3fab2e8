"""`wingface train [CONFIG.yaml] [key=value ...]` and `wingface train --resume RUN`."""

from __future__ import annotations

import argparse

from ..config import load_config
from ..training.config import TrainConfig


# What a resumed run may change: where it runs, not what it computes.
RESUME_SETTINGS = ("threads", "checkpoint_minutes")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a landmark model (also under torchrun for several processes)",
        description="Train from a YAML config and/or key=value overrides, e.g. "
                    "`wingface train data=../shared/data/300w-subset model.arch=cnn6 epochs=40 out=runs/cnn6`.",
    )
    p.add_argument("settings", nargs="*", metavar="CONFIG.yaml|KEY=VALUE",
                   help="an optional YAML config file first, then dotted overrides")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this folder from its last.pt "
                                                   "(its own config; only the resources it runs on, "
                                                   f"{', '.join(RESUME_SETTINGS)}, may be given)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (periodic log lines only)")
    p.set_defaults(func=run)


def resumed_config(run_dir: str, settings: list[str]) -> TrainConfig:
    """The saved config of the run in ``run_dir``, with ``RESUME_SETTINGS`` overrides applied."""
    from ..training.trainer import config_from_state

    keys = [s.split("=", 1)[0] for s in settings]
    if any(key not in RESUME_SETTINGS for key in keys):
        allowed = ", ".join(k + "=" for k in RESUME_SETTINGS)
        raise ValueError(f"--resume continues a run with its own config; of the settings, only {allowed} "
                         f"may be given (got {' '.join(settings)})")
    given = load_config(TrainConfig, None, settings)  # typed and checked like any override
    saved = config_from_state(run_dir)
    for key in keys:
        setattr(saved, key, getattr(given, key))
    saved.out = run_dir
    return saved


def run(args: argparse.Namespace) -> int:
    from ..training.trainer import Trainer

    if args.resume:
        cfg = resumed_config(args.resume, args.settings)
    else:
        files = [s for s in args.settings if "=" not in s]
        if len(files) > 1 or (files and args.settings[0] != files[0]):
            raise ValueError(f"give at most one config file, before the overrides (got {files})")
        cfg = load_config(TrainConfig, files[0] if files else None, [s for s in args.settings if "=" in s])
    result = Trainer(cfg, resume=bool(args.resume), progress=not args.no_progress).fit()
    best = (f"error-head NLL {result.best_val_nme:.3f}" if cfg.model.freeze_points  # selected by it
            else f"NME {100 * result.best_val_nme:.2f}% (inter-ocular)")
    print(f"done: {result.epochs} epochs, best validation {best}, model {result.best_checkpoint}")
    return 0
