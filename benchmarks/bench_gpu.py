"""What training and scoring with CLIP ViT-B/32 cost on one CUDA GPU (issue 22, item 3).

Random ViT-B/32 weights (`MsamConfig()`'s architecture; nothing is downloaded), TF32 matmuls on. Four sections, each
printed as a markdown table when it ends and written to --out after every section, so a run cut short keeps what it
measured:

1. Training step from pixels: forward + backward + AdamW step, median of the steps after a warm-up, and peak GPU
   memory (`torch.cuda.max_memory_allocated`, reset per case), at batch 64 and 128 × 12 frames × 224 px with 32-token
   captions, bf16 autocast; the `mean` head (CLIP4Clip meanP: `similarity_head="mean", semantic_loss=False`) and MSAM
   (`similarity_head="ciffp", semantic_loss=True`) side by side with the ratio MSAM / mean; without and with
   gradient (activation) checkpointing of both CLIP towers. A case that runs out of memory reads "OOM".
2. MSAM's own modules trained from a frozen backbone's cached features (the paper's regime, `train.py --finetune
   frozen --feature_cache_dir`): steps/s at batch 64 and 128 given random `frame_features`, `text_embeds`,
   `word_embeds` and masks, CLIP towers frozen except the logit scale; same autocast.
3. Exhaustive CIFFP scoring (`MsamModel.similarity`, fp32 as evaluation runs it) of 10k captions × 10k videos × 12
   frames, D = 512, random unit-norm features, at |J| = 1 and |J| = 32, for two chunk sizes: the library's default
   (256 × 256) and 2048 × 2048. Seconds and peak memory.
4. Encoding throughput of the frame-cache path: videos/s of `msam_hf.evaluation.extract_features` (DataLoader with
   --num_workers, ViT-B/32 in fp32) on generated videos (256 of 12 s at 224 × 224, 8 fps; generated on the CPU before
   the timed part), the cold pass (decoding, writing the `FrameCache`) and the warm pass (frames from the cache). Then
   the data-loading requirement: CPU seconds one process spends per video of a generated 30 s H.264 clip (12 frames at
   1 fps and the processor), at 1280 × 720 and at 398 × 224 (short side pre-scaled to 224, as CLIP4Clip's
   preprocessing does), decoding or reading the warm frame cache, and the DataLoader workers (≈ CPU cores) that feed
   one MSAM step of section 1 at batch 128: batch × CPU seconds per video / step seconds.

The run keeps to a time budget (--budget_s, default 450 s from start-up, model construction included): each
section has a share of it (time a section leaves unused passes to the next); a section past its share stops,
says so in its table, and the next one starts.

    python benchmarks/bench_gpu.py --out gpu.json              # one CUDA GPU, at most ~8 minutes
    python benchmarks/bench_gpu.py --smoke --out smoke.json    # CPU, tiny sizes, well under a minute
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()  # the budget counts imports and model construction too

import argparse  # noqa: E402
import datetime  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import traceback  # noqa: E402
from contextlib import nullcontext  # noqa: E402
from dataclasses import asdict  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import transformers  # noqa: E402
from bench_decode import write_clip  # noqa: E402  (a panning H.264 clip; benchmarks/ is on the path)

from msam_hf import MsamConfig  # noqa: E402
from msam_hf import MsamModel  # noqa: E402
from msam_hf import default_processor  # noqa: E402
from msam_hf.data import load_video_text_dataset  # noqa: E402
from msam_hf.data.synthetic import SynthConfig  # noqa: E402
from msam_hf.data.synthetic import generate_synthetic_dataset  # noqa: E402
from msam_hf.evaluation import extract_features  # noqa: E402
from msam_hf.modeling_msam import MsamTextOutput  # noqa: E402
from msam_hf.modeling_msam import MsamVideoOutput  # noqa: E402
from msam_hf.provenance import environment  # noqa: E402
from msam_hf.video_io import FrameCache  # noqa: E402
from msam_hf.video_io import read_frames  # noqa: E402

START_TOKEN, END_TOKEN = 49406, 49407  # CLIP's <|startoftext|> and <|endoftext|> (also its padding)
VARIANTS = {  # name → MsamConfig fields
    "mean": {"similarity_head": "mean", "semantic_loss": False},
    "MSAM": {"similarity_head": "ciffp", "semantic_loss": True},
}
# Cumulative shares of the budget: section i must end by SHARES[i] × budget (what one leaves unused, the next gets).
SHARES = {"training": 0.45, "frozen_heads": 0.55, "similarity": 0.70, "encoding": 1.0}
SKIPPED = "skipped (time budget)"


@dataclass(frozen=True)
class Sizes:
    tiny: bool  # MsamConfig.tiny() instead of ViT-B/32
    batches: tuple[int, ...]
    frames: int
    warmup_steps: int
    timed_steps: int
    frozen_warmup_steps: int
    frozen_timed_steps: int
    texts: int
    videos: int
    contexts: tuple[int, ...]
    chunks: tuple[tuple[int, int], ...]  # (text_chunk_size, video_chunk_size)
    encode_videos: int
    encode_size: int
    encode_duration: float
    encode_fps: float
    encode_batch: int
    clips: tuple[tuple[int, int], ...]  # (width, height) of the H.264 clips of the data-loading requirement
    clip_seconds: int


FULL = Sizes(
    tiny=False,
    batches=(64, 128),
    frames=12,
    warmup_steps=3,
    timed_steps=10,
    frozen_warmup_steps=5,
    frozen_timed_steps=50,
    texts=10_000,
    videos=10_000,
    contexts=(1, 32),
    chunks=((256, 256), (2048, 2048)),
    encode_videos=256,
    encode_size=224,
    encode_duration=12.0,
    encode_fps=8.0,
    encode_batch=16,
    clips=((1280, 720), (398, 224)),
    clip_seconds=30,
)
SMOKE = Sizes(
    tiny=True,
    batches=(2,),
    frames=2,
    warmup_steps=1,
    timed_steps=2,
    frozen_warmup_steps=1,
    frozen_timed_steps=3,
    texts=64,
    videos=64,
    contexts=(1, 32),
    chunks=((16, 16), (64, 64)),
    encode_videos=2,
    encode_size=64,
    encode_duration=2.0,
    encode_fps=4.0,
    encode_batch=2,
    clips=((128, 72),),
    clip_seconds=2,
)


class Budget:
    """Wall-clock seconds since start-up, and each section's deadline (its cumulative share of the budget)."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    @staticmethod
    def elapsed() -> float:
        return time.perf_counter() - STARTED

    def deadline(self, section: str) -> float:
        """perf_counter time by which `section` must stop."""
        return STARTED + SHARES[section] * self.seconds

    def over(self, section: str) -> bool:
        return time.perf_counter() > self.deadline(section)


