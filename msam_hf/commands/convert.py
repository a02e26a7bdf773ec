"""`msam convert`: a CLIP4Clip / MSAM-authors training checkpoint into an `MsamModel` folder
(`msam_hf.convert.convert_checkpoint`)."""

from __future__ import annotations

import argparse
import sys

from .parsing import defer
from .parsing import existing_path
from .parsing import module_summary
from .parsing import positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `msam convert` to the top-level commands."""
    parser = subparsers.add_parser(
        "convert",
        help="turn a CLIP4Clip / MSAM-authors training checkpoint into an MsamModel folder",
    )
    defer(parser, _arguments)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = module_summary("msam_hf.convert")
    parser.add_argument(
        "checkpoint",
        type=existing_path,
        metavar="CHECKPOINT",
        help="torch.save(model.state_dict()) file (pytorch_model.bin.N) or .safetensors",
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", help="where the model, processor and conversion report go")
    parser.add_argument(
        "--max-frames", type=positive_int, default=12, help="frames per video of the converted model (12)"
    )
    parser.add_argument(
        "--allow-partial",
        action="store_true",
        help="write the model even if tensors are missing (left at initialisation) or keys unused",
    )
    parser.set_defaults(func=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    from ..convert import REPORT_FILE
    from ..convert import convert_checkpoint
    from ..convert import key_list

    _, report = convert_checkpoint(args.checkpoint, args.out_dir, args.max_frames, args.allow_partial)
    semantic = "with" if report["semantic_loss"] else "without"
    print(f"similarity head {report['similarity_head']!r}, {semantic} the semantic branch (read off the keys)")
    print("mapped tensors: " + ", ".join(f"{module} {count}" for module, count in report["mapped_tensors"].items()))
    if report["reference_unused_keys"]:
        print(
            f"skipped {len(report['reference_unused_keys'])} key(s) the reference code builds but never uses:"
            + key_list(report["reference_unused_keys"])
        )
    for label, names in (("unused", report["unused_keys"]), ("missing", report["missing_keys"])):
        if names:
            print(f"{label} keys:{key_list(names)}")
    if report["partial"]:
        print(f"WARNING: {report['warning']}", file=sys.stderr)
    print(f"wrote {args.out_dir} (model, processor, {REPORT_FILE})")
    return 0
