"""Train MSAM (or a baseline head) or MCSAN on a video-caption dataset with 🤗 Accelerate.

    python training/train.py --data_dir DATA --output_dir runs/msam
    python training/train.py --model mcsan --data_dir DATA --output_dir runs/mcsan      # vocabulary mined from train
    accelerate launch training/train.py --data_dir DATA --output_dir runs/msam      # whatever `accelerate config` says
    accelerate launch --multi_gpu --num_processes 2 training/train.py ...           # 2 processes (gloo without GPUs)
    python training/train.py recipe.yaml --data_dir DATA --output_dir OUT           # YAML defaults, then overrides

Defaults are the paper's recipe (msam.md §7). DATA is any layout `msam_hf.data.load_video_text_dataset` reads
(CLIP4Clip/MSVD, metadata.jsonl/csv video folders, MSR-VTT json, a Hub dataset folder).

MCSAN (`--model mcsan`) trains on attribute labels: its vocabulary comes from `--attribute_vocab vocab.json` (`msam
data attributes DATA --out vocab.json`) or is mined from the training split's captions, and is stored in the model
config (and, with its tagger, as `attribute_vocabulary.json` next to every saved model). `--attribute_loss` gives MSAM
the same objective as an auxiliary loss on its global embeddings (our addition, off by default). Any model whose config
has an `attribute_vocabulary` gets `attribute_labels` / `video_attribute_labels` in its batches.

`--batch_size` is the global batch: the contrastive loss (and CIFFP's caption set J) spans every process's
captions and videos. With `--gradient_accumulation_steps k`, each process's share is encoded in k micro-batches
and the step is the one of the whole batch (gradient caching, see `msam_hf.grad_cache`).
"""

import copy
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from dataclasses import fields
from functools import partial
from pathlib import Path

import torch
import yaml
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.tracking import get_available_trackers
from accelerate.utils import DataLoaderConfiguration
from accelerate.utils import LoggerType
from accelerate.utils import ProjectConfiguration
from accelerate.utils import broadcast_object_list
from accelerate.utils import is_tensorboard_available
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import HfArgumentParser

from msam_hf import McsanConfig
from msam_hf import McsanModel
from msam_hf import MsamConfig
from msam_hf import MsamModel
from msam_hf import apply_lora
from msam_hf import default_processor
from msam_hf.data import VideoTextCollator
from msam_hf.data import VideoTextDataset
from msam_hf.data import load_video_text_dataset
from msam_hf.data.attributes import ATTRIBUTE_LEVELS
from msam_hf.data.attributes import AttributeVocabulary
from msam_hf.data.attributes import mine_attributes
from msam_hf.data.prepare import read_preparation
from msam_hf.evaluation import ATTRIBUTE_VOCABULARY_FILE
from msam_hf.evaluation import evaluate_attributes
from msam_hf.evaluation import evaluate_retrieval
from msam_hf.evaluation import extract_features
from msam_hf.evaluation import has_attribute_head
from msam_hf.evaluation import read_ground_truth
from msam_hf.evaluation import sites_of
from msam_hf.feature_cache import CachedFeatureCollator
from msam_hf.feature_cache import CachedFeatureDataset
from msam_hf.feature_cache import CachedSplit
from msam_hf.feature_cache import encode_split
from msam_hf.feature_cache import retrieval_features
from msam_hf.grad_cache import MODEL_INPUTS
from msam_hf.grad_cache import accumulated_contrastive_step
from msam_hf.optimization import build_optimizer_and_scheduler
from msam_hf.progress import transformers_progress_bars

logger = get_logger(__name__)
# accelerate warns at each rotation of the checkpoints ("Deleting 1 checkpoints to make room ..."): here it is the
# --checkpoints_total_limit that was asked for, not a warning.
logging.getLogger("accelerate.accelerator").addFilter(
    lambda record: "to make room for new checkpoint" not in record.getMessage()
)
STEP_SEED_STRIDE = 100_003  # more than any number of processes: (step, process) seeds never collide
LOSS_PARTS = ("loss", "contrastive_loss", "distribution_loss", "diversity_loss", "attribute_loss", "kl_loss")
LABEL_INPUTS = ("attribute_labels", "video_attribute_labels")
MODELS = {"msam": (MsamModel, MsamConfig), "mcsan": (McsanModel, McsanConfig)}


