"""Sub-command parsers whose arguments are added on first use, so that `msam --help` imports no library.

Most commands take their defaults, choices and descriptions from the library (a dataclass's fields, a module's
docstring, a tuple of layouts), and importing it pulls in torch, transformers or datasets. `defer(parser, fill)`
postpones `fill(parser)` until that sub-command is parsed or its help is printed: listing the commands costs only
argparse.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path


class DeferredArgumentParser(argparse.ArgumentParser):
    """An `ArgumentParser` that runs the `fill` functions given to `defer` before it parses or formats anything.

    Sub-parsers are of their parent's class, so giving `msam`'s root parser this class makes every sub-command's
    parser one too.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._deferred: list[Callable[[argparse.ArgumentParser], None]] = []

    def _fill(self) -> None:
        while self._deferred:
            self._deferred.pop(0)(self)

    def parse_known_args(self, args=None, namespace=None):
        self._fill()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self._fill()
        return super().format_usage()

    def format_help(self) -> str:
        self._fill()
        return super().format_help()


def defer(parser: argparse.ArgumentParser, fill: Callable[[argparse.ArgumentParser], None]) -> None:
    """Run `fill(parser)` (add arguments, set the description and defaults) when `parser` is first used; at once for
    a plain `ArgumentParser`."""
    if isinstance(parser, DeferredArgumentParser):
        parser._deferred.append(fill)
    else:
        fill(parser)


def module_summary(module: str) -> str:
    """The first paragraph of `module`'s docstring, read from its source: a command's description without importing
    the library behind it."""
    origin = importlib.util.find_spec(module).origin
    return ast.get_docstring(ast.parse(Path(origin).read_text(encoding="utf-8"))).split("\n\n")[0]


# ----------------------------------------------------------------------------- argument types
# Refused at parse time, so that a bad value stops the command before it loads or writes anything, with argparse's
# usage and a message naming the flag.


def positive_int(text: str) -> int:
    """An argparse `type=`: a whole number ≥ 1."""
    value = _number(int, text, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def positive_float(text: str) -> float:
    """An argparse `type=`: a number > 0."""
    value = _number(float, text, "a number")
    if not value > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def _number(kind: type, text: str, what: str) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None


def is_local_path(name: str) -> bool:
    """Whether a model or dataset argument names a local path rather than a Hub repo id: it starts with `./`, `../`,
    `/` or `~`, has more than one `/` (a repo id has one), or exists on disk. A simple rule, so that a mistyped
    folder is reported as missing instead of being looked up on the Hub."""
    return (
        name in (".", "..")
        or name.startswith(("./", "../", "/", "~", ".\\", "..\\"))
        or name.count("/") > 1
        or (os.sep != "/" and os.sep in name)
        or os.path.exists(os.path.expanduser(name))
    )


def local_or_hub(kind: str, example: str) -> Callable[[str], str]:
    """An argparse `type=` for an argument that is a local `kind` ("model", "dataset") or a Hub repo id such as
    `example`: a local path (`is_local_path`) must exist, and comes back with `~` expanded."""

    def check(name: str) -> str:
        if not is_local_path(name):
            return name
        path = os.path.expanduser(name)
        if not os.path.exists(path):
            raise argparse.ArgumentTypeError(
                f"{name} does not exist (a local path; for a Hub {kind} give its repo id, e.g. {example})"
            )
        return path

    return check


def existing_path(name: str) -> str:
    """An argparse `type=` for an argument that can only be a local file or folder; `~` is expanded."""
    path = os.path.expanduser(name)
    if not os.path.exists(path):
        raise argparse.ArgumentTypeError(f"{name} does not exist")
    return path


model_path = local_or_hub("model", "your-name/msam-drone")
dataset_path = local_or_hub("dataset", "your-name/usrd")


def dashed_options(argv: list[str]) -> list[str]:
    """`--num_videos 20` and `--num_videos=20` as `--num-videos ...`: the commands spell options with dashes, train.py
    (HfArgumentParser) accepts both, so either spelling works everywhere. Values and what follows `--` are kept."""
    dashed = []
    for position, token in enumerate(argv):
        if token == "--":
            return dashed + argv[position:]
        if token.startswith("--"):
            name, equals, value = token.partition("=")
            token = "--" + name[2:].replace("_", "-") + equals + value
        dashed.append(token)
    return dashed
