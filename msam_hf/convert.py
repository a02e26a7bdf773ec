"""Convert a CLIP4Clip-family training checkpoint (the MSAM authors' code is a modified CLIP4Clip) into an
`MsamModel` folder: `msam convert CHECKPOINT OUT_DIR` or `convert_checkpoint(...)`.

The checkpoint is a `torch.save(model.state_dict())` file (`pytorch_model.bin.N`) or a `.safetensors` file with the
same names. `RENAMES` maps its names onto `MsamModel`'s, one row per tensor or module:

- `clip.*`: OpenAI CLIP's names → transformers' `CLIPModel`, as transformers' `convert_clip_original_pytorch_to_hf.py`
  maps them (packed q/k/v split, the `x @ proj` projections transposed into `Linear` weights).
- `frame_position_embeddings`, `transformerClip.resblocks.{i}`: CLIP4Clip's seqTransf → `temporal`.
- `select.afp.attention_fc.{0,2}`: CIFFP's gate MLP → `ciffp.gate_hidden` / `ciffp.gate_output`. **Assumed**: the
  authors' CIFFP code was not found; these are the names an `nn.Sequential(Linear, ReLU, Linear)` gets.
- `preloss.p.pie_net_{video,text}`, `preloss.p.mean_head`, `preloss.p.var_head`: the semantic branch →
  `{video,text}_semantics`, `distribution`. **Assumed** from a public copy of the authors' loss module (a `preLoss`
  whose `p = pre()` builds `PIENet(7, 512, 512, 256)` twice and `FCN_head`s for μ and σ; not confirmed against a
  released checkpoint): PIE-Net's own names (`attention.w_1` W_a, `attention.w_2` W_b, `fc` W_c, `layer_norm`) plus
  that copy's `fc1` (W_o), and `FCN_head`'s `layer.Linear_{n}`.

That module also builds two uncertainty modules and a `noise_scale` whose uses are commented out: their keys
(`REFERENCE_UNUSED`) are expected, listed in the report and skipped. Any other key that maps to nothing is
"unused"; a tensor the chosen model needs that the checkpoint lacks is "missing"; either refuses the conversion
unless `allow_partial`.

The configuration is read off the tensor shapes, as OpenAI's `clip.build_model` does (heads = width / 64, which
CLIP4Clip also uses for its temporal blocks). The head follows from the modules present: CLIP alone gives `mean`,
with the temporal module `seq_transformer`, with `select.afp` `ciffp`; `preloss.p` turns on `semantic_loss`. The
other `MsamConfig` fields keep their defaults (padding is masked: see docs/model.md, "What the paper leaves open").
"""

from __future__ import annotations

import json
import pickle
import re
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors.torch import load_file

from .configuration_msam import MsamConfig
from .modeling_msam import MsamModel
from .processors import default_processor

REPORT_FILE = "conversion_report.json"

SAME, TRANSPOSE, SPLIT_QKV = "same", "transpose", "split q/k/v"


class Rename(NamedTuple):
    """One checkpoint tensor (or, for a name ending in ".", every tensor under that module) → MsamModel's name.

    `{i}` stands for a block index, `{qkv}` for the q, k and v parts of a packed projection (`SPLIT_QKV`).
    """

    checkpoint: str
    model: str
    how: str = SAME


def under(checkpoint_prefix: str, model_prefix: str, renames: tuple[Rename, ...]) -> tuple[Rename, ...]:
    return tuple(Rename(checkpoint_prefix + r.checkpoint, model_prefix + r.model, r.how) for r in renames)


# OpenAI's ResidualAttentionBlock → transformers' CLIPEncoderLayer. OpenAI packs q, k, v (rows in that order) into
# one nn.MultiheadAttention in_proj.
RESIDUAL_BLOCK = (
    Rename("attn.in_proj_weight", "self_attn.{qkv}_proj.weight", SPLIT_QKV),
    Rename("attn.in_proj_bias", "self_attn.{qkv}_proj.bias", SPLIT_QKV),
    Rename("attn.out_proj.", "self_attn.out_proj."),
    Rename("ln_1.", "layer_norm1."),
    Rename("mlp.c_fc.", "mlp.fc1."),
    Rename("mlp.c_proj.", "mlp.fc2."),
    Rename("ln_2.", "layer_norm2."),
)

# PIE-Net (Song & Soleymani 2019) as the authors modified it, msam.md §4.
PIE_NET = (
    Rename("attention.w_1.weight", "token_projection.weight"),  # W_a
    Rename("attention.w_2.weight", "slot_queries.weight"),  # W_b
    Rename("fc.", "slot_gate."),  # W_c, b_c
    Rename("layer_norm.", "layer_norm."),
    Rename("fc1.", "output_projection."),  # W_o, b_o
)