@dataclass
class ModelArguments:
    model: str = field(default="msam", metadata={"help": "msam | mcsan"})
    clip_model: str | None = field(
        default=None,
        metadata={
            "help": "Hub id or local folder of pretrained CLIP weights (e.g. openai/clip-vit-base-patch32); "
            "unset: the tiny random-weight preset, trained from scratch."
        },
    )
    similarity_head: str = field(default="ciffp", metadata={"help": "mean | seq_transformer | attention | ciffp"})
    semantic_loss: bool = field(default=True, metadata={"help": "train with MSAM's adaptive semantic branch"})
    semantic_tokens: str = field(default="frames", metadata={"help": "frames (reference code) | patches (paper text)"})
    frame_attention_temperature: float | None = field(
        default=None, metadata={"help": "CIFFP's frame-attention temperature τ (default: the paper's 0.01)"}
    )
    levels: list[str] | None = field(
        default=None,
        metadata={"help": "MCSAN: semantic levels to use (default all: global entity action relationship)"},
    )
    entity_tokens: str = field(
        default="patches", metadata={"help": "MCSAN: entity-level video tokens, patches | frames"}
    )
    focal_alpha: float = field(default=0.25, metadata={"help": "MCSAN: α of the focal BCE (0.5 with γ 0: plain BCE)"})
    focal_gamma: float = field(default=2.0, metadata={"help": "MCSAN: γ of the focal BCE"})
    attribute_loss: bool = field(
        default=False,
        metadata={
            "help": "MSAM: add MCSAN's attribute objective (focal BCE + KL through a shared projection of the "
            "global embeddings) as an auxiliary loss; not in the MSAM paper"
        },
    )
    attribute_vocab: str | None = field(
        default=None,
        metadata={
            "help": "attribute vocabulary JSON (`msam data attributes DATA --out vocab.json`); unset: MCSAN "
            "and MSAM with --attribute_loss mine one from the training captions"
        },
    )
    finetune: str = field(
        default="full",
        metadata={
            "help": "full | frozen (CLIP's towers fixed; its logit scale learns with the new modules) | lora "
            "(PEFT adapters)"
        },
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha"})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout"})


@dataclass
class DataArguments:
    data_dir: str = field(metadata={"help": "dataset folder (any layout msam_hf.data reads) or Hub dataset id"})
    fps: float = field(default=1.0, metadata={"help": "frames sampled per second of video"})
    max_frames: int = field(default=12, metadata={"help": "frames per video at most (uniformly subsampled)"})
    num_workers: int = field(default=2, metadata={"help": "DataLoader worker processes (decoding)"})
    frame_cache_dir: str | None = field(
        default=None,
        metadata={
            "help": "keep decoded frames here (.npz per video): epochs after the first do not "
            "decode again; share it between runs on the same data and sampling"
        },
    )
    feature_cache_dir: str | None = field(
        default=None,
        metadata={
            "help": "with --finetune frozen: encode every video and caption of the train and eval "
            "splits once with the frozen backbone, store the features here (safetensors, "
            "reused by later runs with the same backbone, data and sampling) and train "
            "the new modules from them"
        },
    )
    train_split: str = field(default="train", metadata={"help": "split trained on"})
    eval_split: str = field(default="validation", metadata={"help": "split evaluated each epoch for model selection"})
    eval_text_context_size: int = field(
        default=32, metadata={"help": "CIFFP caption set |J| in evaluation (reference: 32 consecutive captions)"}
    )
    eval_batch_size: int = field(default=16, metadata={"help": "videos per batch when encoding the eval split"})


@dataclass
class TrainArguments:
    output_dir: str = field(metadata={"help": "where checkpoints, logs and the best model go"})
    batch_size: int = field(default=64, metadata={"help": "global batch: videos (one caption each) per step"})
    gradient_accumulation_steps: int = field(
        default=1, metadata={"help": "micro-batches per process and step (gradient caching: the full-batch step)"}
    )
    num_epochs: int = field(default=5, metadata={"help": "passes over the training videos"})
    max_steps: int | None = field(default=None, metadata={"help": "stop after this many optimiser steps"})
    learning_rate: float = field(default=1e-4, metadata={"help": "lr of the new modules"})
    backbone_lr_coefficient: float = field(default=1e-3, metadata={"help": "CLIP's lr = learning_rate × this"})
    adam_beta1: float = 0.9
    adam_beta2: float = 0.98
    adam_epsilon: float = 1e-6
    weight_decay: float = field(default=0.2, metadata={"help": "AdamW weight decay, except biases and norms"})
    warmup_ratio: float = field(default=0.1, metadata={"help": "linear warm-up share of the steps, then cosine"})
    max_grad_norm: float = 1.0
    seed: int = 42
    checkpointing_steps: int | None = field(default=None, metadata={"help": "also save state every N steps"})
    checkpoints_total_limit: int | None = field(default=3, metadata={"help": "keep only the newest N checkpoints"})
    resume_from_checkpoint: str | None = field(default=None, metadata={"help": "a checkpoint folder or 'latest'"})
    verbose: bool = field(default=False, metadata={"help": "also show transformers' weight loading and saving bars"})
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "replace a previous run in --output_dir (its checkpoints and best and final models)"},
    )
    eval_every_epoch: bool = field(default=True, metadata={"help": "evaluate and keep the best model each epoch"})
    log_with: str = field(
        default="auto",
        metadata={
            "help": "accelerate tracker (tensorboard, wandb, ...), 'auto' (tensorboard when installed) or 'none'"
        },
    )
    gradient_checkpointing: bool = field(
        default=False,
        metadata={"help": "recompute the CLIP towers' activations in the backward pass: less memory, one more forward"},
    )
    tf32: bool = field(default=True, metadata={"help": "on CUDA, let float32 matmuls and convolutions use TF32"})
    torch_compile: bool = field(
        default=False,
        metadata={"help": "compile the CLIP towers with torch.compile (compiling takes minutes: for long GPU runs)"},
    )
    torch_compile_backend: str = field(default="inductor", metadata={"help": "the backend of --torch_compile"})
    debug: bool = field(default=False, metadata={"help": "show the full traceback of an error"})