class Device:
    """Synchronisation, memory counters and autocast for CUDA or the CPU (where memory is not counted)."""

    def __init__(self, name: str, autocast: bool):
        self.torch = torch.device(name)
        self.cuda = self.torch.type == "cuda"
        self.autocast_enabled = autocast

    def autocast(self):
        if not self.autocast_enabled:
            return nullcontext()
        return torch.autocast(self.torch.type, dtype=torch.bfloat16)

    def synchronize(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.torch)

    def free(self) -> None:
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()

    def reset_peak(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.torch)

    def allocated_gib(self) -> float | None:
        return torch.cuda.memory_allocated(self.torch) / 2**30 if self.cuda else None

    def peak_gib(self) -> float | None:
        return torch.cuda.max_memory_allocated(self.torch) / 2**30 if self.cuda else None

    def peak_reserved_gib(self) -> float | None:
        return torch.cuda.max_memory_reserved(self.torch) / 2**30 if self.cuda else None


def config_for(sizes: Sizes, variant: str = "MSAM") -> MsamConfig:
    fields = dict(VARIANTS[variant], max_frames=sizes.frames)
    return MsamConfig.tiny(**fields) if sizes.tiny else MsamConfig(**fields)


class Models:
    """One model per variant, built on the device once (random weights, seed 0) and shared by the sections."""

    def __init__(self, sizes: Sizes, device: Device):
        self.sizes, self.device, self.built, self.construction_s = sizes, device, {}, {}

    def get(self, variant: str) -> MsamModel:
        if variant not in self.built:
            started = time.perf_counter()
            torch.manual_seed(0)
            with self.device.torch:
                model = MsamModel(config_for(self.sizes, variant))
            self.built[variant] = model.to(self.device.torch)
            self.device.synchronize()
            self.construction_s[variant] = time.perf_counter() - started
            log(
                f"built {variant} ({'tiny' if self.sizes.tiny else 'ViT-B/32'}, {count(model) / 1e6:.1f} M parameters) "
                f"in {self.construction_s[variant]:.1f} s"
            )
        return self.built[variant]

    def drop(self, variant: str) -> None:
        self.built.pop(variant, None)
        self.device.free()


def log(message: str) -> None:
    print(f"[{Budget.elapsed():6.1f} s] {message}", file=sys.stderr, flush=True)


def count(model: torch.nn.Module, trainable: bool = False) -> int:
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad or not trainable)


def set_checkpointing(clip: torch.nn.Module, enabled: bool) -> None:
    """Activation checkpointing of CLIP's text and vision encoder layers (transformers ≥ 5 names it
    `activation_checkpointing_*`, earlier versions `gradient_checkpointing_*`)."""
    new_names = hasattr(clip, "activation_checkpointing_enable")
    prefix = "activation_checkpointing" if new_names else "gradient_checkpointing"
    getattr(clip, f"{prefix}_{'enable' if enabled else 'disable'}")()


