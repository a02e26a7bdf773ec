"""Can the data path feed a GPU? Videos per second per DataLoader worker at the paper's sampling (12 frames at 1 fps,
224 px after the processor) on realistic inputs: generated 30 s 1280 × 720 H.264 clips at 30 fps, like drone
footage. Four ways, side by side in one run:

- the raw clips, decoded every epoch;
- the raw clips from the frame cache (`train.py --frame_cache_dir`; an entry holds 12 full-size frames);
- the clips after `msam data prepare` (CLIP4Clip-style: 3 fps, short side 224), decoded every epoch;
- the prepared clips from the frame cache.

One worker is one process doing what a training DataLoader worker does per video (`VideoTextDataset`: decode or
read the cache, the processor's resize and normalisation, collation); run in this process, timed per video, best of
`--repeats`. The one-off cost of `msam data prepare` per video is printed too. From the rates it estimates how many
workers feed one ViT-B/32 training step at batch 128 × 12 frames taking `--step_seconds` (an estimate until
`benchmarks/bench_gpu.py` measures it on a GPU; see docs/gpu.md for the arithmetic).

    python benchmarks/bench_data_loading.py [--texture detailed|smooth] [--num_videos 6] [--step_seconds 0.15]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
from bench_decode import write_clip as write_smooth_clip  # benchmarks/ is the script's folder

from msam_hf import default_processor
from msam_hf.data import VideoTextCollator
from msam_hf.data import VideoTextDataset
from msam_hf.data import load_video_text_dataset
from msam_hf.data.prepare import prepare_videos
from msam_hf.provenance import environment

BATCH, FRAMES = 128, 12  # the paper's training batch and frames per video


def write_clip(path: Path, seconds: float, fps: int, width: int, height: int, seed: int, texture: str) -> None:
    """A drone-like clip, H.264 with a keyframe a second (as cameras write), the view moving over a larger scene.
    `texture`: "detailed" (random 8-px blocks with sensor noise, panned: costly to code, as detailed ground is) or
    "smooth" (`benchmarks/bench_decode.py`'s clip: gradients and a checkerboard, cheap to code)."""
    if texture == "smooth":
        write_smooth_clip(path, width, height, round(seconds), fps, gop=fps)
        return
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 8 + 8, width // 8 + 64, 3), dtype=np.uint8)
    scene = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1).astype(np.int16)
    noise = rng.normal(0, 4, (8, height, width, 3)).astype(np.int16)  # cycled: drawing it per frame is slow
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = fps
        stream.options = {"preset": "veryfast", "crf": "23"}
        for index in range(round(seconds * fps)):
            shift = int(index * 512 / (seconds * fps))  # pans 512 px over the clip
            frame = np.clip(scene[:height, shift : shift + width] + noise[index % len(noise)], 0, 255)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame.astype(np.uint8), format="rgb24")))
        container.mux(stream.encode(None))


def videos_per_second(data_dir: Path, cache_dir: Path | None, repeats: int) -> float:
    """One worker's rate: every video of the split through VideoTextDataset and the collator, in this process."""
    split = load_video_text_dataset(data_dir)["train"]
    collator = VideoTextCollator(default_processor())
    best = 0.0
    for _ in range(repeats):
        dataset = VideoTextDataset(split, mode="train", fps=1.0, max_frames=FRAMES, frame_cache_dir=cache_dir)
        started = time.perf_counter()
        for index in range(len(dataset)):
            collator([dataset[index]])
        best = max(best, len(dataset) / (time.perf_counter() - started))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_videos", type=int, default=6)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per clip")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--source_fps", type=int, default=30)
    parser.add_argument("--texture", choices=("detailed", "smooth"), default="detailed", help="see write_clip")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per way (the best is kept)")
    parser.add_argument(
        "--step_seconds",
        type=float,
        default=0.15,
        help="time of one ViT-B/32 training step at batch 128 x 12 frames (default: an estimate, docs/gpu.md)",
    )
    parser.add_argument("--output", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one worker: one core

    with tempfile.TemporaryDirectory() as folder:
        raw, prepared = Path(folder) / "raw", Path(folder) / "prepared"
        raw.mkdir()
        started = time.perf_counter()
        with (raw / "metadata.jsonl").open("w") as metadata:
            for index in range(args.num_videos):
                clip = raw / f"clip{index}.mp4"
                write_clip(clip, args.duration, args.source_fps, args.width, args.height, index, args.texture)
                metadata.write(json.dumps({"file_name": f"clip{index}.mp4", "captions": ["a drone flies"]}) + "\n")
        print(f"wrote {args.num_videos} clips in {time.perf_counter() - started:.0f} s")
        fingerprint = hashlib.sha256(b"".join(path.read_bytes() for path in sorted(raw.glob("*.mp4")))).hexdigest()
        report = prepare_videos(raw, prepared, num_workers=0, progress=False)
        prepare_seconds = report.seconds / args.num_videos
        rates = {}
        for name, data_dir in (("raw clips", raw), ("prepared (3 fps, 224 px)", prepared)):
            cache = Path(folder) / f"cache-{data_dir.name}"
            rates[f"{name}, decoded every epoch"] = videos_per_second(data_dir, None, args.repeats)
            videos_per_second(data_dir, cache, 1)  # fills the cache
            rates[f"{name}, from the frame cache"] = videos_per_second(data_dir, cache, args.repeats)
            entry = sum(path.stat().st_size for path in cache.rglob("*.npz")) / args.num_videos
            rates[f"{name}, cache entry MB"] = entry / 1e6
        raw_bytes = sum(path.stat().st_size for path in raw.glob("*.mp4")) / args.num_videos
        prepared_bytes = sum(path.stat().st_size for path in (prepared / "videos").glob("*.mp4")) / args.num_videos

    needed = BATCH / args.step_seconds
    print(
        f"\n{args.num_videos} {args.texture} clips of {args.duration:g} s, {args.width} x {args.height} at "
        f"{args.source_fps} fps "
        f"({raw_bytes / 1e6:.1f} MB each; prepared: {prepared_bytes / 1e6:.2f} MB, {prepare_seconds:.1f} s of one "
        f"core each); {FRAMES} frames at 1 fps; one worker = one core; best of {args.repeats}\n"
    )
    print(
        "| data path | videos / s per worker | cache entry (MB) | workers for a step of "
        f"{args.step_seconds:g} s at batch {BATCH} |"
    )
    print("|---|---|---|---|")
    results = {}
    for name in ("raw clips", "prepared (3 fps, 224 px)"):
        for way in ("decoded every epoch", "from the frame cache"):
            rate = rates[f"{name}, {way}"]
            entry = f"{rates[f'{name}, cache entry MB']:.1f}" if way == "from the frame cache" else "-"
            workers = math.ceil(needed / rate)
            print(f"| {name}, {way} | {rate:.2f} | {entry} | {workers} |")
            results[f"{name}, {way}"] = {"videos_per_second": rate, "workers": workers}
    print(f"\nA step of {args.step_seconds:g} s at batch {BATCH} consumes {needed:.0f} videos / s.")
    if args.output:
        record = {
            "command": "python benchmarks/bench_data_loading.py " + " ".join(sys.argv[1:]),
            "arguments": vars(args),
            "data": f"generated by this script (write_clip, {args.texture}, seeds 0 .. num_videos - 1)",
            "data_fingerprint": fingerprint[:16],
            "results": results,
            "environment": environment(),
        }
        args.output.write_text(json.dumps(record, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
