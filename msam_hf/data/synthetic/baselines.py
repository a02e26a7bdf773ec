"""Baselines that say how much of a retrieval benchmark can be solved without seeing objects.

They work on any dataset `load_video_text_dataset` reads (decodable videos, captions), fit on the train split
and score a held-out split; metrics use `ties="mean"` (expected rank under random tie-breaking) so that a score
with many ties is not rewarded or punished by the gallery's order.

- **Colour histogram (whole frame).** A video is its colour histogram (8 × 8 × 8 RGB bins of the sampled frames,
  averaged over time). A caption is a bag of words. A ridge regression (closed form) maps the bag of words of
  each training caption to its video's histogram; a test caption scores a video by minus the squared distance
  between the predicted and the actual histogram (on square-rooted histograms, the Hellinger geometry). Terrain
  dominates the histogram, but the few percent of pixels an object covers register too: words like "red" find
  red pixels. It is a crude model *with* objects, not a background-only one.
- **Background only.** The same model on frames with the objects removed: what knowing the scene from words
  like "lake" or "rooftops" buys. Only a generator can render those frames, so this row exists for the
  synthetic benchmark (`ground_truth.jsonl` re-rendered without its objects).
- **Caption length only.** A caption is only its number of words. Each video gets a predicted caption length
  (ridge regression from its histogram to the mean length of its training captions); a caption scores a video
  by minus the gap between its length and the prediction. If lengths carry no information about the video,
  this is chance.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
from tqdm.auto import tqdm

from ...metrics import retrieval_metrics
from ...video_io import read_frames
from ...video_io import sample_frame_indices
from .render import render_frames

HISTOGRAM_BINS = 8
RIDGE = 1.0
_WORD = re.compile(r"[a-z]+")


def colour_histogram(frames: np.ndarray, bins: int = HISTOGRAM_BINS) -> np.ndarray:
    """Normalised joint RGB histogram (bins³) of `frames` (T, H, W, 3) uint8, averaged over all pixels of all frames."""
    codes = (frames.reshape(-1, 3).astype(np.int64) * bins) // 256
    flat = (codes[:, 0] * bins + codes[:, 1]) * bins + codes[:, 2]
    histogram = np.bincount(flat, minlength=bins**3).astype(np.float64)
    return histogram / histogram.sum()


def video_histograms(
    split: datasets.Dataset, fps: float = 1.0, max_frames: int = 12, progress: bool = True
) -> np.ndarray:
    """(videos, bins³) colour histograms of a split's videos, decoded with `read_frames`."""
    return np.stack(
        [
            colour_histogram(read_frames(row["video"], fps=fps, max_frames=max_frames).frames)
            for row in tqdm(split, desc="colour histograms", unit="video", disable=not progress)
        ]
    )


def background_histograms(
    dataset_dir: str | Path, video_ids: list[str], max_frames: int = 12, progress: bool = True
) -> np.ndarray:
    """(videos, bins³) colour histograms of synthetic videos re-rendered without their objects.

    The frames are the ones `read_frames` picks from the real video (1 per second, at most `max_frames`).
    """
    dataset_dir = Path(dataset_dir)
    settings = json.loads((dataset_dir / "synth_config.json").read_text(encoding="utf-8"))
    scenes = {}
    with (dataset_dir / "ground_truth.jsonl").open(encoding="utf-8") as file:
        for line in file:
            record = json.loads(line)
            scenes[record["video_id"]] = record
    num_frames, fps = settings["num_frames"], settings["fps"]
    picked = sample_frame_indices(np.arange(num_frames) / fps, fps=1.0, max_frames=max_frames)
    histograms = []
    for video_id in tqdm(video_ids, desc="background histograms", unit="video", disable=not progress):
        if video_id not in scenes:
            raise KeyError(
                f"video {video_id!r} is not in {dataset_dir / 'ground_truth.jsonl'}; the background-only "
                "baseline needs the synthetic dataset the split was read from"
            )
        empty = {**scenes[video_id], "entities": []}
        frames = render_frames(empty, settings["seed"], settings["width"], settings["height"], num_frames, picked)
        histograms.append(colour_histogram(np.stack(list(frames))))
    return np.stack(histograms)


def ridge_fit(inputs: np.ndarray, targets: np.ndarray, ridge: float = RIDGE) -> np.ndarray:
    """Weights W (with a bias row) minimising ‖[X 1] W − Y‖² + ridge ‖W‖²."""
    design = np.hstack([inputs, np.ones((len(inputs), 1))])
    return np.linalg.solve(design.T @ design + ridge * np.eye(design.shape[1]), design.T @ targets)