def random_text(batch: int, length: int, device: torch.device, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Token ids as the processor makes them: start token, words, end token, end-token padding; 8 to `length`
    tokens per caption."""
    lengths = torch.randint(min(8, length), length + 1, (batch,), generator=generator)
    input_ids = torch.randint(300, 40_000, (batch, length), generator=generator)
    positions = torch.arange(length)[None]
    input_ids[:, 0] = START_TOKEN
    input_ids[positions >= (lengths[:, None] - 1)] = END_TOKEN
    attention_mask = (positions < lengths[:, None]).long()
    return {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device)}


def unit(tensor: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(tensor, dim=-1)


def ratio(numerator, denominator) -> float | None:
    if isinstance(numerator, (int, float)) and isinstance(denominator, (int, float)) and denominator:
        return numerator / denominator
    return None


def cell(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    return f"{value:.{digits}f}"


def gib(value: float | None) -> str:
    return "memory not counted off CUDA" if value is None else f"{value:.2f} GiB"


def shown(row: dict, key: str, digits: int) -> str:
    """A measured cell, "OOM" or "skipped (time budget)"; a value measured in part says so."""
    if row["status"] == "ok":
        return cell(row[key], digits)
    if row["status"].startswith(("partial", "estimated")):
        return cell(row[key], digits) + " (partial)"
    return row["status"]


def stopped_early(rows: list[dict]) -> bool:
    return any(row["status"] not in ("ok", "OOM") for row in rows)


def markdown(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)


# 1. Training step from pixels -------------------------------------------------------------------------------------


def training_case(model: MsamModel, batch: int, sizes: Sizes, device: Device, deadline: float) -> dict:
    """Warm-up and timed AdamW steps of `model` on one random batch; the step time is the median of the timed ones."""
    device.free()
    device.reset_peak()
    generator = torch.Generator().manual_seed(batch)
    image_size = model.config.clip_config.vision_config.image_size
    inputs = random_text(batch, model.config.max_text_length, device.torch, generator)
    inputs["pixel_values_videos"] = torch.randn(  # made on the device: 0.9 GB at batch 128
        batch,
        sizes.frames,
        3,
        image_size,
        image_size,
        device=device.torch,
        generator=torch.Generator(device.torch).manual_seed(batch),
    )
    inputs["video_mask"] = torch.ones(batch, sizes.frames, dtype=torch.long, device=device.torch)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    model.train()
    times, status = [], "ok"
    try:
        for index in range(sizes.warmup_steps + sizes.timed_steps):
            device.synchronize()
            started = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            with device.autocast():
                loss = model(**inputs, return_loss=True).loss
            loss.backward()
            optimizer.step()
            device.synchronize()
            times.append(time.perf_counter() - started)
            if time.perf_counter() > deadline and index + 1 < sizes.warmup_steps + sizes.timed_steps:
                status = "partial (time budget)"
                break
    except torch.cuda.OutOfMemoryError:
        status = "OOM"
    loss = None
    optimizer.zero_grad(set_to_none=True)
    del optimizer, inputs
    timed = times[sizes.warmup_steps :] or times[-1:]  # a cut-short case falls back on its last warm-up step
    result = {
        "batch": batch,
        "status": status,
        "steps_timed": len(times[sizes.warmup_steps :]),
        "step_times_s": times,
        "step_s": statistics.median(timed) if timed and status != "OOM" else None,
        "peak_gib": device.peak_gib() if status != "OOM" else None,
        "peak_reserved_gib": device.peak_reserved_gib(),
    }
    device.free()
    return result


def training_section(sizes: Sizes, device: Device, models: Models, budget: Budget) -> dict:
    deadline = budget.deadline("training")
    cases = []
    # Checkpointing outermost and both variants of a batch together, so a cut-short run still has whole ratios.
    for checkpointing in (False, True):
        for batch in sizes.batches:
            for variant in VARIANTS:
                case = {"variant": variant, "batch": batch, "checkpointing": checkpointing}
                if time.perf_counter() > deadline:
                    cases.append({**case, "status": SKIPPED, "step_s": None, "peak_gib": None})
                    continue
                model = models.get(variant)
                set_checkpointing(model.clip, checkpointing)
                case.update(training_case(model, batch, sizes, device, deadline))
                set_checkpointing(model.clip, False)
                cases.append(case)
                log(
                    f"training: {variant} batch {batch} checkpointing {checkpointing}: {case['status']}, "
                    f"step {cell(case['step_s'])} s, peak {gib(case['peak_gib'])}"
                )
    models.drop("mean")

    rows, table_rows = [], []
    for checkpointing in (False, True):
        for batch in sizes.batches:
            pair = {
                case["variant"]: case
                for case in cases
                if case["batch"] == batch and case["checkpointing"] == checkpointing
            }
            mean, msam = pair["mean"], pair["MSAM"]
            row = {
                "batch": batch,
                "checkpointing": checkpointing,
                "mean": mean,
                "MSAM": msam,
                "step_ratio": ratio(msam["step_s"], mean["step_s"]),
                "memory_ratio": ratio(msam["peak_gib"], mean["peak_gib"]),
            }
            rows.append(row)
            table_rows.append(
                [
                    batch,
                    "on" if checkpointing else "off",
                    shown(mean, "step_s", 3),
                    shown(msam, "step_s", 3),
                    cell(row["step_ratio"], 2),
                    shown(mean, "peak_gib", 1),
                    shown(msam, "peak_gib", 1),
                    cell(row["memory_ratio"], 2),
                ]
            )
    autocast = "bf16 autocast" if device.autocast_enabled else "fp32"
    image_size = config_for(sizes).clip_config.vision_config.image_size
    title = (
        f"Training step from pixels (forward + backward + AdamW), batch × {sizes.frames} frames × "
        f"{image_size} px, {'tiny preset' if sizes.tiny else 'ViT-B/32'}, {autocast}, "
        f"median of {sizes.timed_steps} steps after "
        f"{sizes.warmup_steps} warm-up; checkpointing = activation checkpointing of both CLIP towers"
    )
    table = markdown(
        [
            "batch",
            "checkpointing",
            "mean step (s)",
            "MSAM step (s)",
            "MSAM / mean",
            "mean peak (GiB)",
            "MSAM peak (GiB)",
            "MSAM / mean",
        ],
        table_rows,
    )
    return {
        "title": title,
        "rows": rows,
        "cases": cases,
        "table": table,
        "stopped_early": stopped_early(cases),
        "construction_s": dict(models.construction_s),
    }


# 2. Heads from cached frozen features -----------------------------------------------------------------------------


def frozen_case(model: MsamModel, batch: int, sizes: Sizes, device: Device, deadline: float) -> dict:
    device.free()
    device.reset_peak()
    generator = torch.Generator().manual_seed(batch)
    width, length = model.config.projection_dim, model.config.max_text_length
    text = random_text(batch, length, device.torch, generator)
    inputs = {
        "frame_features": torch.randn(batch, sizes.frames, width, generator=generator).to(device.torch),
        "video_mask": torch.ones(batch, sizes.frames, dtype=torch.long, device=device.torch),
        "text_embeds": unit(torch.randn(batch, width, generator=generator)).to(device.torch),
        "word_embeds": torch.randn(batch, length, width, generator=generator).to(device.torch),
        "attention_mask": text["attention_mask"],
    }
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()

    def step():
        optimizer.zero_grad(set_to_none=True)
        with device.autocast():
            loss = model(**inputs, return_loss=True).loss
        loss.backward()
        optimizer.step()

    status, steps, seconds = "ok", 0, None
    try:
        for _ in range(sizes.frozen_warmup_steps):
            step()
        device.synchronize()
        started = time.perf_counter()
        for steps in range(1, sizes.frozen_timed_steps + 1):
            step()
            if time.perf_counter() > deadline and steps < sizes.frozen_timed_steps:
                status = "partial (time budget)"
                break
        device.synchronize()
        seconds = time.perf_counter() - started
    except torch.cuda.OutOfMemoryError:
        status = "OOM"
    optimizer.zero_grad(set_to_none=True)
    optimizer.state.clear()  # the step closure holds both: free their memory before the next size
    inputs.clear()
    result = {
        "batch": batch,
        "status": status,
        "steps_timed": steps if status != "OOM" else 0,
        "steps_per_s": steps / seconds if seconds else None,
        "peak_gib": device.peak_gib() if status != "OOM" else None,
    }
    device.free()
    return result


def frozen_heads_section(sizes: Sizes, device: Device, models: Models, budget: Budget, training: dict | None) -> dict:
    deadline = budget.deadline("frozen_heads")
    rows = []
    model = None
    for batch in sizes.batches:
        if time.perf_counter() > deadline:
            rows.append({"batch": batch, "status": SKIPPED, "steps_per_s": None, "peak_gib": None})
            continue
        if model is None:
            model = models.get("MSAM")
            model.clip.requires_grad_(False)
            model.clip.logit_scale.requires_grad_(True)
        row = frozen_case(model, batch, sizes, device, deadline)
        full = next(
            (
                r["MSAM"]["step_s"]
                for r in (training or {}).get("rows", [])
                if r["batch"] == batch and not r["checkpointing"]
            ),
            None,
        )
        row["trainable_parameters"] = count(model, trainable=True)
        row["speedup_over_full_step"] = full * row["steps_per_s"] if full and row["steps_per_s"] else None
        rows.append(row)
        log(f"frozen heads: batch {batch}: {row['status']}, {cell(row['steps_per_s'], 1)} steps/s")
    if model is not None:
        model.requires_grad_(True)
    table_rows = []
    for row in rows:
        row["ms_per_step"] = 1000 / row["steps_per_s"] if row["steps_per_s"] else None
        table_rows.append(
            [
                row["batch"],
                shown(row, "steps_per_s", 1),
                shown(row, "ms_per_step", 2),
                cell(row.get("speedup_over_full_step"), 0),
                cell(row["peak_gib"], 2),
                f"{row['trainable_parameters'] / 1e6:.2f} M" if "trainable_parameters" in row else "n/a",
            ]
        )
    autocast = "bf16 autocast" if device.autocast_enabled else "fp32"
    title = (
        f"MSAM's own modules from cached frozen features (batch × {sizes.frames} frames; CLIP frozen but its "
        f"logit scale), forward + backward + AdamW, {autocast}, {sizes.frozen_timed_steps} steps after "
        f"{sizes.frozen_warmup_steps} warm-up; × full step = section 1's MSAM step without checkpointing × "
        "steps/s; peak includes the resident model"
    )
    table = markdown(["batch", "steps / s", "ms / step", "× full step", "peak (GiB)", "trainable"], table_rows)
    return {"title": title, "rows": rows, "table": table, "stopped_early": stopped_early(rows)}


# 3. Exhaustive CIFFP scoring --------------------------------------------------------------------------------------


@torch.no_grad()
def similarity_section(sizes: Sizes, device: Device, models: Models, budget: Budget) -> dict:
    deadline = budget.deadline("similarity")
    rows = []
    model = None
    for context in sizes.contexts:
        for text_chunk, video_chunk in sizes.chunks:
            row = {"context": context, "text_chunk_size": text_chunk, "video_chunk_size": video_chunk}
            if time.perf_counter() > deadline:
                rows.append({**row, "status": SKIPPED, "seconds": None, "peak_gib": None})
                continue
            if model is None:
                model = models.get("MSAM").eval()
                generator = torch.Generator().manual_seed(0)
                width = model.config.projection_dim
                frames = unit(torch.randn(sizes.videos, sizes.frames, width, generator=generator)).to(device.torch)
                text = MsamTextOutput(
                    text_embeds=unit(torch.randn(sizes.texts, width, generator=generator)).to(device.torch)
                )
                video = MsamVideoOutput(
                    video_embeds=unit(frames.mean(1)),
                    frame_embeds=frames,
                    video_mask=torch.ones(sizes.videos, sizes.frames, dtype=torch.long, device=device.torch),
                )
            row.update(similarity_case(model, text, video, context, text_chunk, video_chunk, sizes, device, deadline))
            rows.append(row)
            log(
                f"similarity: |J| {context}, chunks {text_chunk} × {video_chunk}: {row['status']}, "
                f"{cell(row['seconds'], 2)} s, peak {gib(row['peak_gib'])}"
            )
    text = video = frames = None
    if model is not None:
        model.train()
    device.free()
    table_rows = [
        [
            row["context"],
            f"{row['text_chunk_size']} × {row['video_chunk_size']}",
            shown(row, "seconds", 2),
            cell(row["peak_gib"], 2),
            "yes" if row["status"].startswith("estimated") else "no",
        ]
        for row in rows
    ]
    width = config_for(sizes).projection_dim
    title = (
        f"Exhaustive CIFFP scoring, {sizes.texts:,} captions × {sizes.videos:,} videos × {sizes.frames} "
        f"frames × D = {width} (random unit-norm features), `MsamModel.similarity` in fp32 (TF32 matmuls on a "
        "GPU); chunks = text_chunk_size × video_chunk_size (the library's default is 256 × 256); peak includes "
        f"the inputs ({(sizes.texts + sizes.videos * sizes.frames) * width * 4 / 2**30:.2f} GiB) and the logits "
        f"({sizes.texts * sizes.videos * 4 / 2**30:.2f} GiB); a time marked partial is extrapolated from the "
        "captions scored before the time budget ran out"
    )
    table = markdown(["\\|J\\|", "chunks", "time (s)", "peak (GiB)", "extrapolated"], table_rows)
    return {"title": title, "rows": rows, "table": table, "stopped_early": stopped_early(rows)}


def similarity_case(model, text, video, context, text_chunk, video_chunk, sizes, device, deadline) -> dict:
    """Scores every caption against every video, in slices of whole text chunks (identical to one `similarity`
    call) so that the deadline can stop it: a cut-short run is extrapolated from the slices done."""
    device.free()
    text_step = max(text_chunk // context, 1) * context  # what `similarity` rounds a text chunk to
    slice_size = text_step * math.ceil(min(2048, sizes.texts) / text_step)
    status, parts, done = "ok", [], 0
    try:
        # Warm-up on one chunk (kernel selection, allocator), outside the timing.
        model.similarity(
            MsamTextOutput(text_embeds=text.text_embeds[:text_step]),
            MsamVideoOutput(
                frame_embeds=video.frame_embeds[:video_chunk],
                video_mask=video.video_mask[:video_chunk],
                video_embeds=video.video_embeds[:video_chunk],
            ),
            text_context_size=context,
            text_chunk_size=text_chunk,
            video_chunk_size=video_chunk,
        )
        device.synchronize()
        device.free()
        device.reset_peak()
        started = time.perf_counter()
        for start in range(0, sizes.texts, slice_size):
            part = MsamTextOutput(text_embeds=text.text_embeds[start : start + slice_size])
            parts.append(
                model.similarity(
                    part, video, text_context_size=context, text_chunk_size=text_chunk, video_chunk_size=video_chunk
                )
            )
            done += part.text_embeds.shape[0]
            if time.perf_counter() > deadline and done < sizes.texts:
                status = "estimated (time budget)"
                break
        logits = torch.cat(parts)
        device.synchronize()
        seconds = (time.perf_counter() - started) * sizes.texts / done
        finite = bool(torch.isfinite(logits).all())
        shape = list(logits.shape)
    except torch.cuda.OutOfMemoryError:
        status, seconds, finite, shape = "OOM", None, None, None
    parts = logits = None
    result = {
        "status": status,
        "seconds": seconds,
        "captions_scored": done,
        "logits_shape": shape,
        "finite": finite,
        "peak_gib": device.peak_gib() if status != "OOM" else None,
    }
    device.free()
    return result


# 4. Encoding throughput and the data-loading requirement ----------------------------------------------------------


def cpu_seconds(function, repeats: int = 3) -> float:
    """Least CPU time (every thread of this process) of `repeats` calls."""
    best = math.inf
    for _ in range(repeats):
        started = time.process_time()
        function()
        best = min(best, time.process_time() - started)
    return best


def encoding_section(
    sizes: Sizes, device: Device, models: Models, budget: Budget, num_workers: int, training: dict | None
) -> dict:
    deadline = budget.deadline("encoding")
    passes, requirement, notes = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench_gpu_") as folder:
        folder = Path(folder)
        if time.perf_counter() <= deadline:
            started = time.perf_counter()
            generate_synthetic_dataset(
                folder / "data",
                SynthConfig(
                    num_videos=sizes.encode_videos,
                    width=sizes.encode_size,
                    height=sizes.encode_size,
                    duration=sizes.encode_duration,
                    fps=sizes.encode_fps,
                    split_fractions=(1.0, 0.0, 0.0),
                ),
                num_workers=os.cpu_count() or 1,
                progress=False,
            )
            generation_s = time.perf_counter() - started
            log(f"encoding: generated {sizes.encode_videos} videos in {generation_s:.1f} s")
            split = load_video_text_dataset(folder / "data")["train"]
            model = models.get("MSAM")
            processor = default_processor(model.config)
            for name in ("cold: decode, write the frame cache", "warm: frames from the frame cache"):
                if time.perf_counter() > deadline:
                    passes.append({"pass": name, "status": SKIPPED, "videos_per_s": None})
                    continue
                device.synchronize()
                started = time.perf_counter()
                features = extract_features(
                    model,
                    split,
                    processor,
                    batch_size=sizes.encode_batch,
                    num_workers=num_workers,
                    frame_cache_dir=folder / "frames",
                    progress=False,
                )
                device.synchronize()
                seconds = time.perf_counter() - started
                passes.append(
                    {
                        "pass": name,
                        "status": "ok",
                        "videos": len(features.video_ids),
                        "captions": len(features.captions),
                        "seconds": seconds,
                        "videos_per_s": len(features.video_ids) / seconds,
                    }
                )
                log(f"encoding: {name}: {passes[-1]['videos_per_s']:.1f} videos/s")
            features = None
            notes.append(
                f"Generating the {sizes.encode_videos} videos (not in the table) took {generation_s:.1f} s; "
                "each pass's time includes starting the DataLoader's workers."
            )
        else:
            passes = [
                {"pass": name, "status": SKIPPED, "videos_per_s": None}
                for name in ("cold: decode, write the frame cache", "warm: frames from the frame cache")
            ]

        step = next(
            (
                row["MSAM"]["step_s"]
                for row in (training or {}).get("rows", [])
                if row["batch"] == max(sizes.batches) and not row["checkpointing"]
            ),
            None,
        )
        processor = default_processor(config_for(sizes))
        for width, height in sizes.clips:
            if time.perf_counter() > deadline:
                requirement.append({"clip": f"{width}x{height}", "status": SKIPPED})
                continue
            clip = folder / f"clip_{width}x{height}.mp4"
            write_clip(clip, width, height, sizes.clip_seconds)
            decoded = read_frames(clip, 1.0, 12)
            cache = FrameCache(folder / "clip_frames")
            cache.read(clip, 1.0, 12)
            video_processor = processor.image_processor
            costs = {
                "decode_s": cpu_seconds(partial(read_frames, clip, 1.0, 12)),
                "cache_read_s": cpu_seconds(partial(cache.read, clip, 1.0, 12)),
                "process_s": cpu_seconds(partial(video_processor, [decoded.frames], return_tensors="pt")),
            }
            for source, reading in (("decoding", "decode_s"), ("warm frame cache", "cache_read_s")):
                per_video = costs[reading] + costs["process_s"]
                workers = math.ceil(max(sizes.batches) * per_video / step) if step else None
                requirement.append(
                    {
                        "clip": f"{width}x{height}",
                        "status": "ok",
                        "source": source,
                        "frames": len(decoded.frames),
                        **costs,
                        "cpu_s_per_video": per_video,
                        "videos_per_s_per_core": 1 / per_video,
                        "batch": max(sizes.batches),
                        "step_s": step,
                        "workers_needed": workers,
                    }
                )
            log(
                f"encoding: {width}x{height} clip: decode {costs['decode_s']:.3f}, cache {costs['cache_read_s']:.3f}, "
                f"process {costs['process_s']:.3f} CPU s/video"
            )

    pass_rows = [
        [row["pass"], row.get("videos", "n/a"), cell(row.get("seconds"), 2), shown(row, "videos_per_s", 1)]
        for row in passes
    ]
    title = (
        f"Encoding throughput of `extract_features` ({'tiny preset' if sizes.tiny else 'ViT-B/32'}, fp32; "
        f"DataLoader with {num_workers} worker(s), batch {sizes.encode_batch}), {sizes.encode_videos} generated "
        f"videos of {sizes.encode_duration:g} s at {sizes.encode_size} × {sizes.encode_size}, "
        f"{sizes.encode_fps:g} fps, sampled at 1 fps (at most 12 frames)"
    )
    table = markdown(["pass", "videos", "time (s)", "videos / s"], pass_rows)
    requirement_rows = []
    for row in requirement:
        if row["status"] != "ok":
            requirement_rows.append([row["clip"], "", row["status"], "", "", ""])
            continue
        requirement_rows.append(
            [
                row["clip"],
                row["source"],
                cell(row["cpu_s_per_video"], 3),
                cell(row["videos_per_s_per_core"], 1),
                cell(row["step_s"], 3),
                row["workers_needed"] if row["workers_needed"] is not None else "n/a",
            ]
        )
    requirement_title = (
        f"Data-loading requirement: CPU seconds per video in one process (read 12 frames at 1 fps from a generated "
        f"{sizes.clip_seconds} s 30 fps H.264 clip, keyframe every 30 frames, or from the warm frame cache; then the "
        f"processor to {processor.image_processor.crop_size} px) and the DataLoader workers (≈ CPU cores) that feed "
        f"one MSAM step (section 1, no checkpointing) at batch {max(sizes.batches)}: "
        f"⌈batch × CPU s per video / step s⌉"
    )
    requirement_table = markdown(
        ["clip", "frames from", "CPU s / video", "videos / s / core", "step (s)", "workers needed"], requirement_rows
    )
    return {
        "title": title,
        "rows": passes,
        "table": table,
        "requirement_title": requirement_title,
        "requirement": requirement,
        "requirement_table": requirement_table,
        "num_workers": num_workers,
        "notes": notes,
        "stopped_early": stopped_early(passes + requirement),
    }


# Run ---------------------------------------------------------------------------------------------------------------


def device_info(device: Device) -> dict:
    info = {
        "device": str(device.torch),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "transformers": transformers.__version__,
        "cpu_count": os.cpu_count(),
    }
    if device.cuda:
        properties = torch.cuda.get_device_properties(device.torch)
        info.update(
            gpu=properties.name,
            capability=f"{properties.major}.{properties.minor}",
            gpu_memory_gib=properties.total_memory / 2**30,
            multiprocessors=properties.multi_processor_count,
        )
    return info


def git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def write_json(path: Path | None, results: dict) -> None:
    if path is None:
        return
    results["elapsed_s"] = Budget.elapsed()
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(results, indent=2, default=str) + "\n")
    os.replace(temporary, path)


def print_section(section: dict) -> None:
    print(f"\n### {section['title']}\n", flush=True)
    print(section["table"], flush=True)
    if section.get("requirement_table"):
        print(f"\n{section['requirement_title']}\n", flush=True)
        print(section["requirement_table"], flush=True)
    for note in section.get("notes", []):
        print(f"\n{note}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="default: cuda (cpu with --smoke)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file for every number, the tables and the setup")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="every section at tiny sizes (tiny preset, batch 2, 2 frames, 64 × 64 scoring, 2 videos)",
    )
    parser.add_argument(
        "--num_workers",
        type=int,
        default=None,
        help="DataLoader workers of section 4 (default: min(8, CPU count); 1 with --smoke)",
    )
    parser.add_argument(
        "--budget_s",
        type=float,
        default=450.0,
        help="wall-clock budget from start-up; 30 s under 8 minutes, for the steps a deadline cannot "
        "interrupt (one encoding pass, writing one clip)",
    )
    parser.add_argument("--sections", nargs="+", choices=list(SHARES), default=list(SHARES))
    parser.add_argument(
        "--autocast",
        choices=["bf16", "none"],
        default=None,
        help="sections 1-2 (default: bf16 on CUDA, none on the CPU)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device_name = args.device or ("cpu" if args.smoke else "cuda")
    if torch.device(device_name).type == "cuda" and not torch.cuda.is_available():
        sys.exit(
            f"bench_gpu.py measures one CUDA GPU, but torch {torch.__version__} sees none "
            f"(torch.cuda.is_available() is False; built with CUDA {torch.version.cuda}). "
            "Run it on a GPU machine, or with --smoke to check the script on the CPU at tiny sizes."
        )
    sizes = SMOKE if args.smoke else FULL
    autocast = (args.autocast or ("bf16" if torch.device(device_name).type == "cuda" else "none")) == "bf16"
    device = Device(device_name, autocast)
    num_workers = args.num_workers
    if num_workers is None:
        num_workers = 1 if args.smoke else min(8, os.cpu_count() or 1)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    budget = Budget(args.budget_s)
    models = Models(sizes, device)

    results = {
        "benchmark": "benchmarks/bench_gpu.py",
        "smoke": args.smoke,
        "command": shlex.join([sys.executable, *sys.argv]) if argv is None else shlex.join(["bench_gpu.py", *argv]),
        "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "device": device_info(device),
        "settings": {
            **asdict(sizes),
            "autocast": "bf16" if autocast else "none",
            "tf32": True,
            "PYTORCH_CUDA_ALLOC_CONF": os.environ.get("PYTORCH_CUDA_ALLOC_CONF"),
            "num_workers": num_workers,
            "budget_s": args.budget_s,
            "budget_shares": SHARES,
        },
        "environment": environment(),
        "sections": {},
        "stopped_early": [],
    }
    print(
        f"# bench_gpu.py on {results['device'].get('gpu', device_name)}: torch {torch.__version__}, "
        f"CUDA {torch.version.cuda}, transformers {transformers.__version__}"
        f"{' (smoke: tiny sizes)' if args.smoke else ''}",
        flush=True,
    )
    write_json(args.out, results)

    runners = {
        "training": lambda: training_section(sizes, device, models, budget),
        "frozen_heads": lambda: frozen_heads_section(
            sizes, device, models, budget, results["sections"].get("training")
        ),
        "similarity": lambda: similarity_section(sizes, device, models, budget),
        "encoding": lambda: encoding_section(
            sizes, device, models, budget, num_workers, results["sections"].get("training")
        ),
    }
    failed = []
    for name in args.sections:
        started = time.perf_counter()
        log(f"section {name} (must end by {SHARES[name] * budget.seconds:.0f} s)")
        try:
            section = runners[name]()
        except Exception:  # one section's failure must not cost the others their one run on the GPU
            error = traceback.format_exc()
            print(f"\n### Section {name} failed\n\n```\n{error}```", flush=True)
            results["sections"][name] = {"error": error, "seconds": time.perf_counter() - started}
            failed.append(name)
            models.built.clear()
            device.free()
            write_json(args.out, results)
            continue
        section["seconds"] = time.perf_counter() - started
        if section["stopped_early"]:
            results["stopped_early"].append(name)
            section.setdefault("notes", []).append(
                f"This section reached its share of the {budget.seconds:.0f} s budget (it had to end "
                f"{SHARES[name] * budget.seconds:.0f} s after start-up): cells marked as skipped, partial or "
                "extrapolated were not measured in full."
            )
        results["sections"][name] = section
        print_section(section)
        write_json(args.out, results)
    print(
        f"\nTotal {Budget.elapsed():.0f} s"
        + (f"; results in {args.out}" if args.out else "")
        + (f"; FAILED: {', '.join(failed)}" if failed else ""),
        flush=True,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
