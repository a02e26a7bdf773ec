"""The `msam` command line. Each command (group) lives in a module of `msam_hf.commands` that registers its
sub-commands here; their arguments are added when a command is used (`commands.parsing`), so that building the parser
(`msam --help`) imports no library."""

import argparse
import importlib
import itertools
import shlex
import sys

from .commands import train
from .commands.parsing import DeferredArgumentParser
from .commands.parsing import dashed_options
from .progress import transformers_progress_bars

# (group name, help, modules that each expose `register(subparsers)`)
COMMAND_GROUPS = [
    ("data", "make, inspect and publish video-caption datasets", ["msam_hf.commands.data"]),
]
# Modules whose `register(subparsers)` adds top-level commands.
COMMANDS = [
    "msam_hf.commands.train",
    "msam_hf.commands.evaluate",
    "msam_hf.commands.push",
    "msam_hf.commands.search",
    "msam_hf.commands.convert",
]


def build_parser() -> argparse.ArgumentParser:
    parser = DeferredArgumentParser(prog="msam", description="MSAM / MCSAN drone video-text retrieval.")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    parser.add_argument(
        "--verbose", action="store_true", help="also show transformers' weight loading and saving progress bars"
    )
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    for name, help_text, module_names in COMMAND_GROUPS:
        group_parser = groups.add_parser(name, help=help_text)
        commands = group_parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
        for module_name in module_names:
            importlib.import_module(module_name).register(commands)
    for module_name in COMMANDS:
        importlib.import_module(module_name).register(groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    flags = list(itertools.takewhile(lambda token: token in ("--debug", "--verbose"), argv))
    if argv[len(flags) : len(flags) + 1] == [train.COMMAND]:  # the training script parses its own arguments
        return train.run_train([*argv[len(flags) + 1 :], *flags])  # it has --debug and --verbose too
    args = build_parser().parse_args(dashed_options(argv))
    args.command_line = shlex.join(["msam", *argv])  # recorded next to results
    try:
        with transformers_progress_bars(args.verbose):
            return args.func(args) or 0
    # bad input (VideoDecodeError and a missing split are ValueErrors): one line, no traceback
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        message = _input_error_message(error)
        if args.debug or message is None:
            raise
        command = " ".join(filter(None, (args.group, getattr(args, "command", None))))
        print(f"msam {command}: error: {message}", file=sys.stderr)
        return 2


def _input_error_message(error: Exception) -> str | None:
    """The one-line message of an error about the command's input, None for any other error (a bug: its traceback
    is shown). A DataLoader worker's error is re-raised with the worker's traceback as its message, and as a
    RuntimeError when its type takes more than a message (VideoDecodeError): its last line is the original error."""
    text = str(error)
    if "\nOriginal Traceback" in text:
        text = text.rstrip().splitlines()[-1]
        if isinstance(error, RuntimeError) and not text.startswith("msam_hf.video_io.VideoDecodeError: "):
            return None
        return text.split(": ", 1)[-1]
    if isinstance(error, RuntimeError):
        return None
    return text


if __name__ == "__main__":
    sys.exit(main())
