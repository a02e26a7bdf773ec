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

from .modeling_mcsan import McsanModel
from .modeling_mcsan import McsanTextOutput
from .modeling_mcsan import McsanVideoOutput
from .modeling_msam import MsamModel
from .modeling_msam import MsamTextOutput
from .modeling_msam import MsamVideoOutput
from .modeling_msam import _all_gather_padded
from .modeling_msam import concatenate_outputs
from .modeling_msam import gather_across_processes
from .modeling_msam import symmetric_info_nce

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
        raise ValueError("gradient accumulation by gradient caching does not support fp16 loss scaling; "
                         "use --mixed_precision bf16 or no, or --gradient_accumulation_steps 1")
    base = _base_model(accelerator.unwrap_model(model))
    size, videos = _rows(batch, TEXT_INPUTS), _rows(batch, VIDEO_INPUTS)
    if size != videos:
        raise ValueError(f"training pairs caption i with video i, got {size} captions for {videos} videos")
    bounds = torch.linspace(0, size, num_micro_batches + 1).round().long().tolist()
    micro_batches = [{name: batch[name][start:end] for name in (*MODEL_INPUTS, *LABEL_INPUTS) if name in batch}
                     for start, end in zip(bounds[:-1], bounds[1:]) if end > start]
    if isinstance(base, McsanModel):
        parts = _mcsan_step(accelerator, base, micro_batches, size, check_finite)
    else:
        parts = _msam_step(accelerator, base, micro_batches, size, check_finite)
    _average_gradients_across_processes(model)
    return parts


def _msam_step(accelerator, msam: MsamModel, micro_batches: list[dict], size: int, check_finite) -> dict:
    use_semantics = msam.config.semantic_loss
    return_patches = use_semantics and msam.config.semantic_tokens == "patches"

    # 1. features of every micro-batch, no graph; remember the random state each started from
    random_states, texts, videos = [], [], []
    with torch.no_grad():
        for micro in micro_batches:
            random_states.append(_random_state(accelerator.device))
            with accelerator.autocast():
                text = msam.get_text_features(**_inputs(micro, TEXT_INPUTS))
                video = msam.get_video_features(**_inputs(micro, VIDEO_INPUTS))
            # Keep only what the similarity scores, not word tokens or raw frame features.
            texts.append(MsamTextOutput(text_embeds=text.text_embeds))
            videos.append(MsamVideoOutput(video_embeds=video.video_embeds, frame_embeds=video.frame_embeds,
                                          video_mask=video.video_mask))
    cached_text, cached_video = concatenate_outputs(texts), concatenate_outputs(videos)
    text_embeds = cached_text.text_embeds.float().requires_grad_()
    video_embeds = cached_video.video_embeds.float().requires_grad_()
    frame_embeds = cached_video.frame_embeds.float().requires_grad_()
    video_mask = cached_video.video_mask

    # 2. the (global) contrastive loss on the cached features
    scored_text = MsamTextOutput(text_embeds=text_embeds)
    scored_video = MsamVideoOutput(video_embeds=video_embeds, frame_embeds=frame_embeds, video_mask=video_mask)
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        scored_text, scored_video = gather_across_processes(scored_text, scored_video)
    with accelerator.autocast():
        logits = msam.similarity(scored_text, scored_video, text_context_size=None)
    contrastive_loss = symmetric_info_nce(logits.float())
    if check_finite is not None:
        check_finite({"contrastive_loss": contrastive_loss})
    contrastive_loss.backward()

    # 3. replay each micro-batch with a graph and push the cached gradients (and its semantic-loss share) through it
    semantic_parts = {"distribution_loss": 0.0, "diversity_loss": 0.0}
    attribute_parts: dict[str, torch.Tensor] = {}
    for micro, rows in _replayed(accelerator, micro_batches, random_states):
        with accelerator.autocast():
            text = msam.get_text_features(**_inputs(micro, TEXT_INPUTS))
            video = msam.get_video_features(**_inputs(micro, VIDEO_INPUTS), return_patch_embeds=return_patches)
            micro_frames = video.frame_embeds.shape[1]
            frame_gradient = None if frame_embeds.grad is None else frame_embeds.grad[:, :micro_frames]
            # A head may leave a feature unused (CIFFP scores frames, not v̄): it has no gradient to push.
            surrogate = sum(
                (feature.float() * gradient[rows]).sum()
                for feature, gradient in ((text.text_embeds, text_embeds.grad),
                                          (video.video_embeds, video_embeds.grad),
                                          (video.frame_embeds, frame_gradient))
                if gradient is not None
            )
            if use_semantics:
                share = (rows.stop - rows.start) / size
                distribution_loss, diversity_loss = msam.semantic_losses(text, video)
                if check_finite is not None:
                    check_finite({"distribution_loss": distribution_loss, "diversity_loss": diversity_loss})
                surrogate = surrogate + share * (
                    msam.config.distribution_loss_weight * distribution_loss
                    + msam.config.diversity_loss_weight * diversity_loss
                )
                semantic_parts["distribution_loss"] += share * distribution_loss.detach().float()
                semantic_parts["diversity_loss"] += share * diversity_loss.detach().float()
            if msam.config.attribute_vocabulary:
                share = (rows.stop - rows.start) / size
                surrogate = surrogate + _attribute_loss_share(
                    msam, text, video, micro, share, attribute_parts, check_finite)
        surrogate.backward()

    parts = {"contrastive_loss": contrastive_loss.detach()}
    loss = parts["contrastive_loss"]
    if use_semantics:
        parts.update(semantic_parts)
        loss = (loss + msam.config.distribution_loss_weight * parts["distribution_loss"]
                + msam.config.diversity_loss_weight * parts["diversity_loss"])
    return {"loss": _plus_attribute_parts(loss, attribute_parts, msam.config), **parts, **attribute_parts}