# Numbers that mean nothing at zero or below (None: unset), and those that may be zero; checked before anything is
# read or written, so that a bad value fails at once with its flag's name.
POSITIVE_VALUES = (
    "batch_size",
    "gradient_accumulation_steps",
    "num_epochs",
    "max_steps",
    "learning_rate",
    "max_grad_norm",
    "checkpointing_steps",
    "checkpoints_total_limit",
    "fps",
    "max_frames",
    "eval_batch_size",
    "eval_text_context_size",
    "lora_r",
)
NON_NEGATIVE_VALUES = ("backbone_lr_coefficient", "weight_decay", "num_workers", "lora_dropout")

# What a run writes into --output_dir: a second run there would mix its checkpoints and models with these.
RUN_OUTPUTS = ("checkpoints", "best", "final")

# Options of one model only: giving one a non-default value with the other model is refused.
MODEL_OPTIONS = {
    "msam": ("similarity_head", "semantic_loss", "semantic_tokens", "frame_attention_temperature"),
    "mcsan": ("levels", "entity_tokens", "focal_alpha", "focal_gamma"),
}


def build_model(
    model_args: ModelArguments, data_args: DataArguments, attribute_vocabulary: AttributeVocabulary | None = None
) -> MsamModel | McsanModel:
    """The model of `--model`: tiny preset or `--clip_model` weights, then frozen / LoRA as `--finetune` says."""
    _check_model_options(model_args)
    model_class, config_class = MODELS[model_args.model]
    config_kwargs = {name: getattr(model_args, name) for name in MODEL_OPTIONS[model_args.model]}
    config_kwargs = {name: value for name, value in config_kwargs.items() if value is not None}
    config_kwargs["max_frames"] = data_args.max_frames
    if attribute_vocabulary is not None:
        config_kwargs["attribute_vocabulary"] = attribute_vocabulary.levels
    if model_args.clip_model:
        model = model_class.from_clip(model_args.clip_model, **config_kwargs)
    else:
        model = model_class(config_class.tiny(**config_kwargs))
    if model_args.finetune == "frozen":
        # The towers stay fixed; the logit scale sets how sharp the new heads' scores are, so it learns with them.
        model.clip.requires_grad_(False)
        model.clip.logit_scale.requires_grad_(True)
    elif model_args.finetune == "lora":
        model = apply_lora(model, r=model_args.lora_r, alpha=model_args.lora_alpha, dropout=model_args.lora_dropout)
    elif model_args.finetune != "full":
        raise ValueError(f"--finetune must be full, frozen or lora, got {model_args.finetune!r}")
    return model


def _check_model_options(model_args: ModelArguments) -> None:
    if model_args.model not in MODELS:
        raise ValueError(f"--model must be one of {', '.join(MODELS)}, got {model_args.model!r}")
    defaults = {option.name: option.default for option in fields(ModelArguments)}
    for other, options in MODEL_OPTIONS.items():
        changed = [
            f"--{name}" for name in options if other != model_args.model and getattr(model_args, name) != defaults[name]
        ]
        if changed:
            raise ValueError(f"{', '.join(changed)} apply to --model {other} only, not --model {model_args.model}")


def attribute_vocabulary_for(
    model_args: ModelArguments, train_split, split_name: str, log
) -> AttributeVocabulary | None:
    """The attribute vocabulary of the run: `--attribute_vocab`, else for MCSAN (and MSAM with `--attribute_loss`)
    mined from the training captions (deterministic, so every process mines the same), else None (no attribute
    labels; MSAM as in the paper)."""
    if model_args.attribute_loss and model_args.model != "msam":
        raise ValueError("--attribute_loss adds MCSAN's attribute objective to MSAM; --model mcsan always has it")
    if model_args.attribute_vocab:
        return load_attribute_vocabulary(model_args.attribute_vocab)
    if model_args.model == "msam" and not model_args.attribute_loss:
        return None
    started = time.perf_counter()
    vocabulary = mine_attributes([caption for captions in train_split["captions"] for caption in captions])
    sizes = ", ".join(f"{level} {size}" for level, size in vocabulary.sizes.items())
    log(
        f"no --attribute_vocab: mined the attribute vocabulary from the {vocabulary.num_captions} captions of the "
        f"{split_name!r} split in {time.perf_counter() - started:.1f} s ({sizes} attributes, {vocabulary.tagger_name}); "
        "it is stored in the model config"
    )
    empty = [level for level, size in vocabulary.sizes.items() if size == 0]
    if empty:
        raise ValueError(
            f"the {split_name!r} captions give no {' / '.join(empty)} attribute that occurs in at least "
            f"{vocabulary.min_count} captions; mine a vocabulary with `msam data attributes DATA --out "
            "vocab.json --min-count 1` and pass --attribute_vocab vocab.json"
        )
    return vocabulary


