"""`msam train`: the training script (`training/train.py`, installed as `msam_hf.training.train`) in this process, so
that a pip-installed package trains without a checkout. Several processes or GPUs go through accelerate:
`accelerate launch -m msam_hf.training.train ...` takes the same arguments."""

from __future__ import annotations

import argparse

COMMAND = "train"


def register(subparsers: argparse._SubParsersAction) -> None:
    """List `msam train` among the top-level commands; `msam_hf.cli.main` hands its arguments to the script
    untouched (its own parser, over the script's argument dataclasses, reads them and prints its help)."""
    subparsers.add_parser(
        COMMAND,
        help="train MSAM or MCSAN on a video-caption dataset (`msam train --help`)",
        add_help=False,
    )


def run_train(argv: list[str]) -> int:
    from ..training.train import run

    return run(argv, prog="msam train")
