"""Video decoding with PyAV: frames sampled by presentation time (the MSAM / CLIP4Clip recipe).

`read_frames` takes one frame per `1 / fps` seconds (the first frame at or after each
timestamp) and, when that gives more than `max_frames`, keeps `max_frames` of them uniformly
spaced (msam.md §1: 1 fps, at most 12). It reads the container's packet index first (no
decoding), so it knows every frame's timestamp and every keyframe before it decodes anything;
then it decodes only what leads up to the chosen frames (jumping to the keyframe before a chosen
frame when a keyframe lies between, and leaving out frames that no other frame references), and
converts only the chosen frames to RGB. The result equals a full sequential decode (`seek=False`).

torchvision / torchcodec do not work with the CPU torch of this project (and `datasets.Video`
decodes only through torchcodec), so this module is the one place videos are decoded.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import tempfile
import zipfile
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from typing import NamedTuple

import av
import numpy as np

# A path, raw bytes, a binary file object, or a `datasets.Video(decode=False)` value
# ({"path": ..., "bytes": ...}).
VideoSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO | Mapping

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpeg", ".mpg", ".ts")


def video_files_under(folder: str | os.PathLike) -> list[Path]:
    """Every file under `folder` (recursively) with a video extension, sorted."""
    paths = Path(folder).rglob("*")
    return sorted(path for path in paths if path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file())


# Frame times are compared in seconds; a frame this close before a timestamp counts as at it.
_TIME_TOLERANCE = 1e-6


class VideoDecodeError(ValueError):
    """A video could not be decoded; the message names the file and the reason."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"cannot decode video {name}: {reason}")
        self.name = name
        self.reason = reason


class DecodedVideo(NamedTuple):
    """Frames sampled from a video.

    frames: (T, H, W, 3) uint8 RGB. timestamps: (T,) float64 seconds from the first frame.
    duration: seconds covered by the video stream.
    """

    frames: np.ndarray
    timestamps: np.ndarray
    duration: float