def load_attribute_vocabulary(path: str) -> AttributeVocabulary:
    """`--attribute_vocab`'s file, with errors that name the file, the field and what to do."""
    remedy = "write one with `msam data attributes DATA --out vocab.json`"
    if not Path(path).is_file():
        raise ValueError(f"--attribute_vocab {path}: no such file; {remedy}")
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"--attribute_vocab {path} is not valid JSON ({error}); {remedy}") from error
    levels = data.get("levels") if isinstance(data, dict) else None
    for level in ATTRIBUTE_LEVELS:
        names = levels.get(level) if isinstance(levels, dict) else None
        if not names or not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise ValueError(
                f"--attribute_vocab {path}: levels.{level} must be a non-empty list of attribute names; {remedy}"
            )
    try:
        return AttributeVocabulary.load(path)
    except KeyError as error:
        raise ValueError(f"--attribute_vocab {path} lacks the field {error}; {remedy}") from error
    except ValueError as error:
        raise ValueError(f"--attribute_vocab: {error}") from error


def parse_arguments(
    argv: list[str] | None = None, prog: str | None = None
) -> tuple[ModelArguments, DataArguments, TrainArguments]:
    """Command-line arguments; a YAML file first gives defaults that later `--name value` arguments override."""
    parser = HfArgumentParser((ModelArguments, DataArguments, TrainArguments), prog=prog)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].endswith((".yaml", ".yml")):
        recipe = yaml.safe_load(Path(argv.pop(0)).read_text()) or {}
        argv = [
            item
            for name, value in recipe.items()
            if value is not None
            for item in (f"--{name}", *map(str, value if isinstance(value, list) else [value]))
        ] + argv
    return parser.parse_args_into_dataclasses(argv)


def main(argv: list[str] | None = None) -> dict:
    """Parse `argv` (default: the command line) and train."""
    return train(*parse_arguments(argv))


def train(model_args: ModelArguments, data_args: DataArguments, train_args: TrainArguments) -> dict:
    """Train as the arguments say; returns the validation history and the final training state. Transformers' weight
    loading and saving bars show only with `--verbose`."""
    with transformers_progress_bars(train_args.verbose):
        return _train(model_args, data_args, train_args)


