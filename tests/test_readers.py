"""Readers: the CLIP4Clip/USRD layout (safe pickle, exact ids), videofolder metadata, MSR-VTT json, `msam data stats`."""

import csv
import json
import os
import pickle

import datasets
import pytest

from conftest import write_video
from msam_hf.cli import main as msam
from msam_hf.data import LoadReport
from msam_hf.data import detect_layout
from msam_hf.data import load_video_text_dataset
from msam_hf.data import read_caption_pickle
from msam_hf.data import read_video_text_source
from msam_hf.video_io import read_frames


def write_clip4clip(root, captions, splits, videos=()):
    """A CLIP4Clip-layout folder: raw-captions.pkl, <split>_list.txt files and Videos/<id>.mp4 for `videos`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "raw-captions.pkl").write_bytes(pickle.dumps(captions))
    for name, ids in splits.items():
        (root / f"{name}_list.txt").write_text("".join(f"{video_id}\n" for video_id in ids), encoding="utf-8")
    for video_id in videos:
        write_video(root / "Videos" / f"{video_id}.mp4", seconds=1.0, rate=4)
    return root


def test_usrd_has_the_published_counts_and_keeps_ids_with_trailing_spaces(usrd_dir):
    dataset = load_video_text_dataset(usrd_dir)
    assert {split: len(rows) for split, rows in dataset.items()} == {"train": 1995, "validation": 573, "test": 296}
    assert sum(len(captions) for split in dataset.values() for captions in split["captions"]) == 14_320
    ids = [video_id for split in dataset.values() for video_id in split["video_id"]]
    assert len(ids) == len(set(ids)) == 2864
    # Two different videos whose ids differ only by a trailing " 1".
    assert "Party_042 " in ids and "Party_042 1" in ids
    by_id = (
        {row["video_id"]: row for row in dataset["train"]}
        | {row["video_id"]: row for row in dataset["test"]}
        | {row["video_id"]: row for row in dataset["validation"]}
    )
    assert by_id["Party_042 "]["captions"][0] == "there are many people"
    assert by_id["Party_042 "]["captions"] != by_id["Party_042 1"]["captions"]
    # No Videos/ folder: rows are kept for statistics, without video.
    assert all(value is None for value in dataset["test"]["video"])


def test_usrd_without_videos_is_an_error_when_strict(usrd_dir):
    with pytest.raises(ValueError, match="no video folder"):
        load_video_text_dataset(usrd_dir, strict=True)


def test_msam_data_stats_reports_usrd(usrd_dir, capsys):
    assert msam(["data", "stats", str(usrd_dir)]) == 0
    output = capsys.readouterr().out
    lines = {line.split()[0]: line.split() for line in output.splitlines() if line.strip()}
    assert lines["train"][1:4] == ["1,995", "0", "9,975"]
    assert lines["validation"][1:4] == ["573", "0", "2,865"]
    assert lines["test"][1:4] == ["296", "0", "1,480"]
    assert lines["total"][1:4] == ["2,864", "0", "14,320"]
    assert "5 captions: 2,864 videos" in output
    assert "exceed 32 tokens" in output and "no video folder" in output


def test_clip4clip_joins_words_drops_empty_captions_and_reports_problems(tmp_path):
    captions = {
        "Party_042 ": [["there", "are", "many", "people"], "a plain string caption", [], "   "],
        "Party_042 1": [["there", "is", "a", "lake"]],
        "Lake_001": [["a", "boat"]],
        "Lake_002": [[""]],  # only empty captions
        "Unlisted_001": [["in", "no", "split"]],
    }
    splits = {"train": ["Party_042 ", "Party_042 1", "Lake_002"], "val": ["Lake_001"], "test": ["Not_captioned"]}
    root = write_clip4clip(tmp_path / "src", captions, splits, videos=["Party_042 ", "Lake_001"])

    source = read_video_text_source(root)
    report = source.report
    assert report.empty_captions == 3
    assert report.ids_without_captions == {"train": ["Lake_002"], "test": ["Not_captioned"]}
    assert report.missing_videos == {"train": ["Party_042 1"]}
    assert report.unassigned_ids == ["Unlisted_001"]

    dataset = source.to_dataset_dict()
    train = dataset["train"]
    assert train["video_id"] == ["Party_042 ", "Party_042 1"]
    assert train["captions"][0] == ["there are many people", "a plain string caption"]
    assert train[0]["video"]["path"].endswith("Videos/Party_042 .mp4") and train[0]["video"]["bytes"] is None
    assert train[1]["video"] is None
    assert "test" not in dataset  # its only video had no caption
    # Loading does not decode; the row's video value is what read_frames takes.
    assert read_frames(dataset["validation"][0]["video"]).frames.shape[0] == 1

    with pytest.raises(ValueError, match="Not_captioned"):
        read_video_text_source(root, strict=True)


def test_rows_have_the_declared_features(tmp_path):
    root = write_clip4clip(tmp_path / "src", {"a": [["one"]]}, {"train": ["a"]}, videos=["a"])
    features = load_video_text_dataset(root)["train"].features
    assert features["video"] == datasets.Video(decode=False)
    assert features["captions"] == datasets.List(datasets.Value("string"))
    assert "attributes" not in features


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "PWNED"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    root = tmp_path / "src"
    root.mkdir()
    (root / "raw-captions.pkl").write_bytes(pickle.dumps({"a": [Exploit()]}))
    (root / "train_list.txt").write_text("a\n")
    with pytest.raises(ValueError, match="raw-captions.pkl.*(posix|os)\\.system"):
        load_video_text_dataset(root)
    assert not marker.exists()


@pytest.mark.parametrize("data", [["not", "a", "dict"], {1: [["one"]]}, {"a": "not a list"}, {"a": [3.5]}])
def test_a_pickle_of_the_wrong_shape_is_refused(tmp_path, data):
    path = tmp_path / "raw-captions.pkl"
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(ValueError, match="raw-captions.pkl"):
        read_caption_pickle(path)


@pytest.mark.parametrize("bad_id", ["../outside", "/etc/passwd", "Videos/../../outside", "..\\outside", "C:\\clip"])
def test_ids_that_would_leave_the_video_folder_are_rejected(tmp_path, bad_id):
    root = write_clip4clip(tmp_path / "src", {bad_id: [["a", "caption"]]}, {"train": [bad_id]})
    with pytest.raises(ValueError, match="outside its folder"):
        load_video_text_dataset(root)


def test_windows_line_endings_are_not_part_of_ids(tmp_path):
    root = write_clip4clip(tmp_path / "src", {"a ": [["x"]], "b": [["y"]]}, {})
    (root / "train_list.txt").write_bytes(b"a \r\nb\r\n")
    assert load_video_text_dataset(root)["train"]["video_id"] == ["a ", "b"]


def test_videofolder_jsonl_with_split_column_and_attributes(make_videofolder):
    root = make_videofolder(
        {"clip_a": ["a red car", "a car on a road"], "clip_b": ["a boat"], "clip_c": ["a field", ""]},
        splits={"clip_a": "train", "clip_b": "val", "clip_c": "test"},
        attributes={"clip_a": {"entities": ["car", "road"], "actions": ["drive"]}},
    )
    dataset = load_video_text_dataset(root)
    assert list(dataset) == ["train", "validation", "test"]
    assert dataset["train"][0]["captions"] == ["a red car", "a car on a road"]
    assert dataset["train"][0]["attributes"] == {"entities": ["car", "road"], "actions": ["drive"], "relations": []}
    assert dataset["validation"][0]["attributes"] == {"entities": [], "actions": [], "relations": []}
    assert dataset["test"][0]["captions"] == ["a field"]
    assert dataset["test"][0]["video_id"] == "clip_c"
    assert read_frames(dataset["validation"][0]["video"]).frames.ndim == 4


def test_videofolder_csv_with_one_caption_per_row_is_grouped_per_file(tmp_path):
    root = tmp_path / "csvfolder"
    for name in ("x", "y"):
        write_video(root / f"{name}.mp4", seconds=1.0, rate=4)
    write_video(root / "extra.mp4", seconds=1.0, rate=4)
    with (root / "metadata.csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["file_name", "caption"])
        writer.writerows(
            [["x.mp4", "first of x"], ["y.mp4", "only y"], ["x.mp4", "second of x"], ["gone.mp4", "no file"]]
        )
    source = read_video_text_source(root)
    rows = {record.video_id: record.captions for record in source.splits["train"]}
    assert rows == {"x": ["first of x", "second of x"], "y": ["only y"], "gone": ["no file"]}
    assert source.report.missing_videos == {"train": ["gone"]}
    assert source.report.unreferenced_videos == ["extra.mp4"]


def test_videofolder_split_subfolders(tmp_path):
    root = tmp_path / "splitfolders"
    for split, name in (("train", "t1"), ("val", "v1"), ("test", "s1")):
        write_video(root / split / f"{name}.mp4", seconds=1.0, rate=4)
        row = {"file_name": f"{name}.mp4", "captions": [f"caption of {name}"]}
        (root / split / "metadata.jsonl").write_text(json.dumps(row) + "\n")
    dataset = load_video_text_dataset(root)
    assert {split: rows["video_id"] for split, rows in dataset.items()} == {
        "train": ["train/t1"],
        "validation": ["val/v1"],
        "test": ["test/s1"],
    }


def test_videofolder_file_names_must_stay_inside(tmp_path):
    root = tmp_path / "escape"
    root.mkdir()
    (root / "metadata.jsonl").write_text(json.dumps({"file_name": "../secret.mp4", "caption": "x"}) + "\n")
    with pytest.raises(ValueError, match="metadata.jsonl, row 1.*outside its folder"):
        load_video_text_dataset(root)


def test_videofolder_rejects_unknown_attribute_kinds(make_videofolder):
    root = make_videofolder({"a": ["x"]}, attributes={"a": {"colours": ["red"]}})
    with pytest.raises(ValueError, match="unknown attribute kind.*colours"):
        load_video_text_dataset(root)


def test_msrvtt_annotation_json(tmp_path):
    root = tmp_path / "msrvtt"
    write_video(root / "TrainValVideo" / "video0.mp4", seconds=1.0, rate=4)
    write_video(root / "TrainValVideo" / "video1.mp4", seconds=1.0, rate=4)
    write_video(root / "TestVideo" / "video2.mp4", seconds=1.0, rate=4)
    annotation = {
        "videos": [
            {"video_id": "video0", "split": "train"},
            {"video_id": "video1", "split": "validate"},
            {"video_id": "video2", "split": "test"},
        ],
        "sentences": [
            {"video_id": "video0", "caption": "a man sings"},
            {"video_id": "video1", "caption": "a dog runs"},
            {"video_id": "video0", "caption": "someone is singing"},
            {"video_id": "video2", "caption": "rain"},
        ],
    }
    (root / "train_val_videodatainfo.json").write_text(json.dumps(annotation))
    assert detect_layout(root) == "msrvtt"
    dataset = load_video_text_dataset(root)
    assert dataset["train"][0]["captions"] == ["a man sings", "someone is singing"]
    assert dataset["validation"]["video_id"] == ["video1"]
    assert dataset["validation"][0]["video"]["path"].endswith("TrainValVideo/video1.mp4")
    assert dataset["test"][0]["video"]["path"].endswith("TestVideo/video2.mp4")


def test_a_folder_with_both_layouts_is_read_as_videofolder_for_its_attributes(make_videofolder):
    root = make_videofolder({"a": ["one caption"]}, attributes={"a": {"entities": ["car"]}})
    (root / "raw-captions.pkl").write_bytes(pickle.dumps({"a": [["one", "caption"]]}))
    (root / "train_list.txt").write_text("a\n")
    assert detect_layout(root) == "videofolder"
    assert load_video_text_dataset(root)["train"][0]["attributes"]["entities"] == ["car"]


def test_an_unrecognised_folder_says_what_was_expected(tmp_path):
    (tmp_path / "random.txt").write_text("hello")
    with pytest.raises(ValueError, match="raw-captions.pkl.*metadata.jsonl"):
        detect_layout(tmp_path)


def test_a_clean_report_has_no_problems():
    assert LoadReport(source="x", layout="videofolder").problems() == []
