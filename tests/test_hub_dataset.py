"""`msam data to-hub` / `push`: a folder that plain `datasets.load_dataset` reads in a fresh process, and an offline push."""

import json
import os
import pickle
import subprocess
import sys
from unittest import mock

import datasets
import huggingface_hub
import numpy as np
import pytest
from huggingface_hub import DatasetCard
from huggingface_hub import HfApi
from huggingface_hub import RepoUrl

from msam_hf.cli import main as msam
from msam_hf.data import export_hub_dataset
from msam_hf.data import load_video_text_dataset
from msam_hf.data import push_dataset_folder
from msam_hf.video_io import read_frames

CAPTIONS = {
    "Party_042 ": ["many people at a party", "tables and chairs"],
    "Party_042 1": ["a lake"],
    "boat": ["a boat"],
}
SPLITS = {"Party_042 ": "train", "Party_042 1": "train", "boat": "test"}
ATTRIBUTES = {"boat": {"entities": ["boat", "water"], "actions": ["sail"], "relations": ["boat on water"]}}

# Runs in a new interpreter that never imports msam_hf: only datasets reads the folder.
READ_WITH_DATASETS = """
import json, sys
import datasets
dataset = datasets.load_dataset(sys.argv[1])
rows = {split: [{key: value for key, value in row.items() if key != "video"} for row in part] for split, part in dataset.items()}
videos = {split: [row["video"]["path"] for row in part] for split, part in dataset.items()}
first = dataset["train"][0]["video"]
open(sys.argv[2], "wb").write(first["bytes"])
print(json.dumps({"rows": rows, "videos": videos, "feature": str(dataset["train"].features["video"])}))
"""


