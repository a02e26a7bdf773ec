"""Sub-command parsers whose arguments are added on first use, so that `msam --help` imports no library.

Most commands take their defaults, choices and descriptions from the library (a dataclass's fields, a module's
docstring, a tuple of layouts), and importing it pulls in torch, transformers or datasets. `defer(parser, fill)`
postpones `fill(parser)` until that sub-command is parsed or its help is printed: listing the commands costs only
argparse.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


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
