"""`msam data synth --events`: objects enter and leave the view; the ground truth says at which seconds."""

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from msam_hf.cli import main as msam
from msam_hf.data import load_video_text_dataset
from msam_hf.data.synthetic import SynthConfig
from msam_hf.data.synthetic import generate_synthetic_dataset
from msam_hf.data.synthetic.captions import NOUNS
from msam_hf.data.synthetic.captions import scene_attributes
from msam_hf.data.synthetic.events import Timeline
from msam_hf.data.synthetic.render import render_frames
from msam_hf.video_io import read_frames

# 7.5 fps: frames at k / 7.5 s, so "the first frame at or after second s" is not simply frame 7.5 s.
EVENTS = dict(
    num_videos=8,
    width=64,
    height=64,
    fps=7.5,
    videos_per_site=2,
    split_fractions=(0.5, 0.25, 0.25),
    hard_negative_fraction=0.25,
    seed=3,
    events=True,
)
WORDS_FOR_KIND = {
    **{kind: set(nouns) for kind, nouns in NOUNS.items()},
    "people": {"person", "man", "pedestrian", "people", "pedestrians", "persons"},
}


@pytest.fixture(scope="module")
def events_dir(tmp_path_factory) -> Path:
    return generate_synthetic_dataset(
        tmp_path_factory.mktemp("events"), SynthConfig(**EVENTS), num_workers=1, progress=False
    )


def ground_truth(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "ground_truth.jsonl").read_text().splitlines()]


def frame_at_or_after(second: int, fps: float) -> int:
    """The frame a 1-fps sampler reads for `second`: the first whose time k / fps is >= second."""
    return math.ceil(second * fps - 1e-9)


def test_events_default_to_12_seconds_and_refuse_shorter_videos():
    assert SynthConfig(events=True).duration == 12.0
    assert SynthConfig().duration == 8.0  # the default benchmark keeps its 8 s
    with pytest.raises(ValueError, match=r"duration must be at least 12 s with events=True.*--duration 12"):
        SynthConfig(events=True, duration=8.0)


def test_the_object_shows_exactly_at_the_seconds_the_ground_truth_lists(events_dir):
    """Render each video with and without one object: the frames a 1-fps sampler reads differ exactly at the
    object's visible seconds. `read_frames` reads those frames from the video, and the generator judged those."""
    config = SynthConfig(**EVENTS)
    sampled = [frame_at_or_after(second, config.fps) for second in range(12)]
    assert sampled[1:3] == [8, 15]  # 1.067 s and 2.0 s
    assert Timeline(config.num_frames, config.fps, config.width).sampled_frames.tolist() == sampled
    checked = 0
    for record in ground_truth(events_dir)[:4]:
        frames = np.stack(list(render_frames(record, config.seed, config.width, config.height, config.num_frames)))
        decoded = read_frames(events_dir / "Videos" / f"{record['video_id']}.mp4", fps=1.0, max_frames=12)
        assert np.round(decoded.timestamps * config.fps).astype(int).tolist() == sampled
        assert np.abs(decoded.frames.astype(int) - frames[sampled].astype(int)).mean() < 4  # H.264 at crf 18
        for index, event in enumerate(record["events"]):
            without = {**record, "entities": [e for i, e in enumerate(record["entities"]) if i != index]}
            frames_without = np.stack(
                list(render_frames(without, config.seed, config.width, config.height, config.num_frames))
            )
            differs = np.any(frames[sampled] != frames_without[sampled], axis=(1, 2, 3))
            assert np.flatnonzero(differs).tolist() == event["visible_seconds"], (record["video_id"], index, event)
            checked += 1
    assert checked >= 12


def test_events_are_seen_in_part_of_the_video_and_seconds_show_different_objects(events_dir):
    records = ground_truth(events_dir)
    for record in records:
        events = record["events"]
        assert 3 <= len(events) <= 5 and len(events) == len(record["entities"])
        for event in events:
            assert 2 <= len(event["visible_seconds"]) <= 8, event
            first, last = event["interval"]
            # on screen from `interval[0]` to `interval[1]` (seconds), so every visible second lies within
            assert first <= event["visible_seconds"][0] and event["visible_seconds"][-1] <= last + 1e-9
            assert event["enters"] is not None or event["leaves"] is not None  # it comes or goes during the video
        seen_at = [
            frozenset(i for i, event in enumerate(events) if second in event["visible_seconds"]) for second in range(12)
        ]
        assert len(set(seen_at)) >= 3, seen_at  # the seconds do not all show the same objects
    starts = [event["visible_seconds"][0] for record in records for event in record["events"]]
    assert len(set(starts)) >= 6  # events start all over the video, not at one time


