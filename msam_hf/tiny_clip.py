"""A stand-in for CLIP's pretrained weights: the tiny CLIP, pretrained on images rendered by the synthetic generator.

The Hub's CLIP weights cannot be downloaded here, and the two towers of a tiny CLIP trained from random weights on
drone captions — partial, with actions and relations — do not learn the objects (docs/synthetic-benchmark.md). CLIP
itself learns from other data, with captions that name what an image shows; the stand-in does the same in the
generator's world: single frames of scenes drawn from their own random stream (other places and objects than any
benchmark, and terrain textures of another seed), each with a caption naming every object by colour and kind, in
the words the drone writer uses for them (`listing_captions(varied=True)`: "a red sedan, a house with a white roof
and two pedestrians in blue"), or, for a fraction, a caption by the benchmark's own drone-style writer, which also
names the terrain and the camera. Frames are rendered directly, never encoded as video, so many pairs are cheap; a
listed frame is also seen flipped and rotated by multiples of 90° (a top-down view has no "up", and a listing no
direction). Training is CLIP's: the symmetric contrastive loss with a learnable temperature (clamped at λ = 100, as
CLIP's), AdamW and a warm-up + cosine schedule.

`pretrain_tiny_clip()` returns a folder written by `CLIPModel.save_pretrained`, for `train.py --clip_model` or
`MsamModel.from_clip`. It is cached under `default_cache_dir()/tiny-clip/<key>`, the key hashing the recipe, the
generator's source and this module's `VERSION`: the ablation and `make demo` build each recipe once.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from dataclasses import field
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import CLIPConfig
from transformers import CLIPModel

from .configuration_msam import TINY_CLIP_CONFIG
from .data.synthetic import captions as synth_captions
from .data.synthetic import render as synth_render
from .data.synthetic import scene as synth_scene
from .optimization import build_optimizer_and_scheduler
from .processors import default_processor
from .progress import map_with_progress

VERSION = 1  # bump when this module's rendering or training changes: cached stand-ins are then made anew
# A random stream of its own: (seed, _CORPUS, scene) never equals a benchmark's (seed, purpose, index) streams.
_CORPUS = 1000


@dataclass(frozen=True)
class TinyClipRecipe:
    """How the stand-in is made. Every field changes the cached result."""

    num_scenes: int = field(default=4000, metadata={"help": "scenes rendered (each its own place and objects)"})
    frames_per_scene: int = field(default=2, metadata={"help": "frames of each scene (its first and last moment)"})
    drone_caption_fraction: float = field(
        default=0.3, metadata={"help": "share of captions by the benchmark's drone writer instead of a listing"}
    )
    augment: bool = field(default=True, metadata={"help": "flip and rotate listed frames by multiples of 90°"})
    steps: int = field(default=1000, metadata={"help": "optimiser steps"})
    batch_size: int = field(default=128, metadata={"help": "image–caption pairs a step"})
    learning_rate: float = 1e-3
    weight_decay: float = field(default=0.2, metadata={"help": "AdamW weight decay of every ≥ 2-D parameter"})
    warmup_ratio: float = 0.05
    logit_scale_init: float = field(default=1 / 0.07, metadata={"help": "λ at the start (CLIP's: 1 / 0.07)"})
    resolution: int = field(default=128, metadata={"help": "rendered frame size (the benchmark's default)"})
    seed: int = 0

    def __post_init__(self):
        for name in ("num_scenes", "frames_per_scene", "steps", "batch_size", "resolution"):
            if getattr(self, name) < 1:
                raise ValueError(f"TinyClipRecipe.{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.drone_caption_fraction <= 1:
            raise ValueError(f"drone_caption_fraction must be in [0, 1], got {self.drone_caption_fraction}")
        if self.batch_size > self.num_scenes * self.frames_per_scene:
            raise ValueError(
                f"batch_size {self.batch_size} exceeds the corpus "
                f"({self.num_scenes} scenes × {self.frames_per_scene} frames)"
            )


def default_cache_dir() -> Path:
    """`$MSAM_HF_CACHE`, else `~/.cache/msam_hf`."""
    return Path(os.environ.get("MSAM_HF_CACHE", Path.home() / ".cache" / "msam_hf"))


def recipe_key(recipe: TinyClipRecipe) -> str:
    """Hash of the recipe, the tiny CLIP's configuration, this module's `VERSION` and the generator's source (scenes,
    rendering, captions): a change to any of them makes a new stand-in."""
    digest = hashlib.sha256(repr((VERSION, dataclasses.astuple(recipe), TINY_CLIP_CONFIG)).encode())
    for source in (synth_scene.__file__, synth_render.__file__, synth_captions.__file__):
        digest.update(Path(source).read_bytes())
    return digest.hexdigest()[:16]


def pretrain_tiny_clip(
    recipe: TinyClipRecipe | None = None,
    cache_dir: str | os.PathLike | None = None,
    num_workers: int = 2,
    progress: bool = True,
) -> Path:
    """The stand-in's CLIP folder for `recipe`: read from the cache, or rendered, trained and stored there.

    The folder also holds `pretraining.json`: the recipe, the final λ and loss, the corpus size and the seconds it
    took. Returns the folder (`CLIPModel.from_pretrained` / `train.py --clip_model` read it).
    """
    recipe = recipe or TinyClipRecipe()
    entry = Path(cache_dir or default_cache_dir()) / "tiny-clip" / recipe_key(recipe)
    if (entry / "pretraining.json").is_file():
        return entry
    started = time.perf_counter()
    images, captions, listed = render_corpus(recipe, num_workers=num_workers, progress=progress)
    rendered = time.perf_counter() - started
    clip, history = train_clip(images, captions, listed, recipe, progress=progress)
    summary = {
        "recipe": dataclasses.asdict(recipe),
        "pairs": len(captions),
        "render_seconds": round(rendered, 1),
        "train_seconds": round(time.perf_counter() - started - rendered, 1),
        "logit_scale": round(clip.logit_scale.detach().exp().item(), 2),
        **history,
    }
    entry.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the entry and renamed when complete: an interrupted run leaves nothing that looks finished.
    partial_dir = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".{entry.name}-"))
    try:
        clip.save_pretrained(partial_dir)
        (partial_dir / "pretraining.json").write_text(json.dumps(summary, indent=2) + "\n")
        shutil.rmtree(entry, ignore_errors=True)  # an unfinished entry of an older layout
        os.replace(partial_dir, entry)
    finally:
        shutil.rmtree(partial_dir, ignore_errors=True)
    return entry


def render_corpus(
    recipe: TinyClipRecipe, num_workers: int = 2, progress: bool = True
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """The image–caption pairs of `recipe`: uint8 images (pairs, S, S, 3) at the tiny CLIP's input size S, their
    captions, and which captions are listings (bool, pairs). A scene depends only on the seed and its index, whatever
    the number of workers."""
    scenes = map_with_progress(
        partial(_render_scene, recipe=recipe),
        range(recipe.num_scenes),
        num_workers,
        progress,
        description="rendering the stand-in's images",
        unit="scene",
        chunksize=16,
    )
    images = np.stack([image for frames, _, _ in scenes for image in frames])
    listed = np.array([flag for _, _, flags in scenes for flag in flags], dtype=bool)
    return images, [caption for _, texts, _ in scenes for caption in texts], listed


def _render_scene(index: int, recipe: TinyClipRecipe) -> tuple[list[np.ndarray], list[str], list[bool]]:
    rng = np.random.default_rng([recipe.seed, _CORPUS, index])
    scene = synth_scene.sample_scene(rng, 1.0)
    resize = _processor().image_processor.resize_and_crop
    frames = synth_render.render_frames(
        scene, recipe.seed + _CORPUS, recipe.resolution, recipe.resolution, recipe.frames_per_scene
    )
    images = [resize(frame) for frame in frames]
    listed = [bool(rng.random() >= recipe.drone_caption_fraction) for _ in images]
    captions = []
    for is_listing in listed:
        if is_listing:
            captions.append(synth_captions.listing_captions(rng, scene, 1, varied=True)[0])
        else:
            options = synth_captions.make_captions(rng, scene, 5)
            captions.append(options[rng.integers(len(options))])
    return images, captions, listed


@functools.cache
def _processor():
    """The tiny CLIP's processor, built once per process (loading the tokenizer takes a while)."""
    return default_processor(image_size=TINY_CLIP_CONFIG["vision_config"]["image_size"])


