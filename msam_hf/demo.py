"""`make demo`: the main job end to end, on 2 CPU cores in a few minutes.

1. synthesise a small drone-video benchmark (`msam data synth`), and a second corpus of other places and objects
   whose captions list every object (`--caption-style listing`);
2. pretrain the tiny CLIP on that corpus (CLIP's loss on mean-pooled frames) and save it as a CLIP folder — a
   stand-in for CLIP's pretraining on other data, which the Hub would give (`--pretrain_videos 0` skips it);
3. fine-tune MSAM from it (`--clip_model`, `training/recipes/tiny-synthetic.yaml`) with `accelerate launch`;
4. evaluate the best checkpoint on the test split (`msam evaluate`: table, JSON, plots) against chance;
5. reload it in a fresh process with `AutoModel.from_pretrained(..., trust_remote_code=True)` — a process that
   never imports msam_hf, as on the Hub — and run two text queries over the test videos, printing the top 5.
"""

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from .data import load_video_text_dataset
from .data.synth import SynthConfig
from .data.synth import generate_synthetic_dataset
from .modeling_msam import MsamModel
from .video_io import FrameCache

REPO = Path(__file__).resolve().parents[1]
TRAIN_SCRIPT = REPO / "training" / "train.py"
RECIPE = REPO / "training" / "recipes" / "tiny-synthetic.yaml"
NUM_QUERIES = 2

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
    parser.add_argument("--output_dir", type=Path, default=Path("demo_output"))
    parser.add_argument("--num_videos", type=int, default=1000, help="synthetic videos (70/10/20 %% splits)")
    parser.add_argument("--num_epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--resolution", type=int, default=128, help="synthetic frame size in pixels")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per synthetic video")
    parser.add_argument("--videos_per_site", type=int, default=SynthConfig.videos_per_site,
                        help="synthetic videos sharing one background")
    parser.add_argument("--batch_size", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--pretrain_videos", type=int, default=1000,
                        help="videos of the pretraining corpus (another seed: other places and objects; captions "
                             "listing every object); 0 trains MSAM from scratch")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    steps = 5 if args.pretrain_videos else 4
    step = iter(range(1, steps + 1))
    data_dir, pretrain_dir, run_dir, eval_dir, cache_dir = (
        args.output_dir / name for name in ("data", "pretrain", "run", "eval", "frame_cache"))
    shutil.rmtree(cache_dir, ignore_errors=True)  # the videos are synthesised anew: old entries would only take space

    _step(next(step), steps, f"synthesise {args.num_videos} drone videos ({args.resolution} px, {args.duration:g} s)"
          + (f" and a pretraining corpus of {args.pretrain_videos}" if args.pretrain_videos else ""))
    config = SynthConfig(num_videos=args.num_videos, width=args.resolution, height=args.resolution,
                         duration=args.duration, videos_per_site=args.videos_per_site)
    generate_synthetic_dataset(data_dir, config, overwrite=True)
    overrides = [item for name in ("num_epochs", "batch_size") if getattr(args, name) is not None
                 for item in (f"--{name}", str(getattr(args, name)))]
    backbone = []
    if args.pretrain_videos:
        write_pretraining_corpus(pretrain_dir / "data", config, args.pretrain_videos)
        _step(next(step), steps, "pretrain the tiny CLIP on the corpus (mean-pooled frames, CLIP's loss)")
        clip_dir = pretrain_tiny_clip(pretrain_dir, cache_dir, *overrides)
        backbone = ["--clip_model", str(clip_dir)]

    _step(next(step), steps, "train MSAM (tiny preset, " + ("from the pretrained CLIP" if backbone else "from scratch")
          + ") with accelerate launch")
    _train(data_dir, run_dir, cache_dir, *backbone, *overrides)

    _step(next(step), steps, "evaluate the best checkpoint on the test split")
    _run([sys.executable, "-m", "msam_hf.cli", "evaluate", str(run_dir / "best"), str(data_dir), "--split", "test",
          "--output-dir", str(eval_dir), "--frame-cache-dir", str(cache_dir)])
    results = json.loads((eval_dir / "results.json").read_text())["best"]
    chance = 100.0 / results["num_videos"]
    for key, metrics in results["metrics"].items():
        print(f"test text-to-video R@1 at {key}: {metrics['t2v_r1']:.1f} % (chance {chance:.1f} %), "
              f"median rank {metrics['t2v_median_rank']:g} (chance {(results['num_videos'] + 1) / 2:g})")

    _step(next(step), steps, "reload with AutoModel.from_pretrained(trust_remote_code=True) in a fresh process and search")
    test = load_video_text_dataset(data_dir)["test"]
    max_frames = json.loads((run_dir / "best" / "config.json").read_text())["max_frames"]
    frames_file = args.output_dir / "test_frames.npz"
    cache = FrameCache(cache_dir)
    np.savez(frames_file, video_ids=np.array(test["video_id"]), **{
        f"video_{index}": cache.read(row["video"], max_frames=max_frames).frames for index, row in enumerate(test)
    })
    queries = [{"text": test[index]["captions"][0], "video_id": test[index]["video_id"]} for index in range(NUM_QUERIES)]
    _run([sys.executable, "-c", SEARCH_IN_FRESH_PROCESS, str(run_dir / "best"), str(frames_file), json.dumps(queries)])
    print(f"\ndemo finished in {time.perf_counter() - started:.0f} s; outputs in {args.output_dir}/ "
          f"(plots: {eval_dir}/recall_at_k.png, {eval_dir}/frame_attention.png)")


def write_pretraining_corpus(data_dir: Path, benchmark: SynthConfig, num_videos: int) -> None:
    """Synthesise `num_videos` of other places and objects than `benchmark`'s (the next seed), with captions
    listing every object: a stand-in for the web data CLIP is pretrained on."""
    corpus = dataclasses.replace(benchmark, num_videos=num_videos, seed=benchmark.seed + 1, caption_style="listing",
                                 split_fractions=(0.9, 0.1, 0.0))
    generate_synthetic_dataset(data_dir, corpus, overwrite=True)


def pretrain_tiny_clip(pretrain_dir: Path, cache_dir: Path, *options: str) -> Path:
    """Train the tiny CLIP on `pretrain_dir / "data"` with CLIP's loss on mean-pooled frames (the demo's recipe)
    and save it as a CLIP folder, `pretrain_dir / "clip"`, for `train.py --clip_model`."""
    _train(pretrain_dir / "data", pretrain_dir / "run", cache_dir, "--similarity_head", "mean",
           "--semantic_loss", "false", *options)
    MsamModel.from_pretrained(pretrain_dir / "run" / "best").clip.save_pretrained(pretrain_dir / "clip")
    return pretrain_dir / "clip"


def _step(number: int, steps: int, title: str) -> None:
    print(f"\n== step {number}/{steps}: {title}", flush=True)


def _train(data_dir: Path, output_dir: Path, cache_dir: Path, *options: str) -> None:
    """`accelerate launch training/train.py` with the demo's recipe, one process; each video is decoded once."""
    _run([sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
          "--mixed_precision", "no", "--dynamo_backend", "no", str(TRAIN_SCRIPT), str(RECIPE),
          "--data_dir", str(data_dir), "--output_dir", str(output_dir), "--log_with", "none",
          "--frame_cache_dir", str(cache_dir), *options])


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, cwd=REPO)


if __name__ == "__main__":
    main()
