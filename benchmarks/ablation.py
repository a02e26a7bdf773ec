"""Ablation on the synthetic drone benchmark: the same data, recipe, budget and backbone for every variant.

Variants: CLIP4Clip meanP (`mean`), seqTransf (`seq_transformer`), X-Pool-style pooling (`attention`), CIFFP
without and with the semantic loss, and the semantic branch on patch tokens. Each is trained with
`training/train.py` (recipe `training/recipes/tiny-synthetic.yaml`) for every seed, its best validation checkpoint
evaluated on the test split at |J| = 32 and |J| = 1, and the table reports mean ± std over seeds. A gain is only
worth claiming when it exceeds the spread across seeds.

    python benchmarks/ablation.py --seeds 0 1 2                  # ~20 minutes per seed on 2 CPU cores
    python benchmarks/ablation.py --seeds 0 --num_epochs 2 --num_videos 60   # smoke run
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from msam_hf.data import load_video_text_dataset
from msam_hf.data.synth import SynthConfig
from msam_hf.data.synth import generate_synthetic_dataset
from msam_hf.evaluation import evaluate_retrieval
from msam_hf.evaluation import extract_features
from msam_hf.evaluation import load_model_and_processor

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "training" / "recipes" / "tiny-synthetic.yaml"
VARIANTS = {
    "mean (CLIP4Clip meanP)": ["--similarity_head", "mean", "--semantic_loss", "false"],
    "seq_transformer (CLIP4Clip seqTransf)": ["--similarity_head", "seq_transformer", "--semantic_loss", "false"],
    "attention (X-Pool-style)": ["--similarity_head", "attention", "--semantic_loss", "false"],
    "ciffp": ["--similarity_head", "ciffp", "--semantic_loss", "false"],
    "ciffp + semantic loss (MSAM)": ["--similarity_head", "ciffp", "--semantic_loss", "true"],
    "ciffp + semantic loss, patch tokens": ["--similarity_head", "ciffp", "--semantic_loss", "true",
                                            "--semantic_tokens", "patches"],
}
COLUMNS = ("t2v_r1", "t2v_r5", "t2v_r10", "t2v_median_rank", "v2t_r1", "v2t_r5", "rsum")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", type=Path, default=Path("ablation_output"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--num_videos", type=int, default=200)
    parser.add_argument("--data_seed", type=int, default=0, help="the benchmark's seed (the same for every run)")
    parser.add_argument("--num_epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="VARIANT")
    args = parser.parse_args()

    data_dir = args.output_dir / "data"
    if not (data_dir / "synth_config.json").is_file():
        generate_synthetic_dataset(data_dir, SynthConfig(num_videos=args.num_videos, seed=args.data_seed))
    test = load_video_text_dataset(data_dir)["test"]
    runs_file = args.output_dir / "runs.json"
    runs = json.loads(runs_file.read_text()) if runs_file.is_file() else {}
    for seed in args.seeds:
        for variant in args.variants:
            key = f"{variant} | seed {seed}"
            if key in runs:  # finished earlier: the script resumes where it stopped
                continue
            run_dir = args.output_dir / "runs" / f"{variant.split(' ')[0]}-{len(runs)}-seed{seed}"
            extra = ["--num_epochs", str(args.num_epochs)] if args.num_epochs else []
            subprocess.run([sys.executable, str(ROOT / "training" / "train.py"), str(RECIPE), *VARIANTS[variant],
                            "--seed", str(seed), "--data_dir", str(data_dir), "--output_dir", str(run_dir),
                            "--log_with", "none", *extra], check=True, cwd=ROOT)
            model, processor = load_model_and_processor(run_dir / "best")
            features = extract_features(model, test, processor)
            results = evaluate_retrieval(model, features, text_context_sizes=(32, 1))
            training = json.loads((run_dir / "final" / "eval_results.json").read_text())
            runs[key] = {"variant": variant, "seed": seed, "train_seconds": training["train_seconds"],
                         "seconds_per_step": training["train_seconds"] / max(training["step"], 1),
                         "metrics": results["metrics"],
                         "num_videos": results["num_videos"]}
            runs_file.write_text(json.dumps(runs, indent=2) + "\n")
    print(ablation_table(runs, args.variants, args.seeds))


def ablation_table(runs: dict, variants: list[str], seeds: list[int]) -> str:
    lines = []
    for context in ("|J|=32", "|J|=1"):
        lines += [f"\nTest split, {context.replace('|', chr(92) + '|')}, mean ± std over seeds {seeds} "
                  "(train time: optimiser steps with data loading, without validation):\n",
                  "| variant | " + " | ".join(COLUMNS) + " | train (s) | s / step |",
                  "|---|" + "---|" * (len(COLUMNS) + 2)]
        for variant in variants:
            chosen = [runs[f"{variant} | seed {seed}"] for seed in seeds if f"{variant} | seed {seed}" in runs]
            if not chosen:
                continue
            cells = [_mean_std([run["metrics"][context][column] for run in chosen]) for column in COLUMNS]
            cells += [_mean_std([run["train_seconds"] for run in chosen], digits=0),
                      _mean_std([run["seconds_per_step"] for run in chosen], digits=2)]
            lines.append(f"| {variant} | " + " | ".join(cells) + " |")
        chance = 100.0 / next(iter(runs.values()))["num_videos"]
        lines.append("\nchance: " + ", ".join(f"R@{k} {min(100.0, k * chance):.1f}" for k in (1, 5, 10)))
    return "\n".join(lines)


def _mean_std(values: list[float], digits: int = 1) -> str:
    values = np.asarray(values, dtype=float)
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.{digits}f}"


if __name__ == "__main__":
    main()
