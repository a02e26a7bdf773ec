"""The synthetic drone benchmark: layouts, ground truth, determinism, hard negatives, CLI, and the baselines."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from msam_hf.cli import main as msam
from msam_hf.data import export_hub_dataset
from msam_hf.data import load_video_text_dataset
from msam_hf.data.synthetic import SynthConfig
from msam_hf.data.synthetic import generate_synthetic_dataset
from msam_hf.data.synthetic.baselines import background_histograms
from msam_hf.data.synthetic.baselines import colour_histogram
from msam_hf.data.synthetic.baselines import ridge_fit
from msam_hf.data.synthetic.baselines import ridge_predict
from msam_hf.data.synthetic.baselines import run_baselines
from msam_hf.data.synthetic.captions import scene_attributes
from msam_hf.data.synthetic.generator import _plan
from msam_hf.data.synthetic.render import render_frames
from msam_hf.data.synthetic.scene import sample_scene
from msam_hf.video_io import read_frames

SMALL = dict(
    num_videos=12, width=48, height=48, duration=2.0, fps=4.0, videos_per_site=2, hard_negative_fraction=0.25, seed=11
)
SITE_FIELDS = ("terrain", "landmark", "camera", "texture")


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory) -> Path:
    return generate_synthetic_dataset(
        tmp_path_factory.mktemp("synth"), SynthConfig(**SMALL), num_workers=1, progress=False
    )


def ground_truth(folder: Path) -> dict[str, dict]:
    lines = (folder / "ground_truth.jsonl").read_text().splitlines()
    return {record["video_id"]: record for record in map(json.loads, lines)}


def rows(dataset) -> dict:
    return {split: list(zip(dataset[split]["video_id"], dataset[split]["captions"])) for split in dataset}


def decoded(folder: Path) -> dict[str, np.ndarray]:
    return {
        path.stem: read_frames(path, fps=4.0, max_frames=None).frames
        for path in sorted((folder / "Videos").glob("*.mp4"))
    }


def test_both_layouts_hold_the_same_rows(synth_dir):
    auto = load_video_text_dataset(synth_dir)
    clip4clip = load_video_text_dataset(synth_dir, layout="clip4clip")
    videofolder = load_video_text_dataset(synth_dir, layout="videofolder")
    assert rows(clip4clip) == rows(videofolder) == rows(auto)
    assert sum(len(split) for split in auto.values()) == SMALL["num_videos"]
    assert set(auto) == {"train", "validation", "test"}
    clip = read_frames(auto["test"][0]["video"], fps=1.0, max_frames=12)
    assert clip.frames.shape == (2, 48, 48, 3) and clip.frames.dtype == np.uint8


def test_ground_truth_agrees_with_metadata_and_objects_are_small(synth_dir):
    truth = ground_truth(synth_dir)
    metadata = [json.loads(line) for line in (synth_dir / "metadata.jsonl").read_text().splitlines()]
    assert [row["video_id"] for row in metadata] == sorted(truth)
    for row in metadata:
        record = truth[row["video_id"]]
        assert row["attributes"] == scene_attributes(record) and row["captions"] == record["captions"]
        assert row["split"] == record["split"]
        assert record["entities"], f"{row['video_id']} has no object"
        for entity in record["entities"]:
            assert {"kind", "colour", "action"} <= set(entity)
            assert 0 < entity["area_fraction"] < 0.06, entity  # a few percent of the frame at most


def test_same_seed_gives_the_same_captions_and_frames_for_any_number_of_workers(synth_dir, tmp_path):
    again = generate_synthetic_dataset(tmp_path / "again", SynthConfig(**SMALL), num_workers=2, progress=False)
    for name in ("raw-captions.pkl", "metadata.jsonl", "ground_truth.jsonl", "train_list.txt", "test_list.txt"):
        assert (again / name).read_bytes() == (synth_dir / name).read_bytes(), name
    first, second = decoded(synth_dir), decoded(again)
    assert first.keys() == second.keys()
    assert all(np.array_equal(first[video], second[video]) for video in first)


def test_another_seed_gives_another_dataset(synth_dir, tmp_path):
    other = generate_synthetic_dataset(tmp_path / "other", SynthConfig(**{**SMALL, "seed": 12}), progress=False)
    assert (other / "metadata.jsonl").read_text() != (synth_dir / "metadata.jsonl").read_text()
    assert not np.array_equal(decoded(other)["synth_00005"], decoded(synth_dir)["synth_00005"])


def test_hard_negative_twins_differ_in_exactly_their_edit(synth_dir):
    truth = ground_truth(synth_dir)
    twins = [record for record in truth.values() if record["twin_of"]]
    assert len(twins) == round(SMALL["hard_negative_fraction"] * SMALL["num_videos"])
    for twin in twins:
        original = truth[twin["twin_of"]]
        assert original["hard_negative"] == twin["video_id"] and original["split"] == twin["split"]
        assert twin["site_id"] == original["site_id"]
        for key in SITE_FIELDS:
            assert twin[key] == original[key], key
        edited = twin["edit"]["entity"]
        assert twin["entities"][edited] != original["entities"][edited]
        assert [e for i, e in enumerate(twin["entities"]) if i != edited] == [
            e for i, e in enumerate(original["entities"]) if i != edited
        ]
        if twin["edit"]["kind"] == "colour":
            assert (original["entities"][edited]["colour"], twin["entities"][edited]["colour"]) == (
                twin["edit"]["from"],
                twin["edit"]["to"],
            )
        assert twin["captions"] != original["captions"]


def test_object_scale_multiplies_every_object_size(tmp_path):
    from msam_hf.data.synthetic.scene import ENTITY_KINDS

    config = SynthConfig(num_videos=20, width=32, height=32, duration=1.0, videos_per_site=2, object_scale=1.5)
    truth = ground_truth(generate_synthetic_dataset(tmp_path / "big", config, num_workers=1, progress=False))
    for record in truth.values():
        for entity in record["entities"]:
            ratio = np.array(entity["size"]) / np.array(ENTITY_KINDS[entity["kind"]]["size"])
            low, high = (1.5 * 0.85, 1.5 * 1.15) if entity["kind"] == "tree" else (1.5, 1.5)
            assert np.allclose(ratio, ratio[0]) and low - 1e-9 <= ratio[0] <= high + 1e-9, entity


def test_videos_of_a_site_share_the_background_and_split_but_not_the_objects(tmp_path):
    folder = generate_synthetic_dataset(
        tmp_path,
        SynthConfig(
            **{
                **SMALL,
                "videos_per_site": 4,
                "num_videos": 10,
                "hard_negative_fraction": 0.0,
                "split_fractions": (0.4, 0.3, 0.3),
            }
        ),
        num_workers=1,
        progress=False,
    )
    sites = {}
    for record in ground_truth(folder).values():
        sites.setdefault(record["site_id"], []).append(record)
    assert sorted(map(len, sites.values())) == [2, 4, 4]
    for records in sites.values():
        first = records[0]
        for record in records[1:]:
            assert record["split"] == first["split"]
            assert all(record[key] == first[key] for key in SITE_FIELDS)
            assert record["entities"] != first["entities"]


def test_five_varied_captions_per_video(synth_dir):
    truth = ground_truth(synth_dir)
    for record in truth.values():
        assert len(record["captions"]) == 5 and all(caption.strip() for caption in record["captions"])
    all_captions = [caption for record in truth.values() for caption in record["captions"]]
    assert len(set(all_captions)) > 0.8 * len(all_captions)
    assert len({len(caption.split()) for caption in all_captions}) >= 4  # short and long, partial descriptions


def test_listing_captions_name_every_object_with_its_colour(tmp_path):
    config = SynthConfig(num_videos=20, duration=1.0, fps=2.0, caption_style="listing", videos_per_site=2)
    generate_synthetic_dataset(tmp_path / "listing", config, num_workers=1, progress=False)
    truth = ground_truth(tmp_path / "listing")
    for record in truth.values():
        assert len(record["captions"]) == 5
        for caption in record["captions"]:
            named = re.findall(r"(\w+) (car|truck|boat|house|tree)\b|(?:person|people) in (\w+)", caption)
            expected = sorted((e["colour"], e["kind"]) for e in record["entities"])
            found = sorted((colour, kind) if kind else (worn, "people") for colour, kind, worn in named)
            assert found == expected, (caption, record["entities"])
    drone = SynthConfig(num_videos=20, duration=1.0, fps=2.0, videos_per_site=2)
    generate_synthetic_dataset(tmp_path / "drone", drone, num_workers=1, progress=False)
    same_scenes = ground_truth(tmp_path / "drone")
    assert all(same_scenes[key]["entities"] == record["entities"] for key, record in truth.items())  # only words differ


@pytest.mark.parametrize(
    "override,message",
    [
        ({"width": 33}, "width must be an even number"),
        ({"split_fractions": (0.5, 0.5, 0.5)}, "split_fractions must be three"),
        ({"hard_negative_fraction": 0.7}, "hard_negative_fraction must be in"),
        ({"num_videos": 0}, "num_videos must be at least 1"),
        (
            {"videos_per_site": 1, "hard_negative_fraction": 0.1},
            "lower hard_negative_fraction or raise videos_per_site",
        ),
        ({"num_videos": 20, "videos_per_site": 10}, "with videos_per_site=10, num_videos must be at least 21, got 20"),
        ({"num_videos": 4}, "with videos_per_site=2, num_videos must be at least 5, got 4"),
        ({"object_scale": 0}, "object_scale must be positive"),
        ({"caption_style": "poetry"}, "caption_style must be one of"),
    ],
)
def test_bad_settings_name_the_field(override, message):
    with pytest.raises(ValueError, match=message):
        SynthConfig(**override)


def test_cli_writes_a_dataset_and_refuses_a_non_empty_folder(tmp_path, capsys):
    arguments = [
        "data",
        "synth",
        str(tmp_path),
        "--num-videos",
        "3",
        "--duration",
        "1",
        "--width",
        "32",
        "--height",
        "32",
        "--videos-per-site",
        "1",
        "--hard-negative-fraction",
        "0",
        "--workers",
        "1",
        "--quiet",
    ]
    assert msam(arguments) == 0
    assert "wrote 3 videos" in capsys.readouterr().out
    assert len(list((tmp_path / "Videos").glob("*.mp4"))) == 3
    assert msam(arguments) == 2
    error = capsys.readouterr().err
    assert "not empty" in error and "--overwrite" in error
    assert msam([*arguments, "--overwrite"]) == 0


def test_a_small_dataset_needs_no_site_size_to_give_every_split_a_video(tmp_path, capsys):
    assert [SynthConfig(num_videos=n).videos_per_site for n in (20, 60, 100, 1000)] == [2, 6, 10, 10]
    arguments = ["data", "synth", str(tmp_path), "--num-videos", "20", "--duration", "2", "--width", "32"]
    assert msam([*arguments, "--height", "32", "--workers", "1", "--quiet"]) == 0
    assert "wrote 20 videos" in capsys.readouterr().out
    assert all((tmp_path / f"{split}_list.txt").read_text().split() for split in ("train", "val", "test"))


def test_colour_histogram_sees_colours_in_proportion():
    frames = np.zeros((2, 10, 10, 3), np.uint8)
    frames[:, :5] = (255, 0, 0)
    histogram = colour_histogram(frames, bins=2)
    assert histogram.sum() == pytest.approx(1.0)
    assert histogram[0] == pytest.approx(0.5) and histogram[4] == pytest.approx(0.5)  # black, red


def test_ridge_recovers_a_linear_map():
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(200, 5))
    weights = rng.normal(size=(5, 3))
    targets = inputs @ weights + 0.5
    fitted = ridge_fit(inputs, targets, ridge=1e-9)
    np.testing.assert_allclose(ridge_predict(fitted, inputs), targets, atol=1e-6)


def test_background_histograms_remove_only_the_objects(synth_dir):
    truth = ground_truth(synth_dir)
    ids = sorted(truth)
    backgrounds = dict(zip(ids, background_histograms(synth_dir, ids, progress=False)))
    whole = {
        video_id: colour_histogram(read_frames(synth_dir / "Videos" / f"{video_id}.mp4").frames) for video_id in ids
    }
    for video_id in ids:
        same_site = [other for other in ids if truth[other]["site_id"] == truth[video_id]["site_id"]]
        for other in same_site:  # one site, one background: identical without objects
            np.testing.assert_array_equal(backgrounds[video_id], backgrounds[other])
        # objects and compression move a little of the mass; the terrain keeps the rest
        assert 0 < 0.5 * np.abs(backgrounds[video_id] - whole[video_id]).sum() < 0.3
    with pytest.raises(KeyError, match="no_such_video"):
        background_histograms(synth_dir, ["no_such_video"], progress=False)


def test_baselines_score_the_test_split(synth_dir):
    results = run_baselines(load_video_text_dataset(synth_dir), "test", synthetic_dir=synth_dir, progress=False)
    assert set(results) == {
        "colour histogram (whole frame)",
        "background only (objects removed)",
        "caption length only",
        "chance",
    }
    test_videos = len(load_video_text_dataset(synth_dir)["test"])
    assert results["chance"]["t2v_r1"] == pytest.approx(100.0 / test_videos)
    for metrics in results.values():
        assert 0.0 <= metrics["t2v_r1"] <= 100.0 and 1.0 <= metrics["t2v_median_rank"] <= test_videos


def test_synth_to_hub_loads_in_a_fresh_process_with_the_same_rows(synth_dir, tmp_path):
    from test_hub_dataset import READ_WITH_DATASETS  # the plain-`datasets` reader of the Hub export tests

    output, report = export_hub_dataset(synth_dir, tmp_path / "repo")
    assert report.problems() == []
    assert "msam data synth" in (output / "README.md").read_text()
    first_video = tmp_path / "first.mp4"
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, "-c", READ_WITH_DATASETS, str(output), str(first_video)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    original = load_video_text_dataset(synth_dir)
    for split in original:
        assert loaded["rows"][split] == [
            {key: value for key, value in row.items() if key != "video"} for row in original[split]
        ]
        assert all(row["attributes"]["entities"] for row in loaded["rows"][split])
    np.testing.assert_array_equal(
        read_frames(first_video).frames, read_frames(original["train"][0]["video"]["path"]).frames
    )


def test_rendering_chosen_frames_gives_the_pixels_of_the_whole_video():
    # The background-only baseline and the tiny CLIP's corpus render only the frames they need.
    for seed in range(3):
        scene = sample_scene(np.random.default_rng(seed), 1.0)
        every = list(render_frames(scene, seed, 48, 48, 16))
        chosen = list(render_frames(scene, seed, 48, 48, 16, frame_indices=[0, 5, 15]))
        assert len(chosen) == 3
        for index, frame in zip([0, 5, 15], chosen):
            np.testing.assert_array_equal(frame, every[index])


@pytest.mark.parametrize("num_videos", [5, 7, 10, 11, 13, 19])
def test_few_videos_still_fill_every_split(num_videos):
    # Sites are dealt whole to splits: with few sites the split that rounding or dealing would leave empty takes one.
    splits = [job["split"] for job in _plan(SynthConfig(num_videos=num_videos, duration=1.0))]
    assert len(splits) == num_videos and set(splits) == {"train", "validation", "test"}
