"""Gradient accumulation for a contrastive loss, by gradient caching (Gao et al., 2021, "Scaling Deep Contrastive
Learning Batch Size under Memory Limited Setup").

Plain accumulation (summing the gradients of k micro-batch losses) changes a contrastive objective: each
micro-batch's captions see only that micro-batch's videos as negatives, and CIFFP's caption set J shrinks to the
micro-batch. Gradient caching gives the gradient of the *whole* batch's loss with the memory of one micro-batch:

1. encode every micro-batch without a graph and keep the features (text and video embeddings, frame embeddings);
2. compute the batch's contrastive loss (gathered across processes, as in `forward(gather_global_batch=True)`) on
   those features as leaves, and backpropagate it to them and to the similarity head's own parameters;
3. encode each micro-batch again with a graph, replaying the random state of step 1 so dropout draws the same masks,
   and backpropagate the cached feature gradients (plus the micro-batch's share of the semantic and attribute
   losses, which are means over pairs and need no other micro-batch).

MCSAN (`McsanModel`) is cached the same way: its per-level embeddings are the cached features, the fused and
per-level contrastive losses are computed on them, and the attribute losses (focal BCE and KL, means over pairs)
are the micro-batch's share, like MSAM's semantic losses.

What it equals: with dropout off, the gradients of a step without accumulation on the same batch (up to float
rounding; tested). With dropout on, a step with the same objective whose dropout masks differ from the
unaccumulated step's, as they would between any two runs. What it does not: it costs one extra encoder forward per
micro-batch, and fp16 loss scaling is not supported (use bf16 or fp32).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist

from .loss_msam import gather_across_processes
from .loss_msam import is_multi_process
from .loss_msam import weighted_loss
from .modeling_clip_video import concatenate_outputs
from .modeling_mcsan import McsanModel
from .modeling_msam import MsamModel

TEXT_INPUTS = ("input_ids", "attention_mask", "text_embeds", "word_embeds")  # tokens, or a frozen backbone's outputs
VIDEO_INPUTS = ("pixel_values_videos", "video_mask", "frame_features", "patch_embeds")  # pixels, or the same
MODEL_INPUTS = (*TEXT_INPUTS, *VIDEO_INPUTS)
LABEL_INPUTS = ("attribute_labels", "video_attribute_labels")


def accumulated_contrastive_step(
    accelerator,
    model: torch.nn.Module,
    batch: dict,
    num_micro_batches: int,
    check_finite: Callable[[dict[str, torch.Tensor]], None] | None = None,
) -> dict[str, torch.Tensor]:
    """Forward and backward of this process's `batch` (caption i describes video i) in `num_micro_batches` pieces.

    Leaves in every trainable parameter's `.grad` the gradient of the global batch's loss, averaged across
    processes like DDP would (the encoders run outside DDP's forward, so the averaging is done here). Returns the
    loss parts (`loss`, `contrastive_loss`, and with MSAM's semantic branch `distribution_loss`, `diversity_loss`;
    with MCSAN's attribute levels `attribute_loss` (given `attribute_labels` in the batch) and `kl_loss`).
    `check_finite(parts)` is called before any backward pass on non-finite values and may raise.
    """
    if accelerator.mixed_precision == "fp16":
        raise ValueError(
            "gradient accumulation by gradient caching does not support fp16 loss scaling; "
            "use --mixed_precision bf16 or no, or --gradient_accumulation_steps 1"
        )
    base = _base_model(accelerator.unwrap_model(model))
    size, videos = _rows(batch, TEXT_INPUTS), _rows(batch, VIDEO_INPUTS)
    if size != videos:
        raise ValueError(f"training pairs caption i with video i, got {size} captions for {videos} videos")
    bounds = torch.linspace(0, size, num_micro_batches + 1).round().long().tolist()
    micro_batches = [
        {name: batch[name][start:end] for name in (*MODEL_INPUTS, *LABEL_INPUTS) if name in batch}
        for start, end in zip(bounds[:-1], bounds[1:])
        if end > start
    ]
    parts = _cached_step(accelerator, base, micro_batches, size, check_finite)
    _average_gradients_across_processes(model)
    return parts


def _cached_step(
    accelerator, model: MsamModel | McsanModel, micro_batches: list[dict], size: int, check_finite
) -> dict:
    # 1. what the similarity reads (`similarity_inputs`) of every micro-batch, no graph; remember the random state
    # each started from
    random_states, texts, videos = [], [], []
    with torch.no_grad():
        for micro in micro_batches:
            random_states.append(_random_state(accelerator.device))
            with accelerator.autocast():
                text, video = model.similarity_inputs(
                    model.get_text_features(**_inputs(micro, TEXT_INPUTS)),
                    model.get_video_features(**_inputs(micro, VIDEO_INPUTS)),
                )
            texts.append(text)
            videos.append(video)
    cached_text, cached_video = (_as_leaves(concatenate_outputs(outputs)) for outputs in (texts, videos))

    # 2. the (global) contrastive loss on the cached features, as `forward(gather_global_batch=True)` computes it
    scored_text, scored_video = cached_text, cached_video
    if is_multi_process():
        scored_text, scored_video = gather_across_processes(cached_text, cached_video)
    with accelerator.autocast():
        contrastive_loss = model.contrastive_outputs(scored_text, scored_video)["contrastive_loss"].float()
    if check_finite is not None:
        check_finite({"contrastive_loss": contrastive_loss})
    contrastive_loss.backward()

    # 3. replay each micro-batch with a graph: push the cached gradients through it, plus its share of the losses
    # that are means over pairs (MSAM's semantic branch, the attribute objective)
    pair_parts: dict[str, torch.Tensor] = {}
    for micro, rows in _replayed(accelerator, micro_batches, random_states):
        with accelerator.autocast():
            text = model.get_text_features(**_inputs(micro, TEXT_INPUTS))
            video = model.get_video_features(
                **_inputs(micro, VIDEO_INPUTS), **({"return_patch_embeds": True} if _reads_patches(model) else {})
            )
            surrogate = _cached_gradient_surrogate(
                model.similarity_inputs(text, video), (cached_text, cached_video), rows
            )
            parts = {
                name: value
                for name, value in model.pair_losses(
                    text, video, micro.get("attribute_labels"), micro.get("video_attribute_labels")
                ).items()
                if value is not None
            }
            if check_finite is not None and parts:
                check_finite(parts)
            share = (rows.stop - rows.start) / size
            surrogate = surrogate + share * weighted_loss(model.config, 0.0, **parts)
            for name, value in parts.items():
                pair_parts[name] = pair_parts.get(name, 0.0) + share * value.detach().float()
        surrogate.backward()

    loss = weighted_loss(model.config, contrastive_loss.detach(), **pair_parts)
    return {"loss": loss, "contrastive_loss": contrastive_loss.detach(), **pair_parts}


def _as_leaves(features):
    """The cached features in float32 as leaves that collect the contrastive loss's gradient (masks stay as they are)."""
    return type(features)(
        **{
            name: value.float().requires_grad_() if value.is_floating_point() else value
            for name, value in features.items()
        }
    )


def _cached_gradient_surrogate(features, cached: tuple, rows: slice) -> torch.Tensor:
    """Σ ⟨feature, cached gradient⟩ over a micro-batch's features (its rows, its own frame count): backpropagating it
    pushes the contrastive loss's gradient through the encoders. A head may leave a feature unused (CIFFP scores
    frames, not v̄): it has no gradient to push."""
    return sum(
        (feature.float() * leaf.grad[rows][:, : feature.shape[1]]).sum()
        for output, cached_output in zip(features, cached)
        for name, feature in output.items()
        if (leaf := cached_output[name]).requires_grad and leaf.grad is not None
    )


def _reads_patches(model: MsamModel | McsanModel) -> bool:
    """Whether MSAM's semantic branch reads patch tokens, which its `get_video_features` returns on request only
    (MCSAN's returns what its levels need)."""
    return isinstance(model, MsamModel) and model.needs_patch_embeds


def _replayed(accelerator, micro_batches: list[dict], random_states: list[tuple]):
    """Each micro-batch with its rows in the cached features, after restoring the random state it was encoded with."""
    offset = 0
    for micro, random_state in zip(micro_batches, random_states):
        rows = slice(offset, offset + _rows(micro, TEXT_INPUTS))
        offset = rows.stop
        _set_random_state(random_state, accelerator.device)
        yield micro, rows


def _inputs(micro: dict, names: tuple[str, ...]) -> dict:
    """The encoder inputs of one modality that the micro-batch holds (pixels and tokens, or cached features)."""
    return {name: micro[name] for name in names if name in micro}


def _rows(batch: dict, names: tuple[str, ...]) -> int:
    return next(batch[name].shape[0] for name in names if name in batch)


def _base_model(model: torch.nn.Module) -> MsamModel | McsanModel:
    """The `MsamModel` or `McsanModel` inside a PEFT wrapper (its LoRA layers stay in place)."""
    model = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not isinstance(model, (MsamModel, McsanModel)):
        raise TypeError(f"gradient caching needs an MsamModel or McsanModel, got {type(model).__name__}")
    return model


def _random_state(device: torch.device) -> tuple:
    return torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None


def _set_random_state(state: tuple, device: torch.device) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def _average_gradients_across_processes(model: torch.nn.Module) -> None:
    if not is_multi_process():
        return
    world_size = dist.get_world_size()
    # Same parameters in the same order on every process (the same code ran), so the collectives line up.
    for parameter in model.parameters():
        if parameter.requires_grad and parameter.grad is not None:
            dist.all_reduce(parameter.grad)
            parameter.grad /= world_size
