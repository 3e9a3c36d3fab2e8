"""`wingface` entry point: builds the argument parser from the verb modules and dispatches.

Each verb module defines ``add_parser(subparsers)`` which registers its parser and sets
``func`` (called with the parsed namespace, returning an exit code).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from difflib import get_close_matches
from importlib import import_module

# Verb name -> module under wingface.cli. Imported lazily so `wingface --help` stays fast.
VERBS = {
    "data": "data", "prepare": "data",
    "info": "models",
    "plot": "plot",
    "pdb": "pdb",
    "train": "train", "cascade": "cascade",
    "evaluate": "evaluate",
    "bench": "bench",
    "predict": "predict", "demo": "predict",
    "export": "export",
}


class _Parser(argparse.ArgumentParser):
    """argparse with "did you mean" for mistyped verbs and options."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse hook
        hint = _did_you_mean(message, _all_options(self))
        super().error(message + (f" (did you mean {hint!r}?)" if hint else ""))


def _all_options(parser: argparse.ArgumentParser) -> list[str]:
    """Option strings of a parser and of all its sub-commands."""
    found = []
    for action in parser._actions:
        found += action.option_strings
        for sub in (action.choices or {}).values() if isinstance(action, argparse._SubParsersAction) else ():
            found += _all_options(sub)
    return found


def _did_you_mean(message: str, options: list[str]) -> str | None:
    """The closest valid choice or option to the bad word an argparse error message names."""
    choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if choice:
        word, known = choice.group(1), re.findall(r"'([^']*)'", choice.group(2)) or choice.group(2).split(", ")
    elif "unrecognized arguments: " in message:
        word, known = message.split("unrecognized arguments: ", 1)[1].split()[0], options
    else:
        return None
    hint = get_close_matches(word, known, n=1)
    return hint[0] if hint else None


def build_parser(verbs: list[str] | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog="wingface", description="Facial landmarks with Wing loss.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    sub.required = True
    loaded: set[str] = set()
    for verb in verbs or list(VERBS):
        module = VERBS[verb]
        if module in loaded:
            continue
        loaded.add(module)
        try:
            import_module(f"wingface.cli.{module}").add_parser(sub)
        except ModuleNotFoundError as err:
            if err.name != f"wingface.cli.{module}":
                raise
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser([first] if first in VERBS else None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, NotADirectoryError, PermissionError) as err:
        print(f"wingface {args.verb}: error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:
        from wingface.training.trainer import TrainingDiverged  # lazy: keeps torch out of `wingface --help`

        if not isinstance(err, TrainingDiverged):
            raise
        print(f"wingface {args.verb}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
