"""A frozen backbone's features, computed once: training and evaluating MSAM's own modules without the encoders.

The paper trains CLIP at 1e-3 × the heads' learning rate (msam.md §7): the backbone is effectively frozen and the
new modules learn on fixed features. With the backbone frozen (`train.py --finetune frozen --feature_cache_dir DIR`),
each video's frame features (and patch tokens, when the model reads them) and each caption's sentence and word
embeddings are computed once and stored; every epoch of training and evaluation then reads them — no decoding, no
vision or text tower in the loop. The trained model is an ordinary `MsamModel` / `McsanModel`.

One entry is one split encoded by one backbone: a folder `DIR/<split>-<key>[+words][+patches]/` of safetensors shards
and an `index.json`. The key hashes everything the features depend on: the backbone's weights (CLIP's towers and
projections, not the logit scale, which training changes), the processor's settings, the frame sampling (fps,
max_frames) and the split's rows (video ids, captions, and each video file's resolved path, size and modification
time, or the hash of embedded bytes); the suffixes say which features beyond frames and sentences it stores, and an
entry that stores more than a model reads serves it too. Change any of them and a new entry is encoded.
Shards are written to `DIR/.<entry>.partial/` and the folder is renamed when the index is written, so an
interrupted encoding is never read as finished (and resumes from its finished shards). Under `accelerate launch`
the processes encode shards in turn; the folder must be on a file system they share.

Features are float32 (a step from the cache equals a step from pixels); an entry takes about
4 · D · (T + L · C_v [words] + T · P [patches] + C_v) bytes a video, with T frames, C_v captions a video, L tokens and
P patches a frame — words and patches only when the model reads them (MSAM's semantic branch; MCSAN's levels).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from .data.torch_dataset import AttributeLabeller
from .data.torch_dataset import VideoTextDataset
from .data.torch_dataset import draw_caption
from .data.torch_dataset import without_video_decoding
from .evaluation import RetrievalFeatures
from .modeling_clip_video import concatenate_outputs
from .video_io import FrameCache

logger = logging.getLogger(__name__)

VERSION = 1  # bump when what an entry holds changes: older entries are then ignored
INDEX_FILE = "index.json"


@dataclass
class CachedSplit:
    """One split's backbone features, in memory.

    Videos are rows of `frame_features` (videos, T, D) with `video_mask` (videos, T) and, when stored,
    `patch_embeds` (videos, T, P, D); captions are rows of `text_embeds` (captions, D), `attention_mask`
    (captions, L) and, when stored, `word_embeds` (captions, L, D), padded to the processor's `max_text_length`.
    `caption_to_video[c]` is caption c's video; `rows[v]` is video v's row in the dataset split (videos that could not
    be decoded are left out and listed in `skipped_video_ids`).
    """

    video_ids: list[str]
    rows: list[int]
    captions: list[str]
    caption_to_video: torch.Tensor
    timestamps: list[list[float]]
    frame_features: torch.Tensor
    video_mask: torch.Tensor
    text_embeds: torch.Tensor
    attention_mask: torch.Tensor
    patch_embeds: torch.Tensor | None = None
    word_embeds: torch.Tensor | None = None
    skipped_video_ids: tuple[str, ...] = ()
    path: Path | None = None

    def __post_init__(self):
        starts = torch.searchsorted(self.caption_to_video, torch.arange(len(self.video_ids) + 1))
        self._caption_ranges = starts.tolist()

    def video_captions(self, video: int) -> range:
        """Caption rows of video `video`."""
        return range(self._caption_ranges[video], self._caption_ranges[video + 1])

    def video_inputs(self, videos: Sequence[int] | torch.Tensor) -> dict[str, torch.Tensor]:
        """`frame_features`, `video_mask` (and `patch_embeds`) of these videos, padded to the longest of them, as the
        processor pads a batch of frames."""
        videos = torch.as_tensor(videos, dtype=torch.long)
        mask = self.video_mask[videos]
        frames = int(mask.sum(1).max())
        inputs = {"frame_features": self.frame_features[videos, :frames], "video_mask": mask[:, :frames]}
        if self.patch_embeds is not None:
            inputs["patch_embeds"] = self.patch_embeds[videos, :frames].flatten(1, 2)
        return inputs

    def text_inputs(self, captions: Sequence[int] | torch.Tensor) -> dict[str, torch.Tensor]:
        """`text_embeds`, `attention_mask` (and `word_embeds`) of these captions, padded to the longest of them, as
        the tokenizer pads a batch."""
        captions = torch.as_tensor(captions, dtype=torch.long)
        mask = self.attention_mask[captions]
        length = int(mask.sum(1).max())
        inputs = {"text_embeds": self.text_embeds[captions], "attention_mask": mask[:, :length]}
        if self.word_embeds is not None:
            inputs["word_embeds"] = self.word_embeds[captions, :length]
        return inputs


def cache_key(model, processor, dataset: datasets.Dataset, fps: float, max_frames: int) -> str:
    """The hash of everything an entry's features depend on (see the module docstring); which features it stores
    is in the entry's name."""
    digest = hashlib.sha256()
    digest.update(repr((VERSION, float(fps), int(max_frames))).encode())
    for name, tensor in sorted(model.clip.state_dict().items()):
        if name != "logit_scale":
            digest.update(name.encode())
            digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy())
    video_processor = processor.image_processor
    digest.update(
        repr(
            (
                video_processor.size,
                video_processor.crop_size,
                video_processor.image_mean,
                video_processor.image_std,
                processor.max_text_length,
                len(processor.tokenizer),
            )
        ).encode()
    )
    for row in without_video_decoding(dataset.select_columns(["video_id", "video", "captions"])):
        digest.update(repr((row["video_id"], row["captions"], FrameCache.identity(row["video"]))).encode())
    return digest.hexdigest()[:20]


