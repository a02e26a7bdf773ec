"""The `msam` command line. Each command group lives in its own module and registers its sub-commands here."""

import argparse
import importlib
import shlex
import sys

# (group name, help, modules that each expose `register(subparsers)`)
COMMAND_GROUPS = [
    ("data", "make, inspect and publish video-caption datasets",
     ["msam_hf.data.commands", "msam_hf.data.synth", "msam_hf.data.attributes"]),
]
# Modules whose `register(subparsers)` adds one top-level command.
COMMANDS = ["msam_hf.evaluation", "msam_hf.hub", "msam_hf.search", "msam_hf.convert"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="msam", description="MSAM / MCSAN drone video-text retrieval.")
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
    args = build_parser().parse_args(argv)
    args.command_line = shlex.join(["msam", *argv])  # recorded next to results
    try:
        return args.func(args) or 0
    except (ValueError, FileNotFoundError) as error:
        command = " ".join(filter(None, (args.group, getattr(args, "command", None))))
        print(f"msam {command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
