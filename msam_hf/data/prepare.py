"""`msam data prepare`: get a dataset's videos ready to feed a GPU, ahead of training.

Decoding long, high-resolution videos costs far more than a training step needs: a 30 s 1280 × 720 clip is decoded
to give 12 frames of 224 px (docs/gpu.md measures it). Two optional offline steps, each run over many
processes:

- **Re-encoding** (`prepare_videos`), as CLIP4Clip-family repositories do before training (their
  `compress_video.py`: `ffmpeg -r 3` and a scale to a short side of 224, the other side even): every video of every
  split is written again at `video_fps` frames per second (constant rate, each output frame the input frame nearest
  in time) and `short_side` pixels, to a new dataset folder in the video-folder layout. The folder records how it was
  made in `prepared.json`; training on it copies that record into the model's `training_args.json`, and
  `msam evaluate` warns when a model trained on prepared videos is evaluated on videos that were not prepared the same
  way (train on compressed and test on original video is a known source of lost R@1).
- **The frame cache** (`fill_frame_cache`): the frames that training samples (`--fps`, `--max_frames`) decoded once
  into the cache that `train.py --frame_cache_dir` and `msam evaluate --frame-cache-dir` read.

A video that cannot be decoded is reported by name and left out, never silently: `PrepareReport.failed`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from dataclasses import field
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any

import av

from ..progress import map_with_progress
from ..video_io import FrameCache
from ..video_io import VideoDecodeError
from .readers import load_video_text_dataset

PREPARED_FILE = "prepared.json"
PREPARED_FORMAT = "msam-prepared-videos"
VIDEO_FOLDER = "videos"
# CLIP4Clip's compress_video.py: 3 frames per second, short side 224; libx264 at ffmpeg's defaults (crf 23), but for
# the keyframe interval (see `reencode_video`).
DEFAULT_VIDEO_FPS = 3.0
DEFAULT_SHORT_SIDE = 224
X264_OPTIONS = {"crf": "23"}
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass
class PrepareReport:
    """What a preparation wrote, kept (already there from an interrupted run) and could not read."""

    written: int = 0
    kept: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)  # {"video_id", "path", "reason"}
    seconds: float = 0.0

    def summary(self, what: str) -> str:
        line = f"{what}: {self.written} written, {self.kept} already there, {len(self.failed)} failed"
        line += f" in {self.seconds:.0f} s"
        for failure in self.failed[:10]:
            line += f"\n  failed: {failure['path']} ({failure['video_id']}): {failure['reason']}"
        if len(self.failed) > 10:
            line += f"\n  ... and {len(self.failed) - 10} more (all in {PREPARED_FILE} or the returned report)"
        return line


def scaled_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the short side `short_side` and the long side scaled alike, truncated to an even number
    (ffmpeg's `scale='if(gt(a,1),trunc(oh*a/2)*2,224)':...` in CLIP4Clip's script; H.264 needs even sides)."""
    if width >= height:
        return max(2, int(short_side * width / height / 2) * 2), short_side
    return short_side, max(2, int(short_side * height / width / 2) * 2)


def reencode_video(source: str | os.PathLike, target: str | os.PathLike, video_fps: float, short_side: int) -> None:
    """Write `source` again as an H.264 MP4 at a constant `video_fps` and a short side of `short_side` pixels.

    Output frame k (at k / video_fps seconds) is the input frame nearest in time, as ffmpeg's `-r` does: frames are
    dropped from faster videos and repeated in slower ones; the output lasts as long as the input. The file appears
    under its name only when complete (written to a temporary name, then renamed)."""
    source, target = Path(source), Path(target)
    partial_file = target.with_name(f".{target.name}.partial")
    rate = Fraction(video_fps).limit_denominator(1001)
    try:
        with av.open(str(source)) as container, av.open(str(partial_file), "w", format="mp4") as output:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            width, height = scaled_size(stream.codec_context.width, stream.codec_context.height, short_side)
            encoder = output.add_stream("libx264", rate=rate)
            encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
            encoder.codec_context.thread_count = 1  # one video per process: workers run in parallel instead
            # A keyframe a second (CLIP4Clip's ffmpeg call keeps x264's 250 frames): sampling at 1 fps then seeks to
            # keyframes instead of decoding every frame of the video.
            encoder.codec_context.gop_size = max(1, round(video_fps))
            encoder.options = dict(X264_OPTIONS)
            slot, previous, previous_time, interval, start = 0, None, None, None, None

            def emit(frame: av.VideoFrame, until: float) -> None:
                nonlocal slot
                while slot / video_fps < until - 1e-6:  # a slot at `until` (up to rounding) is the next frame's
                    frame.pts, frame.time_base = slot, 1 / rate
                    output.mux(encoder.encode(frame))
                    slot += 1

            for frame in container.decode(stream):
                if frame.time is None:
                    raise VideoDecodeError(str(source), "a frame has no timestamp")
                start = frame.time if start is None else start  # the output starts at the first frame
                time = frame.time - start
                if previous is not None:
                    interval = time - previous_time
                    emit(previous, (previous_time + time) / 2)  # slots nearer the previous frame
                previous_time = time
                previous = frame.reformat(width=width, height=height, format="yuv420p", interpolation="BICUBIC")
            if previous is None:
                raise VideoDecodeError(str(source), "no video frame could be decoded")
            # The last frame lasts as long as the one before it (a one-frame video: one output frame).
            emit(previous, previous_time + (interval if interval and interval > 0 else 1 / video_fps))
            output.mux(encoder.encode(None))
    except BaseException:
        partial_file.unlink(missing_ok=True)
        raise
    partial_file.replace(target)


