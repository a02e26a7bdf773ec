"""Training steps from a frozen backbone's cached features (`train.py --finetune frozen --feature_cache_dir`) against
steps from pixels, same model, same batches, side by side.

On a synthetic split (the demo's videos: 4 s at 128 × 128, sampled at 1 fps), the tiny MSAM (CIFFP + semantic loss)
with its CLIP towers frozen trains `--steps` optimiser steps two ways: from pixels (the DataLoader with a warm frame
cache, so decoding is not counted, then the frozen towers and the new modules) and from the cached features (the new
modules only). Prints steps per second, the ratio, and the one-off cost of encoding the split. The two ways run
interleaved, so drift of this noisy machine hits both alike.

    python benchmarks/bench_feature_cache.py [--num_videos 300] [--steps 20] [--max_frames 12] [--repeats 2]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import torch

from msam_hf import MsamConfig
from msam_hf import MsamModel
from msam_hf import default_processor
from msam_hf.data import VideoTextCollator
from msam_hf.data import VideoTextDataset
from msam_hf.data import load_video_text_dataset
from msam_hf.data.synthetic import SynthConfig
from msam_hf.data.synthetic import generate_synthetic_dataset
from msam_hf.feature_cache import CachedFeatureCollator
from msam_hf.feature_cache import CachedFeatureDataset
from msam_hf.feature_cache import encode_split
from msam_hf.grad_cache import MODEL_INPUTS
from msam_hf.optimization import build_optimizer_and_scheduler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_videos", type=int, default=300)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--max_frames", type=int, default=12, help="the paper's sampling (all 4 frames of 4 s)")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20, help="optimiser steps timed per way and repeat")
    parser.add_argument("--num_workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per way (the best is kept)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        data_dir, frames_dir, features_dir = (Path(folder) / name for name in ("data", "frames", "features"))
        generate_synthetic_dataset(
            data_dir, SynthConfig(num_videos=args.num_videos, duration=args.duration, split_fractions=(1.0, 0.0, 0.0))
        )
        split = load_video_text_dataset(data_dir)["train"]
        torch.manual_seed(0)
        model = MsamModel(MsamConfig.tiny(max_frames=args.max_frames))
        model.clip.requires_grad_(False)
        model.clip.logit_scale.requires_grad_(True)
        processor = default_processor(model.config)

        started = time.perf_counter()
        cached = encode_split(
            model,
            split,
            processor,
            features_dir,
            "train",
            max_frames=args.max_frames,
            num_workers=args.num_workers,
            frame_cache_dir=frames_dir,
        )
        encoding_seconds = time.perf_counter() - started  # decoding included: the cost of the first epoch

        pixel_loader = torch.utils.data.DataLoader(
            VideoTextDataset(split, max_frames=args.max_frames, frame_cache_dir=frames_dir),
            shuffle=True,
            batch_size=args.batch_size,
            drop_last=True,
            num_workers=args.num_workers,
            collate_fn=VideoTextCollator(processor),
        )
        cached_loader = torch.utils.data.DataLoader(
            CachedFeatureDataset(cached),
            shuffle=True,
            batch_size=args.batch_size,
            drop_last=True,
            collate_fn=CachedFeatureCollator(cached),
        )
        optimizer, _ = build_optimizer_and_scheduler(model, args.steps)

        def steps_per_second(loader) -> float:
            batches = itertools.islice(itertools.cycle(loader), args.steps)
            started = time.perf_counter()
            for batch in batches:
                output = model(**{name: batch[name] for name in MODEL_INPUTS if name in batch}, return_loss=True)
                output.loss.backward()
                optimizer.step()
                optimizer.zero_grad()
            return args.steps / (time.perf_counter() - started)

        from_pixels, from_cache = [], []
        for _ in range(args.repeats):
            from_pixels.append(steps_per_second(pixel_loader))
            from_cache.append(steps_per_second(cached_loader))
    frames = int(cached.video_mask.sum(1).float().mean())
    print(
        f"\n{len(split)} videos of {args.duration:g} s ({frames} frames each), batch {args.batch_size}, tiny MSAM "
        f"(CIFFP + semantic loss) with frozen towers; best of {args.repeats} × {args.steps} steps\n"
    )
    print("| training step | steps / s | × from pixels |\n|---|---|---|")
    print(f"| from pixels (warm frame cache, {args.num_workers} workers) | {max(from_pixels):.2f} | 1.00 |")
    print(f"| from cached features | {max(from_cache):.2f} | {max(from_cache) / max(from_pixels):.1f} |")
    print(
        f"\nencoding the split once (decoding included): {encoding_seconds:.0f} s, "
        f"{len(split) / encoding_seconds:.0f} videos / s"
    )


if __name__ == "__main__":
    main()