def test_captions_describe_events_and_every_event_gets_one(events_dir):
    for record in ground_truth(events_dir):
        assert len(record["captions"]) == len(record["caption_events"]) == 5
        described = [index for index in record["caption_events"] if index is not None]
        if len(record["events"]) <= 5 and not record["edit"]:
            assert set(described) == set(range(len(record["events"])))
        for caption, index in zip(record["captions"], record["caption_events"]):
            if index is not None:  # it names the event's object, by one of its nouns
                assert WORDS_FOR_KIND[record["events"][index]["kind"]] & set(caption.split()), (caption, index)


def test_twins_differ_in_exactly_one_event(events_dir):
    records = {record["video_id"]: record for record in ground_truth(events_dir)}
    twins = [record for record in records.values() if record["twin_of"]]
    assert len(twins) == round(EVENTS["hard_negative_fraction"] * EVENTS["num_videos"])
    for twin in twins:
        original = records[twin["twin_of"]]
        edit, index = twin["edit"], twin["edit"]["entity"]
        assert twin["site_id"] == original["site_id"] and twin["camera"] == original["camera"]
        assert [e for i, e in enumerate(twin["entities"]) if i != index] == [
            e for i, e in enumerate(original["entities"]) if i != index
        ]
        before, after = original["events"][index], twin["events"][index]
        field = {"colour": "colour", "action": "action", "direction": "direction", "time": "when"}[edit["kind"]]
        assert (before[field], after[field]) == (edit["from"], edit["to"]), edit
        assert twin["caption_events"][:2] == [index, index]  # the first two captions tell the edited event
        assert twin["captions"][:2] != original["captions"][:2]


def test_existing_readers_load_the_events_benchmark(events_dir):
    dataset = load_video_text_dataset(events_dir)
    assert sum(len(split) for split in dataset.values()) == EVENTS["num_videos"]
    records = {record["video_id"]: record for record in ground_truth(events_dir)}
    for line in (events_dir / "metadata.jsonl").read_text().splitlines():
        row = json.loads(line)
        assert row["attributes"] == scene_attributes(records[row["video_id"]])
        assert row["captions"] == records[row["video_id"]]["captions"]
    settings = json.loads((events_dir / "synth_config.json").read_text())
    assert settings["events"] is True and settings["duration"] == 12.0 and settings["num_frames"] == 90


def test_same_seed_gives_the_same_files_for_any_number_of_workers(events_dir, tmp_path):
    again = generate_synthetic_dataset(tmp_path / "again", SynthConfig(**EVENTS), num_workers=2, progress=False)

    def hashes(folder: Path) -> dict[str, str]:
        return {
            str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*"))
            if path.is_file()
        }

    assert hashes(again) == hashes(events_dir)


def test_cli_events_writes_12_second_videos(tmp_path, capsys):
    arguments = [
        "data",
        "synth",
        str(tmp_path / "out"),
        "--events",
        "--num-videos",
        "3",
        "--width",
        "32",
        "--height",
        "32",
        "--fps",
        "2",
        "--videos-per-site",
        "1",
        "--hard-negative-fraction",
        "0",
        "--workers",
        "1",
        "--quiet",
    ]
    assert msam(arguments) == 0
    assert "wrote 3 videos (32x32, 24 frames)" in capsys.readouterr().out
    assert all(
        len(read_frames(path, fps=1.0, max_frames=12).frames) == 12
        for path in (tmp_path / "out" / "Videos").glob("*.mp4")
    )
    assert msam([*arguments[:2], str(tmp_path / "short"), *arguments[3:], "--duration", "8"]) == 2
    assert "duration must be at least 12 s" in capsys.readouterr().err


def test_default_benchmark_has_no_event_fields_and_the_same_captions(tmp_path):
    """events=False is the benchmark as it was: no event fields, and for this seed the captions it always wrote."""
    config = SynthConfig(
        num_videos=6,
        width=32,
        height=32,
        duration=1.0,
        fps=2.0,
        videos_per_site=2,
        split_fractions=(0.34, 0.33, 0.33),
        hard_negative_fraction=0.34,
        seed=7,
    )
    records = ground_truth(generate_synthetic_dataset(tmp_path, config, num_workers=1, progress=False))
    for record in records:
        assert not {"events", "caption_events"} & set(record)
        assert not any({"present", "through", "at", "speed"} & set(entity) for entity in record["entities"])
    original, twin = records[2], records[3]
    assert twin["edit"] == {"kind": "colour", "entity": 0, "from": "blue", "to": "purple"}
    assert original["captions"] == [
        "we can see a pedestrian dressed in blue among the crops",
        "a drone shot of a person wearing blue",
        "farmland with a road seen from above",
        "the drone flies over crop fields with a road",
        "a man stands still next to the road on the farmland",
    ]
    assert twin["captions"][:2] == [
        "we can see a pedestrian dressed in purple among the crops",
        "a drone shot of a person wearing purple",
    ]
