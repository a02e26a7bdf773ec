"""`msam data stats | to-hub | push | prepare | synth | attributes`: inspect a dataset, convert it into a Hub dataset
repo folder, upload it, re-encode its videos or fill the frame cache ahead of training, generate the synthetic
benchmark, mine MCSAN's attribute vocabularies."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .parsing import dataset_path
from .parsing import defer
from .parsing import existing_path
from .parsing import module_summary
from .parsing import positive_float
from .parsing import positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `stats`, `to-hub`, `push`, `prepare`, `synth` and `attributes` sub-commands to `msam data`."""
    stats = subparsers.add_parser(
        "stats",
        help="count videos and captions per split, caption lengths in CLIP tokens",
        description="Print per-split counts, captions per video, a histogram of caption lengths in CLIP tokens "
        "(start/end included) and how many captions exceed the 32-token limit, then any problems found.",
    )
    defer(stats, _stats_arguments)

    to_hub = subparsers.add_parser(
        "to-hub",
        help="convert a dataset folder into a Hub dataset repo folder (Parquet with embedded videos + card)",
        description="Write SRC as OUT/data/<split>-*.parquet (videos embedded) and OUT/README.md (a dataset card "
        "declaring splits and features), which `datasets.load_dataset(OUT)` reads without custom code.",
    )
    defer(to_hub, _to_hub_arguments)

    push = subparsers.add_parser(
        "push",
        help="upload a folder written by `msam data to-hub` to a Hub dataset repo",
        description="Create the dataset repo if needed and upload OUT. The token comes from HF_TOKEN or "
        "`hf auth login`.",
    )
    defer(push, _push_arguments)

    prepare = subparsers.add_parser(
        "prepare",
        help="re-encode a dataset's videos (CLIP4Clip-style: 3 fps, short side 224) and/or fill the frame cache, "
        "ahead of training",
    )
    defer(prepare, _prepare_arguments)

    synth = subparsers.add_parser(
        "synth",
        help="generate the synthetic drone-video retrieval benchmark",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    defer(synth, _synth_arguments)

    attributes = subparsers.add_parser(
        "attributes",
        help="mine MCSAN's entity / action / relationship attribute vocabularies from training captions",
        description="Mine per-level attribute vocabularies (entities = nouns, actions = verbs, relationships = "
        "noun-preposition-noun and subject-verb-object patterns) from the captions of one split and write them as "
        "JSON. On a synthetic benchmark folder (with ground_truth.jsonl) also print precision and recall against "
        "the generator's ground truth.",
    )
    defer(attributes, _attributes_arguments)


# ----------------------------------------------------------------------------- stats, to-hub, push


def _layout_help() -> str:
    from ..data.readers import LAYOUTS

    return "source layout: " + ", ".join(LAYOUTS) + " (default: auto-detect)"


def _stats_arguments(stats: argparse.ArgumentParser) -> None:
    from ..data.readers import LAYOUTS

    stats.add_argument("path", type=dataset_path, help="dataset folder (any supported layout) or Hub dataset repo id")
    stats.add_argument("--layout", default="auto", choices=LAYOUTS, help=_layout_help())
    stats.add_argument(
        "--strict", action="store_true", help="fail on empty captions, ids without captions, missing videos"
    )
    stats.set_defaults(func=run_stats)


def _to_hub_arguments(to_hub: argparse.ArgumentParser) -> None:
    from ..data.readers import LAYOUTS

    to_hub.add_argument(
        "source", type=existing_path, metavar="SRC", help="dataset folder (clip4clip, videofolder or msrvtt layout)"
    )
    to_hub.add_argument("output", metavar="OUT", help="output folder (new or empty)")
    to_hub.add_argument(
        "--layout", default="auto", choices=[layout for layout in LAYOUTS if layout != "hub"], help=_layout_help()
    )
    to_hub.add_argument("--strict", action="store_true", help="fail instead of skipping (and counting) problems")
    to_hub.add_argument(
        "--source",
        dest="source_kind",
        choices=["usrd", "synthetic"],
        help="fill the card's source and licence for USRD or msam-hf synthetic data "
        "(default: synthetic for `msam data synth` output, USRD when SRC is named like it, "
        "else a card asking for them)",
    )
    to_hub.add_argument("--description", help="what the data is, for the card (data of unknown source)")
    to_hub.add_argument("--license", help="Hub licence id for the card (data of unknown source), e.g. cc-by-4.0")
    to_hub.add_argument("--pretty-name", help="the card's title (default: SRC's folder name)")
    to_hub.add_argument("--repo-id", help="the repo OUT is meant for, used in the card's loading example")
    to_hub.add_argument("--max-shard-size", default="500MB", help="largest Parquet file (default: 500MB)")
    to_hub.add_argument("--overwrite", action="store_true", help="replace OUT's data/ and README.md")
    to_hub.set_defaults(func=run_to_hub)


def _push_arguments(push: argparse.ArgumentParser) -> None:
    push.add_argument("folder", type=existing_path, metavar="OUT", help="folder written by `msam data to-hub`")
    push.add_argument("repo_id", metavar="REPO_ID", help="e.g. your-name/usrd")
    push.add_argument("--private", action="store_true", help="create the repo private")
    push.add_argument("--commit-message", default="Upload dataset with msam data to-hub")
    push.set_defaults(func=run_push)


def run_stats(args: argparse.Namespace) -> int:
    from ..data.readers import detect_layout
    from ..data.readers import load_video_text_dataset
    from ..data.readers import read_video_text_source
    from ..data.stats import dataset_statistics
    from ..data.stats import format_statistics

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
    from ..data.hub_dataset import custom_source
    from ..data.hub_dataset import export_hub_dataset

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
    print(
        f"wrote {output}: load it with datasets.load_dataset({str(output)!r}), upload it with "
        f"`msam data push {output} REPO_ID`"
    )
    return 0


def run_push(args: argparse.Namespace) -> int:
    from ..data.hub_dataset import push_dataset_folder

    try:
        url = push_dataset_folder(args.folder, args.repo_id, private=args.private, commit_message=args.commit_message)
    except FileNotFoundError:
        raise
    except Exception as error:  # noqa: BLE001 - no token, offline, network, HTTP: each client library raises its own
        print(f"msam data push: error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"uploaded {args.folder} to {url}")
    return 0


# ----------------------------------------------------------------------------- prepare


def _prepare_arguments(parser: argparse.ArgumentParser) -> None:
    from ..data.prepare import DEFAULT_SHORT_SIDE
    from ..data.prepare import DEFAULT_VIDEO_FPS

    parser.description = module_summary("msam_hf.data.prepare") + (
        " With OUT, re-encode every video into OUT (a dataset folder to train and evaluate on); with "
        "--frame-cache-dir, decode the frames training samples (--fps, --max-frames) into that cache, from OUT's "
        "videos when OUT is given. Videos already done by an interrupted run are kept."
    )
    parser.add_argument(
        "data", type=dataset_path, metavar="DATA", help="dataset folder in any layout msam_hf.data reads"
    )
    parser.add_argument("out", nargs="?", metavar="OUT", help="where the re-encoded dataset goes (new or empty)")
    parser.add_argument(
        "--video-fps",
        type=positive_float,
        default=DEFAULT_VIDEO_FPS,
        help=f"frame rate of the re-encoded videos (default {DEFAULT_VIDEO_FPS:g}, CLIP4Clip's)",
    )
    parser.add_argument(
        "--short-side",
        type=positive_int,
        default=DEFAULT_SHORT_SIDE,
        help=f"short side of the re-encoded videos in pixels (default {DEFAULT_SHORT_SIDE}, CLIP4Clip's)",
    )
    parser.add_argument("--frame-cache-dir", help="also fill this frame cache (train.py's --frame_cache_dir)")
    parser.add_argument("--fps", type=positive_float, default=1.0, help="frames sampled per second for the cache (1)")
    parser.add_argument("--max-frames", type=positive_int, default=12, help="frames kept per video for the cache (12)")
    parser.add_argument("--workers", type=positive_int, default=2, help="processes (default 2)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run_prepare)


def run_prepare(args: argparse.Namespace) -> int:
    from ..data.prepare import fill_frame_cache
    from ..data.prepare import prepare_videos

    if args.out is None and args.frame_cache_dir is None:
        raise ValueError("give OUT (re-encode the videos there), --frame-cache-dir DIR (fill the frame cache), or both")
    source = args.data
    if args.out is not None:
        report = prepare_videos(
            args.data,
            args.out,
            video_fps=args.video_fps,
            short_side=args.short_side,
            num_workers=args.workers,
            progress=not args.quiet,
            command=args.command_line,
        )
        print(report.summary(f"re-encoded to {args.video_fps:g} fps, short side {args.short_side} px, in {args.out}"))
        source = args.out
    if args.frame_cache_dir is not None:
        report = fill_frame_cache(
            source, args.frame_cache_dir, args.fps, args.max_frames, num_workers=args.workers, progress=not args.quiet
        )
        print(
            report.summary(f"frame cache {args.frame_cache_dir} ({args.fps:g} fps, at most {args.max_frames} frames)")
        )
    return 0


# ----------------------------------------------------------------------------- synth


def _synth_arguments(parser: argparse.ArgumentParser) -> None:
    """Every `SynthConfig` field is an option, with the field's default and help."""
    from dataclasses import fields

    from ..data.synthetic import generator

    parser.description = generator.__doc__.split("\n\n")[0]
    parser.add_argument("output_dir", type=Path, help="folder to write (must be empty unless --overwrite)")
    for config_field in fields(generator.SynthConfig):
        option = "--" + config_field.name.replace("_", "-")
        if config_field.name == "split_fractions":
            parser.add_argument(
                option,
                type=float,
                nargs=3,
                default=config_field.default,
                metavar=("TRAIN", "VAL", "TEST"),
                help=config_field.metadata["help"],
            )
        elif isinstance(config_field.default, bool):  # a switch: --events
            parser.add_argument(option, action="store_true", help=config_field.metadata["help"])
        elif config_field.default is None:  # SynthConfig picks the default (its help says which)
            parser.add_argument(
                option,
                type=config_field.metadata["type"],
                default=argparse.SUPPRESS,
                help=config_field.metadata["help"],
            )
        else:
            parser.add_argument(
                option,
                # frames must advance in time; the other numbers SynthConfig checks itself
                type=positive_float if config_field.name == "fps" else type(config_field.default),
                default=config_field.default,
                help=config_field.metadata["help"],
            )
    parser.add_argument("--workers", type=int, default=2, help="rendering processes (the output does not depend on it)")
    parser.add_argument("--overwrite", action="store_true", help="replace a previous synthetic dataset in output_dir")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_synth)


def run_synth(args: argparse.Namespace) -> int:
    import time
    from collections import Counter
    from dataclasses import fields

    from ..data.synthetic import SynthConfig
    from ..data.synthetic import generate_synthetic_dataset
    from ..data.synthetic.generator import SPLITS
    from ..data.synthetic.generator import _plan

    config = SynthConfig(
        **{
            config_field.name: getattr(args, config_field.name)
            for config_field in fields(SynthConfig)
            if hasattr(args, config_field.name)
        }
    )
    start = time.perf_counter()
    output_dir = generate_synthetic_dataset(
        args.output_dir, config, num_workers=args.workers, overwrite=args.overwrite, progress=not args.quiet
    )
    counts = Counter(job["split"] for job in _plan(config))  # the plan the files were written from
    print(
        f"wrote {config.num_videos} videos ({config.width}x{config.height}, {config.num_frames} frames) to "
        f"{output_dir} in {time.perf_counter() - start:.1f} s: "
        + ", ".join(f"{split} {counts[split]}" for split in SPLITS)
    )
    return 0


# ----------------------------------------------------------------------------- attributes


def _attributes_arguments(parser: argparse.ArgumentParser) -> None:
    from ..configuration_mcsan import DEFAULT_ATTRIBUTE_VOCABULARY_SIZES

    parser.add_argument(
        "path", type=dataset_path, metavar="DATA", help="dataset folder (any supported layout) or Hub dataset repo id"
    )
    parser.add_argument("--out", required=True, type=Path, help="vocabulary JSON to write")
    parser.add_argument("--split", default="train", help="split whose captions are mined (default: train)")
    parser.add_argument("--layout", default="auto", help="dataset layout (default: auto-detect)")
    for level, option in (("entity", "--entities"), ("action", "--actions"), ("relationship", "--relationships")):
        parser.add_argument(
            option,
            type=int,
            default=DEFAULT_ATTRIBUTE_VOCABULARY_SIZES[level],
            help=f"{level} vocabulary size (default: {DEFAULT_ATTRIBUTE_VOCABULARY_SIZES[level]})",
        )
    parser.add_argument("--min-count", type=int, default=2, help="captions an attribute must occur in (default: 2)")
    parser.add_argument(
        "--tagger",
        default="auto",
        help="part-of-speech tagger: auto (spaCy when an English pipeline is installed, else the "
        "lexicon), lexicon, spacy or spacy:PIPELINE (default: auto)",
    )
    parser.add_argument(
        "--label-split",
        default="test",
        help="split whose captions are labelled for the ground-truth comparison (default: test)",
    )
    parser.set_defaults(func=run_attributes)


def run_attributes(args: argparse.Namespace) -> int:
    from ..data.attributes import ATTRIBUTE_LEVELS
    from ..data.attributes import mine_dataset_attributes
    from ..data.synthetic.ground_truth import compare_with_ground_truth
    from ..data.synthetic.ground_truth import format_comparison
    from ..data.synthetic.ground_truth import synth_synonyms

    sizes = {"entity": args.entities, "action": args.actions, "relationship": args.relationships}
    vocabulary = mine_dataset_attributes(
        args.path, split=args.split, layout=args.layout, sizes=sizes, min_count=args.min_count, tagger=args.tagger
    )
    vocabulary.save(args.out)
    print(
        f"mined {args.split} captions of {args.path} with {vocabulary.tagger_name}: "
        f"{vocabulary.num_captions} captions ({vocabulary.skipped_captions} skipped)"
    )
    for level in ATTRIBUTE_LEVELS:
        top = ", ".join(
            f"{name} ({count})" for name, count in zip(vocabulary.levels[level][:8], vocabulary.counts[level][:8])
        )
        print(f"  {level}: {vocabulary.sizes[level]} attributes; most frequent: {top}")
    print(
        f"wrote {args.out}; give it to a model with "
        f"McsanConfig(attribute_vocabulary=AttributeVocabulary.load({str(args.out)!r}).levels)"
    )
    if (Path(args.path) / "ground_truth.jsonl").is_file():
        views = {"exact": compare_with_ground_truth(vocabulary, args.path, args.split, args.label_split)}
        views["synonyms"] = compare_with_ground_truth(
            vocabulary, args.path, args.split, args.label_split, synonyms=synth_synonyms(vocabulary.tagger)
        )
        print(
            f"\nagainst the generator's ground truth (vocabulary: {args.split} videos; labels: {args.label_split} "
            "videos, micro-averaged):\n"
        )
        print(format_comparison(views))
    return 0
