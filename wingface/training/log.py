"""Run logging: a CSV row per epoch and a loss/NME curve PNG, both written atomically.

NME columns are in %: ``val_nme`` is inter-ocular, ``val_nme_inter_pupil`` inter-pupil.
``val_error_nll`` and ``val_error_rho`` score the error head (empty for models without one).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from ..atomic import write_text_atomic

COLUMNS = ("epoch", "step", "train_loss", "val_nme", "val_nme_inter_pupil", "val_error_nll", "val_error_rho",
           "lr", "images_per_s", "seconds")


class RunLog:
    """Epoch history of a run, kept in memory and mirrored to ``log.csv`` and ``curves.png``."""

    def __init__(self, out: Path, rows: list[dict[str, Any]] | None = None) -> None:
        self.out = out
        self.rows = list(rows or [])

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append({k: row.get(k, "") for k in COLUMNS})
        self._write()

    def _write(self) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(self.rows)
        write_text_atomic(self.out / "log.csv", buf.getvalue())
        from ..evaluation.plots import plot_training_curves

        plot_training_curves(self.out / "log.csv", self.out / "curves.png")
