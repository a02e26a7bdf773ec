"""`msam push`: publish a model folder (or LoRA adapter) to the Hub with `msam_hf.hub.push_to_hub`."""

from __future__ import annotations

import argparse
import sys

from .parsing import defer
from .parsing import existing_path
from .parsing import model_path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `msam push` to the top-level commands."""
    parser = subparsers.add_parser(
        "push",
        help="publish a model folder (or LoRA adapter) to the Hub with card, pipeline and endpoint handler",
        description="Build the Hub repo folder (model with LoRA merged, safetensors, custom code, processor, "
        "pipeline, handler.py, model card) and upload it. The token comes from HF_TOKEN or `hf auth login`.",
    )
    defer(parser, _arguments)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model_dir",
        type=existing_path,
        metavar="MODEL_DIR",
        help="save_pretrained folder (e.g. OUTPUT/best) or LoRA adapter",
    )
    parser.add_argument("repo_id", metavar="REPO_ID", help="e.g. your-name/msam-drone")
    parser.add_argument("--adapter-only", action="store_true", help="upload the PEFT adapter alone")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--revision", help="branch to push to (created if missing)")
    parser.add_argument("--commit-message", help="commit message")
    parser.add_argument(
        "--base-model", type=model_path, help="LoRA: the MSAM model the adapter was trained on (folder or Hub id)"
    )
    parser.add_argument("--dataset", help="what the results were measured on: Hub dataset id or short name")
    parser.add_argument(
        "--eval-results",
        type=existing_path,
        metavar="RESULTS_JSON",
        help="results.json of `msam evaluate` for this model (e.g. on the test split): the card reports it instead "
        "of training's validation results",
    )
    parser.add_argument("--license", default="apache-2.0", help="licence id for the card (default apache-2.0)")
    parser.set_defaults(func=run_push)


def run_push(args: argparse.Namespace) -> int:
    from ..hub import HubPushError
    from ..hub import push_to_hub

    try:
        commit = push_to_hub(
            args.model_dir,
            args.repo_id,
            adapter_only=args.adapter_only,
            private=args.private,
            revision=args.revision,
            commit_message=args.commit_message,
            base_model=args.base_model,
            dataset=args.dataset,
            license=args.license,
            eval_results_file=args.eval_results,
        )
    except HubPushError as error:
        print(f"msam push: error: {error}", file=sys.stderr)
        return 1
    print(f"pushed {args.model_dir} to {commit.commit_url}")
    return 0