def train_clip(
    images: np.ndarray, captions: list[str], listed: np.ndarray, recipe: TinyClipRecipe, progress: bool = True
) -> tuple[CLIPModel, dict]:
    """CLIP's contrastive training of the tiny CLIP from random weights on the pairs (`listed` marks the listing
    captions, whose frames may be flipped and rotated). Returns the model and a short history (the loss averaged over
    the first and the last 10 % of the steps)."""
    torch.manual_seed(recipe.seed)
    clip = CLIPModel(CLIPConfig(**TINY_CLIP_CONFIG, logit_scale_init_value=math.log(recipe.logit_scale_init)))
    optimizer, scheduler = build_optimizer_and_scheduler(
        clip,
        recipe.steps,
        learning_rate=recipe.learning_rate,
        backbone_lr_coefficient=1.0,
        weight_decay=recipe.weight_decay,
        warmup_ratio=recipe.warmup_ratio,
    )
    processor = _processor()
    tokens = processor.tokenizer(
        captions, padding="max_length", truncation=True, max_length=processor.max_text_length, return_tensors="pt"
    )
    pixels = processor.image_processor([images], num_frames=len(images))["pixel_values_videos"][0]  # once
    rng = np.random.default_rng([recipe.seed, _CORPUS])
    order, position, losses = rng.permutation(len(images)), 0, []
    clip.train()
    for _ in tqdm(range(recipe.steps), desc="pretraining the tiny CLIP", unit="step", disable=not progress):
        if position + recipe.batch_size > len(order):
            order, position = rng.permutation(len(images)), 0
        batch = order[position : position + recipe.batch_size]
        position += recipe.batch_size
        mask = tokens["attention_mask"][batch]
        length = int(mask.sum(1).max())
        batch_pixels = torch.stack(
            [
                _flipped_and_rotated(pixels[index], rng) if recipe.augment and listed[index] else pixels[index]
                for index in batch
            ]
        )
        output = clip(
            input_ids=tokens["input_ids"][batch, :length],
            attention_mask=mask[:, :length],
            pixel_values=batch_pixels,
            return_loss=True,
        )
        output.loss.backward()
        torch.nn.utils.clip_grad_norm_(clip.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        with torch.no_grad():
            clip.logit_scale.clamp_(max=math.log(100.0))  # CLIP's bound on λ
        losses.append(output.loss.item())
    tenth = max(1, len(losses) // 10)
    return clip.eval(), {
        "first_loss": round(float(np.mean(losses[:tenth])), 4),
        "final_loss": round(float(np.mean(losses[-tenth:])), 4),
    }


def _flipped_and_rotated(image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """One of the 8 symmetries of the square, at random, of a (channels, height, width) image."""
    if rng.random() < 0.5:
        image = image.flip(-1)
    return image.rot90(int(rng.integers(4)), dims=(-2, -1))
