"""The reader contract every dataset format implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from ...lookup import lookup
from ...schemes import LandmarkScheme
from ..records import SplitResult


class DatasetReader(ABC):
    """A dataset on disk in one native format, read into `FaceRecord`s by named split.

    Subclasses set ``format_name`` and ``default_train_split`` / ``default_test_split``,
    implement ``recognises`` (cheap: looks at file names, never parses everything) and
    ``_read_split``. Reading never raises for a bad item: it is skipped and listed with its
    reason in `SplitResult.skipped`; callers decide whether that is fatal (``--strict``).
    """

    format_name: ClassVar[str]
    default_train_split: ClassVar[str] = "train"
    default_test_split: ClassVar[str] = "test"

    def __init__(self, root: str | Path, scheme: LandmarkScheme) -> None:
        self.root = Path(root)
        self.scheme = scheme

    @classmethod
    @abstractmethod
    def recognises(cls, root: Path) -> bool:
        """True when ``root`` looks like this format."""

    @abstractmethod
    def split_names(self) -> list[str]:
        """Named splits available under ``root``, in a stable order."""

    @abstractmethod
    def _read_split(self, split: str) -> SplitResult:
        """Read one split known to exist."""

    def read(self, split: str | None = None) -> SplitResult:
        """Read a named split (default: the training split). Unknown names raise ValueError."""
        name = split or self.default_train_split
        lookup({s: s for s in self.split_names()}, name, f"split of {self.format_name} dataset {self.root}")
        return self._read_split(name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r}, scheme={self.scheme.name!r})"