def encode_split(
    model,
    dataset: datasets.Dataset,
    processor,
    cache_dir: str | os.PathLike,
    split_name: str,
    fps: float = 1.0,
    max_frames: int = 12,
    words: bool | None = None,
    patches: bool | None = None,
    skip_undecodable: bool = False,
    batch_size: int = 16,
    num_workers: int = 0,
    frame_cache_dir: str | os.PathLike | None = None,
    shard_size: int = 512,
    accelerator=None,
    progress: bool = True,
) -> CachedSplit:
    """The backbone features of one split: read from `cache_dir` when encoded before, else encoded and stored.

    Args:
        model: an `MsamModel` or `McsanModel` (its CLIP towers are what is encoded; they must not be trained).
        dataset: one split of `load_video_text_dataset(...)`.
        processor: the model's processor (frames and tokens exactly as training from pixels would make them).
        split_name: names the entry (`train-<key>`).
        words, patches: store the word tokens / patch tokens; default: what `model` reads in training
            (`model.needs_word_embeds`, `model.needs_patch_embeds`).
        skip_undecodable: leave out (and count) videos that cannot be decoded, as training does; else raise, as
            evaluation does.
        batch_size, num_workers, frame_cache_dir: encoding batches, decoding workers, decoded-frame cache.
        shard_size: videos per shard file (and per process turn under `accelerate launch`).
        accelerator: an `accelerate.Accelerator` whose processes share the encoding.
    """
    words = model.needs_word_embeds if words is None else words
    patches = model.needs_patch_embeds if patches is None else patches
    cache_dir = Path(cache_dir)
    key = cache_key(model, processor, dataset, fps, max_frames)
    # An entry that stores more than asked for serves too (e.g. MSAM's, with word tokens, for a `mean` run).
    supersets = dict.fromkeys([(words, patches), (True, patches), (words, True), (True, True)])
    candidates = [cache_dir / _entry_name(split_name, key, *stored) for stored in supersets]
    entry = next((candidate for candidate in candidates if (candidate / INDEX_FILE).is_file()), candidates[0])
    if not (entry / INDEX_FILE).is_file():
        partial = cache_dir / f".{entry.name}.partial"
        process, processes = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
        partial.mkdir(parents=True, exist_ok=True)
        shards = [range(start, min(start + shard_size, len(dataset))) for start in range(0, len(dataset), shard_size)]
        for number in tqdm(
            range(process, len(shards), processes),
            desc=f"encoding {split_name} features",
            unit="shard",
            disable=not progress or process != 0,
        ):
            shard_file = partial / f"shard-{number:05d}.safetensors"
            if not shard_file.is_file():  # finished by an interrupted run
                _encode_shard(
                    model,
                    dataset,
                    shards[number],
                    processor,
                    shard_file,
                    fps,
                    max_frames,
                    words,
                    patches,
                    skip_undecodable,
                    batch_size,
                    num_workers,
                    frame_cache_dir,
                )
        if accelerator is not None:
            accelerator.wait_for_everyone()
        if process == 0:
            (partial / INDEX_FILE).write_text(
                json.dumps(
                    {
                        "version": VERSION,
                        "split": split_name,
                        "num_shards": len(shards),
                        "fps": fps,
                        "max_frames": max_frames,
                        "words": words,
                        "patches": patches,
                        "backbone": getattr(model.config, "base_clip_model", None),
                    },
                    indent=2,
                )
                + "\n"
            )
            os.replace(partial, entry)
        if accelerator is not None:
            accelerator.wait_for_everyone()
    cached = load_split(entry)
    if cached.skipped_video_ids and not skip_undecodable:
        raise ValueError(
            f"video(s) {list(cached.skipped_video_ids)} of the {split_name!r} split could not be decoded "
            f"(see {entry}); evaluation needs every video of the split: repair or remove them"
        )
    return cached


