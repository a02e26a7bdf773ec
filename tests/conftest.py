"""Shared fixtures: small real videos written with PyAV, the path of the shared reference data, and the command that
starts a real multi-process run."""

from __future__ import annotations

import fractions
import json
import sys
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
USRD = SHARED / "data" / "usrd"

# Container → (codec, extension) pairs the bundled FFmpeg writes and reads.
CONTAINERS = {
    "mp4": ("libx264", ".mp4"),
    "avi": ("mpeg4", ".avi"),
    "mkv": ("libx264", ".mkv"),
    "webm": ("libvpx-vp9", ".webm"),
    "mov": ("libx264", ".mov"),
}
MARK_STEP = 8  # gray levels 8 apart survive lossy coding: 32 levels per block (see `frame_image`)


def accelerate_launch(*arguments, num_processes: int = 2, mixed_precision: str = "no") -> list[str]:
    """The command that runs `arguments` (a script and its arguments, or `-m module ...`) in `num_processes` real CPU
    processes with `accelerate launch`. `--cpu --num_processes 2` would start one process; `--multi_gpu` starts two,
    which join (gloo) because our code passes `cpu=True` when there is no GPU. Port 0: each run picks a free port."""
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        *(["--multi_gpu"] if num_processes > 1 else []),
        "--num_processes",
        str(num_processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        mixed_precision,
        "--dynamo_backend",
        "no",
        "--main_process_port",
        "0",
        *map(str, arguments),
    ]


def frame_image(number: int, width: int, height: int) -> np.ndarray:
    """Frame `number` (< 1024): gray blocks that identify it, and a square that moves (real motion to code)."""
    image = np.full((height, width, 3), 40, np.uint8)
    image[: height // 2, : width // 2] = MARK_STEP * (number % 32)
    image[: height // 2, width // 2 :] = MARK_STEP * (number // 32)
    side = max(4, height // 4)
    left = (3 * number) % (width - side)
    image[height - side :, left : left + side] = (250, 30, 30)
    return image


def frame_number(frame: np.ndarray) -> int:
    """The number `frame_image` wrote into a decoded frame (lossy codecs move gray levels by a few steps)."""
    height, width = frame.shape[:2]
    low = frame[2 : height // 2 - 2, 2 : width // 2 - 2].mean() / MARK_STEP
    high = frame[2 : height // 2 - 2, width // 2 + 2 : width - 2].mean() / MARK_STEP
    return int(round(high)) * 32 + int(round(low))


def write_video(
    path: Path,
    *,
    seconds: float = 3.0,
    rate: int = 10,
    codec: str = "libx264",
    size: tuple[int, int] = (64, 48),
    gop: int | None = None,
    b_frames: int | None = None,
    frame_times: list[float] | None = None,
    container_format: str | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Write a small real video; frame n shows `frame_image(n)`.

    `frame_times` (seconds) gives a variable frame rate instead of `rate`; `gop` sets the keyframe
    interval in frames; `b_frames` the number of B-frames (libx264).
    """
    width, height = size
    times = frame_times if frame_times is not None else [n / rate for n in range(round(seconds * rate))]
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=container_format, options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if gop is not None:
            stream.codec_context.gop_size = gop
        if b_frames is not None:
            stream.codec_context.max_b_frames = b_frames
        if codec == "libx264":
            # Keyframes only every `gop` frames (no scene-cut keyframes), fast encoding.
            stream.options = {"preset": "ultrafast" if b_frames is None else "veryfast", "sc_threshold": "0"}
        if frame_times is not None:
            stream.codec_context.time_base = fractions.Fraction(1, 1000)
        for number, time in enumerate(times):
            frame = av.VideoFrame.from_ndarray(frame_image(number, width, height), format="rgb24")
            if frame_times is not None:
                frame.pts, frame.time_base = round(time * 1000), fractions.Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_audio(path: Path, seconds: float = 1.0, rate: int = 8000) -> Path:
    """An audio-only file (format from the extension, e.g. .wav): a container with no video stream."""
    with av.open(str(path), "w") as container:
        codec = "pcm_s16le" if path.suffix == ".wav" else "libmp3lame"
        stream = container.add_stream(codec, rate=rate)
        samples = (np.sin(np.arange(int(seconds * rate)) / 10) * 3000).astype(np.int16)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.fixture(scope="session")
def videos(tmp_path_factory) -> dict[str, Path]:
    """One short video per container (3 s, 10 fps, 64x48), written once per test session."""
    folder = tmp_path_factory.mktemp("videos")
    return {
        name: write_video(folder / f"clip{extension}", codec=codec) for name, (codec, extension) in CONTAINERS.items()
    }


@pytest.fixture
def make_videofolder(tmp_path) -> Callable[..., Path]:
    """Build a videofolder dataset: `make_videofolder({"clip_a": ["caption", ...], ...}, splits={...})`.

    Each video gets a real 2 s MP4 (unless listed in `without_file`) and a metadata.jsonl row with its
    captions, split and optional attributes.
    """

    def build(
        captions: dict[str, list[str]],
        splits: dict[str, str] | None = None,
        attributes: dict[str, dict[str, list[str]]] | None = None,
        without_file: tuple[str, ...] = (),
        root: Path | None = None,
    ) -> Path:
        root = root or tmp_path / "videofolder"
        root.mkdir(parents=True, exist_ok=True)
        with (root / "metadata.jsonl").open("w", encoding="utf-8") as metadata:
            for index, (video_id, texts) in enumerate(captions.items()):
                if video_id not in without_file:
                    write_video(root / f"{video_id}.mp4", seconds=2.0, rate=5 + index)
                row = {"file_name": f"{video_id}.mp4", "captions": texts}
                if splits:
                    row["split"] = splits[video_id]
                if attributes and video_id in attributes:
                    row["attributes"] = attributes[video_id]
                metadata.write(json.dumps(row) + "\n")
        return root

    return build


@pytest.fixture
def usrd_dir() -> Path:
    if not (USRD / "raw-captions.pkl").is_file():
        pytest.skip(f"the shared USRD captions are not here ({USRD}); they come with the project's ../shared folder")
    return USRD
