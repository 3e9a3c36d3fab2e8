"""Figures: the loss family and its gradients, CED curves, training curves.

Matplotlib is imported inside each function and used through ``matplotlib.figure.Figure``
(rendered by Agg), so importing this module is cheap and no global pyplot state or
backend is touched. Every figure is written as PNG atomically.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_path
from .metrics import auc, ced_curve

__all__ = ["plot_ced", "plot_losses", "plot_training_curves"]


def _figure(ncols: int, width: float = 5.0, height: float = 4.0):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def _save(fig: Any, path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    return Path(path)


def _second_largest(values: list[float]) -> float:
    """Axis limit that lets one steep curve (L2) leave the plot instead of flattening the rest."""
    ordered = sorted(values)
    return ordered[-2] if len(ordered) > 1 else ordered[-1]


def plot_losses(path: str | Path, max_error: float = 20.0, losses: Mapping[str, Any] | None = None) -> Path:
    """Plot each loss and its gradient over ``[-max_error, max_error]`` input pixels (paper Fig. 2/3).

    Args:
        path: output PNG.
        max_error: half-width of the error range, input pixels (> 0).
        losses: ``{label: CoordinateLoss}``; default every loss in ``LOSSES`` with default parameters.
    Returns:
        The written path.
    """
    import torch

    from ..losses import LOSSES

    if not (math.isfinite(max_error) and max_error > 0):
        raise ValueError(f"max_error must be finite and > 0, got {max_error!r}")
    if losses is None:
        losses = {f"{name} {_param_text(cls())}".strip(): cls() for name, cls in LOSSES.items()}
    x = torch.linspace(-max_error, max_error, 2001, dtype=torch.float64, requires_grad=True)
    fig, (ax_value, ax_grad) = _figure(2, height=4.6)
    value_tops, grad_tops = [], []
    for label, loss in losses.items():
        y = loss.elementwise(x)
        (g,) = torch.autograd.grad(y.sum(), x)
        xs, ys, gs = x.detach().numpy(), y.detach().numpy(), g.numpy()
        ax_value.plot(xs, ys, label=label)
        ax_grad.plot(xs, gs, label=label)
        value_tops.append(float(ys.max()))
        grad_tops.append(float(np.abs(gs).max()))
    top = _second_largest(value_tops)
    gtop = _second_largest(grad_tops)
    ax_value.set_ylim(-0.03 * top, 1.05 * top)
    ax_grad.set_ylim(-1.1 * gtop, 1.1 * gtop)
    ax_value.set(title="loss", xlabel="error x (input pixels)", ylabel="loss(x)")
    ax_grad.set(title="gradient", xlabel="error x (input pixels)", ylabel="d loss / dx")
    ax_value.grid(alpha=0.3)
    ax_grad.grid(alpha=0.3)
    fig.legend(*ax_value.get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize="small")
    return _save(fig, path)


def _param_text(loss: Any) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in loss.params.items())


def plot_ced(
    curves: Mapping[str, Any],
    path: str | Path,
    threshold: float = 0.1,
    title: str = "Cumulative error distribution",
) -> Path:
    """Overlay the CED curves of several methods.

    Args:
        curves: ``{method label: [N] per-face errors as fractions}``.
        path: output PNG.
        threshold: right end of the x axis as a fraction (0.1 = 10 %); also the AUC limit.
        title: figure title.
    Returns:
        The written path. Each curve's legend entry shows its mean NME % and AUC@threshold.
    """
    if not curves:
        raise ValueError("plot_ced: no curves given")
    fig, (ax,) = _figure(1, width=6.0, height=4.5)
    pct = f"{threshold * 100:g}"
    for label, errors in curves.items():
        e = np.asarray(errors, dtype=np.float64).reshape(-1)
        x, y = ced_curve(e, threshold)
        text = f"{label}: NME {np.nanmean(e) * 100:.2f}%, AUC@{pct}% {auc(e, threshold):.4f}"
        ax.plot(x * 100, y, label=text)
    ax.set(title=title, xlabel="NME (%)", ylabel="fraction of faces", xlim=(0, threshold * 100), ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")
    return _save(fig, path)


def plot_confidence(confidence: np.ndarray, errors: np.ndarray, path: str | Path, threshold: float = 0.1,
                    title: str = "Confidence against error") -> Path:
    """Scatter of per-face confidence [N] against NME [N] (fractions, drawn in %), with the
    failure threshold and, per confidence decile, the mean NME.

    Returns:
        The written path.
    """
    conf, err = np.asarray(confidence, dtype=np.float64), 100 * np.asarray(errors, dtype=np.float64)
    fig, (ax,) = _figure(1, width=6.0, height=4.5)
    ax.scatter(conf, err, s=6, alpha=0.5, label="faces")
    edges = np.unique(np.quantile(conf, np.linspace(0, 1, 11)))
    which = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, len(edges) - 2)
    centres = [conf[which == k].mean() for k in range(len(edges) - 1) if np.any(which == k)]
    means = [err[which == k].mean() for k in range(len(edges) - 1) if np.any(which == k)]
    ax.plot(centres, means, color="C1", marker="o", label="mean NME per confidence decile")
    ax.axhline(100 * threshold, color="grey", ls=":", lw=1, label=f"failure ({100 * threshold:g}%)")
    ax.set(title=title, xlabel="confidence", ylabel="NME (%)", xlim=(0, 1))
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, path)


def _read_rows(source: str | Path | Iterable[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], str]:
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"training log not found: {path}")
        with path.open(newline="") as f:
            return list(csv.DictReader(f)), str(path)
    return list(source), "rows"


def _column(rows: list[Mapping[str, Any]], key: str, where: str) -> np.ndarray:
    """Column as float64, blanks/missing as NaN; a non-number raises naming the row."""
    out = np.full(len(rows), np.nan)
    for i, row in enumerate(rows):
        value = row.get(key)
        if value in (None, ""):
            continue
        try:
            out[i] = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: row {i + 1}, column {key!r}: not a number: {value!r}") from None
    return out


def plot_training_curves(csv_path_or_rows: str | Path | Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """Plot training loss, validation NME and learning rate against epoch.

    Args:
        csv_path_or_rows: a CSV file or row dicts with columns ``epoch``, ``train_loss``,
            ``val_nme`` (as the trainer logs it; blank on epochs without validation) and
            optionally ``lr``.
        path: output PNG.
    Returns:
        The written path.
    """
    rows, where = _read_rows(csv_path_or_rows)
    if not rows:
        raise ValueError(f"{where}: no rows to plot")
    missing = [k for k in ("epoch", "train_loss", "val_nme") if k not in rows[0]]
    if missing:
        raise ValueError(f"{where}: missing column(s) {missing}; found {sorted(rows[0])}")
    epoch = _column(rows, "epoch", where)
    panels = [("train_loss", "training loss", True), ("val_nme", "validation NME", False)]
    if "lr" in rows[0]:
        panels.append(("lr", "learning rate", True))
    fig, axes = _figure(len(panels), width=4.5, height=3.5)
    for ax, (key, title, log) in zip(axes, panels):
        y = _column(rows, key, where)
        ok = np.isfinite(y) & np.isfinite(epoch)
        ax.plot(epoch[ok], y[ok], marker="." if ok.sum() < 50 else None)
        if log and np.all(y[ok] > 0) and ok.any():
            ax.set_yscale("log")
        if key == "val_nme" and ok.any():
            best = int(np.argmin(np.where(ok, y, np.inf)))
            ax.axhline(y[best], color="grey", ls=":", lw=1)
            ax.set_title(f"{title} (best {y[best]:.4g} at epoch {epoch[best]:g})")
        else:
            ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    return _save(fig, path)
