"""Publish an MSAM model to the Hub: `prepare_hub_folder` builds the repo folder, `push_to_hub` uploads it.

A full repo holds the model (LoRA adapters merged in, weights as safetensors), its custom code, the processor, the
`video-text-retrieval` pipeline (`pipeline_msam.py` + `video_io.py`, recorded in `config.json`'s `custom_pipelines`),
an Inference Endpoints `handler.py` (which also answers the card's feature-extraction widget), the run's
`eval_results.json` and `training_args.json`, and a model card. An adapter-only repo holds the PEFT adapter and a
card whose `base_model` names the MSAM model it applies to. `prepare_space_folder` writes a Gradio Space repo folder
that searches videos with a published model.

Tokens come from `token=`, `HF_TOKEN` or `hf auth login` (huggingface_hub's usual order); they are never logged, and
they are removed from the message of any upload error.
"""

from __future__ import annotations

import importlib.resources
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult
from huggingface_hub import HfApi
from huggingface_hub import ModelCard
from huggingface_hub import ModelCardData
from huggingface_hub import SpaceCard
from huggingface_hub.hf_api import CommitInfo
from huggingface_hub.utils import HFValidationError
from huggingface_hub.utils import get_token
from huggingface_hub.utils import validate_repo_id

from .configuration_mcsan import McsanConfig
from .configuration_msam import MsamConfig
from .evaluation import ATTRIBUTE_VOCABULARY_FILE
from .evaluation import COLUMN_TITLES
from .evaluation import METRIC_COLUMNS
from .evaluation import load_model_and_processor
from .evaluation import markdown_table
from .metrics import TIE_MEANINGS

logger = logging.getLogger(__name__)


# The repository's hub_cards/ folder, installed as the package msam_hf.hub_cards (setup.cfg).
HUB_CARDS_DIR = Path(str(importlib.resources.files("msam_hf.hub_cards")))
MODEL_CARD_TEMPLATE = HUB_CARDS_DIR / "model_card_template.md"
ENDPOINT_HANDLER = HUB_CARDS_DIR / "handler.py"
SPACE_DIR = HUB_CARDS_DIR / "space"  # the Gradio Space: app.py, requirements.txt, README.md (Space card)
EVAL_RESULTS_FILE = "eval_results.json"  # written next to the best model by training/train.py
TRAINING_ARGS_FILE = "training_args.json"  # training/train.py's arguments, next to every model it saves
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
# The Hub has no video-retrieval task. "feature-extraction" is what the model is: it maps captions and videos into
# one embedding space (get_text_features / get_video_features), and retrieval ranks by similarity there.
# "text-to-video" would be wrong (it means generating videos), "zero-shot-classification" means NLI text
# classification, and "video-classification" a fixed label set.
PIPELINE_TAG = "feature-extraction"
# The feature-extraction widget sends {"inputs": "<text>"} and shows the vector it gets back: handler.py answers
# that with the caption's embedding, so these are captions one would search drone footage with.
WIDGET_EXAMPLES = [
    {"text": "a white boat passes under a bridge", "example_title": "boat"},
    {"text": "cars drive along a road between green fields", "example_title": "road"},
    {"text": "people walk across a square in front of a church", "example_title": "square"},
]
CARD_TAGS = ["video-text-retrieval", "text-to-video-retrieval", "drone", "clip"]
MODEL_TAGS = {"msam": ["msam", "arxiv:2510.15470"], "mcsan": ["mcsan"]}
SIMILARITY_HEAD_NAMES = {
    "ciffp": "CIFFP, MSAM's cross-modal interactive feature fusion pooling",
    "mean": "mean pooling of frame features (CLIP4Clip meanP)",
    "seq_transformer": "temporal transformer, then mean pooling (CLIP4Clip seqTransf)",
    "attention": "text-conditioned attention pooling (X-Pool style)",
    "multi_level": "MCSAN's weighted sum of cosines over its semantic levels",
}


class HubPushError(RuntimeError):
    """Creating the repo or uploading failed; the message never contains the token."""


