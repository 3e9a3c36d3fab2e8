"""Command-line options shared by the verbs that run a model."""

from __future__ import annotations

import argparse

PRECISION_CHOICES = ("auto", "fp32", "bf16", "int8")  # wingface.inference.loading.PRECISIONS


def add_precision_option(p: argparse.ArgumentParser) -> None:
    """``--precision``, passed to `wingface.Landmarker` (its docstring says what each runs)."""
    p.add_argument("--precision", choices=PRECISION_CHOICES, default="auto",
                   help="network arithmetic (default auto: for the shipped model the fastest within 1%% of "
                        "fp32's accuracy, int8 on onnxruntime; otherwise the model file's own)")
