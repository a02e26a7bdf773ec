"""read_frames on real videos: sampling by presentation time, every container, seeking, and bad files."""

import errno
import io

import av
import numpy as np
import pytest

from conftest import CONTAINERS
from conftest import frame_number
from conftest import write_audio
from conftest import write_video
from msam_hf import video_io
from msam_hf.video_io import VideoDecodeError
from msam_hf.video_io import read_frames
from msam_hf.video_io import sample_frame_indices


def decode_every_frame(path, fps, max_frames):
    """The reference: decode and convert every frame, then pick with the same sampling rule."""
    with av.open(str(path)) as container:
        decoded = [(frame.time, frame.to_ndarray(format="rgb24")) for frame in container.decode(video=0)]
    times = np.array([time for time, _ in decoded]) - decoded[0][0]
    chosen = sample_frame_indices(times, fps, max_frames)
    return np.stack([decoded[i][1] for i in chosen]), times[chosen]


def test_one_frame_per_second_is_the_first_frame_at_or_after_each_second(tmp_path):
    path = write_video(tmp_path / "clip.mp4", seconds=3.5, rate=10)
    clip = read_frames(path)
    np.testing.assert_allclose(clip.timestamps, [0.0, 1.0, 2.0, 3.0])
    assert [frame_number(frame) for frame in clip.frames] == [0, 10, 20, 30]
    assert clip.frames.shape == (4, 48, 64, 3) and clip.frames.dtype == np.uint8
    assert clip.duration == pytest.approx(3.5)


def test_more_samples_than_max_frames_are_subsampled_uniformly(tmp_path):
    path = write_video(tmp_path / "long.mp4", seconds=15, rate=2, gop=4)
    clip = read_frames(path, fps=1.0, max_frames=12)
    # 15 one-second samples → CLIP4Clip's np.linspace(0, 14, 12) floored.
    expected_seconds = np.linspace(0, 14, 12).astype(int)
    np.testing.assert_allclose(clip.timestamps, expected_seconds)
    assert [frame_number(frame) for frame in clip.frames] == list(2 * expected_seconds)


def test_a_video_shorter_than_one_interval_gives_one_frame(tmp_path):
    path = write_video(tmp_path / "short.mp4", seconds=0.4, rate=10)
    clip = read_frames(path, fps=1.0)
    assert clip.frames.shape[0] == 1 and frame_number(clip.frames[0]) == 0


def test_variable_frame_rate_uses_presentation_times(tmp_path):
    # Bursts of fast and slow frames: 0.0 0.3 0.6 0.9 | 1.5 2.1 2.7 | 2.8 ...
    times = [0.0, 0.3, 0.6, 0.9, 1.5, 2.1, 2.7, 2.8, 2.9, 3.0, 3.1, 4.6]
    for extension in (".mkv", ".mp4"):
        path = write_video(tmp_path / f"vfr{extension}", frame_times=times)
        clip = read_frames(path, fps=1.0)
        # First frame at or after 0, 1, 2, 3, 4 s: frames 0 (0.0), 4 (1.5), 5 (2.1), 9 (3.0), 11 (4.6).
        assert [frame_number(frame) for frame in clip.frames] == [0, 4, 5, 9, 11], extension
        np.testing.assert_allclose(clip.timestamps, [0.0, 1.5, 2.1, 3.0, 4.6], atol=1e-3)


def test_a_gap_longer_than_the_interval_repeats_a_frame():
    times = np.array([0.0, 2.5, 3.0])
    assert sample_frame_indices(times, fps=1.0, max_frames=None).tolist() == [0, 1, 1, 2]


@pytest.mark.parametrize("container", sorted(CONTAINERS))
@pytest.mark.parametrize("fps, max_frames", [(1.0, 12), (4.0, 5), (10.0, None)])
def test_every_container_gives_the_frames_of_a_full_decode(videos, container, fps, max_frames):
    path = videos[container]
    expected_frames, expected_times = decode_every_frame(path, fps, max_frames)
    clip = read_frames(path, fps=fps, max_frames=max_frames)
    np.testing.assert_array_equal(clip.frames, expected_frames)
    np.testing.assert_allclose(clip.timestamps, expected_times, atol=1e-6)