def prepare_hub_folder(
    model_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    adapter_only: bool = False,
    repo_id: str | None = None,
    base_model: str | os.PathLike | None = None,
    dataset: str | None = None,
    license: str = "apache-2.0",
    eval_results_file: str | os.PathLike | None = None,
) -> Path:
    """Write the folder that `push_to_hub` uploads. Needs no network unless an adapter's base is only on the Hub.

    Args:
        model_dir: a folder written by `MsamModel.save_pretrained` (e.g. training's `OUTPUT/best`) or by a LoRA
            model's `save_pretrained` (adapter + MSAM's modules).
        out_dir: where to write; must not exist or be empty.
        adapter_only: publish the PEFT adapter alone (`model_dir` must be an adapter folder).
        repo_id: the repo the folder is meant for, used in the card (default: `out_dir`'s name).
        base_model: for an adapter folder, the MSAM model it was trained on, a folder or Hub id (default: the
            adapter's `base_model_name_or_path`). The base is loaded from a local folder when either names one;
            the card's `base_model` is a Hub id, which an adapter-only repo requires. For a full folder, a Hub id
            here becomes the card's `base_model` (default: the CLIP checkpoint the model was built from).
        dataset: what `eval_results.json` was measured on: a Hub dataset id (also listed in the card's `datasets`)
            or a short name. Required when the folder has evaluation results.
        license: the card's licence id.
        eval_results_file: the `results.json` that `msam evaluate` wrote for this model (e.g. on the test split).
            The card's evaluation and `model-index` then report it instead of training's `eval_results.json`
            (the validation split it selected the checkpoint on), and the repo's `eval_results.json` holds it.

    Returns:
        `out_dir`.
    """
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"model folder not found: {model_dir}")
    is_adapter = (model_dir / "adapter_config.json").is_file()
    if adapter_only and not is_adapter:
        raise ValueError(
            f"{model_dir} has no adapter_config.json: it is a full model, not a LoRA adapter folder; "
            "push it without --adapter-only."
        )
    if not is_adapter and not (model_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"{model_dir} has neither config.json (a model) nor adapter_config.json (a LoRA "
            "adapter); pass a folder written by save_pretrained."
        )
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ValueError(f"{out_dir} exists and is not empty; choose a new folder.")
    training_results = _read_eval_results(model_dir)
    eval_results = training_results
    if eval_results_file is not None:
        eval_results = _read_evaluate_results(Path(eval_results_file), model_dir)
    training_args = _read_training_args(model_dir)
    if eval_results is not None and not dataset:
        raise ValueError(
            f"{eval_results_file or model_dir / EVAL_RESULTS_FILE} holds evaluation results: name the data they "
            "were measured on with dataset= (--dataset), a Hub dataset id such as your-name/usrd or a short name."
        )
    repo_id = repo_id or out_dir.resolve().name
    if is_adapter:
        base_source, card_base_model = _resolve_adapter_base(model_dir, base_model)
    else:
        base_source, card_base_model = None, _hub_id(base_model)

    if adapter_only:
        if card_base_model is None:
            raise ValueError(
                f"{model_dir / 'adapter_config.json'} names no base model on the Hub; pass base_model= "
                "(--base-model) with the Hub id of the MSAM model the adapter applies to."
            )
        config = MsamConfig.from_pretrained(str(base_source))
        _copy_adapter(model_dir, out_dir, card_base_model)
    else:
        model, processor = load_model_and_processor(model_dir, base_model=base_source)
        config = model.config
        # The model's save_pretrained also names the pipeline in `custom_pipelines` and copies its code; the frame
        # processor goes into its own preprocessor_config.json too, where Hub tools look for an image processor.
        model.save_pretrained(out_dir)
        processor.save_pretrained(out_dir)
        processor.image_processor.save_pretrained(out_dir)
        shutil.copy(ENDPOINT_HANDLER, out_dir / "handler.py")
    if eval_results_file is not None:
        (out_dir / EVAL_RESULTS_FILE).write_text(json.dumps(eval_results, indent=2) + "\n")
    elif eval_results is not None:
        shutil.copy(model_dir / EVAL_RESULTS_FILE, out_dir / EVAL_RESULTS_FILE)
    if training_args is not None:
        shutil.copy(model_dir / TRAINING_ARGS_FILE, out_dir / TRAINING_ARGS_FILE)
    if (model_dir / ATTRIBUTE_VOCABULARY_FILE).is_file():  # the tagger that labels held-out captions like training
        shutil.copy(model_dir / ATTRIBUTE_VOCABULARY_FILE, out_dir / ATTRIBUTE_VOCABULARY_FILE)

    card = build_model_card(
        config,
        repo_id=repo_id,
        base_model=card_base_model,
        eval_results=eval_results,
        selection_results=training_results,
        training_args=training_args,
        dataset=dataset,
        adapter_only=adapter_only,
        license=license,
    )
    card.save(out_dir / "README.md")
    return out_dir


