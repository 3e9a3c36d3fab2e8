"""Recognise the dataset format under a path and open it.

Formats are tried in the order of ``READERS``; pass ``format=`` to skip recognition.
"""

from __future__ import annotations

from pathlib import Path

from ..lookup import lookup
from ..schemes import LandmarkScheme
from .readers.aflw import AflwReader
from .readers.base import DatasetReader
from .readers.coco import CocoReader
from .readers.cofw import CofwReader
from .readers.custom import CustomReader
from .readers.w300 import W300Reader
from .readers.wflw import WflwReader

# Recognition order: specific formats first, then the generic ones (any .pts tree, any CSV).
READERS: dict[str, type[DatasetReader]] = {
    reader.format_name: reader
    for reader in (WflwReader, CofwReader, AflwReader, CocoReader, W300Reader, CustomReader)
}


def open_dataset(path: str | Path, format: str | None = None, scheme: LandmarkScheme | None = None) -> DatasetReader:
    """Open the dataset at ``path``, recognising its format unless ``format`` is given.

    Raises FileNotFoundError for a missing path and ValueError when no format matches.
    """
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"dataset path not found: {root}")
    if format is not None:
        reader_cls = lookup(READERS, format, "dataset format")
        return reader_cls(root, scheme) if scheme else reader_cls(root)
    for reader_cls in READERS.values():
        if reader_cls.recognises(root):
            return reader_cls(root, scheme) if scheme else reader_cls(root)
    raise ValueError(
        f"{root}: no known dataset format found (looked for: {', '.join(READERS)}); "
        "an empty folder or a folder without annotation files cannot be read"
    )
