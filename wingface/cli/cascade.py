"""`wingface cascade residuals|build`: measure stage 1's errors for stage 2, and chain models into one file."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cascade", help="two-stage framework: measure stage-1 residuals, build a cascade file")
    verbs = p.add_subparsers(dest="what", metavar="WHAT")
    verbs.required = True
    r = verbs.add_parser("residuals", help="stage 1's aligned-frame errors on validation faces -> stage-2 jitter")
    r.add_argument("--model", required=True, help="stage-1 checkpoint")
    r.add_argument("--data", required=True, help="training cache (wingface prepare) the stage was trained on")
    r.add_argument("--val-fraction", type=float, default=0.1, help="as in training (default 0.1)")
    r.add_argument("--split-seed", type=int, default=0, help="as in training (default 0)")
    r.add_argument("--margin", type=float, default=0.25, help="stage 2's box margin (default 0.25)")
    r.add_argument("--rotation-deg", type=float, metavar="DEG",
                   help="rotation jitter of the measured crops (default: the stage's own training jitter). "
                        "Stage 1's last pass runs on a de-rotated square, so for a stage 1 trained on the "
                        "full circle give the cascade's de-rotation threshold (15)")
    r.add_argument("--json", type=Path, help="write the measurement here")
    r.set_defaults(func=run_residuals)
    b = verbs.add_parser("build", help="chain checkpoints (stage 1 first) into one cascade file")
    b.add_argument("models", nargs="+", help="checkpoints in order")
    b.add_argument("--orientation", type=int, default=0, metavar="K",
                   help="mark the first K models as orientation stages (box stages trained on faces at any roll): "
                        "they only turn each face's square upright and the next stage starts from that square "
                        "(default 0: the box stages before the last box stage act as such)")
    b.add_argument("--out", required=True, type=Path, help="cascade file to write")
    b.add_argument("--half", action="store_true", help="store weights as float16 (half the size)")
    b.set_defaults(func=run_build)
    c = verbs.add_parser("calibrate", help="rescale the last stage's error head to the errors it makes on "
                                           "validation faces (see wingface.evaluation.calibration)")
    c.add_argument("model", help="cascade file whose last stage has an error head")
    c.add_argument("--data", required=True, help="training cache (wingface prepare) the stages were trained on")
    c.add_argument("--val-fraction", type=float, default=0.1, help="as in training (default 0.1)")
    c.add_argument("--split-seed", type=int, default=0, help="as in training (default 0)")
    c.add_argument("--twin", help="cascade of the same recipe trained without the validation faces, for a "
                                  "model fit on every face: its errors there stand in for the model's own")
    c.add_argument("--out", required=True, type=Path, help="calibrated cascade file to write")
    c.add_argument("--half", action="store_true", help="store weights as float16 (half the size)")
    c.add_argument("--json", type=Path, help="write the measurement here")
    c.set_defaults(func=run_calibrate)


def run_residuals(args: argparse.Namespace) -> int:
    from ..atomic import write_text_atomic
    from ..augmentation import AugmentConfig, BatchAugmenter
    from ..config import from_dict
    from ..data.cache import load_cache
    from ..models import load_checkpoint
    from ..training.config import TrainConfig
    from ..training.pipeline import TrainData, reference_shape
    from ..training.residuals import measure_frame_residuals

    cache = load_cache(args.data)
    loaded = load_checkpoint(args.model, expect_scheme=cache.scheme)
    spec = loaded.spec
    train_cfg = (loaded.extra or {}).get("train_config")
    augment = from_dict(TrainConfig, train_cfg).augment if train_cfg else AugmentConfig()
    if args.rotation_deg is not None:
        augment = replace(augment, rotation_deg=args.rotation_deg)
    augmenter = BatchAugmenter(augment, cache.scheme, spec.input_size, margin=spec.box_margin)
    data = TrainData(cache, augmenter, val_fraction=args.val_fraction, split_seed=args.split_seed, pdb_bins=None)
    reference = reference_shape(cache.points[data.train_idx])
    result = {}
    for jitter in (False, True):
        res = measure_frame_residuals(loaded.model, data, reference, margin=args.margin, train_jitter=jitter)
        result["training_jitter" if jitter else "clean"] = {**res.to_dict(), "stage2_overrides": res.jitter_overrides()}
    print(json.dumps(result, indent=1))
    overrides = result["training_jitter"]["stage2_overrides"]
    print("stage-2 training overrides: " + " ".join(f"{k}={v}" for k, v in overrides.items()))
    if args.json:
        write_text_atomic(args.json, json.dumps(result, indent=1) + "\n")
    return 0


def run_build(args: argparse.Namespace) -> int:
    from ..models import load_checkpoint, save_cascade

    models = [load_checkpoint(m).model for m in args.models]
    if not 0 <= args.orientation < len(models):
        raise ValueError(f"--orientation {args.orientation}: need 0 <= K < {len(models)} (the number of models)")
    for i, model in enumerate(models[:args.orientation]):
        try:
            model.spec = replace(model.spec, orientation=True)
        except ValueError as err:
            raise ValueError(f"--orientation: {args.models[i]}: {err}") from None
    extra = {"stages": [str(m) for m in args.models]}
    save_cascade(args.out, models, extra=extra, half=args.half)
    print(f"wrote {args.out}: " + " -> ".join(f"{m.spec.arch} ({'orientation' if m.spec.orientation else m.spec.crop})"
                                            for m in models))
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    from ..atomic import write_text_atomic
    from ..data.cache import load_cache
    from ..evaluation.calibration import error_scale, rescale_error_head
    from ..inference.cascade import Cascade
    from ..inference.stages import Stage
    from ..inference.torch_backend import TorchBackend
    from ..models import load_stages, save_cascade
    from ..training.pipeline import split_train_val

    cache = load_cache(args.data)
    models = [m.model for m in load_stages(args.model, expect_scheme=cache.scheme)]
    _, val = split_train_val(len(cache), args.val_fraction, args.split_seed)
    if not len(val):
        raise ValueError(f"--val-fraction {args.val_fraction} leaves no validation faces to calibrate on")
    def cascade_of(stage_models: list) -> Cascade:
        return Cascade([Stage(m.spec, TorchBackend(m)) for m in stage_models])

    twin = None if args.twin is None else cascade_of([m.model for m in load_stages(args.twin, expect_scheme=cache.scheme)])
    result = error_scale(cascade_of(models), [cache.images[i] for i in val], [cache.points[i] for i in val], twin=twin)
    rescale_error_head(models[-1], result["scale"])
    result["twin"] = args.twin
    extra = {"calibrated_from": str(args.model), "error_calibration": result}
    save_cascade(args.out, models, extra=extra, half=args.half)
    print(f"error head scale {result['scale']:.4f} on {result['faces']} validation faces "
          f"(expected {result['predicted_px']:.2f} px, observed {result['observed_px']:.2f} px); wrote {args.out}")
    if args.json:
        write_text_atomic(args.json, json.dumps(result, indent=1) + "\n")
    return 0
