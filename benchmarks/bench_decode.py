"""Decoding speed: `msam_hf.video_io.read_frames` against the naive way.

Writes a 60 s 1280x720 30 fps H.264 clip with PyAV into a temporary folder, then reads 12
frames at 1 fps (the MSAM recipe) with `read_frames` (packet index, keyframe seeking, unreferenced
frames left out, RGB conversion of the chosen frames only), with `read_frames(seek=False)` (every
frame decoded, only the chosen ones converted) and with the naive loop (decode every frame and convert
it to RGB, then pick), checks that all three give identical frames, and prints the timings.

The keyframe interval decides how much seeking can skip, so two are measured: one keyframe a
second (30 frames) and x264's default of 250 frames (8.3 s at 30 fps). B-frames (x264 "veryfast"
uses 3) are what the fast path leaves out between keyframes.

    .venv/bin/python benchmarks/bench_decode.py [--gops 30 250] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from msam_hf.video_io import read_frames
from msam_hf.video_io import sample_frame_indices

WIDTH, HEIGHT, RATE, SECONDS = 1280, 720, 30, 60
FPS, MAX_FRAMES = 1.0, 12
TARGET_SPEEDUP = 3.0


def write_clip(
    path: Path, width: int = WIDTH, height: int = HEIGHT, seconds: int = SECONDS, rate: int = RATE, gop: int = 30
) -> None:
    """A moving pattern (so frames differ and the encoder has real work), H.264 yuv420p, x264 veryfast."""
    # A scene twice the frame size; each frame is a window panning across it, like a drone.
    ys, xs = np.mgrid[0 : 2 * height, 0 : 2 * width]
    scene = np.stack([xs % 256, ys % 256, ((xs // 40 + ys // 40) % 2) * 200], axis=-1).astype(np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.options = {"preset": "veryfast", "crf": "23", "sc_threshold": "0"}  # keyframes only every `gop`
        for index in range(rate * seconds):
            top, left = (3 * index) % height, (5 * index) % width
            window = np.ascontiguousarray(scene[top : top + height, left : left + width])
            container.mux(stream.encode(av.VideoFrame.from_ndarray(window, format="rgb24")))
        container.mux(stream.encode(None))


def read_naive(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Decode every frame, convert every frame to RGB, then pick 12 at 1 fps.

    Only the first frame at or after each whole second is kept in memory (60 arrays instead of
    1800; the pick can only choose those), which does not change the work done.
    """
    times, kept, last_interval = [], {}, -1
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for number, frame in enumerate(container.decode(stream)):
            rgb = frame.to_ndarray(format="rgb24")
            times.append(frame.time)
            interval = int(np.floor((frame.time - times[0]) * FPS + 1e-6))
            if interval > last_interval:  # the first frame at or after a whole second
                kept[number], last_interval = rgb, interval
    times = np.asarray(times) - times[0]
    chosen = sample_frame_indices(times, FPS, MAX_FRAMES)
    return np.stack([kept[int(number)] for number in chosen]), times[chosen]


def best_of(repeats: int, function, *args):
    timings, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function(*args)
        timings.append(time.perf_counter() - start)
    return min(timings), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gops", type=int, nargs="+", default=[30, 250], help="keyframe intervals (frames) to measure")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per reader; the best is reported")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for gop in args.gops:
            path = Path(folder) / f"clip_gop{gop}.mp4"
            start = time.perf_counter()
            write_clip(path, gop=gop)
            print(
                f"wrote {path.name}: {WIDTH}x{HEIGHT} {RATE} fps {SECONDS} s, keyframe every {gop} frames, "
                f"{path.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - start:.0f} s"
            )
            naive_seconds, (naive_frames, naive_times) = best_of(args.repeats, read_naive, path)
            ours_seconds, ours = best_of(args.repeats, read_frames, path, FPS, MAX_FRAMES)
            sequential_seconds, sequential = best_of(1, lambda p: read_frames(p, FPS, MAX_FRAMES, seek=False), path)
            assert ours.frames.shape == (MAX_FRAMES, HEIGHT, WIDTH, 3), ours.frames.shape
            assert np.array_equal(ours.frames, naive_frames), "read_frames and the naive decode disagree"
            assert np.array_equal(sequential.frames, naive_frames), (
                "sequential read_frames and the naive decode disagree"
            )
            assert np.allclose(ours.timestamps, naive_times)
            rows.append((gop, naive_seconds, sequential_seconds, ours_seconds))

    print(
        f"\n12 frames at 1 fps from a 60 s 720p30 H.264 clip (best of {args.repeats}; frames identical in all readers)"
    )
    print(
        f"{'keyframe every':>14} | {'naive (s)':>9} | {'seek=False (s)':>14} | {'read_frames (s)':>15} | {'speed-up':>8}"
    )
    print("-" * 73)
    for gop, naive_seconds, sequential_seconds, ours_seconds in rows:
        print(
            f"{gop:>8} frames | {naive_seconds:9.2f} | {sequential_seconds:14.2f} | {ours_seconds:15.2f} | "
            f"{naive_seconds / ours_seconds:7.1f}x"
        )
    for gop, naive_seconds, _, ours_seconds in rows:
        ratio = naive_seconds / ours_seconds
        verdict = "meets" if ratio >= TARGET_SPEEDUP else "misses"
        print(f"keyframe every {gop} frames: {ratio:.1f}x faster than naive ({verdict} the {TARGET_SPEEDUP:.0f}x goal)")


if __name__ == "__main__":
    main()