RENAMES = (
    # CLIP, text tower
    Rename("clip.token_embedding.weight", "clip.text_model.embeddings.token_embedding.weight"),
    Rename("clip.positional_embedding", "clip.text_model.embeddings.position_embedding.weight"),
    *under("clip.transformer.resblocks.{i}.", "clip.text_model.encoder.layers.{i}.", RESIDUAL_BLOCK),
    Rename("clip.ln_final.", "clip.text_model.final_layer_norm."),
    Rename("clip.text_projection", "clip.text_projection.weight", TRANSPOSE),
    # CLIP, vision tower
    Rename("clip.visual.class_embedding", "clip.vision_model.embeddings.class_embedding"),
    Rename("clip.visual.positional_embedding", "clip.vision_model.embeddings.position_embedding.weight"),
    Rename("clip.visual.conv1.weight", "clip.vision_model.embeddings.patch_embedding.weight"),
    Rename("clip.visual.ln_pre.", "clip.vision_model.pre_layrnorm."),  # sic, transformers' spelling
    *under("clip.visual.transformer.resblocks.{i}.", "clip.vision_model.encoder.layers.{i}.", RESIDUAL_BLOCK),
    Rename("clip.visual.ln_post.", "clip.vision_model.post_layernorm."),
    Rename("clip.visual.proj", "clip.visual_projection.weight", TRANSPOSE),
    Rename("clip.logit_scale", "clip.logit_scale"),
    # CLIP4Clip's seqTransf
    Rename("frame_position_embeddings.weight", "temporal.frame_position_embeddings.weight"),
    *under("transformerClip.resblocks.{i}.", "temporal.layers.{i}.", RESIDUAL_BLOCK),
    # MSAM: CIFFP's gate (assumed names) and the semantic branch (names of a public copy of the authors' module)
    Rename("select.afp.attention_fc.0.", "ciffp.gate_hidden."),
    Rename("select.afp.attention_fc.2.", "ciffp.gate_output."),
    *under("preloss.p.pie_net_video.", "video_semantics.", PIE_NET),
    *under("preloss.p.pie_net_text.", "text_semantics.", PIE_NET),
    Rename("preloss.p.mean_head.layer.Linear_0.", "distribution.mu.0."),
    Rename("preloss.p.mean_head.layer.Linear_1.", "distribution.mu.2."),
    Rename("preloss.p.mean_head.layer.Linear_2.", "distribution.mu.4."),
    Rename("preloss.p.var_head.layer.Linear_0.", "distribution.sigma.0."),
    Rename("preloss.p.var_head.layer.Linear_1.", "distribution.sigma.2."),
)

# Built by the reference's `pre` module but never used by its forward pass (the calls are commented out).
REFERENCE_UNUSED = (
    "preloss.p.uncertain_net_video.",
    "preloss.p.uncertain_net_text.",
    "preloss.p.pie_net_video.noise_scale",
    "preloss.p.pie_net_text.noise_scale",
)

PARALLEL_PREFIX = "module."  # DataParallel / DistributedDataParallel


def name_pattern(name: str) -> re.Pattern:
    """A `Rename` name as a regex; a name ending in "." also matches every tensor under that module."""
    pattern = re.escape(name).replace(r"\{i\}", r"(?P<i>\d+)").replace(r"\{qkv\}", "(?P<qkv>[qkv])")
    return re.compile(pattern + ("(?P<tensor>.+)" if name.endswith(".") else ""))


CHECKPOINT_PATTERNS = [(name_pattern(rename.checkpoint), rename) for rename in RENAMES]
MODEL_PATTERNS = [(name_pattern(rename.model), rename) for rename in RENAMES]


class ConversionError(ValueError):
    """The checkpoint cannot be converted as it is; the message names the file or the keys, and the fix."""


class RenamedCheckpoint(NamedTuple):
    weights: dict[str, torch.Tensor]  # MsamModel name → tensor
    sources: dict[str, str]  # MsamModel name → checkpoint name
    unmatched: list[str]  # checkpoint names no rename covers
    reference_unused: list[str]  # checkpoint names in REFERENCE_UNUSED