def _entry_name(split_name: str, key: str, words: bool, patches: bool) -> str:
    """`<split>-<key>`, plus `+words` / `+patches` for the features stored beyond frames and sentences."""
    return f"{split_name}-{key}" + ("+words" if words else "") + ("+patches" if patches else "")


@torch.no_grad()
def _encode_shard(
    model,
    dataset,
    rows: range,
    processor,
    shard_file: Path,
    fps,
    max_frames,
    words,
    patches,
    skip_undecodable,
    batch_size,
    num_workers,
    frame_cache_dir,
) -> None:
    videos = VideoTextDataset(
        dataset.select(rows), mode="train", fps=fps, max_frames=max_frames, frame_cache_dir=frame_cache_dir
    )
    loader = torch.utils.data.DataLoader(
        videos, batch_size=batch_size, num_workers=num_workers, collate_fn=_EncodingCollator(processor)
    )
    was_training = model.training
    model.eval()
    device = model.device
    parts: dict[str, list[torch.Tensor]] = {}
    metadata: dict[str, list] = {
        "video_ids": [],
        "rows": [],
        "captions": [],
        "captions_per_video": [],
        "timestamps": [],
        "skipped_video_ids": [],
    }
    for batch in loader:
        metadata["skipped_video_ids"] += batch["skipped_video_ids"]
        if batch["skipped_video_ids"] and not skip_undecodable:
            raise ValueError(
                f"video(s) {batch['skipped_video_ids']} could not be decoded ({batch['errors'][0]}); "
                "evaluation needs every video of the split: repair or remove them"
            )
        if not batch["video_ids"]:
            continue
        video = model.get_backbone_video_features(
            batch["pixel_values_videos"].to(device), batch["video_mask"].to(device), return_patch_embeds=patches
        )
        text = model.get_backbone_text_features(batch["input_ids"].to(device), batch["attention_mask"].to(device))
        # Frames padded to max_frames and words to max_text_length (the tokenizer's), so every batch has one shape.
        features = {"frame_features": video.frame_features, "video_mask": video.video_mask}
        if patches:
            features["patch_embeds"] = video.patch_embeds.unflatten(1, (video.video_mask.shape[1], -1))
        features = {name: _pad_frames(value, max_frames) for name, value in features.items()}
        features.update(text_embeds=text.text_embeds, attention_mask=text.attention_mask)
        if words:
            features["word_embeds"] = text.word_embeds
        for name, value in features.items():
            parts.setdefault(name, []).append(value.detach().to("cpu").contiguous())
        metadata["video_ids"] += batch["video_ids"]
        metadata["rows"] += [rows[index] for index in batch["video_indices"].tolist()]
        metadata["captions"] += batch["captions"]
        metadata["captions_per_video"] += batch["captions_per_video"]
        metadata["timestamps"] += batch["timestamps"]
    model.train(was_training)
    tensors = {name: torch.cat(values) for name, values in parts.items()}
    temporary = shard_file.with_suffix(".tmp")
    save_file(tensors, str(temporary), metadata={"json": json.dumps(metadata)})
    os.replace(temporary, shard_file)


def _pad_frames(value: torch.Tensor, frames: int) -> torch.Tensor:
    missing = frames - value.shape[1]
    if missing <= 0:
        return value
    return torch.cat([value, value.new_zeros(value.shape[0], missing, *value.shape[2:])], dim=1)


class _EncodingCollator:
    """Every caption of each video, tokenized to `max_text_length` (all positions kept: a batch is later cut to its
    longest caption, which gives the tokens the tokenizer's own padding would), and the video's frames."""

    def __init__(self, processor):
        self.processor = processor

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        skipped = [item for item in items if "error" in item]
        items = [item for item in items if "error" not in item]
        batch: dict[str, Any] = {
            "skipped_video_ids": [item["video_id"] for item in skipped],
            "errors": [item["error"] for item in skipped],
            "video_ids": [],
        }
        if not items:
            return batch
        captions = [caption for item in items for caption in item["video_captions"]]
        tokens = self.processor.tokenizer(
            captions,
            padding="max_length",
            truncation=True,
            max_length=self.processor.max_text_length,
            return_tensors="pt",
        )
        frames = self.processor.image_processor([item["frames"] for item in items], return_tensors="pt")
        batch.update(
            input_ids=tokens["input_ids"],
            attention_mask=tokens["attention_mask"],
            **frames,
            video_ids=[item["video_id"] for item in items],
            video_indices=torch.tensor([item["index"] for item in items]),
            captions=captions,
            captions_per_video=[len(item["video_captions"]) for item in items],
            timestamps=[list(map(float, item["timestamps"])) for item in items],
        )
        return batch


