"""Configuration as plain data: nested dataclasses <-> dicts, YAML files, ``a.b=value`` overrides.

Each default lives in exactly one place: the dataclass field. Unknown keys are errors with a
"did you mean" hint, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

T = TypeVar("T")


def to_dict(config: Any) -> dict[str, Any]:
    """A dataclass config as nested plain dicts (tuples become lists)."""
    return _plain(dataclasses.asdict(config))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "config") -> T:
    """Build dataclass ``cls`` from nested plain data, checking keys and converting types."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise ValueError(_unknown(where, key, fields))
        kwargs[key] = _convert(hints[key], value, f"{where}.{key}")
    return cls(**kwargs)


def _unknown(where: str, key: str, known) -> str:
    hint = get_close_matches(key, list(known), n=1)
    extra = f"; did you mean {hint[0]!r}?" if hint else ""
    return f"{where}: unknown key {key!r}{extra} (known: {', '.join(known)})"


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value or {}, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, where) if len(inner) == 1 else value
    if origin is tuple and isinstance(value, (list, tuple)):
        item = args[0] if args else Any
        return tuple(_convert(item, v, where) for v in value)
    if origin is list and isinstance(value, (list, tuple)):
        return [_convert(args[0] if args else Any, v, where) for v in value]
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        value = _float_text(value)  # YAML 1.1 reads exponents without a dot (1e-3) as text
    if origin is dict and isinstance(value, Mapping):
        item = args[1] if len(args) == 2 else Any
        return {str(k): _convert(item, v, f"{where}.{k}") for k, v in value.items()}
    if hint in (int, float) and isinstance(value, bool):
        raise ValueError(f"{where}: expected {hint.__name__}, got {value!r}")
    if hint in (int, float, str, bool) and not isinstance(value, hint):
        raise ValueError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def _float_text(text: str) -> float | str:
    """``text`` as a float when it spells one (``1e-3``, ``5E4``), else unchanged."""
    try:
        return float(text)
    except ValueError:
        return text


def free_dict_paths(cls: type, prefix: str = "") -> set[str]:
    """Dotted paths of ``dict``-typed fields (free keys, e.g. ``loss.params``) in a dataclass tree."""
    paths: set[str] = set()
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        inner = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        if dataclasses.is_dataclass(hint):
            paths |= free_dict_paths(hint, f"{prefix}{f.name}.")
        elif any(typing.get_origin(a) is dict or a is dict for a in inner):
            paths.add(prefix + f.name)
    return paths


def apply_overrides(data: dict[str, Any], overrides: list[str], free: set[str] = frozenset()) -> dict[str, Any]:
    """Apply ``dotted.key=value`` strings (values parsed as YAML) to a nested dict in place.

    Keys must exist, except below the dotted paths in ``free`` (dict-typed fields such as
    ``loss.params``), where ``loss.params.w=5`` adds or replaces one entry.
    """
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r}: expected KEY=VALUE, e.g. optim.lr=0.001")
        node = data
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            if node.get(part) is None and ".".join(parts[: i + 1]) in free:
                node[part] = {}
            if not isinstance(node.get(part), dict):
                raise ValueError(_unknown(f"override {item!r}", part, [k for k, v in node.items() if isinstance(v, dict)]))
            node = node[part]
        if parts[-1] not in node and ".".join(parts[:-1]) not in free:
            raise ValueError(_unknown(f"override {item!r}", parts[-1], node))
        node[parts[-1]] = yaml.safe_load(raw)
    return data


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Defaults of ``cls``, updated from a YAML file, then from command-line overrides."""
    data = to_dict(cls())
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"config file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as err:
            raise ValueError(f"{p}: not valid YAML: {err}") from None
        _merge(data, loaded, str(p))
    apply_overrides(data, overrides or [], free_dict_paths(cls))
    return from_dict(cls, data)


def _merge(base: dict[str, Any], update: Mapping[str, Any], where: str) -> None:
    if not isinstance(update, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {type(update).__name__}")
    for key, value in update.items():
        if key not in base:
            raise ValueError(_unknown(where, key, base))
        if isinstance(base[key], dict) and isinstance(value, Mapping):
            _merge(base[key], value, f"{where}.{key}")
        else:
            base[key] = value


def save_config(config: Any, path: str | Path) -> None:
    """Write a dataclass config as YAML (atomically)."""
    from .atomic import write_text_atomic

    write_text_atomic(path, yaml.safe_dump(to_dict(config), sort_keys=False))
