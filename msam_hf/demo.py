"""`make demo`: the main job end to end, on 2 CPU cores in a few minutes.

1. synthesise a small drone-video benchmark (`msam data synth`);
2. get the tiny CLIP stand-in for CLIP's pretrained weights (`msam_hf.tiny_clip`: pretrained on frames the generator
   renders of other places, with captions naming every object; cached after the first run);
3. train MSAM's own modules on the frozen backbone, as the paper does (it trains CLIP at 1e-3 × the heads' rate),
   from features encoded once (`training/recipes/frozen-heads.yaml` for 10 epochs, `--feature_cache_dir`) with
   accelerate launch;
4. evaluate the best checkpoint on the test split (`msam evaluate`: table, JSON, plots) against chance and against a
   model that only sees the background;
5. reload it in a fresh process with `AutoModel.from_pretrained(..., trust_remote_code=True)` — a process that
   never imports msam_hf, as on the Hub — and run two text queries over the test videos, printing the top 5.
"""

import argparse
import importlib.resources
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import torch

from .cli import main as msam_command
from .commands.parsing import dashed_options
from .data import load_video_text_dataset
from .data.synthetic import SynthConfig
from .data.synthetic import generate_synthetic_dataset
from .data.synthetic.baselines import background_only_metrics
from .tiny_clip import TinyClipRecipe
from .tiny_clip import pretrain_tiny_clip
from .video_io import FrameCache

# training/ installs as msam_hf.training (setup.cfg): found from a checkout and from an installed wheel alike.
TRAINING = Path(str(importlib.resources.files("msam_hf.training")))
TRAIN_SCRIPT = TRAINING / "train.py"
RECIPE = TRAINING / "recipes" / "frozen-heads.yaml"
NUM_QUERIES = 2
# What keeps `make demo` within 10 minutes on 2 cores with nothing cached, install included: less than the stand-in
# recipe's default budget (a smaller one reads the objects too weakly: docs/results.md), 700 videos, and a third of the
# frozen-heads recipe's epochs (validation R@1 peaks in the first few; the ablation trains them all).
DEMO_PRETRAINING_SCENES, DEMO_PRETRAINING_STEPS = 3000, 400
DEMO_VIDEOS, DEMO_EPOCHS = 700, 10