def build_model_card(
    config: MsamConfig,
    *,
    repo_id: str,
    base_model: str | None = None,
    eval_results: dict[str, Any] | None = None,
    training_args: dict[str, Any] | None = None,
    dataset: str | None = None,
    adapter_only: bool = False,
    license: str = "apache-2.0",
    selection_results: dict[str, Any] | None = None,
) -> ModelCard:
    """The model card: metadata (with `model-index` from `eval_results`) and the sections of the template.

    `base_model` defaults to the CLIP checkpoint a full model was built from (`config.base_clip_model`); an
    adapter's card must name its MSAM base. `training_args` (training/train.py's `training_args.json`) becomes
    the training recipe table. `selection_results` (default `eval_results`) are training's results, which say
    on which epoch and split the checkpoint was selected.
    """
    if adapter_only and not base_model:
        raise ValueError("an adapter card needs base_model=, the Hub id of the MSAM model the adapter applies to.")
    # The card's metadata names a Hub repo id; a CLIP checkpoint read from a local folder stays out of it.
    base_model = base_model or _hub_id(config.base_clip_model)
    model_name = repo_id.split("/")[-1]
    dataset_id = _hub_id(dataset)
    card_data = ModelCardData(
        model_name=model_name,
        library_name="peft" if adapter_only else "transformers",
        pipeline_tag=PIPELINE_TAG,
        license=license,
        base_model=base_model,
        datasets=[dataset_id] if dataset_id else None,
        tags=MODEL_TAGS[config.model_type] + CARD_TAGS + (["lora", "peft"] if adapter_only else []),
        eval_results=_eval_results_for_card(eval_results, dataset) if eval_results else None,
        # An adapter repo has no handler.py to answer the widget.
        widget=None if adapter_only else WIDGET_EXAMPLES,
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(MODEL_CARD_TEMPLATE),
        model_name=model_name,
        repo_id=repo_id,
        base_model=base_model,
        adapter_only=adapter_only,
        model_type=config.model_type,
        head=config.similarity_head,
        head_name=SIMILARITY_HEAD_NAMES[config.similarity_head],
        pretrained_backbone=config.base_clip_model,
        max_frames=config.max_frames,
        max_text_length=config.max_text_length,
        projection_dim=config.projection_dim,
        configuration_rows=_configuration_rows(config),
        recipe_rows=_training_recipe_rows(training_args) if training_args else None,
        selection=_selection_sentence(selection_results or eval_results),
        evaluation=_evaluation_section(eval_results, dataset, model_name) if eval_results else None,
    )


def push_to_hub(
    model_dir: str | os.PathLike,
    repo_id: str,
    adapter_only: bool = False,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
    *,
    base_model: str | os.PathLike | None = None,
    dataset: str | None = None,
    license: str = "apache-2.0",
    eval_results_file: str | os.PathLike | None = None,
) -> CommitInfo:
    """Build the repo folder (`prepare_hub_folder`) in a temporary directory and upload it to `repo_id`.

    Creates the model repo (private if asked) and the `revision` branch when missing. `token` defaults to
    huggingface_hub's usual sources (`HF_TOKEN`, `hf auth login`). Returns the commit; raises `HubPushError`
    (message without the token) when the Hub refuses or cannot be reached.
    """
    validate_repo_id(repo_id)
    with tempfile.TemporaryDirectory(prefix="msam-hub-") as staging:
        folder = prepare_hub_folder(
            model_dir,
            Path(staging) / repo_id.split("/")[-1],
            adapter_only=adapter_only,
            repo_id=repo_id,
            base_model=base_model,
            dataset=dataset,
            license=license,
            eval_results_file=eval_results_file,
        )
        files = sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())
        logger.info("uploading %d files to %s: %s", len(files), repo_id, ", ".join(files))
        api = HfApi(token=token)
        try:
            api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
            if revision:
                api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
            return api.upload_folder(
                repo_id=repo_id,
                repo_type="model",
                folder_path=folder,
                revision=revision,
                commit_message=commit_message
                or f"Upload {'LoRA adapter' if adapter_only else 'MSAM model'} with msam push",
            )
        except Exception as error:  # noqa: BLE001 - offline, auth, HTTP: each layer raises its own type
            message = _without_tokens(f"{type(error).__name__}: {error}", token)
            # `from None`: the original error (and any token its text may hold) stays out of the traceback.
            raise HubPushError(f"pushing {model_dir} to {repo_id} failed: {message}") from None