def _mcsan_step(accelerator, mcsan: McsanModel, micro_batches: list[dict], size: int, check_finite) -> dict:
    config = mcsan.config
    # 1. per-level embeddings of every micro-batch, no graph (all the multi-level score reads)
    random_states, text_levels, video_levels = [], [], []
    with torch.no_grad():
        for micro in micro_batches:
            random_states.append(_random_state(accelerator.device))
            with accelerator.autocast():
                text_levels.append(mcsan.get_text_features(**_inputs(micro, TEXT_INPUTS)).level_embeds)
                video_levels.append(mcsan.get_video_features(**_inputs(micro, VIDEO_INPUTS)).level_embeds)
    text_levels = torch.cat(text_levels).float().requires_grad_()
    video_levels = torch.cat(video_levels).float().requires_grad_()

    # 2. the (global) fused and per-level contrastive losses on the cached embeddings, as McsanModel.forward
    scored_text, scored_video = text_levels, video_levels
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        scored_text, scored_video = _all_gather_padded(text_levels), _all_gather_padded(video_levels)
    scored_text, scored_video = McsanTextOutput(level_embeds=scored_text), McsanVideoOutput(level_embeds=scored_video)
    with accelerator.autocast():
        logits = mcsan.similarity(scored_text, scored_video)
        level_logits = mcsan.level_similarities(scored_text, scored_video)
    level_losses = torch.stack([symmetric_info_nce(level_logits[..., index].float())
                                for index in range(level_logits.shape[-1])])
    contrastive_loss = symmetric_info_nce(logits.float()) + config.level_contrastive_weight * level_losses.mean()
    if check_finite is not None:
        check_finite({"contrastive_loss": contrastive_loss})
    contrastive_loss.backward()

    # 3. replay each micro-batch with a graph: cached gradients plus its share of the attribute losses
    attribute_parts: dict[str, torch.Tensor] = {}
    for micro, rows in _replayed(accelerator, micro_batches, random_states):
        with accelerator.autocast():
            text = mcsan.get_text_features(**_inputs(micro, TEXT_INPUTS))
            video = mcsan.get_video_features(**_inputs(micro, VIDEO_INPUTS))
            surrogate = ((text.level_embeds.float() * text_levels.grad[rows]).sum()
                         + (video.level_embeds.float() * video_levels.grad[rows]).sum())
            share = (rows.stop - rows.start) / size
            surrogate = surrogate + _attribute_loss_share(
                mcsan, text, video, micro, share, attribute_parts, check_finite)
        surrogate.backward()

    loss = _plus_attribute_parts(contrastive_loss.detach(), attribute_parts, config)
    return {"loss": loss, "contrastive_loss": contrastive_loss.detach(), **attribute_parts}


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


def _attribute_loss_share(model, text, video, micro: dict, share: float, parts: dict, check_finite) -> torch.Tensor:
    """A micro-batch's share of the attribute losses (means over its pairs), weighted for the surrogate; the
    unweighted shares accumulate in `parts`."""
    attribute_loss, kl_loss = model.attribute_losses(
        text, video, micro.get("attribute_labels"), micro.get("video_attribute_labels"))
    total = 0.0
    for name, value, weight in (("attribute_loss", attribute_loss, model.config.attribute_loss_weight),
                                ("kl_loss", kl_loss, model.config.kl_loss_weight)):
        if value is None:
            continue
        if check_finite is not None:
            check_finite({name: value})
        total = total + share * weight * value
        parts[name] = parts.get(name, 0.0) + share * value.detach().float()
    return total


def _plus_attribute_parts(loss: torch.Tensor, parts: dict, config) -> torch.Tensor:
    for name, weight in (("attribute_loss", config.attribute_loss_weight), ("kl_loss", config.kl_loss_weight)):
        if name in parts:
            loss = loss + weight * parts[name]
    return loss


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
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return
    world_size = dist.get_world_size()
    # Same parameters in the same order on every process (the same code ran), so the collectives line up.
    for parameter in model.parameters():
        if parameter.requires_grad and parameter.grad is not None:
            dist.all_reduce(parameter.grad)
            parameter.grad /= world_size