@pytest.mark.parametrize("b_frames", [None, 2])
def test_keyframe_seeking_gives_the_frames_of_the_sequential_decode(tmp_path, b_frames):
    # Keyframes every 5 frames and wanted frames 10 apart: seeking skips every other GOP.
    path = write_video(tmp_path / "gops.mp4", seconds=12, rate=10, gop=5, b_frames=b_frames)
    seeking = read_frames(path, fps=1.0, max_frames=12)
    sequential = read_frames(path, fps=1.0, max_frames=12, seek=False)
    np.testing.assert_array_equal(seeking.frames, sequential.frames)
    np.testing.assert_array_equal(seeking.timestamps, sequential.timestamps)
    assert [frame_number(frame) for frame in seeking.frames] == list(range(0, 120, 10))


def test_a_raw_stream_without_timestamps_is_sampled_by_frame_count(tmp_path):
    path = write_video(tmp_path / "raw.h264", seconds=2, rate=25, container_format="h264")
    clip = read_frames(path, fps=1.0)
    # A raw H.264 stream carries no times; FFmpeg assumes 25 frames per second.
    assert [frame_number(frame) for frame in clip.frames] == [0, 25]


def test_paths_bytes_file_objects_and_dataset_values_give_the_same_frames(videos):
    path = videos["mp4"]
    data = path.read_bytes()
    expected = read_frames(path).frames
    with path.open("rb") as file:
        from_file = read_frames(file).frames
    sources = [
        str(path),
        data,
        bytearray(data),
        io.BytesIO(data),
        {"path": "clip.mp4", "bytes": data},
        {"path": str(path), "bytes": None},
    ]
    for source in sources:
        np.testing.assert_array_equal(read_frames(source).frames, expected)
    np.testing.assert_array_equal(from_file, expected)


def test_a_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.mp4"):
        read_frames(tmp_path / "nothing.mp4")


def zero_bytes(folder):
    path = folder / "empty.mp4"
    path.write_bytes(b"")
    return path


def cut(path, fraction, name):
    data = path.read_bytes()
    target = path.with_name(name)
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def truncated_mp4(folder):
    # The index (moov) is written last: cutting the file loses it.
    return cut(write_video(folder / "full.mp4"), 0.6, "cut.mp4")


def truncated_faststart_mp4(folder):
    # The index comes first and promises frames the file no longer has.
    return cut(write_video(folder / "full.mp4", container_options={"movflags": "faststart"}), 0.6, "cut_faststart.mp4")


def truncated_mkv(folder):
    return cut(write_video(folder / "full.mkv"), 0.5, "cut.mkv")


def text_file(folder):
    path = folder / "notes.mp4"
    path.write_text("these are not the frames you are looking for")
    return path


@pytest.mark.parametrize(
    "make_bad_file, reason",
    [
        (zero_bytes, "empty"),
        (truncated_mp4, "not a readable video container"),
        (truncated_faststart_mp4, "truncated"),
        (truncated_mkv, "truncated"),
        (text_file, "not a readable video container"),
        (lambda folder: write_audio(folder / "sound.wav"), "no video stream"),
        (lambda folder: write_audio(folder / "sound.mp3"), "no video stream"),
    ],
    ids=[
        "zero-bytes",
        "truncated-mp4",
        "truncated-faststart-mp4",
        "truncated-mkv",
        "text-file",
        "audio-wav",
        "audio-mp3",
    ],
)
def test_bad_files_raise_one_error_naming_the_file_and_reason(tmp_path, make_bad_file, reason):
    path = make_bad_file(tmp_path)
    with pytest.raises(VideoDecodeError, match=reason) as raised:
        read_frames(path)
    assert str(path) in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_an_unknown_codec_raises(tmp_path):
    # An AVI whose codec tag no decoder knows: the container opens, the stream cannot be decoded.
    data = write_video(tmp_path / "known.avi", codec="mpeg4").read_bytes()
    assert data.count(b"FMP4") == 2
    unknown = tmp_path / "unknown.avi"
    unknown.write_bytes(data.replace(b"FMP4", b"QQZ9"))
    with pytest.raises(VideoDecodeError, match="codec") as raised:
        read_frames(unknown)
    assert "unknown.avi" in str(raised.value)


def test_empty_bytes_raise():
    with pytest.raises(VideoDecodeError, match="empty"):
        read_frames(b"")


@pytest.mark.parametrize("fps, max_frames", [(0.0, 12), (-1.0, 12), (1.0, 0)])
def test_invalid_sampling_arguments_are_rejected(fps, max_frames):
    with pytest.raises(ValueError):
        sample_frame_indices(np.array([0.0, 1.0]), fps=fps, max_frames=max_frames)