def prepare_space_folder(
    out_dir: str | os.PathLike, model_repo_id: str, sample_videos: Iterable[str | os.PathLike] = ()
) -> Path:
    """Write a Gradio Space repo folder that searches videos with the model `model_repo_id`.

    The Space card's `models:` names the model (the Hub links the two pages, and the app loads it from there);
    `sample_videos` are copied into `samples/`, which the app searches by default. Upload the folder with
    `HfApi().upload_folder(repo_id=..., repo_type="space", folder_path=out_dir)`.
    """
    validate_repo_id(model_repo_id)
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ValueError(f"{out_dir} exists and is not empty; choose a new folder.")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("app.py", "requirements.txt"):
        shutil.copy(SPACE_DIR / name, out_dir / name)
    card = SpaceCard.load(SPACE_DIR / "README.md")
    card.data.models = [model_repo_id]
    card.save(out_dir / "README.md")
    for video in map(Path, sample_videos):
        (out_dir / "samples").mkdir(exist_ok=True)
        shutil.copy(video, out_dir / "samples" / video.name)
    return out_dir


def _without_tokens(text: str, token: str | None) -> str:
    for secret in {token, get_token()}:
        if secret:
            text = text.replace(secret, "<token>")
    return text


def _read_eval_results(model_dir: Path) -> dict[str, Any] | None:
    path = model_dir / EVAL_RESULTS_FILE
    if not path.is_file():
        return None
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); remove it or write it again.") from error
    if not isinstance(results, dict) or not isinstance(results.get("metrics"), dict) or not results["metrics"]:
        raise ValueError(
            f"{path} has no 'metrics' by caption-set size (|J|=32, |J|=1, ...); expected the file "
            "training/train.py writes next to the best model."
        )
    return results


def _read_evaluate_results(path: Path, model_dir: Path) -> dict[str, Any]:
    """This model's entry of a `results.json` written by `msam evaluate` (the entry that names `model_dir`, or the
    only one), without what would publish local paths (the model's path, the command line, the environment)."""
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read {path} ({error}); pass the results.json that msam evaluate writes.") from error
    entries = {
        name: entry
        for name, entry in (results.items() if isinstance(results, dict) else ())
        if isinstance(entry, dict) and isinstance(entry.get("metrics"), dict) and entry["metrics"]
    }
    if not entries:
        raise ValueError(f"{path} holds no model's results; pass the results.json that msam evaluate writes.")
    named = [
        entry
        for entry in entries.values()
        if entry.get("model") and Path(entry["model"]).resolve() == model_dir.resolve()
    ]
    if len(named) != 1 and len(entries) != 1:
        raise ValueError(
            f"{path} holds the results of {', '.join(entries)}, and none names {model_dir}: evaluate this model "
            "alone (msam evaluate MODEL_DIR DATA) and pass that results.json."
        )
    entry = named[0] if len(named) == 1 else next(iter(entries.values()))
    provenance = entry.get("provenance") or {}
    return {
        **{key: value for key, value in entry.items() if key not in ("model", "provenance")},
        **({"data_fingerprint": provenance["data_fingerprint"]} if "data_fingerprint" in provenance else {}),
    }


def _read_training_args(model_dir: Path) -> dict[str, Any] | None:
    path = model_dir / TRAINING_ARGS_FILE
    if not path.is_file():
        return None
    try:
        arguments = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); remove it or write it again.") from error
    if not isinstance(arguments, dict):
        raise ValueError(
            f"{path} must hold one JSON object of training arguments (name: value), as training/train.py writes it."
        )
    return arguments