def load_split(entry: str | os.PathLike) -> CachedSplit:
    """A finished entry folder of `encode_split`."""
    entry = Path(entry)
    index = json.loads((entry / INDEX_FILE).read_text())
    tensors: dict[str, list[torch.Tensor]] = {}
    metadata: dict[str, list] = {}
    for number in range(index["num_shards"]):
        with safe_open(str(entry / f"shard-{number:05d}.safetensors"), framework="pt") as shard:
            for name in shard.keys():
                tensors.setdefault(name, []).append(shard.get_tensor(name))
            for name, value in json.loads(shard.metadata()["json"]).items():
                metadata.setdefault(name, []).extend(value)
    if not metadata.get("video_ids"):
        raise ValueError(f"{entry}: no video of the split could be decoded")
    features = {name: torch.cat(values) for name, values in tensors.items()}
    caption_to_video = torch.arange(len(metadata["video_ids"])).repeat_interleave(
        torch.tensor(metadata["captions_per_video"])
    )
    return CachedSplit(
        video_ids=metadata["video_ids"],
        rows=metadata["rows"],
        captions=metadata["captions"],
        caption_to_video=caption_to_video,
        timestamps=metadata["timestamps"],
        skipped_video_ids=tuple(metadata["skipped_video_ids"]),
        path=entry,
        **features,
    )


@torch.no_grad()
def retrieval_features(model, cached: CachedSplit, batch_size: int = 256) -> RetrievalFeatures:
    """The split's `RetrievalFeatures` for `model`'s heads, pooled from the cached backbone features: what
    `msam_hf.evaluation.extract_features` gives from the videos, without decoding or encoding."""
    was_training = model.training
    model.eval()
    device = model.device
    video_parts, text_parts = [], []
    for start in range(0, len(cached.video_ids), batch_size):
        inputs = cached.video_inputs(range(start, min(start + batch_size, len(cached.video_ids))))
        video_parts.append(model.get_video_features(**{name: value.to(device) for name, value in inputs.items()}))
    for start in range(0, len(cached.captions), batch_size):
        inputs = cached.text_inputs(range(start, min(start + batch_size, len(cached.captions))))
        text_parts.append(model.get_text_features(**{name: value.to(device) for name, value in inputs.items()}))
    model.train(was_training)
    return RetrievalFeatures(
        text=concatenate_outputs(text_parts),
        video=concatenate_outputs(video_parts),
        caption_to_video=cached.caption_to_video,
        video_ids=list(cached.video_ids),
        captions=list(cached.captions),
        timestamps=cached.timestamps,
    )


class CachedFeatureDataset(torch.utils.data.Dataset):
    """Training items from a `CachedSplit`: one video with one of its captions, drawn per epoch exactly as
    `VideoTextDataset` draws it (seeded by seed, epoch and the video's row), so both see the same pairs."""

    def __init__(self, cached: CachedSplit, seed: int = 42):
        self.cached = cached
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.cached.video_ids)

    def __getitem__(self, index: int) -> dict[str, int]:
        captions = self.cached.video_captions(index)
        pick = draw_caption(self.seed, self.epoch, self.cached.rows[index], len(captions))
        return {"video": index, "caption": captions[pick]}


@dataclass
class CachedFeatureCollator(AttributeLabeller):
    """Batches `CachedFeatureDataset` items into the model's precomputed-feature inputs, with the same bookkeeping
    keys as `VideoTextCollator` (`video_ids`, `captions`, `caption_to_video`, `skipped_video_ids`, attribute labels
    given a vocabulary)."""

    cached: CachedSplit

    def __call__(self, items: list[dict[str, int]]) -> dict[str, Any]:
        videos = [item["video"] for item in items]
        captions = [self.cached.captions[item["caption"]] for item in items]
        batch = {
            **self.cached.video_inputs(videos),
            **self.cached.text_inputs([item["caption"] for item in items]),
            "video_ids": [self.cached.video_ids[video] for video in videos],
            "captions": captions,
            "caption_to_video": torch.arange(len(items)),
            "skipped_video_ids": [],
        }
        if self.attribute_vocabulary is not None:
            video_captions = [[self.cached.captions[c] for c in self.cached.video_captions(video)] for video in videos]
            batch.update(self.attribute_labels(captions, video_captions))
        return batch
