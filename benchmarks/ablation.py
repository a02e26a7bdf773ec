"""Ablation on the synthetic drone benchmark: the same data, recipe, budget and backbone for every variant.

Variants: CLIP4Clip meanP (`mean`), seqTransf (`seq_transformer`), X-Pool-style pooling (`attention`), CIFFP
without and with the semantic loss, the semantic branch on patch tokens, and MSAM with MCSAN's attribute objective
as an auxiliary loss (`--attribute_loss`); with `--models mcsan` (or `msam mcsan`) MCSAN with all four levels, with
each level removed in turn, and with plain BCE instead of the focal BCE (γ = 0, α = 0.5). Each is trained with
`training/train.py` (recipe `training/recipes/tiny-synthetic.yaml`: the same budget for every row) for every seed,
by default from one tiny CLIP pretrained once as `make demo` does (`--pretrain_videos`); its best validation
checkpoint is evaluated on the test split at |J| = 32 and |J| = 1, and the table reports mean ± std over seeds.
Rows with attribute labels share one vocabulary, mined once from the training captions, and add a table of
attribute mAP per level on the test split. A gain is only worth claiming when it exceeds the spread across seeds.
Every run reads one frame cache: each video is decoded once.

    python benchmarks/ablation.py --seeds 0 1 2          # ~4 min a row and seed on 2 CPU cores, + 4 min pretraining
    python benchmarks/ablation.py --models msam mcsan --seeds 0 1 2          # MSAM and MCSAN rows
    python benchmarks/ablation.py --seeds 0 --num_epochs 2 --num_videos 60 --pretrain_videos 40   # smoke run
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from msam_hf.configuration_mcsan import LEVELS as MCSAN_LEVELS
from msam_hf.data import load_video_text_dataset
from msam_hf.data.attributes import ATTRIBUTE_LEVELS
from msam_hf.data.attributes import mine_dataset_attributes
from msam_hf.data.synth import SynthConfig
from msam_hf.data.synth import generate_synthetic_dataset
from msam_hf.demo import pretrain_tiny_clip
from msam_hf.demo import write_pretraining_corpus
from msam_hf.evaluation import evaluate_attributes
from msam_hf.evaluation import evaluate_retrieval
from msam_hf.evaluation import extract_features
from msam_hf.evaluation import has_attribute_head
from msam_hf.evaluation import load_model_and_processor
from msam_hf.evaluation import model_attribute_vocabulary
from msam_hf.evaluation import read_ground_truth

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "training" / "recipes" / "tiny-synthetic.yaml"
MSAM_VARIANTS = {
    "mean (CLIP4Clip meanP)": ["--similarity_head", "mean", "--semantic_loss", "false"],
    "seq_transformer (CLIP4Clip seqTransf)": ["--similarity_head", "seq_transformer", "--semantic_loss", "false"],
    "attention (X-Pool-style)": ["--similarity_head", "attention", "--semantic_loss", "false"],
    "ciffp": ["--similarity_head", "ciffp", "--semantic_loss", "false"],
    "ciffp + semantic loss (MSAM)": ["--similarity_head", "ciffp", "--semantic_loss", "true"],
    "ciffp + semantic loss, patch tokens": ["--similarity_head", "ciffp", "--semantic_loss", "true",
                                            "--semantic_tokens", "patches"],
    "ciffp + semantic loss + attribute loss (MCSAN's, auxiliary)": ["--similarity_head", "ciffp", "--semantic_loss",
                                                                    "true", "--attribute_loss"],
}
MCSAN_VARIANTS = {
    "MCSAN (four levels)": ["--model", "mcsan"],
    **{f"MCSAN without {removed}": ["--model", "mcsan", "--levels", *(level for level in MCSAN_LEVELS if level != removed)]
       for removed in MCSAN_LEVELS},
    "MCSAN, plain BCE (γ 0, α 0.5)": ["--model", "mcsan", "--focal_gamma", "0", "--focal_alpha", "0.5"],
}
VARIANTS = {**MSAM_VARIANTS, **MCSAN_VARIANTS}
# Rows trained on attribute labels: all share one mined vocabulary.
ATTRIBUTE_VARIANTS = {*MCSAN_VARIANTS, *(name for name, options in MSAM_VARIANTS.items() if "--attribute_loss" in options)}
MODEL_VARIANTS = {"msam": list(MSAM_VARIANTS), "mcsan": list(MCSAN_VARIANTS)}
COLUMNS = {"t2v_r1": "T2V R@1", "t2v_r5": "T2V R@5", "t2v_r10": "T2V R@10", "t2v_median_rank": "T2V MdR",
           "v2t_r1": "V2T R@1", "v2t_r5": "V2T R@5", "rsum": "rsum (T2V + V2T)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", type=Path, default=Path("ablation_output"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--num_videos", type=int, default=1000, help="the demo's benchmark: 1000 videos of 4 s")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per synthetic video")
    parser.add_argument("--data_seed", type=int, default=0, help="the benchmark's seed (the same for every run)")
    parser.add_argument("--num_epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--max_frames", type=int, default=12,
                        help="the paper's sampling, 1 fps and at most 12 frames (4 from the 4-s videos), so the heads "
                             "that attend over frames have frames to choose from; the demo's recipe keeps 2 for speed")
    parser.add_argument("--pretrain_videos", type=int, default=1000,
                        help="first pretrain the tiny CLIP once, as `make demo` does, on this many videos of other "
                             "places with captions listing every object, and start every row from it (from scratch "
                             "no row leaves the background-only baseline's level); 0: every row from scratch")
    parser.add_argument("--models", nargs="+", default=["msam"], choices=list(MODEL_VARIANTS),
                        help="whose rows to run (default: msam)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), metavar="VARIANT",
                        help="run only these rows (default: every row of --models)")
    args = parser.parse_args()
    variants = args.variants or [variant for model in args.models for variant in MODEL_VARIANTS[model]]

    settings = {name: getattr(args, name)
                for name in ("num_videos", "duration", "data_seed", "num_epochs", "max_frames", "pretrain_videos")}
    settings_file = args.output_dir / "ablation_settings.json"
    if settings_file.is_file() and json.loads(settings_file.read_text()) != settings:
        raise SystemExit(f"{args.output_dir} holds runs made with {settings_file.read_text().strip()}, not {settings}: "
                         "pass those settings to resume, or a new --output_dir")
    args.output_dir.mkdir(parents=True, exist_ok=True)
    settings_file.write_text(json.dumps(settings) + "\n")
    data_dir = args.output_dir / "data"
    config = SynthConfig(num_videos=args.num_videos, duration=args.duration, seed=args.data_seed)
    if not (data_dir / "synth_config.json").is_file():
        generate_synthetic_dataset(data_dir, config)
    cache_dir = args.output_dir / "frame_cache"  # shared by every run: each video is decoded once
    epochs = ["--num_epochs", str(args.num_epochs)] if args.num_epochs else []  # both stages: the same budget
    backbone = []
    if args.pretrain_videos:
        pretrain_dir = args.output_dir / "pretrain"
        if not (pretrain_dir / "clip" / "config.json").is_file():
            write_pretraining_corpus(pretrain_dir / "data", config, args.pretrain_videos)
            pretrain_tiny_clip(pretrain_dir, cache_dir, *epochs)
        backbone = ["--clip_model", str(pretrain_dir / "clip")]
    test = load_video_text_dataset(data_dir)["test"]
    vocabulary_file = args.output_dir / "attribute_vocabulary.json"
    if any(variant in ATTRIBUTE_VARIANTS for variant in variants) and not vocabulary_file.is_file():
        mine_dataset_attributes(data_dir).save(vocabulary_file)  # one vocabulary for every row with attributes
    runs_file = args.output_dir / "runs.json"
    runs = json.loads(runs_file.read_text()) if runs_file.is_file() else {}
    for seed in args.seeds:
        for variant in variants:
            key = f"{variant} | seed {seed}"
            if key in runs:  # finished earlier: the script resumes where it stopped
                continue
            slug = re.sub(r"[^a-z0-9]+", "-", variant.lower()).strip("-")
            run_dir = args.output_dir / "runs" / f"{slug}-seed{seed}"
            extra = [*backbone, "--max_frames", str(args.max_frames), "--frame_cache_dir", str(cache_dir)]
            extra += epochs
            if variant in ATTRIBUTE_VARIANTS:
                extra += ["--attribute_vocab", str(vocabulary_file)]
            subprocess.run([sys.executable, str(ROOT / "training" / "train.py"), str(RECIPE), *VARIANTS[variant],
                            "--seed", str(seed), "--data_dir", str(data_dir), "--output_dir", str(run_dir),
                            "--log_with", "none", *extra], check=True, cwd=ROOT)
            model, processor = load_model_and_processor(run_dir / "best")
            features = extract_features(model, test, processor, frame_cache_dir=cache_dir)
            results = evaluate_retrieval(model, features, text_context_sizes=(32, 1))
            if has_attribute_head(model):
                results["attribute_map"] = evaluate_attributes(
                    model, features, model_attribute_vocabulary(model, run_dir / "best"), read_ground_truth(data_dir))
            training = json.loads((run_dir / "final" / "eval_results.json").read_text())
            runs[key] = {"variant": variant, "seed": seed, "train_seconds": training["train_seconds"],
                         "seconds_per_step": training["train_seconds"] / max(training["step"], 1),
                         "metrics": results["metrics"], "attribute_map": results.get("attribute_map"),
                         "num_videos": results["num_videos"]}
            runs_file.write_text(json.dumps(runs, indent=2) + "\n")
    print(ablation_table(runs, variants, args.seeds))


def ablation_table(runs: dict, variants: list[str], seeds: list[int]) -> str:
    lines = []
    for context in ("|J|=32", "|J|=1"):
        lines += [f"\nTest split, {context.replace('|', chr(92) + '|')}, mean ± std over seeds {seeds} "
                  "(train time: optimiser steps with data loading, without validation):\n",
                  "| variant | seeds | " + " | ".join(COLUMNS.values()) + " | train (s) | s / step |",
                  "|---|" + "---|" * (len(COLUMNS) + 3)]
        for variant in variants:
            chosen = [runs[f"{variant} | seed {seed}"] for seed in seeds if f"{variant} | seed {seed}" in runs]
            if not chosen:
                continue
            cells = [_mean_std([run["metrics"][context][column] for run in chosen]) for column in COLUMNS]
            cells += [_mean_std([run["train_seconds"] for run in chosen], digits=0),
                      _mean_std([run["seconds_per_step"] for run in chosen], digits=2)]
            lines.append(f"| {variant} | {len(chosen)} | " + " | ".join(cells) + " |")
        chance = 100.0 / next(iter(runs.values()))["num_videos"]
        lines.append("\nchance: " + ", ".join(f"R@{k} {min(100.0, k * chance):.1f}" for k in (1, 5, 10)))
    lines += attribute_table(runs, variants, seeds)
    return "\n".join(lines)


def attribute_table(runs: dict, variants: list[str], seeds: list[int]) -> list[str]:
    """Attribute mAP per level on the test split (video labels mined from the captions, and the generator's ground
    truth), mean ± std over seeds, for the rows that predict attributes."""
    kinds = {"video": "mined", "ground_truth": "ground truth"}
    lines = [f"\nTest split, attribute mAP (%) per level from the video embedding, mean ± std over seeds {seeds} "
             "(in brackets: chance, the mean positive rate):\n",
             "| variant | " + " | ".join(f"{level} ({title})" for title in kinds.values() for level in ATTRIBUTE_LEVELS)
             + " |", "|---|" + "---|" * (len(kinds) * len(ATTRIBUTE_LEVELS))]
    rows = 0
    for variant in variants:
        chosen = [runs[f"{variant} | seed {seed}"] for seed in seeds if f"{variant} | seed {seed}" in runs]
        chosen = [run for run in chosen if run.get("attribute_map")]
        if not chosen:
            continue
        cells = []
        for kind in kinds:
            for level in ATTRIBUTE_LEVELS:
                scores = [run["attribute_map"].get(kind, {}).get(level) for run in chosen]
                scores = [score for score in scores if score and score["map"] is not None]
                cells.append(f"{_mean_std([score['map'] for score in scores])} ({scores[0]['chance']:.1f})"
                             if scores else "–")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
        rows += 1
    return lines if rows else []


def _mean_std(values: list[float], digits: int = 1) -> str:
    values = np.asarray(values, dtype=float)
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.{digits}f}"


if __name__ == "__main__":
    main()