def prepare_videos(
    data_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    video_fps: float = DEFAULT_VIDEO_FPS,
    short_side: int = DEFAULT_SHORT_SIDE,
    num_workers: int = 2,
    progress: bool = True,
    command: str | None = None,
) -> PrepareReport:
    """Re-encode every video of the dataset at `data_dir` (any layout `load_video_text_dataset` reads) into
    `output_dir`: `videos/<video id>.mp4`, `metadata.jsonl` (the video-folder layout: captions, splits and attributes
    kept) and `prepared.json` (the settings, the source and the failures). Videos already written by an interrupted
    run with the same settings are kept; other settings in a non-empty `output_dir` are refused."""
    output_dir = Path(output_dir)
    if not (video_fps > 0 and short_side >= 2):
        raise ValueError(f"video_fps must be positive and short_side at least 2, got {video_fps} and {short_side}")
    settings = {"format": PREPARED_FORMAT, "video_fps": float(video_fps), "short_side": int(short_side)}
    _check_output(output_dir, settings)
    dataset = load_video_text_dataset(data_dir)
    rows = [{**row, "split": split} for split, rows in dataset.items() for row in rows]
    missing = [row["video_id"] for row in rows if not (row["video"] and row["video"].get("path"))]
    if missing:
        raise ValueError(
            f"{data_dir}: {len(missing)} video(s) have no file to re-encode (e.g. {missing[0]}); msam data prepare "
            "reads video files (a Hub dataset with embedded bytes: download its videos first)"
        )
    (output_dir / VIDEO_FOLDER).mkdir(parents=True, exist_ok=True)
    (output_dir / PREPARED_FILE).write_text(json.dumps({**settings, "complete": False}, indent=2) + "\n")
    jobs = [
        (row["video_id"], row["video"]["path"], output_dir / VIDEO_FOLDER / _file_name(row["video_id"])) for row in rows
    ]
    report = PrepareReport()
    started = time.perf_counter()
    work = partial(_reencode_job, video_fps=video_fps, short_side=short_side)
    failed_ids = set()
    for video_id, path, outcome in map_with_progress(work, jobs, num_workers, progress, "re-encoding videos", "video"):
        if outcome in ("written", "kept"):
            setattr(report, outcome, getattr(report, outcome) + 1)
        else:
            report.failed.append({"video_id": video_id, "path": str(path), "reason": outcome})
            failed_ids.add(video_id)
    report.seconds = time.perf_counter() - started
    with (output_dir / "metadata.jsonl").open("w", encoding="utf-8") as metadata:
        for row, (video_id, _, target) in zip(rows, jobs):
            if video_id not in failed_ids:
                entry = {"file_name": f"{VIDEO_FOLDER}/{target.name}", "video_id": video_id, "split": row["split"]}
                entry["captions"] = row["captions"]
                if row.get("attributes"):
                    entry["attributes"] = row["attributes"]
                metadata.write(json.dumps(entry) + "\n")
    record = {
        **settings,
        "complete": True,
        "source": str(Path(data_dir).resolve()) if Path(data_dir).exists() else str(data_dir),
        "videos": len(rows) - len(failed_ids),
        "failed": report.failed,
        "command": command,
    }
    (output_dir / PREPARED_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return report


def fill_frame_cache(
    data_dir: str | os.PathLike,
    cache_dir: str | os.PathLike,
    fps: float = 1.0,
    max_frames: int | None = 12,
    num_workers: int = 2,
    progress: bool = True,
) -> PrepareReport:
    """Decode the frames training samples from every video of the dataset at `data_dir` (`fps`, `max_frames`: the
    values given to train.py) into the frame cache at `cache_dir`; entries already there are read, not decoded."""
    dataset = load_video_text_dataset(data_dir)
    jobs = [(row["video_id"], row["video"], cache_dir) for rows in dataset.values() for row in rows if row["video"]]
    report = PrepareReport()
    started = time.perf_counter()
    work = partial(_cache_job, fps=fps, max_frames=max_frames)
    outcomes = map_with_progress(work, jobs, num_workers, progress, "filling the frame cache", "video")
    for video_id, video, outcome in outcomes:
        if outcome == "written":
            report.written += 1
        else:
            report.failed.append({"video_id": video_id, "path": str(video.get("path")), "reason": outcome})
    report.seconds = time.perf_counter() - started
    return report


def read_preparation(data_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The settings a `prepare_videos` folder was made with (`video_fps`, `short_side`, `source`), None for a
    dataset that was not prepared (or a Hub id)."""
    path = Path(data_dir) / PREPARED_FILE
    if not path.is_file():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    return {key: record.get(key) for key in ("video_fps", "short_side", "source")}


def trained_preparation(model_dir: str | os.PathLike) -> dict[str, Any] | None:
    """What `read_preparation` said of the data a model folder was trained on (train.py records it in the folder's
    `training_args.json`), None when it was not prepared or the folder does not say."""
    path = Path(model_dir) / "training_args.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("data_preparation")


def preparation_mismatch(trained_on: dict[str, Any] | None, evaluated_on: dict[str, Any] | None) -> str | None:
    """A warning when a model trained on prepared videos is evaluated on videos prepared otherwise (or not at all),
    None when they match or the model was trained on unprepared videos."""
    if not trained_on:
        return None
    settings = ("video_fps", "short_side")
    if evaluated_on and all(evaluated_on.get(key) == trained_on.get(key) for key in settings):
        return None
    made = f"{trained_on['video_fps']:g} fps, short side {trained_on['short_side']} px (msam data prepare)"
    here = (
        f"{evaluated_on['video_fps']:g} fps, short side {evaluated_on['short_side']} px"
        if evaluated_on
        else "videos that were not prepared"
    )
    return (
        f"the model was trained on videos re-encoded to {made} and is evaluated on {here}; results may be lower. "
        f"Prepare the evaluation data the same way: msam data prepare DATA OUT --video-fps {trained_on['video_fps']:g} "
        f"--short-side {trained_on['short_side']}"
    )


def _check_output(output_dir: Path, settings: dict[str, Any]) -> None:
    if not output_dir.exists() or not any(output_dir.iterdir()):
        return
    recorded = output_dir / PREPARED_FILE
    if recorded.is_file():
        previous = json.loads(recorded.read_text(encoding="utf-8"))
        if all(previous.get(key) == value for key, value in settings.items()):
            return  # resume an interrupted run, or refresh a finished one
        raise ValueError(
            f"{output_dir} holds videos prepared at {previous.get('video_fps')} fps, short side "
            f"{previous.get('short_side')}; choose another folder (or delete it) for other settings"
        )
    raise ValueError(f"{output_dir} is not empty and holds no {PREPARED_FILE}: choose an empty or new folder")


def _file_name(video_id: str) -> str:
    """`<video id>.mp4`, or a hash of the id when it is not a plain file name (the id itself stays in metadata)."""
    if _SAFE_NAME.fullmatch(video_id) and len(video_id) <= 200:
        return f"{video_id}.mp4"
    return f"video-{hashlib.sha256(video_id.encode()).hexdigest()[:16]}.mp4"


def _reencode_job(job: tuple, video_fps: float, short_side: int) -> tuple[str, str, str]:
    video_id, path, target = job
    if target.is_file():  # written whole by an earlier run (files appear only when complete)
        return video_id, path, "kept"
    try:
        reencode_video(path, target, video_fps, short_side)
    except (av.FFmpegError, VideoDecodeError, OSError, IndexError) as error:
        reason = error.reason if isinstance(error, VideoDecodeError) else f"{type(error).__name__}: {error}"
        return video_id, path, reason
    return video_id, path, "written"


def _cache_job(job: tuple, fps: float, max_frames: int | None) -> tuple[str, Any, str]:
    video_id, video, cache_dir = job
    try:
        FrameCache(cache_dir).read(video, fps=fps, max_frames=max_frames)
    except (VideoDecodeError, FileNotFoundError) as error:
        return video_id, video, error.reason if isinstance(error, VideoDecodeError) else str(error)
    return video_id, video, "written"


__all__ = [
    "DEFAULT_SHORT_SIDE",
    "DEFAULT_VIDEO_FPS",
    "PREPARED_FILE",
    "PrepareReport",
    "fill_frame_cache",
    "preparation_mismatch",
    "prepare_videos",
    "read_preparation",
    "reencode_video",
    "scaled_size",
    "trained_preparation",
]
