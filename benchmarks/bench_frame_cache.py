"""Training data loading with and without the frame cache (`train.py --frame_cache_dir`), side by side.

On a synthetic split (the demo's videos: 4 s at 128 × 128), one pass of the training DataLoader — decoding, the
processor, collation, 2 worker processes — three ways: decoding every video (what every epoch costs without a
cache), the first epoch with a cache (decodes and writes the entries) and a later epoch (reads them). Prints
videos per second and the ratios. A training step of the tiny preset is ~0.3 s at batch 32, so data loading
decides an epoch's time on 2 cores.

    python benchmarks/bench_frame_cache.py [--num_videos 300] [--max_frames 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from msam_hf import default_processor
from msam_hf.data import VideoTextCollator
from msam_hf.data import VideoTextDataset
from msam_hf.data import load_video_text_dataset
from msam_hf.data.synthetic import SynthConfig
from msam_hf.data.synthetic import generate_synthetic_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_videos", type=int, default=300)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--max_frames", type=int, default=2, help="the demo's recipe: 2; the paper's: 12")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--num_workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="passes timed per way (the best is kept)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        data_dir, cache_dir = Path(folder) / "data", Path(folder) / "cache"
        generate_synthetic_dataset(
            data_dir, SynthConfig(num_videos=args.num_videos, duration=args.duration, split_fractions=(1.0, 0.0, 0.0))
        )
        split = load_video_text_dataset(data_dir)["train"]
        collator = VideoTextCollator(default_processor())

        def one_pass(cache: Path | None) -> float:
            dataset = VideoTextDataset(split, mode="train", max_frames=args.max_frames, frame_cache_dir=cache)
            loader = torch.utils.data.DataLoader(
                dataset, batch_size=args.batch_size, num_workers=args.num_workers, collate_fn=collator, shuffle=True
            )
            started = time.perf_counter()
            videos = sum(len(batch["video_ids"]) for batch in loader)
            return videos / (time.perf_counter() - started)

        # Interleaved, so that drift of this noisy machine hits every way alike.
        decoding, first, cached = [], [], []
        for repeat in range(args.repeats):
            decoding.append(one_pass(None))
            fresh = cache_dir / str(repeat)
            first.append(one_pass(fresh))
            cached.append(one_pass(fresh))
        rows = {
            "decode every epoch (no cache)": max(decoding),
            "first epoch with a cache (decode + write)": max(first),
            "later epochs with a cache (read)": max(cached),
        }
        entry_bytes = sum(path.stat().st_size for path in (cache_dir / "0").rglob("*.npz")) / len(split)
    print(
        f"\n{len(split)} videos of {args.duration:g} s, {args.max_frames} frames each, batch {args.batch_size}, "
        f"{args.num_workers} workers; best of {args.repeats}; cache entry {entry_bytes / 1024:.0f} KiB a video\n"
    )
    print("| data loading | videos / s | × no cache |\n|---|---|---|")
    for name, rate in rows.items():
        print(f"| {name} | {rate:.0f} | {rate / rows['decode every epoch (no cache)']:.2f} |")


if __name__ == "__main__":
    main()
