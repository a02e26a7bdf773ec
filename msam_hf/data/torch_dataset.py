"""A split of a video-caption `DatasetDict` as a torch `Dataset`, and the collate that calls the processor.

Training (`mode="train"`): one item per video with one of its captions, drawn at random per epoch
(seeded by seed, epoch and index, so any worker draws the same; call `set_epoch` each epoch). A
video that fails to decode is logged, and the collate drops it and lists it in the batch's
`skipped_video_ids`: it never becomes a zero tensor.

Evaluation (`mode="eval"`, the multi-sentence protocol of msam.md §8): one item per video with all
its captions; a batch holds its videos once and the captions flat, with `caption_to_video` pointing
each caption at its video. A decoding failure raises: a test set must not shrink silently.

Attribute labels (any model whose config has an `attribute_vocabulary`, e.g. MCSAN): given the
vocabulary, the collate adds multi-hot `attribute_labels` per caption and `video_attribute_labels` per
video, the union over *all* the video's captions (items carry them as `video_captions`), not only the
caption drawn for this epoch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

import datasets
import numpy as np
import torch

from ..video_io import FrameCache
from ..video_io import VideoDecodeError
from ..video_io import read_frames

if TYPE_CHECKING:
    from .attributes import AttributeVocabulary

logger = logging.getLogger(__name__)

MODES = ("train", "eval")


def without_video_decoding(dataset: datasets.Dataset) -> datasets.Dataset:
    """`dataset` with its `video` column left as paths / bytes: datasets would decode through torchcodec, which does
    not work with CPU torch; `read_frames` decodes instead."""
    if isinstance(dataset.features["video"], datasets.Video) and dataset.features["video"].decode:
        return dataset.cast_column("video", datasets.Video(decode=False))
    return dataset


def draw_caption(seed: int, epoch: int, row: int, num_captions: int) -> int:
    """Which caption of the split's row `row` training uses in `epoch`: one generator per (seed, epoch, row), so any
    worker (and the feature cache's dataset) draws the same, and each epoch draws anew."""
    return int(np.random.default_rng([seed, epoch, row]).integers(num_captions))


class VideoTextDataset(torch.utils.data.Dataset):
    """Videos of one split with their captions, decoded with `read_frames` when an item is read.

    Args:
        dataset: one split of `load_video_text_dataset(...)` (columns `video_id`, `video`, `captions`).
        mode: `"train"` (one random caption per video per epoch) or `"eval"` (all captions).
        fps, max_frames: frame sampling (msam.md §1: 1 frame per second, at most 12).
        seed: seeds the caption draw in training.
        frame_cache_dir: keep decoded frames in this folder (`msam_hf.video_io.FrameCache`): every epoch
            after the first reads them instead of decoding again.

    Items are dicts: `video_id`, `index` (row in the split), `frames` (T, H, W, 3) uint8, `timestamps`,
    `captions` (one in training, all in evaluation), `caption_indices` (their positions in the row's
    captions) and `video_captions` (all the row's captions, for video-level attribute labels). In
    training, a video that fails to decode gives `{"video_id", "index", "error"}`.
    """

    def __init__(
        self,
        dataset: datasets.Dataset,
        mode: str = "train",
        fps: float = 1.0,
        max_frames: int = 12,
        seed: int = 42,
        frame_cache_dir: str | os.PathLike | None = None,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        missing_columns = {"video_id", "video", "captions"} - set(dataset.column_names)
        if missing_columns:
            raise ValueError(
                f"the dataset lacks column(s) {sorted(missing_columns)}; load it with load_video_text_dataset"
            )
        dataset = without_video_decoding(dataset)
        # Through Arrow (honours select/shuffle indices, does not copy embedded video bytes into Python).
        video_is_null = dataset.with_format("arrow")["video"].is_null().to_pylist()
        without_video = [row for row, is_null in enumerate(video_is_null) if is_null]
        if without_video:
            ids = dataset.select(without_video[:5])["video_id"]
            raise ValueError(
                f"{len(without_video)} video(s) of this split have no file (e.g. {ids}); "
                "add the videos to the source folder, or select the rows that have one"
            )
        self.dataset = dataset.select_columns(["video_id", "video", "captions"])
        self.mode = mode
        self.fps = fps
        self.max_frames = max_frames
        self.seed = seed
        self.epoch = 0
        self._read = FrameCache(frame_cache_dir).read if frame_cache_dir is not None else read_frames

    def set_epoch(self, epoch: int) -> None:
        """Draw training captions for `epoch`. DataLoader workers pick it up when they start, i.e. each epoch
        unless `persistent_workers=True` (then the epoch stays the one the workers started with)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.dataset[int(index)]
        captions = row["captions"]
        if self.mode == "train":
            caption_indices = [draw_caption(self.seed, self.epoch, int(index), len(captions))]
        else:
            caption_indices = list(range(len(captions)))
        try:
            clip = self._read(row["video"], fps=self.fps, max_frames=self.max_frames)
        except VideoDecodeError as error:
            if self.mode == "eval":
                raise VideoDecodeError(f"{error.name} (video id {row['video_id']!r})", error.reason) from error
            logger.warning("skipping video %r in this batch: %s", row["video_id"], error)
            return {"video_id": row["video_id"], "index": int(index), "error": str(error)}
        return {
            "video_id": row["video_id"],
            "index": int(index),
            "frames": clip.frames,
            "timestamps": clip.timestamps,
            "captions": [captions[i] for i in caption_indices],
            "caption_indices": caption_indices,
            "video_captions": list(captions),
        }


@dataclass(kw_only=True)
class AttributeLabeller:
    """Multi-hot attribute labels of captions over `attribute_vocabulary` (entity, action, relationship concatenated:
    the `McsanConfig.attribute_slices` layout), each distinct caption tagged once (~1 ms a caption)."""

    attribute_vocabulary: AttributeVocabulary | None = None
    # caption → its positive label columns
    _label_columns: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False)

    def label_captions(self, captions: Sequence[str]) -> torch.Tensor:
        """Multi-hot attribute labels `(captions, A)` (float32), remembered per distinct caption. Called on a whole
        split before a DataLoader starts its workers, it tags every caption once: the workers inherit the labels."""
        if self.attribute_vocabulary is None:
            raise ValueError("this collator has no attribute_vocabulary to label captions with")
        new = [caption for caption in dict.fromkeys(captions) if caption not in self._label_columns]
        for caption, row in zip(new, self.attribute_vocabulary.labels(new)):
            self._label_columns[caption] = np.flatnonzero(row)
        labels = torch.zeros(len(captions), self.attribute_vocabulary.num_attributes)
        for row, caption in enumerate(captions):
            labels[row, torch.from_numpy(self._label_columns[caption])] = 1.0
        return labels

    def attribute_labels(
        self, captions: Sequence[str], video_captions: Sequence[Sequence[str]]
    ) -> dict[str, torch.Tensor]:
        """`attribute_labels` of the batch's captions and `video_attribute_labels` of its videos, a video's row being
        the union over all its captions (`video_captions`), not only the one drawn."""
        return {
            "attribute_labels": self.label_captions(captions),
            "video_attribute_labels": torch.stack([self.label_captions(every).amax(dim=0) for every in video_captions]),
        }


@dataclass
class VideoTextCollator(AttributeLabeller):
    """Batches `VideoTextDataset` items with a processor (`msam_hf.default_processor()` or `AutoProcessor`).

    The processor is called as `processor(text=..., videos=..., return_tensors="pt")` and must return
    `input_ids`, `attention_mask`, `pixel_values_videos` (B, T, 3, S, S) and `video_mask` (B, T).

    The batch adds `video_ids` (list of str), `video_indices` (B,) rows in the split, `timestamps` (list of
    B arrays: the seconds of each video's frames), `captions` (list of str, N of them), `caption_indices` (N,) each
    caption's position in its video's captions,
    `caption_to_video` (N,) each caption's video in this batch (in training N = B and it is `arange(B)`),
    and `skipped_video_ids`: items that failed to decode and were dropped. When every item failed,
    the batch holds only `video_ids=[]` and `skipped_video_ids`; a training loop skips it.

    With an `attribute_vocabulary` (`msam_hf.data.attributes.AttributeVocabulary`) the batch also holds
    `attribute_labels` (N, A) and `video_attribute_labels` (B, A) (see `AttributeLabeller`).
    """

    processor: Any

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        skipped = [item["video_id"] for item in items if "error" in item]
        items = [item for item in items if "error" not in item]
        if not items:
            return {"video_ids": [], "skipped_video_ids": skipped}
        captions = [caption for item in items for caption in item["captions"]]
        inputs = self.processor(text=captions, videos=[item["frames"] for item in items], return_tensors="pt")
        batch = dict(inputs)
        batch.update(
            video_ids=[item["video_id"] for item in items],
            video_indices=torch.tensor([item["index"] for item in items], dtype=torch.long),
            timestamps=[item["timestamps"] for item in items],
            captions=captions,
            caption_indices=torch.tensor([i for item in items for i in item["caption_indices"]], dtype=torch.long),
            caption_to_video=torch.tensor(
                [position for position, item in enumerate(items) for _ in item["captions"]], dtype=torch.long
            ),
            skipped_video_ids=skipped,
        )
        if self.attribute_vocabulary is not None:
            batch.update(self.attribute_labels(captions, [item["video_captions"] for item in items]))
        return batch