def _hub_id(name: str | os.PathLike | None) -> str | None:
    """`name` if it is a Hub repo id (namespace/name) rather than a local folder, else None."""
    if name is None or Path(name).exists() or "/" not in str(name):
        return None
    try:
        validate_repo_id(str(name))
    except HFValidationError:
        return None
    return str(name)


def _resolve_adapter_base(adapter_dir: Path, base_model: str | os.PathLike | None) -> tuple[str, str | None]:
    """Where to load an adapter's base from (a local folder when one is known, else the Hub) and its Hub id.

    Candidates are `base_model` and the adapter's recorded `base_model_name_or_path`, in that order.
    """
    recorded = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8")).get(
        "base_model_name_or_path"
    )
    candidates = [str(name) for name in (base_model, recorded) if name]
    if not candidates:
        raise ValueError(
            f"{adapter_dir / 'adapter_config.json'} names no base model: pass base_model= (--base-model), "
            "the folder or Hub id of the MSAM model the adapter was trained on."
        )
    load_from = next((name for name in candidates if Path(name).is_dir()), candidates[0])
    hub_id = next((name for name in candidates if _hub_id(name)), None)
    return load_from, hub_id


def _copy_adapter(adapter_dir: Path, out_dir: Path, base_model_id: str) -> None:
    missing = [name for name in ADAPTER_FILES if not (adapter_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{adapter_dir} lacks {', '.join(missing)}; save the adapter with "
            "save_pretrained(..., safe_serialization=True)."
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(adapter_dir / "adapter_model.safetensors", out_dir / "adapter_model.safetensors")
    # The Hub copy must find its base on the Hub, not at a local path of the machine it was trained on.
    adapter_config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    adapter_config["base_model_name_or_path"] = base_model_id
    (out_dir / "adapter_config.json").write_text(json.dumps(adapter_config, indent=2) + "\n", encoding="utf-8")


def _configuration_rows(config: MsamConfig | McsanConfig) -> list[tuple[str, str]]:
    vision, text = config.clip_config.vision_config, config.clip_config.text_config
    if _hub_id(config.base_clip_model):
        backbone = f"`{config.base_clip_model}`"
    elif config.base_clip_model:
        backbone = "pretrained CLIP weights from a local folder (not on the Hub)"
    else:
        backbone = "CLIP architecture from random initialisation (no pretrained weights)"
    rows = [
        ("backbone", backbone),
        (
            "vision tower",
            f"ViT, {vision.num_hidden_layers} layers, width {vision.hidden_size}, "
            f"{vision.image_size} px, patch {vision.patch_size}",
        ),
        (
            "text tower",
            f"{text.num_hidden_layers} layers, width {text.hidden_size}, CLIP BPE vocabulary "
            f"({text.vocab_size:,} tokens)",
        ),
        ("joint embedding width", str(config.projection_dim)),
        ("similarity head", f"`{config.similarity_head}`: {SIMILARITY_HEAD_NAMES[config.similarity_head]}"),
        ("frames per video", f"at most {config.max_frames} (uniformly subsampled)"),
        ("caption length", f"at most {config.max_text_length} CLIP tokens"),
    ]
    if config.model_type == "mcsan":
        return rows + _mcsan_configuration_rows(config)
    if config.uses_temporal_module:
        rows.append(("temporal module", f"{config.temporal_num_layers} transformer layers"))
    if config.similarity_head == "ciffp":
        rows += [
            (
                "CIFFP temperatures (frames, captions)",
                f"{config.frame_attention_temperature}, {config.caption_attention_temperature}",
            ),
            ("CIFFP score scale γ, gate divisor", f"{config.ciffp_score_scale}, {config.ciffp_gate_divisor}"),
            ("CIFFP masks padded frames", "yes" if config.ciffp_mask_padded_frames else "no (reference behaviour)"),
        ]
    if config.semantic_loss:
        rows.append(
            (
                "adaptive semantic branch (training only)",
                f"{config.semantic_num_slots} slots over {config.semantic_tokens}; loss weights: distribution "
                f"{config.distribution_loss_weight}, diversity {config.diversity_loss_weight}",
            )
        )
    else:
        rows.append(("adaptive semantic branch", "off (contrastive loss only)"))
    if config.attribute_vocabulary:
        rows.append(("attribute objective (training only, auxiliary)", _attribute_description(config)))
    return rows


def _mcsan_configuration_rows(config: McsanConfig) -> list[tuple[str, str]]:
    weights = "learned from uniform" if config.learn_level_weights else f"fixed {config.level_weights or 'uniform'}"
    return [
        ("levels", ", ".join(config.levels) + f" (score weights {weights})"),
        ("entity-level video tokens", config.entity_tokens),
        ("attribute objective (training only)", _attribute_description(config)),
    ]


def _attribute_description(config: MsamConfig | McsanConfig) -> str:
    sizes = ", ".join(f"{level} {size}" for level, size in config.attribute_vocabulary_sizes.items())
    return (
        f"attributes per level: {sizes}; focal BCE α {config.focal_alpha:g}, γ {config.focal_gamma:g} (weight "
        f"{config.attribute_loss_weight:g}), KL weight {config.kl_loss_weight:g}"
    )


FINETUNE_MODES = {
    "full": "full (CLIP and MSAM's modules)",
    "frozen": "CLIP frozen, MSAM's modules trained",
}
LORA_FIELDS = (("r", "lora_r"), ("alpha", "lora_alpha"), ("dropout", "lora_dropout"))


def _training_recipe_rows(arguments: dict[str, Any]) -> list[tuple[str, str]]:
    """The recipe table from training/train.py's arguments; a row whose fields the file lacks is left out."""
    lora = arguments.get("finetune") == "lora"  # adapters are new parameters: they train at the full rate

    def batch(a):
        processes, micro_batches = a.get("num_processes") or 1, a.get("gradient_accumulation_steps") or 1
        split = (
            f" (over {processes} process(es) × {micro_batches} accumulated micro-batch(es))"
            if processes > 1 or micro_batches > 1
            else ""
        )
        return f"{a['batch_size']} videos per optimiser step, one caption each{split}"

    def finetune(a):
        if lora:
            settings = ", ".join(f"{label} {a[field]}" for label, field in LORA_FIELDS if a.get(field) is not None)
            return f"LoRA on CLIP ({settings}), MSAM's modules in full; the adapters are merged into these weights"
        return FINETUNE_MODES.get(a["finetune"], str(a["finetune"]))

    rows = (  # (row, the fields it needs, how it reads)
        (
            "training data",
            ("data_dir", "train_split"),
            lambda a: (
                (
                    f"[{a['data_dir']}](https://huggingface.co/datasets/{a['data_dir']})"
                    if _hub_id(a["data_dir"])
                    else f"a local folder, `{_dataset_name(a['data_dir'])}`"
                )
                + f", split `{a['train_split']}`"
            ),
        ),
        ("batch size", ("batch_size",), batch),
        (
            "epochs",
            ("num_epochs",),
            lambda a: str(a["num_epochs"]) + (f", at most {a['max_steps']} steps" if a.get("max_steps") else ""),
        ),
        (
            "learning rate",
            ("learning_rate",),
            lambda a: f"{a['learning_rate']:g} (MSAM's modules{' and LoRA adapters' if lora else ''})",
        ),
        (
            "CLIP learning rate",
            ("learning_rate", "backbone_lr_coefficient"),
            lambda a: (
                f"{a['learning_rate'] * a['backbone_lr_coefficient']:g} "
                f"(learning rate × backbone coefficient {a['backbone_lr_coefficient']:g})"
            ),
        ),
        (
            "optimiser",
            ("adam_beta1", "adam_beta2", "adam_epsilon"),
            lambda a: f"AdamW, betas ({a['adam_beta1']:g}, {a['adam_beta2']:g}), eps {a['adam_epsilon']:g}",
        ),
        ("weight decay", ("weight_decay",), lambda a: f"{a['weight_decay']:g} (none on biases, norms, logit scale)"),
        (
            "schedule",
            ("warmup_ratio",),
            lambda a: f"linear warm-up over {a['warmup_ratio']:.0%} of the steps, then cosine decay",
        ),
        ("gradient clipping", ("max_grad_norm",), lambda a: f"global norm {a['max_grad_norm']:g}"),
        ("seed", ("seed",), lambda a: str(a["seed"])),
        ("similarity head", ("similarity_head",), lambda a: f"`{a['similarity_head']}`"),
        (
            "semantic loss",
            ("semantic_loss",),
            lambda a: (
                f"adaptive semantic branch, slots over {a.get('semantic_tokens', 'frames')}"
                if a["semantic_loss"]
                else "off (contrastive loss only)"
            ),
        ),
        ("fine-tuning", ("finetune",), finetune),
        (
            "frames",
            ("max_frames", "fps"),
            lambda a: f"at most {a['max_frames']} per video, sampled at {a['fps']:g} fps",
        ),
        (
            "video preparation",
            ("data_preparation",),
            lambda a: (
                f"re-encoded to {a['data_preparation']['video_fps']:g} fps and a "
                f"{a['data_preparation']['short_side']}-px short side (`msam data prepare`): prepare videos the same "
                "way before scoring them"
            ),
        ),
    )
    table = []
    for name, fields, describe in rows:
        if any(arguments.get(field) is None for field in fields):
            continue
        try:
            table.append((name, describe(arguments)))
        except (TypeError, ValueError) as error:
            values = ", ".join(f"{field}={arguments[field]!r}" for field in fields)
            raise ValueError(
                f"{TRAINING_ARGS_FILE}: cannot render the {name!r} row from {values} ({error}); expected "
                "the values training/train.py writes."
            ) from error
    return table


def _dataset_name(data_dir: str) -> str:
    """A Hub dataset id as it is; of a local folder only its name: the rest of the path says nothing to readers."""
    return _hub_id(data_dir) or Path(data_dir).name or data_dir


def _selection_sentence(eval_results: dict[str, Any] | None) -> str | None:
    """training/train.py keeps the epoch with the best text-to-video R@1 and records which one it was."""
    if not eval_results or "epoch" not in eval_results or "split" not in eval_results:
        return None
    step = f", step {eval_results['step']}" if "step" in eval_results else ""
    return (
        f"This checkpoint is the best epoch ({eval_results['epoch']}{step}) by text-to-video R@1 on the "
        f"`{eval_results['split']}` split."
    )


def _evaluation_section(eval_results: dict[str, Any], dataset: str, model_name: str) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "split": eval_results.get("split"),
        "num_videos": eval_results["num_videos"],
        "num_captions": eval_results["num_captions"],
        "ties": eval_results["ties"],
        "ties_meaning": TIE_MEANINGS[eval_results["ties"]],
        "context_sizes": [key.removeprefix("|J|=") for key in eval_results["metrics"]],
        "table": markdown_table({model_name: eval_results}),
    }


def _eval_results_for_card(eval_results: dict[str, Any], dataset: str) -> list[EvalResult]:
    """One `model-index` entry per metric, direction and caption-set size |J|."""
    dataset_type = _hub_id(dataset) or "".join(c if c.isalnum() or c in "-_." else "-" for c in dataset).strip("-")
    metric_types = {"r1": "recall_at_1", "r5": "recall_at_5", "r10": "recall_at_10"}
    entries = []
    for context_key, metrics in eval_results["metrics"].items():
        size = context_key.removeprefix("|J|=")
        for column in METRIC_COLUMNS:
            if column == "rsum":
                continue
            direction, measure = column.split("_", 1)  # "t2v", "r1" | "median_rank" | ...
            task = "text-to-video" if direction == "t2v" else "video-to-text"
            entries.append(
                EvalResult(
                    task_type=f"{task}-retrieval",
                    task_name=f"{task.capitalize()} retrieval",
                    dataset_type=dataset_type,
                    dataset_name=dataset,
                    dataset_split=eval_results.get("split"),
                    metric_type=metric_types.get(measure, measure),
                    metric_name=f"{COLUMN_TITLES[column]} (|J|={size})",
                    metric_value=round(float(metrics[column]), 2),
                    metric_args={
                        "text_context_size": int(size) if size.isdigit() else size,
                        "ties": eval_results["ties"],
                    },
                )
            )
    return entries
