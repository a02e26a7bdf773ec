"""`msam data prepare`: CLIP4Clip-style re-encoding (frame rate, short side) into a dataset folder that keeps captions
and splits, the frame cache filled ahead of training, failures named, interrupted runs resumed, and the preparation
recorded by training and checked by evaluation."""

import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import MARK_STEP
from conftest import write_video
from msam_hf.cli import main as msam
from msam_hf.data import load_video_text_dataset
from msam_hf.data.prepare import PREPARED_FILE
from msam_hf.data.prepare import fill_frame_cache
from msam_hf.data.prepare import preparation_mismatch
from msam_hf.data.prepare import prepare_videos
from msam_hf.data.prepare import read_preparation
from msam_hf.data.prepare import reencode_video
from msam_hf.data.prepare import scaled_size
from msam_hf.video_io import FrameCache
from msam_hf.video_io import read_frames

ROOT = Path(__file__).resolve().parents[1]
CAPTIONS = {"wide": ["a car on a road"], "tall": ["a boat under a bridge", "a white boat"], "slow": ["a person walks"]}
SPLITS = {"wide": "train", "tall": "validation", "slow": "test"}


def stream_facts(path: Path) -> tuple[int, int, list[float]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [frame.time for frame in container.decode(stream)]
        return stream.codec_context.width, stream.codec_context.height, times


def keyframe_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        return [frame.time for frame in container.decode(container.streams.video[0]) if frame.key_frame]


@pytest.fixture
def source(tmp_path, make_videofolder):
    data = make_videofolder(CAPTIONS, splits=SPLITS, attributes={"wide": {"entities": ["car"]}})
    write_video(data / "wide.mp4", seconds=2.0, rate=10, size=(96, 54))  # 16:9 at 10 fps
    write_video(data / "tall.mp4", seconds=2.0, rate=25, size=(48, 64))  # portrait at 25 fps
    write_video(data / "slow.mp4", seconds=3.0, rate=1, size=(64, 48))  # slower than the output: frames repeat
    return data


def test_scaled_size_keeps_the_aspect_with_even_sides_like_clip4clip():
    assert scaled_size(1280, 720, 224) == (398, 224)  # trunc(224 * 16/9 / 2) * 2
    assert scaled_size(720, 1280, 224) == (224, 398)
    assert scaled_size(100, 100, 224) == (224, 224)  # CLIP4Clip's scale also enlarges small videos


def test_reencoding_gives_a_constant_rate_the_short_side_and_the_nearest_frames(source, tmp_path):
    target = tmp_path / "wide.mp4"
    reencode_video(source / "wide.mp4", target, video_fps=3.0, short_side=32)
    width, height, times = stream_facts(target)
    assert (width, height) == (56, 32)
    assert times == pytest.approx([k / 3 for k in range(6)], abs=1e-3)  # 2 s at 3 fps
    assert keyframe_times(target) == pytest.approx([0.0, 1.0], abs=1e-3)  # a keyframe a second: 1-fps sampling seeks
    # Output frame k shows input frame n nearest k/3 s: frame_image(n) paints its top-left quarter gray n × MARK_STEP.
    for k, frame in enumerate(read_frames(target, fps=3.0, max_frames=None).frames):
        nearest = round(k / 3 * 10)
        assert abs(float(frame[2:14, 2:26].mean()) - MARK_STEP * (nearest % 32)) < MARK_STEP / 2, k

    slow = tmp_path / "slow.mp4"
    reencode_video(source / "slow.mp4", slow, video_fps=3.0, short_side=24)
    assert stream_facts(slow)[2] == pytest.approx([k / 3 for k in range(9)], abs=1e-3)  # 1-fps frames repeated

    late = write_video(tmp_path / "late.mp4", frame_times=[1.5 + n / 10 for n in range(20)])  # starts at 1.5 s
    reencode_video(late, tmp_path / "late-3fps.mp4", video_fps=3.0, short_side=24)
    assert stream_facts(tmp_path / "late-3fps.mp4")[2] == pytest.approx([k / 3 for k in range(6)], abs=1e-3)


def test_prepare_writes_a_dataset_with_the_same_captions_splits_and_attributes(source, tmp_path):
    report = prepare_videos(source, tmp_path / "out", video_fps=3.0, short_side=32, num_workers=2, progress=False)
    assert (report.written, report.kept, report.failed) == (3, 0, [])
    before, after = load_video_text_dataset(source), load_video_text_dataset(tmp_path / "out")
    assert set(before) == set(after)
    for split in before:
        assert before[split]["video_id"] == after[split]["video_id"]
        assert before[split]["captions"] == after[split]["captions"]
    assert after["train"][0]["attributes"]["entities"] == ["car"]
    for row in (row for split in after.values() for row in split):
        width, height, _ = stream_facts(Path(row["video"]["path"]))
        assert min(width, height) == 32
    assert read_preparation(tmp_path / "out") == {"video_fps": 3.0, "short_side": 32, "source": str(source.resolve())}


def test_an_undecodable_video_is_named_and_left_out_and_a_rerun_keeps_what_was_done(source, tmp_path):
    (source / "tall.mp4").write_bytes(b"not a video")
    out = tmp_path / "out"
    report = prepare_videos(source, out, short_side=32, num_workers=0, progress=False)
    assert report.written == 2 and [failure["video_id"] for failure in report.failed] == ["tall"]
    assert "tall.mp4" in report.summary("re-encoded")
    assert "validation" not in load_video_text_dataset(out)  # its only video failed
    assert json.loads((out / PREPARED_FILE).read_text())["failed"][0]["path"].endswith("tall.mp4")
    written = {path.name: path.stat().st_mtime_ns for path in (out / "videos").iterdir()}
    again = prepare_videos(source, out, short_side=32, num_workers=0, progress=False)
    assert (again.written, again.kept, len(again.failed)) == (0, 2, 1)
    assert {path.name: path.stat().st_mtime_ns for path in (out / "videos").iterdir()} == written
    with pytest.raises(ValueError, match="prepared at 3.0 fps, short side 32; choose another folder"):
        prepare_videos(source, out, short_side=64, num_workers=0, progress=False)


def test_the_filled_frame_cache_is_the_one_training_reads(source, tmp_path):
    cache = tmp_path / "cache"
    report = fill_frame_cache(source, cache, fps=1.0, max_frames=2, num_workers=2, progress=False)
    assert report.written == 3 and not report.failed
    entries = sorted(cache.rglob("*.npz"))
    assert len(entries) == 3
    stamps = [entry.stat().st_mtime_ns for entry in entries]
    row = load_video_text_dataset(source)["test"][0]  # what VideoTextDataset hands the cache
    cached = FrameCache(cache).read(row["video"], fps=1.0, max_frames=2)
    assert np.array_equal(cached.frames, read_frames(row["video"]["path"], fps=1.0, max_frames=2).frames)
    assert sorted(cache.rglob("*.npz")) == entries and [entry.stat().st_mtime_ns for entry in entries] == stamps


def test_the_command_needs_out_or_a_cache_and_reports_both(source, tmp_path, capsys):
    assert msam(["data", "prepare", str(source)]) == 2
    assert "give OUT" in capsys.readouterr().err
    argv = ["data", "prepare", str(source), str(tmp_path / "out"), "--short-side", "32", "--quiet"]
    assert msam([*argv, "--frame-cache-dir", str(tmp_path / "cache"), "--max-frames", "2", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "3 written, 0 already there, 0 failed" in out and f"frame cache {tmp_path / 'cache'}" in out
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 3


def test_preparation_mismatch_says_how_to_prepare_the_evaluation_data():
    trained_on = {"video_fps": 3.0, "short_side": 224, "source": "/data/raw"}
    assert preparation_mismatch(None, None) is None
    assert preparation_mismatch(trained_on, {"video_fps": 3.0, "short_side": 224, "source": "/elsewhere"}) is None
    warning = preparation_mismatch(trained_on, None)
    assert "videos that were not prepared" in warning and "--video-fps 3 --short-side 224" in warning
    assert "1 fps, short side 224" in preparation_mismatch(trained_on, {"video_fps": 1.0, "short_side": 224})


def test_training_records_the_preparation_and_evaluation_warns_on_unprepared_videos(tmp_path):
    from msam_hf.data.synthetic import SynthConfig
    from msam_hf.data.synthetic import generate_synthetic_dataset

    config = SynthConfig(
        num_videos=10, width=48, height=48, duration=2.0, fps=2.0, seed=2, videos_per_site=1, hard_negative_fraction=0
    )
    raw = generate_synthetic_dataset(tmp_path / "raw", config, num_workers=1, progress=False)
    prepare_videos(raw, tmp_path / "prepared", short_side=32, num_workers=0, progress=False)
    run = tmp_path / "run"
    command = [sys.executable, str(ROOT / "training" / "train.py"), "--data_dir", str(tmp_path / "prepared")]
    command += ["--output_dir", str(run), "--batch_size", "4", "--num_workers", "0", "--log_with", "none"]
    command += ["--max_frames", "2", "--max_steps", "1", "--eval_every_epoch", "false"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    recorded = json.loads((run / "final" / "training_args.json").read_text())["data_preparation"]
    assert recorded == {"video_fps": 3.0, "short_side": 32, "source": str(raw.resolve())}

    evaluate = [str(run / "final"), "--split", "test", "--num-workers", "0", "--output-dir", str(tmp_path / "eval")]
    result = subprocess.run(
        [sys.executable, "-m", "msam_hf.cli", "evaluate", evaluate[0], str(raw), *evaluate[1:]],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "warning" in result.stderr and "re-encoded to 3 fps, short side 32 px" in result.stderr


@pytest.mark.parametrize("texture", ["detailed", "smooth"])
def test_the_data_loading_benchmark_runs_on_tiny_clips(texture, tmp_path):
    # Its real run takes 30 s 720p clips (docs/gpu.md); here only that every row and the record come out.
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_data_loading.py"), "--texture", texture]
    command += ["--num_videos", "2"]
    command += ["--duration", "2", "--width", "96", "--height", "64", "--source_fps", "10", "--repeats", "1"]
    result = subprocess.run(
        [*command, "--output", str(tmp_path / "out.json")], capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| raw clips") or line.startswith("| prep")]
    assert len(rows) == 4
    record = json.loads((tmp_path / "out.json").read_text())
    assert len(record["results"]) == 4 and all(row["videos_per_second"] > 0 for row in record["results"].values())
    assert "pip_freeze" in record["environment"] and record["command"].startswith("python benchmarks/")
