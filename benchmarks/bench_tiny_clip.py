"""How well the tiny CLIP stand-in reads the objects, frozen, as its pretraining budget grows.

For each budget (optimiser steps of `msam_hf.tiny_clip.TinyClipRecipe`; the stand-ins are cached, so a budget is
trained once), the frozen backbone scores the synthetic benchmark's test split zero-shot, as CLIP4Clip's meanP does
without training: a video is the mean of its unit-norm frame embeddings (1 fps, at most 12 frames), a caption its
sentence embedding. Reports text-to-video R@1 and median rank, and in-site R@1 — the rank among the videos of the
caption's own site, which share the background, so only the objects decide (chance 10 %; a perfect recogniser of the
objects a caption names reaches ~40 %). Goal: in-site R@1 ≥ 25 % for the default recipe.

    python benchmarks/bench_tiny_clip.py [--steps 125 250 500 1000] [--data_dir DIR] [--output results.json]
    python benchmarks/bench_tiny_clip.py --steps 1000 --recipe '{"batch_size": 64}'     # other recipes
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import tempfile
from pathlib import Path

from msam_hf import MsamModel
from msam_hf import default_processor
from msam_hf.data import load_video_text_dataset
from msam_hf.data.synthetic import SynthConfig
from msam_hf.data.synthetic import generate_synthetic_dataset
from msam_hf.evaluation import evaluate_retrieval
from msam_hf.evaluation import extract_features
from msam_hf.evaluation import read_ground_truth
from msam_hf.evaluation import sites_of
from msam_hf.provenance import dataset_fingerprint
from msam_hf.provenance import environment
from msam_hf.tiny_clip import TinyClipRecipe
from msam_hf.tiny_clip import pretrain_tiny_clip

GOAL_IN_SITE = 25.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", default=[125, 250, 500, 1000])
    parser.add_argument(
        "--data_dir",
        type=Path,
        default=None,
        help="a synthetic benchmark; default: generate the default benchmark (1000 videos of 4 s, seed 0)",
    )
    parser.add_argument("--output", type=Path, default=None, help="also write the rows as JSON here")
    parser.add_argument(
        "--recipe",
        default="{}",
        help="other TinyClipRecipe fields for every budget, as JSON, e.g. '{\"batch_size\": 64}'",
    )
    args = parser.parse_args()
    overrides = json.loads(args.recipe)

    with tempfile.TemporaryDirectory() as folder:
        data_dir = args.data_dir or generate_synthetic_dataset(
            Path(folder) / "data", SynthConfig(num_videos=1000, duration=4.0)
        )
        dataset = load_video_text_dataset(data_dir)
        sites = None
        rows = []
        for steps in args.steps:
            recipe = TinyClipRecipe(**{**overrides, "steps": steps})
            clip_dir = pretrain_tiny_clip(recipe)
            pretraining = json.loads((clip_dir / "pretraining.json").read_text())
            model = MsamModel.from_clip(str(clip_dir), similarity_head="mean", semantic_loss=False, max_frames=12)
            features = extract_features(
                model.eval(),
                dataset["test"],
                default_processor(model.config),
                frame_cache_dir=Path(folder) / "frames",
                progress=False,
            )
            sites = sites or sites_of(read_ground_truth(data_dir), features.video_ids)
            metrics = evaluate_retrieval(model, features, text_context_sizes=(1,), video_sites=sites)["metrics"][
                "|J|=1"
            ]
            rows.append(
                {
                    "steps": steps,
                    "pairs_seen": steps * recipe.batch_size,
                    "logit_scale": pretraining["logit_scale"],
                    "seconds": pretraining["render_seconds"] + pretraining["train_seconds"],
                    "t2v_r1": metrics["t2v_r1"],
                    "t2v_median_rank": metrics["t2v_median_rank"],
                    "in_site_r1": metrics["in_site_r1"],
                    "recipe": dataclasses.asdict(recipe),
                }
            )
        fingerprint = dataset_fingerprint(dataset)

    print(
        f"\nZero-shot on the test split ({len(features.video_ids)} videos, {len(features.captions)} captions), frozen "
        f"tiny CLIP stand-in by pretraining budget; data fingerprint {fingerprint}\n"
    )
    print(
        "| steps | pairs seen | λ | pretraining (s) | T2V R@1 | T2V MdR | in-site R@1 |\n|---|---|---|---|---|---|---|"
    )
    for row in rows:
        print(
            f"| {row['steps']} | {row['pairs_seen']:,} | {row['logit_scale']:.1f} | {row['seconds']:.0f} | "
            f"{row['t2v_r1']:.1f} | {row['t2v_median_rank']:g} | {row['in_site_r1']:.1f} |"
        )
    default = next((row for row in rows if row["recipe"] == dataclasses.asdict(TinyClipRecipe())), None)
    if default is not None:
        verdict = "met" if default["in_site_r1"] >= GOAL_IN_SITE else "NOT met"
        print(
            f"\ndefault recipe ({TinyClipRecipe.steps} steps): in-site R@1 {default['in_site_r1']:.1f} %, goal "
            f"≥ {GOAL_IN_SITE:g} %: {verdict}"
        )
    if args.output:
        args.output.write_text(
            json.dumps(
                {
                    "command": shlex.join(["python", *sys.argv]),
                    "data_fingerprint": fingerprint,
                    "environment": environment(),
                    "rows": rows,
                },
                indent=1,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