@pytest.fixture(autouse=True)
def private_datasets_cache(tmp_path, monkeypatch):
    """load_dataset caches Arrow copies; keep them in the test's folder, not the user's cache."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets_cache")


@pytest.fixture
def exported(tmp_path, make_videofolder):
    source = make_videofolder(CAPTIONS, splits=SPLITS, attributes=ATTRIBUTES)
    # `msam data synth` leaves its settings next to the videos: the card then names the generator as source.
    (source / "synth_config.json").write_text(json.dumps({"generator": "msam_hf.data.synthetic"}))
    output, report = export_hub_dataset(source, tmp_path / "repo", repo_id="someone/drone-clips")
    return source, output, report


def test_to_hub_folder_loads_with_plain_datasets_in_a_fresh_process(tmp_path, exported):
    source, output, report = exported
    assert report.problems() == []
    video_copy = tmp_path / "first_video.mp4"
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, "-c", READ_WITH_DATASETS, str(output), str(video_copy)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])

    original = load_video_text_dataset(source)
    for split in ("train", "test"):
        expected = [{key: value for key, value in row.items() if key != "video"} for row in original[split]]
        assert loaded["rows"][split] == expected
    assert loaded["rows"]["train"][0]["video_id"] == "Party_042 "  # the trailing space survives
    assert loaded["videos"]["test"] == ["boat.mp4"]
    assert "decode=False" in loaded["feature"]
    # The embedded bytes are the original file, and they decode.
    original_path = original["train"][0]["video"]["path"]
    assert video_copy.read_bytes() == open(original_path, "rb").read()
    np.testing.assert_array_equal(read_frames(video_copy).frames, read_frames(original_path).frames)


def test_the_card_declares_splits_features_sizes_and_source(exported):
    _, output, _ = exported
    card = DatasetCard.load(output / "README.md")
    metadata = card.data.to_dict()
    assert metadata["license"] == "apache-2.0"
    assert metadata["configs"] == [
        {
            "config_name": "default",
            "data_files": [{"split": "train", "path": "data/train-*"}, {"split": "test", "path": "data/test-*"}],
        }
    ]
    features = {feature["name"]: feature for feature in metadata["dataset_info"]["features"]}
    assert features["video"]["dtype"] == {"video": {"decode": False}}
    assert set(features) == {"video_id", "video", "captions", "attributes"}
    splits = {split["name"]: split["num_examples"] for split in metadata["dataset_info"]["splits"]}
    assert splits == {"train": 2, "test": 1}
    assert metadata["dataset_info"]["download_size"] == sum(path.stat().st_size for path in (output / "data").iterdir())
    assert 'load_dataset("someone/drone-clips")' in card.text and "read_frames" in card.text
    assert "msam data synth" in card.text


def test_a_usrd_folder_gets_the_papers_source_and_a_captions_only_note(tmp_path):
    source = tmp_path / "usrd_subset"
    source.mkdir()
    (source / "raw-captions.pkl").write_bytes(pickle.dumps({"Party_042 ": [["many", "people"]]}))
    (source / "test_list.txt").write_text("Party_042 \n")
    output, report = export_hub_dataset(source, tmp_path / "repo")
    assert report.problems() == ["no video folder: all 1 rows are kept without video (captions only)"]
    card = DatasetCard.load(output / "README.md")
    assert card.data.license == "other" and "arxiv:2510.15470" in card.data.tags
    assert "1 row(s) have no video file" in card.text
    assert load_video_text_dataset(output)["test"]["video_id"] == ["Party_042 "]


def test_the_exported_folder_reads_back_through_our_loader(exported):
    _, output, _ = exported
    dataset = load_video_text_dataset(output)
    assert dataset["test"][0]["attributes"] == ATTRIBUTES["boat"]
    assert read_frames(dataset["test"][0]["video"]).frames.ndim == 4


def test_large_splits_are_sharded(tmp_path, make_videofolder):
    source = make_videofolder({f"clip_{index}": [f"caption {index}"] for index in range(4)})
    output, _ = export_hub_dataset(source, tmp_path / "repo", max_shard_size=2_000)
    shards = sorted(path.name for path in (output / "data").iterdir())
    assert shards == [f"train-{index:05d}-of-00004.parquet" for index in range(4)]
    assert len(load_video_text_dataset(output)["train"]) == 4


def test_to_hub_refuses_a_non_empty_folder_without_overwrite(tmp_path, make_videofolder, capsys):
    source = make_videofolder({"a": ["x"]})
    output = tmp_path / "repo"
    output.mkdir()
    (output / "notes.txt").write_text("mine")
    assert msam(["data", "to-hub", str(source), str(output)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert msam(["data", "to-hub", str(source), str(output), "--overwrite"]) == 0
    assert (output / "notes.txt").read_text() == "mine"  # only data/ and README.md are replaced
    assert len(list((output / "data").glob("*.parquet"))) == 1


def test_missing_videos_are_reported_and_kept_as_null(tmp_path, make_videofolder, capsys):
    source = make_videofolder({"a": ["x"], "b": ["y"]}, without_file=("b",))
    assert msam(["data", "to-hub", str(source), str(tmp_path / "repo")]) == 0
    assert "have no file" in capsys.readouterr().err
    dataset = load_video_text_dataset(tmp_path / "repo")
    assert dataset["train"]["video_id"] == ["a", "b"] and dataset["train"][1]["video"] is None
    assert "1 row(s) have no video file" in (tmp_path / "repo" / "README.md").read_text()
    assert msam(["data", "to-hub", str(source), str(tmp_path / "strict"), "--strict"]) == 2


def test_push_creates_the_dataset_repo_and_uploads_the_folder_offline(exported, monkeypatch, capsys):
    _, output, _ = exported
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # a request that slips through fails
    secret = "hf_" + "x" * 34
    monkeypatch.setenv("HF_TOKEN", secret)
    url = RepoUrl("https://huggingface.co/datasets/someone/drone-clips")
    with (
        mock.patch.object(HfApi, "create_repo", return_value=url) as create_repo,
        mock.patch.object(HfApi, "upload_folder") as upload_folder,
    ):
        assert msam(["data", "push", str(output), "someone/drone-clips", "--private"]) == 0
    create_repo.assert_called_once_with("someone/drone-clips", repo_type="dataset", private=True, exist_ok=True)
    upload_folder.assert_called_once()
    assert upload_folder.call_args.kwargs["folder_path"] == output
    assert upload_folder.call_args.kwargs["repo_type"] == "dataset"
    printed = capsys.readouterr()
    assert "https://huggingface.co/datasets/someone/drone-clips" in printed.out
    assert secret not in printed.out + printed.err


def test_push_refuses_a_folder_that_is_not_an_export(tmp_path):
    with pytest.raises(FileNotFoundError, match="msam data to-hub"):
        push_dataset_folder(tmp_path, "someone/nothing")


def test_push_failures_are_reported_without_a_traceback_or_the_token(exported, monkeypatch, capsys):
    _, output, _ = exported
    # HF_HUB_OFFLINE is read when huggingface_hub is imported; set the constant it became.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    secret = "hf_" + "y" * 34
    monkeypatch.setenv("HF_TOKEN", secret)
    assert msam(["data", "push", str(output), "someone/drone-clips"]) == 1
    printed = capsys.readouterr()
    assert "offline" in printed.err and "Traceback" not in printed.err
    assert secret not in printed.out + printed.err
