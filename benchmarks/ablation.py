"""Ablation: every similarity head (and MCSAN) on one backbone, one dataset, one budget, over several seeds.

Two regimes:

- `--regime frozen` (the paper's: it trains CLIP at 1e-3 × the heads' rate, i.e. on effectively fixed features): the
  backbone's towers are frozen, every video and caption is encoded once (`train.py --feature_cache_dir`, shared by
  every run) and each variant trains its own modules and CLIP's logit scale from the cache
  (`training/recipes/frozen-heads.yaml`).
- `--regime finetune`: each variant fine-tunes the whole model from the backbone (`tiny-synthetic.yaml`).

`--data_dir` takes any dataset `msam_hf.data` reads (CLIP4Clip / MSVD layout, videofolder, MSR-VTT, a Hub dataset
folder) with train, validation and test splits; without it, the default synthetic benchmark (1000 videos of
4 s) is generated. `--backbone` is a CLIP folder or Hub id; without it, the cached tiny CLIP stand-in
(`msam_hf.tiny_clip.pretrain_tiny_clip`). Each run keeps its best validation checkpoint (text-to-video R@1), which is
evaluated on the test split at |J| = 32 (the reference's protocol) and |J| = 1, with in-site R@1 when the data's
ground truth has sites and attribute mAP for the variants that predict attributes.

Writes `OUT/results.json` (a list, one object per run: variant, seed, `metrics` at |J| = 32 with the keys of
`msam_hf.metrics.retrieval_metrics` plus `in_site_r1`, the same at every |J|, timings, the command, the data's
fingerprint and the environment with its `pip freeze`) and `OUT/results.md` (every run in results.json: mean ± std
over seeds, and each row's per-seed difference from `mean` with its mean and std). A run already in results.json is
not run again, so an interrupted ablation resumes and a later call can add variants or seeds; settings that differ
from the recorded ones are refused.

    python benchmarks/ablation.py --regime frozen --data_dir DIR --variants mean msam --seeds 0 1 2 3 4 --output_dir OUT
    python benchmarks/ablation.py --regime frozen --seeds 0 1 2 3 4 --output_dir OUT    # the synthetic benchmark
    python benchmarks/ablation.py --regime frozen --events --seeds 0 1 2 3 4 --output_dir OUT  # objects enter and leave
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from msam_hf.configuration_mcsan import LEVELS as MCSAN_LEVELS
from msam_hf.data import load_video_text_dataset
from msam_hf.data.attributes import mine_dataset_attributes
from msam_hf.data.synthetic import SynthConfig
from msam_hf.data.synthetic import generate_synthetic_dataset
from msam_hf.evaluation import evaluate_attributes
from msam_hf.evaluation import evaluate_retrieval
from msam_hf.evaluation import extract_features
from msam_hf.evaluation import has_attribute_head
from msam_hf.evaluation import load_model_and_processor
from msam_hf.evaluation import model_attribute_vocabulary
from msam_hf.evaluation import read_ground_truth
from msam_hf.evaluation import sites_of
from msam_hf.feature_cache import encode_split
from msam_hf.feature_cache import retrieval_features
from msam_hf.provenance import dataset_fingerprint
from msam_hf.provenance import environment
from msam_hf.tiny_clip import pretrain_tiny_clip

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {
    "frozen": ROOT / "training" / "recipes" / "frozen-heads.yaml",
    "finetune": ROOT / "training" / "recipes" / "tiny-synthetic.yaml",
}
VARIANTS = {
    "mean": ("CLIP4Clip meanP", ["--similarity_head", "mean", "--semantic_loss", "false"]),
    "seq_transformer": ("CLIP4Clip seqTransf", ["--similarity_head", "seq_transformer", "--semantic_loss", "false"]),
    "attention": ("X-Pool-style pooling", ["--similarity_head", "attention", "--semantic_loss", "false"]),
    "ciffp": ("CIFFP alone", ["--similarity_head", "ciffp", "--semantic_loss", "false"]),
    "msam": ("MSAM: CIFFP + semantic loss", ["--similarity_head", "ciffp", "--semantic_loss", "true"]),
    "msam-patches": (
        "MSAM, semantic branch on patch tokens",
        ["--similarity_head", "ciffp", "--semantic_loss", "true", "--semantic_tokens", "patches"],
    ),
    "msam-attributes": (
        "MSAM + MCSAN's attribute loss (auxiliary)",
        ["--similarity_head", "ciffp", "--semantic_loss", "true", "--attribute_loss"],
    ),
    "mcsan": ("MCSAN, four levels", ["--model", "mcsan"]),
    **{
        f"mcsan-no-{removed}": (
            f"MCSAN without {removed}",
            ["--model", "mcsan", "--levels", *(level for level in MCSAN_LEVELS if level != removed)],
        )
        for removed in MCSAN_LEVELS
    },
    "mcsan-bce": ("MCSAN, plain BCE (γ 0, α 0.5)", ["--model", "mcsan", "--focal_gamma", "0", "--focal_alpha", "0.5"]),
}
DEFAULT_VARIANTS = ["mean", "seq_transformer", "attention", "ciffp", "msam", "msam-patches", "mcsan"]
ATTRIBUTE_VARIANTS = {
    name for name, (_, options) in VARIANTS.items() if "--attribute_loss" in options or "mcsan" in options
}
COLUMNS = {
    "t2v_r1": "T2V R@1",
    "t2v_r5": "T2V R@5",
    "t2v_r10": "T2V R@10",
    "t2v_median_rank": "T2V MdR",
    "v2t_r1": "V2T R@1",
    "rsum": "rsum",
    "in_site_r1": "in-site R@1",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regime", choices=list(RECIPES), default="frozen")
    parser.add_argument("--output_dir", type=Path, default=Path("ablation_output"))
    parser.add_argument(
        "--data_dir",
        type=Path,
        default=None,
        help="any dataset msam_hf.data reads, with train/validation/test splits; default: generate "
        "the synthetic benchmark into OUTPUT_DIR/data",
    )
    parser.add_argument(
        "--backbone",
        default=None,
        help="CLIP folder or Hub id; default: the cached tiny CLIP stand-in (msam_hf.tiny_clip)",
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=list(VARIANTS),
        default=DEFAULT_VARIANTS,
        metavar="VARIANT",
        help=f"rows to run (default: {' '.join(DEFAULT_VARIANTS)}; all: {' '.join(VARIANTS)})",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--num_epochs", type=int, default=None, help="default: the regime's recipe")
    parser.add_argument("--batch_size", type=int, default=None, help="default: the regime's recipe")
    parser.add_argument("--max_frames", type=int, default=12, help="frames a video at 1 fps (the paper's 12)")
    parser.add_argument("--num_videos", type=int, default=1000, help="generated benchmark: videos")
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="generated benchmark: seconds a video (default 4, with --events 12)",
    )
    parser.add_argument(
        "--events",
        action="store_true",
        help="generated benchmark: objects enter and leave the view (msam data synth --events)",
    )
    parser.add_argument("--data_seed", type=int, default=0, help="generated benchmark: seed")
    args = parser.parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)

    data_dir = args.data_dir or _generated_benchmark(args)
    dataset = load_video_text_dataset(data_dir)
    missing = {"train", "validation", "test"} - set(dataset)
    if missing:
        raise SystemExit(
            f"{data_dir} lacks the split(s) {sorted(missing)}: the ablation selects each run's model on "
            "validation and reports test"
        )
    backbone = args.backbone or str(pretrain_tiny_clip())
    settings = {
        "regime": args.regime,
        "data_fingerprint": dataset_fingerprint(dataset),
        "backbone": backbone,
        "recipe": RECIPES[args.regime].read_text(),
        "num_epochs": args.num_epochs,
        "batch_size": args.batch_size,
        "max_frames": args.max_frames,
    }
    settings_file = args.output_dir / "ablation_settings.json"
    if settings_file.is_file() and json.loads(settings_file.read_text()) != settings:
        raise SystemExit(
            f"{args.output_dir} holds runs made with other settings ({settings_file}): pass the same "
            "ones to resume, or a new --output_dir"
        )
    settings_file.write_text(json.dumps(settings, indent=2) + "\n")

    ground_truth = read_ground_truth(data_dir)
    vocabulary_file = args.output_dir / "attribute_vocabulary.json"
    if set(args.variants) & ATTRIBUTE_VARIANTS and not vocabulary_file.is_file():
        mine_dataset_attributes(data_dir).save(vocabulary_file)  # one vocabulary for every row with attributes
    results_file = args.output_dir / "results.json"
    runs = json.loads(results_file.read_text()) if results_file.is_file() else []
    done = {(run["variant"], run["seed"]) for run in runs}
    shared = [
        "--data_dir",
        str(data_dir),
        "--clip_model",
        backbone,
        "--max_frames",
        str(args.max_frames),
        "--log_with",
        "none",
        "--frame_cache_dir",
        str(args.output_dir / "frame_cache"),
    ]
    if args.regime == "frozen":
        shared += ["--feature_cache_dir", str(args.output_dir / "features")]
    for name in ("num_epochs", "batch_size"):
        if getattr(args, name):
            shared += [f"--{name}", str(getattr(args, name))]
    for seed in args.seeds:
        for variant in args.variants:
            if (variant, seed) in done:
                continue
            run_dir = args.output_dir / "runs" / f"{variant}-seed{seed}"
            # Runs finished are in results.json; a folder here is what an interrupted run left: start it afresh.
            options = [*VARIANTS[variant][1], *shared, "--seed", str(seed), "--output_dir", str(run_dir)]
            options += ["--overwrite_output_dir", "true"]
            if variant in ATTRIBUTE_VARIANTS:
                options += ["--attribute_vocab", str(vocabulary_file)]
            command = [sys.executable, str(ROOT / "training" / "train.py"), str(RECIPES[args.regime]), *options]
            started = time.perf_counter()
            subprocess.run(command, check=True, cwd=ROOT)
            run = _evaluate_run(run_dir, dataset["test"], ground_truth, args)
            training = json.loads((run_dir / "final" / "eval_results.json").read_text())
            runs.append(
                {
                    "variant": variant,
                    "seed": seed,
                    **run,
                    "train_seconds": training["train_seconds"],
                    "seconds_per_step": training["train_seconds"] / max(training["step"], 1),
                    "wall_seconds": round(time.perf_counter() - started, 1),
                    "command": shlex.join(command),
                    "data_fingerprint": settings["data_fingerprint"],
                    "environment": environment(),
                }
            )
            results_file.write_text(json.dumps(runs, indent=1) + "\n")
    report = results_markdown(runs, settings, regenerate_command(sys.argv, runs))
    (args.output_dir / "results.md").write_text(report)
    print(report)


def _generated_benchmark(args) -> Path:
    data_dir = args.output_dir / "data"
    if not (data_dir / "synth_config.json").is_file():
        duration = args.duration or (12.0 if args.events else 4.0)
        config = SynthConfig(num_videos=args.num_videos, duration=duration, seed=args.data_seed, events=args.events)
        generate_synthetic_dataset(data_dir, config, overwrite=True)
    return data_dir


def _evaluate_run(run_dir: Path, test, ground_truth: dict | None, args) -> dict:
    """Test metrics of the run's best checkpoint at |J| = 32 and 1 (and attribute mAP when it predicts attributes);
    in the frozen regime from the feature cache, which holds the test split after the first run."""
    model, processor = load_model_and_processor(run_dir / "best")
    if args.regime == "frozen":
        cached = encode_split(
            model,
            test,
            processor,
            args.output_dir / "features",
            "test",
            max_frames=args.max_frames,
            frame_cache_dir=args.output_dir / "frame_cache",
            words=model.needs_word_embeds,
            patches=model.needs_patch_embeds,
        )
        features = retrieval_features(model, cached)
    else:
        features = extract_features(
            model, test, processor, max_frames=args.max_frames, frame_cache_dir=args.output_dir / "frame_cache"
        )
    results = evaluate_retrieval(
        model, features, text_context_sizes=(32, 1), video_sites=sites_of(ground_truth, features.video_ids)
    )
    run = {
        "metrics": results["metrics"]["|J|=32"],
        "metrics_by_text_context_size": results["metrics"],
        "num_videos": results["num_videos"],
        "num_captions": results["num_captions"],
        "best_epoch": json.loads((run_dir / "best" / "eval_results.json").read_text())["epoch"],
    }
    if has_attribute_head(model):
        run["attribute_map"] = evaluate_attributes(
            model, features, model_attribute_vocabulary(model, run_dir / "best"), ground_truth
        )
    return run


def results_markdown(runs: list[dict], settings: dict, command: str) -> str:
    """Every run in results.json (also those of earlier calls with other --variants or --seeds): mean ± std over seeds
    per variant, then each variant's per-seed difference from `mean` (same seed)."""
    by_key = {(run["variant"], run["seed"]): run for run in runs}
    variants = [variant for variant in VARIANTS if any(run["variant"] == variant for run in runs)]
    seeds = sorted({run["seed"] for run in runs})
    columns = {name: title for name, title in COLUMNS.items() if all(name in run["metrics"] for run in runs)}
    first = runs[0]
    lines = [
        f"Test split, {first['num_videos']} videos and {first['num_captions']} captions, |J| = 32; mean ± std "
        f"over seeds (sample std); regime {settings['regime']}, backbone `{settings['backbone']}`, data "
        f"fingerprint `{settings['data_fingerprint']}`.\n",
        "| variant | seeds | " + " | ".join(columns.values()) + " | train s / step |",
        "|---|---|" + "---|" * (len(columns) + 1),
    ]
    for variant in variants:
        chosen = [by_key[variant, seed] for seed in seeds if (variant, seed) in by_key]
        if chosen:
            cells = [_mean_std([run["metrics"][name] for run in chosen]) for name in columns]
            cells.append(_mean_std([run["seconds_per_step"] for run in chosen], digits=3))
            lines.append(f"| {variant} ({VARIANTS[variant][0]}) | {len(chosen)} | " + " | ".join(cells) + " |")
    chance = 100.0 / first["num_videos"]
    lines.append(f"\nChance: R@1 {chance:.2f}, MdR {(first['num_videos'] + 1) / 2:g}.")
    others = [variant for variant in variants if variant != "mean"]
    if "mean" in variants and others:
        lines += [
            "\nDifference from `mean` on the same seed (variant − mean): each seed, then mean ± std.\n",
            "| variant | " + " | ".join(columns.values()) + " |",
            "|---|" + "---|" * len(columns),
        ]
        for variant in others:
            pairs = [
                (by_key[variant, seed], by_key["mean", seed])
                for seed in seeds
                if (variant, seed) in by_key and ("mean", seed) in by_key
            ]
            if not pairs:
                continue
            cells = []
            for name in columns:
                differences = [run["metrics"][name] - baseline["metrics"][name] for run, baseline in pairs]
                cells.append(" ".join(f"{value:+.1f}" for value in differences) + f" → {_mean_std(differences)}")
            lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    last = runs[-1]["environment"]
    lines += [
        f"\nRegenerate: `{command}`",
        f"\nEnvironment of the last run: {last['cpu']}, {last['torch_threads']} "
        "torch threads; every run's `pip freeze` is in results.json.\n",
    ]
    return "\n".join(lines)


def regenerate_command(argv: list[str], runs: list[dict]) -> str:
    """The last call's command with `--variants` and `--seeds` widened to every run in results.json: one command that
    regenerates the whole table (calls that added rows or seeds one at a time each name only their own)."""
    kept, skipping = [], False
    for token in argv:
        if token in ("--variants", "--seeds"):
            skipping = True
        elif skipping and not token.startswith("--"):
            continue
        else:
            skipping = False
            kept.append(token)
    variants = [variant for variant in VARIANTS if any(run["variant"] == variant for run in runs)]
    seeds = sorted({str(run["seed"]) for run in runs}, key=int)
    return shlex.join(["python", *kept, "--variants", *variants, "--seeds", *seeds])


def _mean_std(values: list[float], digits: int = 1) -> str:
    values = np.asarray(values, dtype=float)
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.{digits}f}"


if __name__ == "__main__":
    main()
