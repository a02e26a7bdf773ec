"""`msam evaluate`: retrieval metrics (and attribute mAP), tables and plots of models on a dataset split."""

from __future__ import annotations

import argparse
import sys

from .parsing import dataset_path
from .parsing import defer
from .parsing import model_path
from .parsing import module_summary
from .parsing import positive_float
from .parsing import positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `msam evaluate` to the top-level commands."""
    parser = subparsers.add_parser(
        "evaluate",
        help="retrieval metrics (and attribute mAP for MCSAN), tables and plots of one or more models on "
        "a dataset split",
    )
    defer(parser, _arguments)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = module_summary("msam_hf.evaluation")
    parser.add_argument(
        "models", nargs="+", type=model_path, metavar="MODEL", help="model folder(s) (save_pretrained or LoRA adapter)"
    )
    parser.add_argument(
        "data", type=dataset_path, metavar="DATA", help="dataset folder in any layout msam_hf.data reads"
    )
    parser.add_argument(
        "--split",
        default="test",
        help="split to evaluate (default: test). Splits are train, validation and test (also read: val, dev, ...): "
        "CLIP4Clip's train_list.txt / val_list.txt / test_list.txt, a video folder's `split` column or train/ "
        "validation/ test/ subfolders (else everything is train), MSR-VTT's annotation",
    )
    parser.add_argument(
        "--text-context-size",
        type=positive_int,
        default=32,
        help="CIFFP caption-set size |J| of the headline numbers (default 32, the reference's); "
        "|J|=1 is always reported too",
    )
    parser.add_argument(
        "--ties",
        default="pessimistic",
        choices=("pessimistic", "optimistic", "mean"),
        help="rank of a true item that ties with others (see msam_hf.metrics)",
    )
    parser.add_argument(
        "--encode-batch-size", type=positive_int, default=16, help="videos per encoding batch (not a training batch)"
    )
    parser.add_argument("--num-workers", type=int, default=2, help="decoding worker processes")
    parser.add_argument("--fps", type=positive_float, default=1.0, help="frames sampled per second")
    parser.add_argument(
        "--frame-cache-dir",
        default=None,
        help="keep decoded frames here and reuse them (e.g. train.py's --frame_cache_dir)",
    )
    parser.add_argument(
        "--attention-queries",
        type=int,
        default=4,
        help="captions whose frame attention is plotted (CIFFP / attention heads)",
    )
    parser.add_argument("--output-dir", default="msam-eval", help="where results.json/.md and the plots go")
    parser.add_argument(
        "--no-attributes",
        dest="attributes",
        action="store_false",
        help="skip the attribute mAP of models with attribute projections (MCSAN)",
    )
    parser.add_argument(
        "--postprocess",
        nargs="+",
        action="extend",
        default=[],
        metavar="METHOD",
        help="also report rows after test-time post-processing of the similarity matrix, labelled "
        "e.g. 'MODEL (+DSL)', next to the plain rows (always reported): dsl (dual softmax), "
        "qbnorm (querybank normalisation over --query-bank-split's captions), sinkhorn; several "
        "or a comma list, after MODEL and DATA. Caveat: DSL and Sinkhorn use every test "
        "query's scores at once, QB-Norm a bank of training captions and the whole gallery, "
        "which a single search query does not have, so these numbers are not comparable to "
        "plain ones (docs/evaluation.md)",
    )
    parser.add_argument(
        "--query-bank-split", default="train", help="split whose captions are QB-Norm's query bank (default: train)"
    )
    parser.set_defaults(func=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from ..data.prepare import preparation_mismatch
    from ..data.prepare import read_preparation
    from ..data.prepare import trained_preparation
    from ..evaluation import evaluate_models
    from ..evaluation import markdown_table

    evaluated_on = read_preparation(args.data)
    for model in args.models:
        warning = preparation_mismatch(trained_preparation(model), evaluated_on)
        if warning:
            print(f"msam evaluate: warning: {model}: {warning}", file=sys.stderr)
    results, written = evaluate_models(
        args.models,
        args.data,
        args.split,
        text_context_size=args.text_context_size,
        ties=args.ties,
        batch_size=args.encode_batch_size,
        num_workers=args.num_workers,
        fps=args.fps,
        frame_cache_dir=args.frame_cache_dir,
        attention_queries=args.attention_queries,
        output_dir=args.output_dir,
        attributes=args.attributes,
        postprocess=args.postprocess,
        query_bank_split=args.query_bank_split,
        command=getattr(args, "command_line", None),
    )
    print(markdown_table(results))
    print("wrote " + ", ".join(str(path) for path in written))
    return 0
