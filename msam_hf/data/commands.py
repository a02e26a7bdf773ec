"""`msam data stats | to-hub | push`: inspect a dataset, convert it into a Hub dataset repo folder, upload it."""

from __future__ import annotations

import argparse
import sys

from .readers import LAYOUTS

LAYOUT_HELP = "source layout: " + ", ".join(LAYOUTS) + " (default: auto-detect)"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `stats`, `to-hub` and `push` sub-commands to `msam data`."""
    stats = subparsers.add_parser(
        "stats",
        help="count videos and captions per split, caption lengths in CLIP tokens",
        description="Print per-split counts, captions per video, a histogram of caption lengths in CLIP tokens "
        "(start/end included) and how many captions exceed the 32-token limit, then any problems found.",
    )
    stats.add_argument("path", help="dataset folder (any supported layout) or Hub dataset repo id")
    stats.add_argument("--layout", default="auto", choices=LAYOUTS, help=LAYOUT_HELP)
    stats.add_argument("--strict", action="store_true", help="fail on empty captions, ids without captions, missing videos")
    stats.set_defaults(func=run_stats)

    to_hub = subparsers.add_parser(
        "to-hub",
        help="convert a dataset folder into a Hub dataset repo folder (Parquet with embedded videos + card)",
        description="Write SRC as OUT/data/<split>-*.parquet (videos embedded) and OUT/README.md (a dataset card "
        "declaring splits and features), which `datasets.load_dataset(OUT)` reads without custom code.",
    )
    to_hub.add_argument("source", metavar="SRC", help="dataset folder (clip4clip, videofolder or msrvtt layout)")
    to_hub.add_argument("output", metavar="OUT", help="output folder (new or empty)")
    to_hub.add_argument("--layout", default="auto", choices=[layout for layout in LAYOUTS if layout != "hub"], help=LAYOUT_HELP)
    to_hub.add_argument("--strict", action="store_true", help="fail instead of skipping (and counting) problems")
    to_hub.add_argument("--source", dest="source_kind", choices=["usrd", "synthetic"],
                        help="fill the card's source and licence for USRD or msam-hf synthetic data "
                        "(default: synthetic for `msam data synth` output, USRD when SRC is named like it, "
                        "else a card asking for them)")
    to_hub.add_argument("--description", help="what the data is, for the card (data of unknown source)")
    to_hub.add_argument("--license", help="Hub licence id for the card (data of unknown source), e.g. cc-by-4.0")
    to_hub.add_argument("--pretty-name", help="the card's title (default: SRC's folder name)")
    to_hub.add_argument("--repo-id", help="the repo OUT is meant for, used in the card's loading example")
    to_hub.add_argument("--max-shard-size", default="500MB", help="largest Parquet file (default: 500MB)")
    to_hub.add_argument("--overwrite", action="store_true", help="replace OUT's data/ and README.md")
    to_hub.set_defaults(func=run_to_hub)

    push = subparsers.add_parser(
        "push",
        help="upload a folder written by `msam data to-hub` to a Hub dataset repo",
        description="Create the dataset repo if needed and upload OUT. The token comes from HF_TOKEN or "
        "`hf auth login`.",
    )
    push.add_argument("folder", metavar="OUT", help="folder written by `msam data to-hub`")
    push.add_argument("repo_id", metavar="REPO_ID", help="e.g. your-name/usrd")
    push.add_argument("--private", action="store_true", help="create the repo private")
    push.add_argument("--commit-message", default="Upload dataset with msam data to-hub")
    push.set_defaults(func=run_push)


def run_stats(args: argparse.Namespace) -> int:
    from .readers import detect_layout
    from .readers import load_video_text_dataset
    from .readers import read_video_text_source
    from .stats import dataset_statistics
    from .stats import format_statistics

    layout = detect_layout(args.path) if args.layout == "auto" else args.layout
    problems = []
    if layout == "hub":
        dataset = load_video_text_dataset(args.path, layout="hub")
    else:
        source = read_video_text_source(args.path, layout=layout, strict=args.strict)
        dataset, problems = source.to_dataset_dict(), source.report.problems()
    print(f"{args.path} ({layout} layout)\n")
    print(format_statistics(dataset_statistics(dataset)))
    if problems:
        print("\nproblems:")
        print("\n".join(f"- {problem}" for problem in problems))
    return 0


def run_to_hub(args: argparse.Namespace) -> int:
    from .hub_dataset import custom_source
    from .hub_dataset import export_hub_dataset

    source = args.source_kind
    if source is None and (args.description or args.license):
        source = custom_source(args.description, args.license)
    output, report = export_hub_dataset(
        args.source,
        args.output,
        layout=args.layout,
        strict=args.strict,
        source=source,
        pretty_name=args.pretty_name,
        repo_id=args.repo_id,
        max_shard_size=args.max_shard_size,
        overwrite=args.overwrite,
    )
    for problem in report.problems():
        print(f"warning: {problem}", file=sys.stderr)
    print(f"wrote {output}: load it with datasets.load_dataset({str(output)!r}), upload it with "
          f"`msam data push {output} REPO_ID`")
    return 0


def run_push(args: argparse.Namespace) -> int:
    from .hub_dataset import push_dataset_folder

    try:
        url = push_dataset_folder(args.folder, args.repo_id, private=args.private, commit_message=args.commit_message)
    except FileNotFoundError:
        raise
    except Exception as error:  # noqa: BLE001 - no token, offline, network, HTTP: each client library raises its own
        print(f"msam data push: error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"uploaded {args.folder} to {url}")
    return 0