def sample_frame_indices(frame_times: np.ndarray, fps: float = 1.0, max_frames: int | None = 12) -> np.ndarray:
    """Indices of the frames to keep, given every frame's time in seconds (sorted, first at 0).

    One frame per `1 / fps` seconds: for t = 0, 1/fps, 2/fps, ... up to the last frame, the first
    frame at or after t; then `max_frames` of those, uniformly spaced, as CLIP4Clip does
    (`np.linspace(0, n - 1, max_frames)` floored). A frame repeats when the source has a gap
    longer than `1 / fps`. A video shorter than one interval gives its first frame.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be at least 1 or None, got {max_frames}")
    frame_times = np.asarray(frame_times, dtype=np.float64)
    if frame_times.size == 0:
        raise ValueError("a video without frames has nothing to sample")
    count = math.floor(frame_times[-1] * fps + _TIME_TOLERANCE) + 1
    targets = np.arange(count, dtype=np.float64) / fps
    indices = np.searchsorted(frame_times, targets - _TIME_TOLERANCE, side="left")
    if max_frames is not None and len(indices) > max_frames:
        indices = indices[np.linspace(0, len(indices) - 1, num=max_frames).astype(np.int64)]
    return indices


def read_frames(
    source: VideoSource,
    fps: float = 1.0,
    max_frames: int | None = 12,
    *,
    seek: bool = True,
    timeout: float | None = 60.0,
) -> DecodedVideo:
    """Decode the frames of `source` sampled at `fps` frames per second, at most `max_frames`.

    Args:
        source: a path, bytes, a seekable binary file object, or a `datasets.Video(decode=False)`
            value (`{"path": ..., "bytes": ...}`, as rows of our datasets hold).
        fps: sampling rate in frames per second of presentation time.
        max_frames: keep at most this many frames, uniformly spaced (None keeps all).
        seek: the fast path: jump to the keyframe before a wanted frame when that skips frames, and
            leave out frames that are neither wanted nor referenced. False decodes every frame from
            the start (the same frames, slower; the reference the fast path is tested against).
        timeout: seconds to wait for data before giving up (network sources); None waits forever.

    Raises:
        FileNotFoundError: `source` is a path that does not exist.
        VideoDecodeError: the file is empty, truncated, not a video, has no video stream, or
            uses a codec this FFmpeg build cannot decode.
    """
    opener = _Opener(source, timeout)
    with opener.open() as container:
        stream = _video_stream(container, opener.name)
        index = _PacketIndex.scan(container, stream, opener.name)
    chosen = sample_frame_indices(index.times, fps, max_frames)
    wanted = sorted({int(index.pts[i]) for i in chosen})

    decoded = None
    if seek and index.has_timestamps:
        decoded = _decode_wanted(opener, index, wanted, fast=True)
    if decoded is None:
        decoded = _decode_wanted(opener, index, wanted, fast=False)
        if decoded is None:
            raise VideoDecodeError(opener.name, "the decoder output does not match the container index")

    frames = np.stack([decoded[int(index.pts[i])] for i in chosen])
    return DecodedVideo(frames=frames, timestamps=index.times[chosen], duration=index.duration)


class FrameCache:
    """Decoded frames kept on disk, so that training decodes each video once, not once per epoch.

    An entry is one `.npz` file (frames, timestamps, duration; read with `allow_pickle=False`) named by a
    hash of the source and the sampling: a file's resolved path, size and modification time (a changed file
    is decoded again), or the SHA-256 of embedded bytes; and `fps`, `max_frames`. Entries are written to a
    temporary file and renamed, so concurrent DataLoader workers and processes never read a partial one; an
    unreadable entry is decoded again and replaced. File objects and URLs are decoded without caching.
    A video that fails to decode is not cached: it raises every time. An entry takes T × H × W × 3 bytes.
    """

    VERSION = 1  # bump when the sampling or the entry format changes: old entries are then ignored

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def read(self, source: VideoSource, fps: float = 1.0, max_frames: int | None = 12) -> DecodedVideo:
        """`read_frames(source, fps, max_frames)`, from the cache when the entry exists."""
        identity = self.identity(source)
        if identity is None:
            return read_frames(source, fps=fps, max_frames=max_frames)
        key = hashlib.sha256(repr((self.VERSION, identity, float(fps), max_frames)).encode()).hexdigest()
        entry = self.directory / key[:2] / f"{key}.npz"
        if entry.is_file():
            try:
                with np.load(entry, allow_pickle=False) as stored:
                    return DecodedVideo(stored["frames"], stored["timestamps"], float(stored["duration"]))
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
                pass  # damaged outside this class (writes are atomic): decode again and replace it
        decoded = read_frames(source, fps=fps, max_frames=max_frames)
        try:
            self._write(entry, decoded)
        except OSError as error:  # e.g. a full disk: the cache only saves time, training goes on without it
            logger.warning(
                "frame cache %s: cannot write an entry (%s); decoding without caching", self.directory, error
            )
        return decoded

    @staticmethod
    def _write(entry: Path, decoded: DecodedVideo) -> None:
        entry.parent.mkdir(exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=entry.parent, suffix=".tmp", delete=False) as partial:
            try:
                np.savez(partial, frames=decoded.frames, timestamps=decoded.timestamps, duration=decoded.duration)
            except BaseException:
                os.unlink(partial.name)
                raise
        os.replace(partial.name, entry)

    @staticmethod
    def identity(source: VideoSource) -> tuple | None:
        """What an entry is keyed on: ("file", resolved path, size, modification time) or ("bytes", SHA-256); None
        for sources that are not cached (file objects, URLs)."""
        if isinstance(source, Mapping):
            source = source.get("bytes") if source.get("bytes") is not None else source.get("path")
        if isinstance(source, (bytes, bytearray, memoryview)):
            return ("bytes", hashlib.sha256(source).hexdigest())
        if isinstance(source, (str, os.PathLike)) and "://" not in os.fspath(source):
            path = Path(source).resolve()
            status = path.stat()  # a missing file raises FileNotFoundError here, as read_frames would
            return ("file", str(path), status.st_size, status.st_mtime_ns)
        return None


class _Opener:
    """Opens `source` as many times as needed (the index pass and the decode pass)."""

    def __init__(self, source: VideoSource, timeout: float | None):
        self.timeout = timeout
        if isinstance(source, Mapping):
            path, data = source.get("path"), source.get("bytes")
            if data is None and path is None:
                raise VideoDecodeError("<empty video value>", "the value has neither 'bytes' nor 'path'")
            source = data if data is not None else path
            self.name = f"{path} (embedded bytes)" if data is not None and path else None
        else:
            self.name = None
        if isinstance(source, (bytes, bytearray, memoryview)):
            self._data: bytes | None = bytes(source)
            self._path: str | None = None
            self._file = None
            self.name = self.name or f"<{len(self._data)} bytes>"
        elif isinstance(source, (str, os.PathLike)):
            self._data, self._file = None, None
            self._path = os.fspath(source)
            self.name = self._path
            if "://" not in self._path:
                if not os.path.exists(self._path):
                    raise FileNotFoundError(f"video file not found: {self._path}")
                if os.path.getsize(self._path) == 0:
                    raise VideoDecodeError(self._path, "the file is empty (0 bytes)")
        elif hasattr(source, "read"):
            self._path = None
            self.name = str(getattr(source, "name", None) or f"<{type(source).__name__}>")
            if getattr(source, "seekable", lambda: False)():
                # Two passes read the file twice; remember where the video starts.
                self._data, self._file, self._start = None, source, source.tell()
            else:
                self._data, self._file = source.read(), None
        else:
            raise TypeError(f"read_frames expects a path, bytes or a binary file object, got {type(source).__name__}")
        if self._data is not None and len(self._data) == 0:
            raise VideoDecodeError(self.name, "the data is empty (0 bytes)")

    def open(self) -> av.container.InputContainer:
        if self._data is not None:
            target = io.BytesIO(self._data)
        elif self._file is not None:
            self._file.seek(self._start)
            target = self._file
        else:
            target = self._path
        try:
            return av.open(target, mode="r", timeout=self.timeout)
        except av.FFmpegError as error:
            reason = f"not a readable video container: not a video, or truncated ({_reason(error)})"
            raise VideoDecodeError(self.name, reason) from error


def _video_stream(container: av.container.InputContainer, name: str) -> av.VideoStream:
    if not container.streams.video:
        kinds = sorted({stream.type for stream in container.streams}) or ["none"]
        raise VideoDecodeError(name, f"no video stream (streams: {', '.join(kinds)})")
    stream = container.streams.video[0]
    if stream.codec_context is None:
        raise VideoDecodeError(name, "its video codec is unknown to this FFmpeg build (no decoder)")
    return stream


@dataclass
class _PacketIndex:
    """Every frame's presentation time and every keyframe, read from packets without decoding."""

    pts: (
        np.ndarray
    )  # (N,) int64 sorted presentation timestamps in stream.time_base units (frame numbers without timestamps)
    times: np.ndarray  # (N,) float64 seconds from the first frame
    keyframe_pts: np.ndarray  # sorted int64
    duration: float
    has_timestamps: bool  # False for raw streams (e.g. .h264): frames are then counted, not timed

    @classmethod
    def scan(cls, container: av.container.InputContainer, stream: av.VideoStream, name: str) -> _PacketIndex:
        stream_pts, keyframes, count, discarded, empty = [], [], 0, 0, 0
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    # The flush packets at the end carry no time; timed empty ones are AVI's "no change" frames.
                    empty += packet.pts is not None or packet.dts is not None
                    continue
                if packet.is_discard:  # cut by an edit list: never shown
                    discarded += 1
                    continue
                if packet.is_corrupt:
                    raise VideoDecodeError(name, f"corrupt packet at frame {count} (truncated file?)")
                count += 1
                timestamp = packet.pts if packet.pts is not None else packet.dts
                if timestamp is not None:
                    stream_pts.append(timestamp)
                    if packet.is_keyframe:
                        keyframes.append(timestamp)
        except av.FFmpegError as error:
            raise VideoDecodeError(name, f"reading packets failed ({_reason(error)})") from error
        if count == 0:
            raise VideoDecodeError(name, "the video stream has no frames")
        present = count + discarded + empty
        if stream.frames and present < stream.frames:
            raise VideoDecodeError(
                name, f"truncated: the container declares {stream.frames} frames, {present} are present"
            )

        rate = float(stream.average_rate or stream.guessed_rate or 25)
        if len(stream_pts) == count and stream.time_base is not None:
            pts = np.sort(np.asarray(stream_pts, dtype=np.int64))
            times = (pts - pts[0]) * float(stream.time_base)
            keyframe_pts = np.sort(np.asarray(keyframes, dtype=np.int64))
            has_timestamps = True
        else:
            # Raw elementary streams carry no timestamps: frame n is shown at n / frame rate.
            pts = np.arange(count, dtype=np.int64)
            times = pts / rate
            keyframe_pts = np.zeros(0, dtype=np.int64)
            has_timestamps = False
        span = float(times[-1]) + 1.0 / rate
        declared = _declared_duration(container, stream)
        # Containers without a frame count (mkv, webm) give away truncation only by their duration;
        # the margin leaves room for a long-shown last frame of variable-frame-rate video.
        if (
            declared is not None
            and has_timestamps
            and not discarded
            and declared - span > max(1.0, 2 / rate) + 0.02 * declared
        ):
            raise VideoDecodeError(
                name, f"truncated: the container declares {declared:.1f} s, frames cover {span:.1f} s"
            )
        return cls(
            pts=pts, times=times, keyframe_pts=keyframe_pts, duration=declared or span, has_timestamps=has_timestamps
        )

    def keyframe_at_or_before(self, pts: int) -> int | None:
        position = np.searchsorted(self.keyframe_pts, pts, side="right") - 1
        return int(self.keyframe_pts[position]) if position >= 0 else None