@pytest.mark.parametrize(
    "gop, b_frames, most_decoded",
    [
        (5, None, 12),  # every wanted frame is a keyframe: seeking decodes just those 12 (of 120)
        (1000, 2, 90),  # one keyframe, B-frames: frames no other frame references are left out
    ],
    ids=["keyframe-seeking", "unreferenced-frames-skipped"],
)
def test_the_fast_path_decodes_fewer_frames_with_the_same_result(tmp_path, monkeypatch, gop, b_frames, most_decoded):
    path = write_video(tmp_path / "clip.mp4", seconds=12, rate=10, gop=gop, b_frames=b_frames)
    decoded = []
    frames_with_keys = video_io._frames_with_keys

    def counting(*args):
        for key, frame in frames_with_keys(*args):
            decoded.append(key)
            yield key, frame

    monkeypatch.setattr(video_io, "_frames_with_keys", counting)
    sequential = read_frames(path, seek=False)
    assert len(decoded) > 100  # up to the last wanted frame, 11 s in
    decoded.clear()
    fast = read_frames(path)
    np.testing.assert_array_equal(fast.frames, sequential.frames)
    assert len(decoded) <= most_decoded


def test_the_frame_cache_returns_the_decoded_frames_and_decodes_each_video_once(tmp_path, monkeypatch):
    path = write_video(tmp_path / "clip.mp4", seconds=3.5, rate=10)
    decodes = []
    real_read_frames = video_io.read_frames
    monkeypatch.setattr(
        video_io, "read_frames", lambda *args, **kwargs: decodes.append(args) or real_read_frames(*args, **kwargs)
    )
    cache = video_io.FrameCache(tmp_path / "cache")
    expected = real_read_frames(path, fps=2.0, max_frames=3)
    for source in (path, str(path), {"path": str(path), "bytes": None}):  # one entry for one file, however named
        cached = cache.read(source, fps=2.0, max_frames=3)
        np.testing.assert_array_equal(cached.frames, expected.frames)
        np.testing.assert_array_equal(cached.timestamps, expected.timestamps)
        assert cached.duration == expected.duration
    assert len(decodes) == 1
    cache.read(path, fps=1.0, max_frames=3)  # another sampling is another entry
    cache.read({"path": "elsewhere.mp4", "bytes": path.read_bytes()}, fps=1.0, max_frames=3)  # bytes: by content
    cache.read(path.read_bytes(), fps=1.0, max_frames=3)
    assert len(decodes) == 3


def test_the_frame_cache_decodes_a_changed_file_again_and_replaces_a_damaged_entry(tmp_path):
    path = write_video(tmp_path / "clip.mp4", seconds=2, rate=10)
    cache = video_io.FrameCache(tmp_path / "cache")
    assert cache.read(path).frames.shape[0] == 2
    write_video(path, seconds=4, rate=10)  # same name, new content (size and modification time differ)
    assert cache.read(path).frames.shape[0] == 4
    entries = sorted((tmp_path / "cache").rglob("*.npz"))
    assert len(entries) == 2 and not list((tmp_path / "cache").rglob("*.tmp"))
    for entry in entries:
        entry.write_bytes(b"truncated")
    assert cache.read(path).frames.shape[0] == 4
    with np.load(max(entries, key=lambda entry: entry.stat().st_mtime_ns), allow_pickle=False) as stored:
        assert stored["frames"].shape[0] == 4  # rewritten, readable again


def test_the_frame_cache_does_not_cache_failures(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    cache = video_io.FrameCache(tmp_path / "cache")
    for _ in range(2):
        with pytest.raises(VideoDecodeError, match="broken.mp4"):
            cache.read(broken)
    assert not list((tmp_path / "cache").rglob("*.npz"))
    with pytest.raises(FileNotFoundError):
        cache.read(tmp_path / "missing.mp4")


def test_a_frame_cache_that_cannot_be_written_warns_and_still_returns_the_frames(tmp_path, monkeypatch, caplog):
    path = write_video(tmp_path / "clip.mp4", seconds=2, rate=10)
    cache = video_io.FrameCache(tmp_path / "cache")

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(video_io.np, "savez", disk_full)  # a full disk cannot be had on demand
    with caplog.at_level("WARNING"):
        clip = cache.read(path)
    np.testing.assert_array_equal(clip.frames, read_frames(path).frames)
    assert "cannot write an entry" in caplog.text and "No space left" in caplog.text
    assert not list((tmp_path / "cache").rglob("*.*"))  # no partial file left behind