def rename_checkpoint(state_dict: dict[str, torch.Tensor]) -> RenamedCheckpoint:
    """Rename (and split or transpose) every tensor that `RENAMES` covers into MsamModel's names."""
    renamed = RenamedCheckpoint({}, {}, [], [])
    for name, tensor in state_dict.items():
        if name.startswith(REFERENCE_UNUSED):
            renamed.reference_unused.append(name)
            continue
        match, rename = next(
            ((m, r) for pattern, r in CHECKPOINT_PATTERNS if (m := pattern.fullmatch(name))), (None, None)
        )
        if match is None:
            renamed.unmatched.append(name)
            continue
        fields = match.groupdict()
        suffix = fields.pop("tensor", "")
        if rename.how == SPLIT_QKV:
            parts = [(rename.model.format(qkv=part, **fields), chunk) for part, chunk in zip("qkv", tensor.chunk(3))]
        else:
            parts = [(rename.model.format(**fields), tensor.T if rename.how == TRANSPOSE else tensor)]
        for model_name, value in parts:
            renamed.weights[model_name + suffix] = value
            renamed.sources[model_name + suffix] = name
    return renamed


def checkpoint_name(model_name: str) -> str:
    """The checkpoint name `RENAMES` expects for an MsamModel tensor (the name itself if no rename covers it)."""
    for pattern, rename in MODEL_PATTERNS:
        if match := pattern.fullmatch(model_name):
            fields = match.groupdict()
            return rename.checkpoint.format(i=fields.get("i")) + (fields.get("tensor") or "")
    return model_name


def load_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors, without a DataParallel `module.` prefix. Pickles are loaded weights-only: a file
    that would run code is refused."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    if path.suffix == ".safetensors":
        state_dict = load_file(path)
    else:
        try:
            state_dict = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError) as error:
            reason = str(error).strip().splitlines()[0]
            raise ConversionError(
                f"refused to load {path}: it is not a weights-only PyTorch checkpoint (unpickling it would run code, "
                f"or it is no checkpoint at all): {reason}. Convert only files you trust to hold a state dict; a "
                "`.safetensors` file cannot run code."
            ) from None
    if not isinstance(state_dict, dict) or not all(isinstance(value, torch.Tensor) for value in state_dict.values()):
        raise ConversionError(
            f"{path} holds a {type(state_dict).__name__}, not a state dict (parameter names → tensors) as "
            "`torch.save(model.state_dict())` writes it; save the model's state_dict alone."
        )
    if state_dict and all(name.startswith(PARALLEL_PREFIX) for name in state_dict):
        state_dict = {name[len(PARALLEL_PREFIX) :]: tensor for name, tensor in state_dict.items()}
    return state_dict


def count_blocks(weights: dict[str, torch.Tensor], prefix: str) -> int | None:
    """1 + the highest block index under `prefix` (e.g. "temporal.layers."), None if there is none."""
    indices = [int(name[len(prefix) :].split(".")[0]) for name in weights if name.startswith(prefix)]
    return max(indices) + 1 if indices else None


