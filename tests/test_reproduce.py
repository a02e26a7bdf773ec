"""docs/reproduce.md: every recipe parses into train.py's options, and its MSR-VTT 1k-A conversion writes a dataset our
readers load with the 1k-A split (no GPU, CLIP or MSR-VTT here: a hand-made MSR-VTT folder in their formats)."""

import csv
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_video
from msam_hf.data import load_video_text_dataset

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "training" / "recipes").glob("*.yaml"))
REPRODUCE = ROOT / "docs" / "reproduce.md"


def load_train_module():
    spec = importlib.util.spec_from_file_location("train", ROOT / "training" / "train.py")
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    return train


@pytest.mark.parametrize("recipe", RECIPES, ids=[recipe.name for recipe in RECIPES])
def test_every_recipe_parses_into_train_options(recipe):
    model_args, data_args, train_args = load_train_module().parse_arguments(
        [str(recipe), "--data_dir", "DATA", "--output_dir", "OUT"]
    )
    assert data_args.data_dir == "DATA" and train_args.output_dir == "OUT"


@pytest.mark.parametrize(
    "name, batch_size, head",
    [("usrd.yaml", 64, "ciffp"), ("umcrd.yaml", 64, "ciffp"), ("msrvtt-1k-a.yaml", 128, "mean")],
)
def test_paper_recipes_hold_the_papers_settings(name, batch_size, head):
    recipe = str(ROOT / "training" / "recipes" / name)
    model_args, data_args, train_args = load_train_module().parse_arguments(
        [recipe, "--data_dir", "D", "--output_dir", "O"]
    )
    assert model_args.clip_model == "openai/clip-vit-base-patch32" and model_args.similarity_head == head
    assert train_args.batch_size == batch_size and train_args.learning_rate == 1e-4
    assert train_args.backbone_lr_coefficient == 1e-3  # CLIP at 1e-7
    assert (data_args.fps, data_args.max_frames) == (1.0, 12)


def conversion_snippet() -> str:
    section = REPRODUCE.read_text(encoding="utf-8").split("## 2. Data", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, flags=re.DOTALL).group(1)


def test_msrvtt_1k_a_conversion_writes_the_1k_a_split(tmp_path):
    root = tmp_path / "MSRVTT"
    videos = root / "videos" / "all"
    ids = [f"video{number}" for number in range(5)]
    for video_id in ids:
        write_video(videos / f"{video_id}.mp4", seconds=1.0, rate=4)
    sentences = [
        {"video_id": video_id, "caption": f"{video_id} caption {number}", "sen_id": index * 3 + number}
        for index, video_id in enumerate(ids)
        for number in range(3)
    ]
    (root / "MSRVTT_data.json").write_text(
        json.dumps({"videos": [{"video_id": v} for v in ids], "sentences": sentences})
    )
    with open(root / "MSRVTT_train.9k.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerows([["video_id"], ["video0"], ["video1"], ["video2"]])
    with open(root / "MSRVTT_JSFUSION_test.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerows(
            [
                ["key", "vid_key", "video_id", "sentence"],
                ["ret0", "msr7", "video3", "a test sentence"],
                ["ret1", "msr8", "video4", "another test sentence"],
            ]
        )

    result = subprocess.run([sys.executable, "-c", conversion_snippet()], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]

    dataset = load_video_text_dataset(videos)
    assert sorted(dataset) == ["test", "train"]
    assert dataset["train"]["video_id"] == ["video0", "video1", "video2"]
    assert dataset["train"][0]["captions"] == ["video0 caption 0", "video0 caption 1", "video0 caption 2"]
    assert dataset["test"]["video_id"] == ["video3", "video4"]
    assert dataset["test"]["captions"] == [["a test sentence"], ["another test sentence"]]  # the csv's, not the json's
    assert all(row["video"]["path"] for split in dataset.values() for row in split)
