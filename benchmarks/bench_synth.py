"""The synthetic drone benchmark: generation speed, and what can be solved without seeing objects.

1. Generate 200 videos of 8 s at 128 × 128 (the defaults) with 2 worker processes. Goal: under 60 s on 2 cores.
2. On that dataset's test split, the background-only and caption-length-only baselines of
   `msam_hf.data.synthetic.baselines` (fit on train), next to chance. Both should be near chance: the benchmark must
   need the small objects.

    python benchmarks/bench_synth.py [--num_videos 200] [--duration 8] [--workers 2] [--videos_per_site 5]
    python benchmarks/bench_synth.py --num_videos 1000 --duration 4      # the default benchmark
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from msam_hf.data import load_video_text_dataset
from msam_hf.data.synthetic import SynthConfig
from msam_hf.data.synthetic import generate_synthetic_dataset
from msam_hf.data.synthetic.baselines import run_baselines

GOAL_SECONDS = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_videos", type=int, default=200)
    parser.add_argument("--duration", type=float, default=SynthConfig.duration)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--videos_per_site", type=int, default=SynthConfig.videos_per_site)
    parser.add_argument("--hard_negative_fraction", type=float, default=SynthConfig.hard_negative_fraction)
    args = parser.parse_args()

    config = SynthConfig(
        num_videos=args.num_videos,
        duration=args.duration,
        seed=args.seed,
        videos_per_site=args.videos_per_site,
        hard_negative_fraction=args.hard_negative_fraction,
    )
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        generate_synthetic_dataset(Path(folder) / "synth", config, num_workers=args.workers, progress=False)
        seconds = time.perf_counter() - started
        print(
            f"## Generation\n\n{config.num_videos} videos of {config.duration:g} s at {config.width}×{config.height}, "
            f"{config.fps:g} fps, {args.workers} workers: {seconds:.1f} s ({config.num_videos / seconds:.1f} videos/s); "
            f"goal under {GOAL_SECONDS:.0f} s: {'met' if seconds < GOAL_SECONDS else 'NOT met'}\n"
        )
        dataset = load_video_text_dataset(Path(folder) / "synth")
        results = run_baselines(dataset, "test", synthetic_dir=Path(folder) / "synth", progress=False)

    test_videos = len(dataset["test"])
    print(
        f"## Baselines on the test split ({test_videos} videos, {sum(map(len, dataset['test']['captions']))} captions, "
        "ties: mean)\n"
    )
    print("| baseline | T2V R@1 | T2V R@5 | T2V R@10 | T2V MdR | V2T R@1 | V2T R@5 |")
    print("|---|---|---|---|---|---|---|")
    for name, metrics in results.items():
        print(
            f"| {name} | {metrics['t2v_r1']:.1f} | {metrics['t2v_r5']:.1f} | {metrics['t2v_r10']:.1f} | "
            f"{metrics['t2v_median_rank']:.1f} | {metrics['v2t_r1']:.1f} | {metrics['v2t_r5']:.1f} |"
        )


if __name__ == "__main__":
    main()