def infer_config(weights: dict[str, torch.Tensor], max_frames: int = 12) -> MsamConfig:
    """MsamConfig from the renamed tensors' shapes; a size the checkpoint lacks keeps CLIP ViT-B/32's value (and
    the tensors it would come from are then reported missing)."""
    default = MsamConfig().clip_config

    def rows(name: str, fallback: int) -> int:
        return weights[name].shape[0] if name in weights else fallback

    def tower(prefix: str, width: int, default_tower) -> dict:
        return {
            "hidden_size": width,
            "intermediate_size": rows(f"{prefix}.encoder.layers.0.mlp.fc1.weight", 4 * width),
            "num_hidden_layers": count_blocks(weights, f"{prefix}.encoder.layers.") or default_tower.num_hidden_layers,
            "num_attention_heads": max(width // 64, 1),  # OpenAI CLIP's rule: heads of width 64
            "hidden_act": "quick_gelu",
        }

    text_width = rows("clip.text_model.final_layer_norm.weight", default.text_config.hidden_size)
    text_config = tower("clip.text_model", text_width, default.text_config) | {
        "vocab_size": rows("clip.text_model.embeddings.token_embedding.weight", default.text_config.vocab_size),
        "max_position_embeddings": rows(
            "clip.text_model.embeddings.position_embedding.weight", default.text_config.max_position_embeddings
        ),
    }
    vision = default.vision_config
    patch_embedding = weights.get("clip.vision_model.embeddings.patch_embedding.weight")  # (width, 3, patch, patch)
    vision_width = rows("clip.vision_model.embeddings.patch_embedding.weight", vision.hidden_size)
    patch_size = vision.patch_size if patch_embedding is None else patch_embedding.shape[-1]
    # One position per patch of the square grid, plus the class token.
    positions = rows(
        "clip.vision_model.embeddings.position_embedding.weight", (vision.image_size // patch_size) ** 2 + 1
    )
    vision_config = tower("clip.vision_model", vision_width, vision) | {
        "patch_size": patch_size,
        "image_size": round((positions - 1) ** 0.5) * patch_size,
    }
    clip_config = {
        "projection_dim": rows("clip.text_projection.weight", default.projection_dim),
        "text_config": text_config,
        "vision_config": vision_config,
    }

    modules = {name.split(".")[0] for name in weights}
    head = "ciffp" if "ciffp" in modules else "seq_transformer" if "temporal" in modules else "mean"
    sizes = {
        field: weights[name].shape[0]
        for field, name in (
            ("semantic_hidden_size", "video_semantics.token_projection.weight"),
            ("semantic_num_slots", "video_semantics.slot_queries.weight"),
            ("distribution_mu_hidden_size", "distribution.mu.0.weight"),
            ("distribution_sigma_hidden_size", "distribution.sigma.0.weight"),
        )
        if name in weights
    }
    temporal_layers = count_blocks(weights, "temporal.layers.")
    if temporal_layers:
        sizes["temporal_num_layers"] = temporal_layers
    return MsamConfig(
        clip_config=clip_config,
        similarity_head=head,
        semantic_loss=bool(modules & {"video_semantics", "text_semantics", "distribution"}),
        max_frames=max_frames,
        **sizes,
    )


def key_list(names: list[str]) -> str:
    return "".join(f"\n  {name}" for name in names)


def convert_checkpoint(
    path: str | Path, out_dir: str | Path, max_frames: int = 12, allow_partial: bool = False
) -> tuple[MsamModel, dict]:
    """Convert a CLIP4Clip/MSAM training checkpoint into an MsamModel folder (model, processor and
    `conversion_report.json`) that `AutoModel.from_pretrained(out_dir, trust_remote_code=True)` loads.

    Raises `ConversionError`, writing nothing, when a tensor's shape does not fit the configuration read off the
    others, or when a tensor the model needs is missing from the checkpoint or a checkpoint key is unused, unless
    `allow_partial`: missing tensors then keep their initialisation, and the report's `partial` and `warning` say
    so. Returns the model (in eval mode) and the report.
    """
    state_dict = load_checkpoint(path)
    renamed = rename_checkpoint(state_dict)
    config = infer_config(renamed.weights, max_frames)
    model = MsamModel(config)
    expected = model.state_dict()

    mismatched = [
        f"{renamed.sources[name]} {tuple(tensor.shape)} → {name} {tuple(expected[name].shape)}"
        for name, tensor in renamed.weights.items()
        if name in expected and tensor.shape != expected[name].shape
    ]
    if mismatched:
        raise ConversionError(
            f"{path}: these tensors do not fit the model configured from the checkpoint's shapes (checkpoint shape "
            f"→ model shape):{key_list(mismatched)}\nThe checkpoint does not follow CLIP4Clip's layout there."
        )
    unused = renamed.unmatched + list(
        dict.fromkeys(source for name, source in renamed.sources.items() if name not in expected)
    )
    missing_by_source: dict[str, list[str]] = {}
    for name in expected:
        if name not in renamed.weights:
            missing_by_source.setdefault(checkpoint_name(name), []).append(name)
    missing = [f"{source} (→ {', '.join(names)})" for source, names in missing_by_source.items()]
    if (unused or missing) and not allow_partial:
        problems = []
        if missing:
            problems.append(
                f"the {config.similarity_head!r} model needs tensors the checkpoint lacks:" + key_list(missing)
            )
        if unused:
            problems.append(f"checkpoint keys that map to nothing in MsamModel:{key_list(unused)}")
        raise ConversionError(
            f"{path}: " + "\n".join(problems) + "\nNothing was written. Pass --allow-partial (allow_partial=True) "
            "to write the model anyway, with the missing tensors at their random initialisation."
        )

    model.load_state_dict({name: tensor for name, tensor in renamed.weights.items() if name in expected}, strict=False)
    mapped = Counter(name.split(".")[0] for name in renamed.weights if name in expected)
    report = {
        "checkpoint": str(path),
        "similarity_head": config.similarity_head,
        "semantic_loss": config.semantic_loss,
        "checkpoint_keys": len(state_dict),
        "mapped_tensors": dict(mapped),  # MsamModel tensors filled from the checkpoint, per module
        "unused_keys": unused,
        "missing_keys": missing,
        "reference_unused_keys": renamed.reference_unused,
        "partial": bool(unused or missing),
    }
    if report["partial"]:
        report["warning"] = (
            f"PARTIAL CONVERSION: {len(missing)} tensor(s) the model needs were not in the checkpoint (the model's "
            f"tensors they map to keep their random initialisation) and {len(unused)} checkpoint key(s) were not "
            "used. Do not expect the checkpoint's accuracy from this model."
        )

    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    default_processor(config).save_pretrained(out_dir)
    (out_dir / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return model.eval(), report