SEARCH_IN_FRESH_PROCESS = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import torch
    from transformers import AutoModel, AutoProcessor

    model_dir, frames_file, queries = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    model = AutoModel.from_pretrained(model_dir, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(model_dir, trust_remote_code=True)
    print(f"loaded {type(model).__name__} from {type(model).__module__} "
          f"(msam_hf imported: {any(name.startswith('msam_hf') for name in sys.modules)})")
    stored = np.load(frames_file, allow_pickle=False)
    video_ids = [str(name) for name in stored["video_ids"]]
    videos = [stored[f"video_{index}"] for index in range(len(video_ids))]
    with torch.no_grad():
        video = model.get_video_features(**processor(videos=videos, return_tensors="pt"))
        texts = processor(text=[query["text"] for query in queries], return_tensors="pt")
        text = model.get_text_features(texts["input_ids"], texts["attention_mask"])
        logits = model.similarity(text, video, text_context_size=1)
    for query, scores in zip(queries, logits):
        print(f'\\nquery: "{query["text"]}"  (written for {query["video_id"]})')
        for rank, index in enumerate(scores.argsort(descending=True)[:5].tolist(), start=1):
            mark = "  <- the query's video" if video_ids[index] == query["video_id"] else ""
            print(f"  {rank}. {video_ids[index]}  score {scores[index]:.2f}{mark}")
    """
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", type=Path, default=Path("demo_output"))
    parser.add_argument("--num-videos", type=int, default=DEMO_VIDEOS, help="synthetic videos (70/10/20 %% splits)")
    parser.add_argument(
        "--num-epochs",
        type=int,
        default=DEMO_EPOCHS,
        help="epochs of the heads' training (the frozen-heads recipe's own: 3 times as many)",
    )
    parser.add_argument("--resolution", type=int, default=128, help="synthetic frame size in pixels")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per synthetic video")
    parser.add_argument(
        "--videos-per-site",
        type=int,
        default=None,
        help="synthetic videos sharing one background (default: 10; fewer below 100 videos)",
    )
    parser.add_argument("--batch-size", type=int, default=None, help="default: the recipe's")
    parser.add_argument(
        "--pretrain-scenes",
        type=int,
        default=DEMO_PRETRAINING_SCENES,
        help=f"scenes rendered to pretrain the tiny CLIP stand-in (the recipe's default: {TinyClipRecipe.num_scenes})",
    )
    parser.add_argument(
        "--pretrain-steps",
        type=int,
        default=DEMO_PRETRAINING_STEPS,
        help=f"optimiser steps of the stand-in's pretraining (the recipe's default, "
        f"{TinyClipRecipe.steps}, reads the objects better and takes 2.5 times as long)",
    )
    parser.add_argument(
        "--num-threads",
        type=int,
        default=None,
        help="torch threads in every step (default: torch's choice, one per core)",
    )
    args = parser.parse_args(dashed_options(sys.argv[1:] if argv is None else argv))
    started = time.perf_counter()
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
        os.environ["OMP_NUM_THREADS"] = str(args.num_threads)  # the training and evaluation processes
    data_dir, run_dir, eval_dir, frame_cache_dir, feature_cache_dir = (
        args.output_dir / name for name in ("data", "run", "eval", "frame_cache", "feature_cache")
    )
    for stale in (frame_cache_dir, feature_cache_dir, run_dir):  # the videos are synthesised anew
        shutil.rmtree(stale, ignore_errors=True)

    _step(1, f"synthesise {args.num_videos} drone videos ({args.resolution} px, {args.duration:g} s)", started)
    config = SynthConfig(
        num_videos=args.num_videos,
        width=args.resolution,
        height=args.resolution,
        duration=args.duration,
        videos_per_site=args.videos_per_site,
    )
    generate_synthetic_dataset(data_dir, config, overwrite=True)

    recipe = TinyClipRecipe(
        num_scenes=args.pretrain_scenes,
        steps=args.pretrain_steps,
        batch_size=min(TinyClipRecipe.batch_size, args.pretrain_scenes),
    )
    _step(
        2,
        f"the tiny CLIP stand-in ({recipe.num_scenes} rendered scenes, {recipe.steps} steps; cached after the "
        "first run)",
        started,
    )
    clip_dir = pretrain_tiny_clip(recipe)
    pretraining = json.loads((clip_dir / "pretraining.json").read_text())
    print(
        f"{clip_dir}: λ = {pretraining['logit_scale']}, contrastive loss {pretraining['first_loss']} → "
        f"{pretraining['final_loss']}"
    )

    _step(3, "train MSAM's own modules on the frozen backbone, from features encoded once (accelerate launch)", started)
    overrides = [
        item
        for name in ("num_epochs", "batch_size")
        if getattr(args, name) is not None
        for item in (f"--{name}", str(getattr(args, name)))
    ]
    _run(
        [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--num_processes",
            "1",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            str(TRAIN_SCRIPT),
            str(RECIPE),
            "--data_dir",
            str(data_dir),
            "--output_dir",
            str(run_dir),
            "--clip_model",
            str(clip_dir),
            "--log_with",
            "none",
            "--frame_cache_dir",
            str(frame_cache_dir),
            "--feature_cache_dir",
            str(feature_cache_dir),
            *overrides,
        ]
    )

    _step(4, "evaluate the best checkpoint on the test split", started)
    evaluate = ["evaluate", run_dir / "best", data_dir, "--split", "test", "--output-dir", eval_dir]
    if msam_command([str(item) for item in (*evaluate, "--frame-cache-dir", frame_cache_dir)]):  # in this process
        sys.exit("msam evaluate failed")
    results = json.loads((eval_dir / "results.json").read_text())["best"]
    dataset = load_video_text_dataset(data_dir)
    background = background_only_metrics(dataset, data_dir, "test", progress=False)
    chance = 100.0 / results["num_videos"]
    for key, metrics in results["metrics"].items():
        print(
            f"test text-to-video R@1 at {key}: {metrics['t2v_r1']:.1f} % (chance {chance:.1f} %, background only "
            f"{background['t2v_r1']:.1f} %), median rank {metrics['t2v_median_rank']:g} (chance "
            f"{(results['num_videos'] + 1) / 2:g}, background only {background['t2v_median_rank']:g}), in-site R@1 "
            f"{metrics['in_site_r1']:.1f} % (chance {100 / config.videos_per_site:.0f} %)"
        )

    _step(5, "reload with AutoModel.from_pretrained(trust_remote_code=True) in a fresh process and search", started)
    test = dataset["test"]
    max_frames = json.loads((run_dir / "best" / "config.json").read_text())["max_frames"]
    frames_file = args.output_dir / "test_frames.npz"
    cache = FrameCache(frame_cache_dir)
    np.savez(
        frames_file,
        video_ids=np.array(test["video_id"]),
        **{f"video_{index}": cache.read(row["video"], max_frames=max_frames).frames for index, row in enumerate(test)},
    )
    queries = [
        {"text": test[index]["captions"][0], "video_id": test[index]["video_id"]} for index in range(NUM_QUERIES)
    ]
    _run([sys.executable, "-c", SEARCH_IN_FRESH_PROCESS, str(run_dir / "best"), str(frames_file), json.dumps(queries)])
    print(
        f"\ndemo finished in {time.perf_counter() - started:.0f} s; outputs in {args.output_dir}/ "
        f"(plots: {eval_dir}/recall_at_k.png, {eval_dir}/frame_attention.png)"
    )


def _step(number: int, title: str, started: float) -> None:
    print(f"\n== step {number}/5 (at {time.perf_counter() - started:.0f} s): {title}", flush=True)


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
