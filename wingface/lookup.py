"""Name lookup with "did you mean" errors, shared by every small factory dict."""

from __future__ import annotations

from difflib import get_close_matches
from typing import Mapping, TypeVar

T = TypeVar("T")


def lookup(table: Mapping[str, T], name: str, what: str) -> T:
    """Return ``table[name]`` or raise ValueError naming ``what``, the choices and the closest one."""
    try:
        return table[name]
    except KeyError:
        hint = get_close_matches(str(name), list(table), n=1)
        extra = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ValueError(f"unknown {what} {name!r}{extra} (choose from: {', '.join(table)})") from None