def _declared_duration(container: av.container.InputContainer, stream: av.VideoStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    # The container's duration covers all streams; it speaks for the video only when alone.
    if container.duration is not None and len(container.streams) == 1:
        return container.duration / av.time_base
    return None


def _decode_wanted(opener: _Opener, index: _PacketIndex, wanted: list[int], fast: bool) -> dict[int, np.ndarray] | None:
    """RGB arrays of the wanted frames, keyed by pts (or by frame number without timestamps).

    `fast` seeks to keyframes and skips unreferenced frames. Returns None when a seek lands after
    the frame it aimed at (an imprecise demuxer) or the stream ends early; the caller then decodes
    sequentially.
    """
    decoded: dict[int, np.ndarray] = {}
    with opener.open() as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threads
        # The fast path also skips unreferenced frames; the sequential one decodes everything (the reference).
        skip_unless = frozenset(wanted) if fast else None
        frames: Iterator[tuple[int, av.VideoFrame]] = _frames_with_keys(
            container, stream, index, opener.name, skip_unless
        )
        position = None  # key of the last decoded frame
        previous = None
        for target in wanted:
            if position is not None and position >= target:
                # The frame matched for the previous target is also the first at or after this one.
                decoded[target] = decoded[previous]
                previous = target
                continue
            keyframe = index.keyframe_at_or_before(target) if fast else None
            if keyframe is not None and (position is None or keyframe > position):
                # A keyframe between here and the target: jump to it instead of decoding up to it.
                try:
                    container.seek(keyframe, stream=stream, backward=True)
                except av.FFmpegError:
                    return None
                frames = _frames_with_keys(container, stream, index, opener.name, skip_unless)
                position = None
            for key, frame in frames:
                if fast and position is None and key > target:
                    return None  # the seek overshot the target
                position = key
                if key >= target:
                    decoded[target] = frame.to_ndarray(format="rgb24")
                    previous = target
                    break
            else:
                return None
    return decoded


def _frames_with_keys(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    index: _PacketIndex,
    name: str,
    wanted: frozenset[int] | None = None,
) -> Iterator[tuple[int, av.VideoFrame]]:
    """Decoded frames with their pts (or frame number, for streams without timestamps).

    With `wanted` (pts), frames that are neither wanted nor referenced by other frames are not
    decoded at all (most B-frames): the frames that are decoded come out exactly the same.
    """
    count = 0
    try:
        for packet in container.demux(stream):
            if wanted is not None:
                # Frame threads copy this setting with each packet they take, so it applies per packet.
                timestamp = packet.pts if packet.pts is not None else packet.dts
                stream.codec_context.skip_frame = "DEFAULT" if timestamp is None or timestamp in wanted else "NONREF"
            for frame in packet.decode():
                if index.has_timestamps:
                    # Keyed like the index: pts, or dts where the container gives only that.
                    key = frame.pts if frame.pts is not None else frame.dts
                    if key is not None:
                        yield key, frame
                else:
                    yield count, frame
                count += 1
    except av.FFmpegError as error:
        raise VideoDecodeError(name, f"decoding failed ({_reason(error)})") from error


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error)