def _train(model_args: ModelArguments, data_args: DataArguments, train_args: TrainArguments) -> dict:
    _check_model_options(model_args)  # before the data is read and a vocabulary mined
    _check_values(model_args, data_args, train_args)
    output_dir = Path(train_args.output_dir)
    previous_run = _previous_run(output_dir, train_args)
    log_with = _tracker(train_args.log_with)
    accelerator = Accelerator(
        # Several processes and no GPU: without cpu=True they would not join, and train as independent runs
        # (pitfalls.md). One CPU process on a GPU machine: `accelerate launch --cpu`.
        cpu=_launched_processes() > 1 and not torch.cuda.is_available(),
        log_with=log_with,
        # accelerate names the checkpoints (checkpoints/checkpoint_<step>, see _save_checkpoint) and keeps the newest
        # total_limit, deleting the oldest before it writes the next.
        project_config=ProjectConfiguration(
            project_dir=str(output_dir),
            automatic_checkpoint_naming=True,
            total_limit=train_args.checkpoints_total_limit,
        ),
        # The shuffling order is a function of (seed, epoch): a resumed run sees the batches an uninterrupted one would.
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    if previous_run and accelerator.is_main_process:
        accelerator.print(
            f"--overwrite_output_dir: removing the previous run's {', '.join(previous_run)} in {output_dir}"
        )
        for name in previous_run:
            shutil.rmtree(output_dir / name)
    accelerator.wait_for_everyone()
    set_seed(train_args.seed)
    micro_batch_size = _micro_batch_size(train_args, accelerator.num_processes)

    dataset = load_video_text_dataset(data_args.data_dir)
    for split in (data_args.train_split, data_args.eval_split if train_args.eval_every_epoch else None):
        if split is not None and split not in dataset:
            raise ValueError(
                f"{data_args.data_dir} has no {split!r} split (it has {list(dataset)}); "
                "pass --train_split / --eval_split"
            )
    vocabulary = attribute_vocabulary_for(
        model_args, dataset[data_args.train_split], data_args.train_split, accelerator.print
    )
    model = build_model(model_args, data_args, vocabulary)
    if train_args.gradient_checkpointing:
        # Non-reentrant: works with frozen towers and LoRA without making the inputs require gradients.
        _base_model(model).clip.activation_checkpointing_enable(
            activation_checkpointing_kwargs={"use_reentrant": False}
        )
        accelerator.print("gradient checkpointing in the CLIP towers")
    if train_args.torch_compile:
        # In place (nn.Module.compile): parameter names, and so checkpoints and save_pretrained, stay as they are.
        for tower in (_base_model(model).clip.vision_model, _base_model(model).clip.text_model):
            tower.compile(backend=train_args.torch_compile_backend)
        accelerator.print(f"the CLIP towers compile with torch.compile (backend {train_args.torch_compile_backend})")
    if accelerator.device.type == "cuda" and train_args.tf32:
        torch.backends.cuda.matmul.fp32_precision = "tf32"
        torch.backends.cudnn.conv.fp32_precision = "tf32"
    processor = default_processor(_base_model(model).config)
    cached_splits = _encode_feature_cache(accelerator, model, processor, dataset, model_args, data_args, train_args)
    if cached_splits:
        # The backbone's features, computed once: each item is a video's cached features with one of its captions.
        train_dataset = CachedFeatureDataset(cached_splits[data_args.train_split], seed=train_args.seed)
        collator = CachedFeatureCollator(cached_splits[data_args.train_split], attribute_vocabulary=vocabulary)
        num_workers = 0  # batches are slices of tensors in memory: worker processes would only copy them
    else:
        train_dataset = VideoTextDataset(
            dataset[data_args.train_split],
            mode="train",
            fps=data_args.fps,
            max_frames=data_args.max_frames,
            seed=train_args.seed,
            frame_cache_dir=data_args.frame_cache_dir,
        )
        # The vocabulary is in the model's config: the batches carry its labels, made by the vocabulary's own tagger.
        collator = VideoTextCollator(processor, attribute_vocabulary=vocabulary)
        num_workers = data_args.num_workers
    if vocabulary is not None:
        started = time.perf_counter()
        captions = [caption for captions in dataset[data_args.train_split]["captions"] for caption in captions]
        collator.label_captions(captions)  # before the workers start: they inherit the labels
        accelerator.print(f"labelled {len(captions)} training captions in {time.perf_counter() - started:.1f} s")
    if len(train_dataset) < train_args.batch_size:
        raise ValueError(
            f"the {data_args.train_split!r} split has {len(train_dataset)} videos, fewer than one batch "
            f"(--batch_size {train_args.batch_size})"
        )
    train_loader = torch.utils.data.DataLoader(
        train_dataset,
        batch_size=micro_batch_size * train_args.gradient_accumulation_steps,
        shuffle=True,
        drop_last=True,  # a short last batch would change the contrastive task (fewer negatives)
        num_workers=num_workers,
        collate_fn=collator,
    )
    steps_per_epoch = len(train_dataset) // train_args.batch_size
    total_steps = steps_per_epoch * train_args.num_epochs
    if train_args.max_steps:
        total_steps = min(total_steps, train_args.max_steps)
    optimizer, scheduler = build_optimizer_and_scheduler(
        model,
        total_steps,
        learning_rate=train_args.learning_rate,
        backbone_lr_coefficient=train_args.backbone_lr_coefficient,
        weight_decay=train_args.weight_decay,
        betas=(train_args.adam_beta1, train_args.adam_beta2),
        eps=train_args.adam_epsilon,
        warmup_ratio=train_args.warmup_ratio,
    )
    # The scheduler steps once per optimiser step on every process: it must not be advanced num_processes times.
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    accelerator.register_for_checkpointing(scheduler)
    if log_with:
        accelerator.init_trackers("msam", config=_flat_config(model_args, data_args, train_args))

    # `batches` counts the batches read, `step` the optimiser steps: a skipped batch (see below) reads without a step.
    state = {"step": 0, "batches": 0, "skipped_videos": 0, "skipped_steps": 0, "train_seconds": 0.0, "best": None}
    start_epoch = skip_batches = 0
    checkpoint = _find_checkpoint(output_dir, train_args.resume_from_checkpoint)
    if checkpoint is not None:
        accelerator.load_state(str(checkpoint))
        state.update(json.loads((checkpoint / "train_state.json").read_text()))
        start_epoch, skip_batches = divmod(state.get("batches", state["step"]), steps_per_epoch)
        accelerator.print(
            f"resumed from {checkpoint} at step {state['step']} (epoch {start_epoch}, batch {skip_batches})"
        )

    base = _base_model(accelerator.unwrap_model(model))
    tracker = log_with or (
        "none (--log_with auto: tensorboard is not installed; pip install 'msam-hf[tensorboard]' to log)"
        if train_args.log_with == "auto"
        else "none"
    )
    accelerator.print(
        f"training {type(base).__name__} ({getattr(base.config, 'similarity_head', 'multi_level')} head, "
        f"--finetune {model_args.finetune}) on {accelerator.device.type}, {accelerator.num_processes} process(es), "
        f"{accelerator.mixed_precision} mixed precision: {total_steps} steps of {train_args.batch_size} videos "
        f"({micro_batch_size} per process × {train_args.gradient_accumulation_steps} accumulation), "
        f"{steps_per_epoch} steps per epoch; logging to {tracker}; output in {output_dir}"
    )
    progress = tqdm(
        total=total_steps,
        initial=state["step"],
        desc="training",
        unit="step",
        disable=not accelerator.is_local_main_process,
    )
    history = []
    saved_step = state["step"]  # the step of the newest checkpoint: a step is saved once
    for epoch in range(start_epoch, train_args.num_epochs):
        if state["step"] >= total_steps:
            break
        model.train()
        train_dataset.set_epoch(epoch)
        train_loader.set_epoch(epoch)
        epoch_loader = accelerator.skip_first_batches(train_loader, skip_batches) if skip_batches else train_loader
        skip_batches = 0
        started, samples = time.perf_counter(), 0
        step_started = time.perf_counter()
        for batch in epoch_loader:
            # Dropout draws depend on the step alone (not on what ran before it), so a resumed run replays them.
            set_seed(train_args.seed + STEP_SEED_STRIDE * state["step"] + accelerator.process_index)
            state["batches"] += 1
            video_ids = batch.get("video_ids", [])
            skipped = batch.get("skipped_video_ids", [])
            # One collective for both counts: (videos, skipped videos) of every process.
            counts = accelerator.gather(torch.tensor([[len(video_ids), len(skipped)]], device=accelerator.device))
            state["skipped_videos"] += int(counts[:, 1].sum())
            if int(counts[:, 0].min()) == 0:
                # A process lost every video of its batch to decoding errors; all processes skip together.
                state["skipped_steps"] += 1
                logger.warning(f"step {state['step']}: skipped, a process had no decodable video ({skipped})")
                continue
            if train_args.gradient_accumulation_steps == 1:
                inputs = {name: batch[name] for name in (*MODEL_INPUTS, *LABEL_INPUTS) if name in batch}
                output = model(**inputs, return_loss=True, gather_global_batch=True)
                parts = {name: getattr(output, name) for name in LOSS_PARTS if getattr(output, name, None) is not None}
                _stop_if_not_finite(accelerator, parts, state["step"], epoch, video_ids, output_dir)
                accelerator.backward(output.loss)
            else:
                parts = accumulated_contrastive_step(
                    accelerator,
                    model,
                    batch,
                    train_args.gradient_accumulation_steps,
                    check_finite=partial(
                        _stop_if_not_finite,
                        accelerator,
                        step=state["step"],
                        epoch=epoch,
                        video_ids=video_ids,
                        output_dir=output_dir,
                    ),
                )
            accelerator.clip_grad_norm_(model.parameters(), train_args.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            state["step"] += 1
            samples += int(counts[:, 0].sum())
            progress.update(1)
            logs = {f"train/{name}": accelerator.reduce(value.detach(), "mean").item() for name, value in parts.items()}
            logs["train/lr"] = scheduler.get_last_lr()[0]
            logs["train/samples_per_second"] = samples / max(time.perf_counter() - started, 1e-9)
            state["train_seconds"] += time.perf_counter() - step_started
            logs["train/skipped_videos"] = state["skipped_videos"]
            progress.set_postfix(loss=f"{logs['train/loss']:.3f}", lr=f"{logs['train/lr']:.2e}")
            if log_with:
                accelerator.log(logs, step=state["step"])
            if train_args.checkpointing_steps and state["step"] % train_args.checkpointing_steps == 0:
                saved_step = _save_checkpoint(accelerator, output_dir, state)
            if state["step"] >= total_steps:
                break
            step_started = time.perf_counter()
        if saved_step != state["step"]:
            saved_step = _save_checkpoint(accelerator, output_dir, state)
        if train_args.eval_every_epoch:
            results = _evaluate(
                accelerator, model, processor, dataset, data_args, vocabulary, cached_splits.get(data_args.eval_split)
            )
            metrics = results["metrics"][results["primary"]]
            history.append({"epoch": epoch, "step": state["step"], **metrics})
            in_site = f", in-site R@1 {metrics['in_site_r1']:.1f}" if "in_site_r1" in metrics else ""
            accelerator.print(
                f"epoch {epoch}: {data_args.eval_split} text-to-video R@1 {metrics['t2v_r1']:.2f} "
                f"({results['primary']}), rsum {metrics['rsum']:.1f}{in_site}{_attribute_summary(results)}"
            )
            if state["best"] is None or metrics["t2v_r1"] > state["best"]["t2v_r1"]:
                state["best"] = {"epoch": epoch, "step": state["step"], "t2v_r1": metrics["t2v_r1"]}
                _save_model(
                    accelerator,
                    model,
                    processor,
                    output_dir / "best",
                    {"epoch": epoch, "step": state["step"], "split": data_args.eval_split, **results},
                    (model_args, data_args, train_args),
                    vocabulary,
                )
            # Record the best in the epoch's checkpoint too, so a resumed run compares against it.
            _save_checkpoint(accelerator, output_dir, state, state_only=True)
    progress.close()
    _save_model(
        accelerator,
        model,
        processor,
        output_dir / "final",
        {"step": state["step"], "train_seconds": state["train_seconds"]},
        (model_args, data_args, train_args),
        vocabulary,
    )
    if state["skipped_videos"] or state["skipped_steps"]:
        accelerator.print(
            f"skipped {state['skipped_videos']} undecodable video(s) and {state['skipped_steps']} step(s)"
        )
    best = state["best"]
    accelerator.print(
        f"trained {state['step']} steps in {state['train_seconds']:.0f} s; "
        + (
            f"best model (epoch {best['epoch']}, {data_args.eval_split} R@1 {best['t2v_r1']:.2f}) in "
            f"{output_dir / 'best'}, "
            if best
            else ""
        )
        + f"last model in {output_dir / 'final'}"
    )
    accelerator.end_training()
    return {"history": history, **state}


def _encode_feature_cache(accelerator, model, processor, dataset, model_args, data_args, train_args) -> dict:
    """`--feature_cache_dir`: the frozen backbone's features of the train split (and of the eval split when evaluating
    each epoch), {split: CachedSplit}, read from the cache or encoded once by every process in turn. {} without it."""
    if not data_args.feature_cache_dir:
        return {}
    if model_args.finetune != "frozen":
        raise ValueError(
            f"--feature_cache_dir trains from features of a fixed backbone: it needs --finetune frozen "
            f"(got --finetune {model_args.finetune})"
        )
    splits = {data_args.train_split: True}
    if train_args.eval_every_epoch:
        splits[data_args.eval_split] = False  # evaluation needs every video: a decoding failure is an error
    cached = {}
    for split, is_train in splits.items():
        cached[split] = encode_split(
            _base_model(model),
            dataset[split],
            processor,
            data_args.feature_cache_dir,
            split,
            fps=data_args.fps,
            max_frames=data_args.max_frames,
            skip_undecodable=is_train,
            batch_size=data_args.eval_batch_size,
            num_workers=data_args.num_workers,
            frame_cache_dir=data_args.frame_cache_dir,
            accelerator=accelerator,
            progress=accelerator.is_local_main_process,
        )
        skipped = cached[split].skipped_video_ids
        accelerator.print(
            f"{split} features: {len(cached[split].video_ids)} videos, {len(cached[split].captions)} "
            f"captions from {cached[split].path}"
            + (f"; {len(skipped)} undecodable video(s) left out: {list(skipped)[:10]}" if skipped else "")
        )
    return cached


def _check_values(*arguments) -> None:
    values = {name: value for group in arguments for name, value in asdict(group).items()}
    for name in POSITIVE_VALUES:
        if values[name] is not None and values[name] <= 0:
            raise ValueError(f"--{name} must be positive, got {values[name]}")
    for name in NON_NEGATIVE_VALUES:
        if values[name] < 0:
            raise ValueError(f"--{name} must not be negative, got {values[name]}")
    if not 0 <= values["warmup_ratio"] < 1:
        raise ValueError(f"--warmup_ratio must be in [0, 1), got {values['warmup_ratio']}")


def _previous_run(output_dir: Path, train_args: TrainArguments) -> list[str]:
    """What an earlier run left in `output_dir` and this run replaces (`--overwrite_output_dir`); a run that resumes
    keeps it. Without either flag, a folder holding a run is refused: two runs' checkpoints would mix, and
    `--resume_from_checkpoint latest` could then resume the wrong one."""
    previous = [name for name in RUN_OUTPUTS if (output_dir / name).exists()]
    if not previous or train_args.resume_from_checkpoint:
        return []
    if not train_args.overwrite_output_dir:
        raise ValueError(
            f"{output_dir} holds a previous run ({', '.join(previous)}): resume it with --resume_from_checkpoint "
            "latest, replace it with --overwrite_output_dir, or choose another --output_dir"
        )
    return previous


def _tracker(log_with: str) -> str | None:
    """accelerate's tracker for --log_with: `auto` is tensorboard when it is installed, else none (the run summary
    says so); a tracker named explicitly must be installed."""
    if log_with == "none":
        return None
    if log_with == "auto":
        return "tensorboard" if is_tensorboard_available() else None
    installed = {getattr(tracker, "value", tracker) for tracker in get_available_trackers()}
    if log_with != "all" and log_with not in installed:
        known = ", ".join(tracker.value for tracker in LoggerType if tracker.value != "all")
        raise ValueError(
            f"--log_with {log_with}: not an installed tracker (installed: {', '.join(sorted(installed)) or 'none'}; "
            f"accelerate knows {known}); install it, e.g. pip install {log_with}, or pass --log_with none"
        )
    return log_with


def _launched_processes() -> int:
    """How many processes the launcher (accelerate launch, torchrun) started."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _micro_batch_size(train_args: TrainArguments, num_processes: int) -> int:
    shares = num_processes * train_args.gradient_accumulation_steps
    if train_args.batch_size % shares:
        raise ValueError(
            f"--batch_size {train_args.batch_size} must split evenly into {num_processes} process(es) "
            f"× {train_args.gradient_accumulation_steps} accumulation step(s)"
        )
    return train_args.batch_size // shares


def _base_model(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _stop_if_not_finite(accelerator, parts: dict, step: int, epoch: int, video_ids: list, output_dir: Path) -> None:
    """Stop the run, on every process, when any process's loss is NaN/inf; name the step, videos and loss parts."""
    finite = torch.stack([torch.isfinite(value.detach()).all() for value in parts.values()]).all()
    if accelerator.gather(finite.reshape(1)).all():
        return
    last = _find_checkpoint(output_dir, "latest")
    values = ", ".join(f"{name}={value.item():.4g}" for name, value in parts.items())
    raise FloatingPointError(
        f"non-finite loss at step {step} (epoch {epoch}), process {accelerator.process_index} videos {video_ids}: "
        f"{values}. Training stopped; the last good checkpoint is {last or 'none (no checkpoint was saved yet)'}."
    )


def _evaluate(
    accelerator,
    model,
    processor,
    dataset,
    data_args,
    vocabulary: AttributeVocabulary | None,
    cached: CachedSplit | None = None,
) -> dict:
    """Evaluate on the main process (every process waits): the split is encoded once, not sharded (or read from the
    feature cache). With a vocabulary, attribute mAP per level too (against the synthetic benchmark's ground truth
    when the data has it)."""
    results = None
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        unwrapped = _base_model(accelerator.unwrap_model(model))
        if cached is not None:
            features = retrieval_features(unwrapped, cached)
        else:
            features = extract_features(
                unwrapped,
                dataset[data_args.eval_split],
                processor,
                batch_size=data_args.eval_batch_size,
                num_workers=data_args.num_workers,
                fps=data_args.fps,
                max_frames=data_args.max_frames,
                frame_cache_dir=data_args.frame_cache_dir,
            )
        ground_truth = read_ground_truth(data_args.data_dir)
        results = evaluate_retrieval(
            unwrapped,
            features,
            text_context_sizes=(data_args.eval_text_context_size, 1),
            video_sites=sites_of(ground_truth, features.video_ids),
        )
        if vocabulary is not None and has_attribute_head(unwrapped):
            results["attribute_map"] = evaluate_attributes(unwrapped, features, vocabulary, ground_truth)
    accelerator.wait_for_everyone()
    return broadcast_object_list([results])[0]


def _attribute_summary(results: dict) -> str:
    """ ", attribute mAP (video labels) entity 41.2, ..." for the epoch line; empty without attribute results."""
    if "attribute_map" not in results:
        return ""
    scores = results["attribute_map"]["video"]
    levels = [f"{level} {score['map']:.1f}" for level, score in scores.items() if score["map"] is not None]
    return ", attribute mAP (video labels) " + (", ".join(levels) or "n/a (no attribute of the vocabulary occurs)")


def _save_model(
    accelerator,
    model,
    processor,
    folder: Path,
    results: dict,
    arguments: tuple,
    vocabulary: AttributeVocabulary | None,
) -> None:
    """`save_pretrained` a self-contained model folder (LoRA adapters merged) with the processor, the results and
    the run's arguments (`training_args.json`, the recipe table of `msam push`'s model card), plus the attribute
    vocabulary with its tagger (`attribute_vocabulary.json`, which evaluation labels held-out captions with)."""
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        if hasattr(unwrapped, "merge_and_unload"):  # LoRA: ship a plain MsamModel with the adapters folded in
            unwrapped = copy.deepcopy(unwrapped).merge_and_unload()
        unwrapped.save_pretrained(folder)
        processor.save_pretrained(folder)
        (folder / "eval_results.json").write_text(json.dumps(results, indent=2) + "\n")
        training_args = _training_args(arguments, accelerator.num_processes)
        (folder / "training_args.json").write_text(json.dumps(training_args, indent=2) + "\n")
        if vocabulary is not None:
            vocabulary.save(folder / ATTRIBUTE_VOCABULARY_FILE)
    accelerator.wait_for_everyone()


def _training_args(arguments: tuple, num_processes: int) -> dict:
    """The argument dataclasses merged, values as given (None stays null; no argument holds a token), the process
    count, which the arguments do not record but which splits the global batch, and how the training videos were
    prepared (`msam data prepare`'s record, so that evaluation can check it samples the same way)."""
    return {
        **{name: value for group in arguments for name, value in asdict(group).items()},
        "num_processes": num_processes,
        "data_preparation": read_preparation(arguments[1].data_dir),
    }


def _save_checkpoint(accelerator, output_dir: Path, state: dict, state_only: bool = False) -> int:
    """Save the training state as `checkpoints/checkpoint_<step>` (accelerate's automatic naming, numbered by step)
    and then `train_state.json`, which marks it complete. `state_only`: rewrite only `train_state.json` of this
    step's checkpoint (the weights have not changed since). Returns the step."""
    folder = output_dir / "checkpoints" / f"checkpoint_{state['step']}"
    if not state_only:
        if accelerator.is_main_process and folder.exists():
            shutil.rmtree(folder)  # what a killed run left half-written (a resumed run saves this step again)
        accelerator.wait_for_everyone()
        accelerator.project_configuration.iteration = state["step"]
        accelerator.save_state()
    if accelerator.is_main_process:
        (folder / "train_state.json").write_text(json.dumps(state, indent=2) + "\n")
    accelerator.wait_for_everyone()
    return state["step"]


def _checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints (their train_state.json is written last), oldest first."""
    folders = [
        path for path in (output_dir / "checkpoints").glob("checkpoint_*") if (path / "train_state.json").is_file()
    ]
    return sorted(folders, key=lambda path: int(path.name.split("_")[-1]))


def _find_checkpoint(output_dir: Path, resume: str | None) -> Path | None:
    if not resume:
        return None
    if resume == "latest":
        checkpoints = _checkpoints(output_dir)
        return checkpoints[-1] if checkpoints else None
    path = Path(resume)
    if not (path / "train_state.json").is_file():
        raise ValueError(f"--resume_from_checkpoint {resume}: not a complete checkpoint (no train_state.json)")
    return path


def _flat_config(*arguments) -> dict:
    """Tracker hyper-parameters: tensorboard accepts only scalars and strings."""
    flat = {}
    for group in arguments:
        flat.update(
            {
                name: value if isinstance(value, (int, float, str, bool)) else str(value)
                for name, value in asdict(group).items()
            }
        )
    return flat


def run(argv: list[str] | None = None, prog: str = "train.py") -> int:
    """`main` as a command: an error in what it was given (a bad value, a missing folder or split, an output folder
    holding another run) prints one line and exits with 2; `--debug` shows the traceback."""
    debug = False
    try:
        arguments = parse_arguments(argv, prog)
        debug = arguments[2].debug
        train(*arguments)
    except (ValueError, FileNotFoundError) as error:
        if debug:
            raise
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(run())