def ridge_predict(weights: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    return np.hstack([inputs, np.ones((len(inputs), 1))]) @ weights


def words(caption: str) -> list[str]:
    return _WORD.findall(caption.lower())


def bag_of_words(captions: list[str], vocabulary: dict[str, int]) -> np.ndarray:
    """(captions, vocabulary) word counts; words outside the vocabulary are ignored."""
    counts = np.zeros((len(captions), len(vocabulary)))
    for row, caption in enumerate(captions):
        for word, count in Counter(words(caption)).items():
            if word in vocabulary:
                counts[row, vocabulary[word]] = count
    return counts


def colour_histogram_similarity(
    train_captions: list[list[str]], train_histograms: np.ndarray, test_captions: list[str], test_histograms: np.ndarray
) -> np.ndarray:
    """(test captions, test videos) scores of the colour-histogram baselines (module docstring)."""
    vocabulary = {
        word: index
        for index, word in enumerate(
            sorted({w for captions in train_captions for caption in captions for w in words(caption)})
        )
    }
    flat_captions = [caption for captions in train_captions for caption in captions]
    caption_targets = np.repeat(np.sqrt(train_histograms), [len(captions) for captions in train_captions], axis=0)
    weights = ridge_fit(bag_of_words(flat_captions, vocabulary), caption_targets)
    predicted = ridge_predict(weights, bag_of_words(test_captions, vocabulary))
    actual = np.sqrt(test_histograms)
    return -((predicted[:, None, :] - actual[None, :, :]) ** 2).sum(-1)


def caption_length_similarity(
    train_captions: list[list[str]], train_histograms: np.ndarray, test_captions: list[str], test_histograms: np.ndarray
) -> np.ndarray:
    """(test captions, test videos) scores of the caption-length-only baseline (module docstring)."""
    mean_lengths = np.array([np.mean([len(words(caption)) for caption in captions]) for captions in train_captions])
    weights = ridge_fit(np.sqrt(train_histograms), mean_lengths[:, None])
    predicted = ridge_predict(weights, np.sqrt(test_histograms))[:, 0]
    lengths = np.array([len(words(caption)) for caption in test_captions], dtype=float)
    return -np.abs(lengths[:, None] - predicted[None, :])


def background_only_metrics(
    dataset: datasets.DatasetDict, synthetic_dir: str | Path, split: str = "test", progress: bool = True
) -> dict[str, float]:
    """Metrics (`ties="mean"`) on `split` of the background-only baseline, fit on `train`: the colour-histogram model
    on the videos re-rendered without their objects (`synthetic_dir`: the `msam data synth` folder)."""
    train, test = dataset["train"], dataset[split]
    # one pass over ground_truth.jsonl for both splits
    background = background_histograms(synthetic_dir, [*train["video_id"], *test["video_id"]], progress=progress)
    test_captions = [caption for captions in test["captions"] for caption in captions]
    caption_to_video = np.repeat(np.arange(len(test)), [len(captions) for captions in test["captions"]])
    similarity = colour_histogram_similarity(
        train["captions"], background[: len(train)], test_captions, background[len(train) :]
    )
    return retrieval_metrics(similarity, caption_to_video, ties="mean")


def run_baselines(
    dataset: datasets.DatasetDict, split: str = "test", synthetic_dir: str | Path | None = None, progress: bool = True
) -> dict[str, dict]:
    """Metrics (`ties="mean"`) of the baselines on `split`, fit on `train`, plus chance level.

    `synthetic_dir`, the folder of a `msam data synth` dataset, adds the background-only row.
    """
    train, test = dataset["train"], dataset[split]
    test_captions = [caption for captions in test["captions"] for caption in captions]
    caption_to_video = np.repeat(np.arange(len(test)), [len(captions) for captions in test["captions"]])
    histograms = {
        "colour histogram (whole frame)": (
            video_histograms(train, progress=progress),
            video_histograms(test, progress=progress),
        )
    }
    results = {}
    for name, (train_histograms, test_histograms) in histograms.items():
        similarity = colour_histogram_similarity(train["captions"], train_histograms, test_captions, test_histograms)
        results[name] = retrieval_metrics(similarity, caption_to_video, ties="mean")
    if synthetic_dir is not None:
        results["background only (objects removed)"] = background_only_metrics(dataset, synthetic_dir, split, progress)
    train_histograms, test_histograms = histograms["colour histogram (whole frame)"]
    similarity = caption_length_similarity(train["captions"], train_histograms, test_captions, test_histograms)
    results["caption length only"] = retrieval_metrics(similarity, caption_to_video, ties="mean")
    constant = np.zeros((len(test_captions), len(test)))
    results["chance"] = retrieval_metrics(constant, caption_to_video, ties="mean")
    return results
