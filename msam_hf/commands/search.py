"""`msam index` and `msam search`: build and query a `msam_hf.search.VideoIndex`."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from .parsing import defer
from .parsing import existing_path
from .parsing import model_path
from .parsing import positive_float
from .parsing import positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `msam index` and `msam search` to the top-level commands."""
    parser = subparsers.add_parser(
        "index",
        help="index a folder of videos for text search (incremental, resumable, distributable)",
        description="Encode every video under VIDEO_DIR with MODEL into INDEX: float16 frame features in safetensors "
        "shards, a manifest and a FAISS index. Re-running adds new files, skips unchanged ones and drops deleted ones; "
        "files that cannot be decoded are reported. Spread over processes with "
        "`accelerate launch --multi_gpu --num_processes N -m msam_hf.cli index ...`.",
    )
    defer(parser, _index_arguments)

    parser = subparsers.add_parser(
        "search",
        help="search an index by text",
        description="The K videos of INDEX that best match QUERY, with the model's own similarity head (|J| = 1) "
        "and the seconds of the frames it attended to. Exits with status 1, saying so, when INDEX holds no videos.",
    )
    defer(parser, _search_arguments)


def _index_arguments(parser: argparse.ArgumentParser) -> None:
    from ..search import DEFAULT_SHARD_SIZE

    parser.add_argument(
        "video_dir", type=existing_path, metavar="VIDEO_DIR", help="folder of videos (searched recursively)"
    )
    parser.add_argument(
        "--model", required=True, type=model_path, help="model folder (save_pretrained or LoRA adapter) or Hub id"
    )
    parser.add_argument("--out", required=True, metavar="INDEX", help="index folder (created, or updated in place)")
    parser.add_argument("--fps", type=positive_float, default=1.0, help="frames sampled per second (default 1)")
    parser.add_argument(
        "--encode-batch-size", type=positive_int, default=16, help="videos per encoding batch (not a training batch)"
    )
    parser.add_argument("--num-workers", type=int, default=2, help="decoding worker processes per process")
    parser.add_argument(
        "--shard-size",
        type=positive_int,
        default=DEFAULT_SHARD_SIZE,
        help="videos per feature shard (a new index only; an interrupted run redoes at most one shard per process)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run_index)


def _search_arguments(parser: argparse.ArgumentParser) -> None:
    from ..search import DEFAULT_CANDIDATES

    parser.add_argument("index", type=existing_path, metavar="INDEX", help="folder written by `msam index`")
    parser.add_argument("query", metavar="QUERY", help="the caption to search for")
    parser.add_argument("-k", "--top-k", type=positive_int, default=10, help="results to return (default 10)")
    parser.add_argument(
        "--candidates",
        type=positive_int,
        help=f"R, videos stage 1 passes to the similarity head (default: the index's, {DEFAULT_CANDIDATES} unless set)",
    )
    parser.add_argument(
        "--model", type=model_path, help="the model to encode the query with (default: the one the index records)"
    )
    parser.add_argument("--json", action="store_true", help="print the hits as JSON")
    parser.set_defaults(func=run_search)


def run_index(args: argparse.Namespace) -> int:
    from ..evaluation import load_model_and_processor
    from ..search import VideoIndex
    from ..search.index import process_state

    state = process_state()
    model, processor = load_model_and_processor(args.model)
    model.name_or_path = args.model  # what `msam search` reloads: for a LoRA adapter, the adapter, not its base
    model.to(state.device)
    index = VideoIndex.build(
        args.video_dir,
        args.out,
        model,
        processor,
        fps=args.fps,
        shard_size=args.shard_size,
        batch_size=args.encode_batch_size,
        num_workers=args.num_workers,
        progress=not args.no_progress and state.is_main_process,
    )
    if state.is_main_process:
        print(index.report.summary())
        print(f"index: {Path(args.out).absolute()} (report: report.json)")
    return 0


def run_search(args: argparse.Namespace) -> int:
    from ..search import VideoIndex

    model = processor = None
    if args.model:
        from ..evaluation import load_model_and_processor

        model, processor = load_model_and_processor(args.model)
    index = VideoIndex.load(args.index, model, processor)
    if not len(index):
        print(
            f"{args.index} holds no videos: nothing to search; add some with `msam index VIDEO_DIR --out {args.index}`",
            file=sys.stderr,  # stdout stays empty (or JSON) for a script reading it
        )
        return 1
    hits = index.search(args.query, k=args.top_k, candidates=args.candidates)
    if args.json:
        print(json.dumps({"query": args.query, "hits": [asdict(hit) for hit in hits]}, indent=1))
        return 0
    for rank, hit in enumerate(hits, start=1):
        moments = ", ".join(f"{time:.1f}s ({weight:.2f})" for time, weight in zip(hit.timestamps, hit.attention))
        print(f"{rank:>3}. {hit.path}  score {hit.score:.3f}" + (f"  at {moments}" if moments else ""))
    return 0
