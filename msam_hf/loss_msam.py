"""The training losses of MSAM and MCSAN, and the gather that lets the contrastive loss span every process.

`weighted_loss` is the one composition of the training objective: `MsamModel.forward`, `McsanModel.forward` and
gradient caching (`msam_hf.grad_cache`) all add their parts through it. This file travels to the Hub next to the
weights: it imports only torch and transformers.
"""

import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as functional_collectives
import torch.nn.functional as F
from transformers.utils import ModelOutput


def zero_pad(tensor: torch.Tensor, size: int, dim: int = 1) -> torch.Tensor:
    """`tensor` zero-padded along `dim` to `size` (padded frames and words are masked, padded rows cut off)."""
    missing = size - tensor.shape[dim]
    if missing <= 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor, tensor.new_zeros(shape)], dim=dim)


def check_paired_logits(logits_per_text: torch.Tensor) -> None:
    if logits_per_text.shape[0] != logits_per_text.shape[1]:
        raise ValueError(
            f"return_loss=True pairs caption i with video i, but got {logits_per_text.shape[0]} captions for "
            f"{logits_per_text.shape[1]} videos."
        )


def symmetric_info_nce(logits_per_text: torch.Tensor) -> torch.Tensor:
    """½(CE(S) + CE(Sᵀ)) with caption i matching video i: the contrastive loss of both directions."""
    targets = torch.arange(logits_per_text.shape[0], device=logits_per_text.device)
    return 0.5 * (F.cross_entropy(logits_per_text, targets) + F.cross_entropy(logits_per_text.T, targets))


def contrastive_loss(
    logits_per_text: torch.Tensor,
    level_logits_per_text: torch.Tensor | None = None,
    level_contrastive_weight: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Symmetric InfoNCE on the scores (texts, videos); with MCSAN's per-level logits (texts, videos, levels), plus
    `level_contrastive_weight` × the mean of the per-level InfoNCE losses (mcsan.md). Returns the loss and the
    per-level losses (None without levels)."""
    if level_logits_per_text is None:
        return symmetric_info_nce(logits_per_text), None
    level_losses = torch.stack(
        [symmetric_info_nce(level_logits_per_text[..., index]) for index in range(level_logits_per_text.shape[-1])]
    )
    return symmetric_info_nce(logits_per_text) + level_contrastive_weight * level_losses.mean(), level_losses


def gaussian_kl_divergence(mu_video, sigma_video, mu_text, sigma_text) -> torch.Tensor:
    """KL(N(μ_v, σ_v²) ‖ N(μ_t, σ_t²)) elementwise, summed over slots and dims, divided by the batch size (msam.md §5)."""
    # With r = σ_v/σ_t and d = (μ_t − μ_v)/σ_t: ½(−2 log r − 1 + r² + d²); one division instead of three.
    inverse_sigma_text = 1 / sigma_text
    ratio = sigma_video * inverse_sigma_text
    distance = (mu_text - mu_video) * inverse_sigma_text
    kl = 0.5 * (ratio.square() + distance.square() - 1) - torch.log(ratio)
    return kl.sum() / kl.shape[0]


def slot_diversity(slot_embeds: torch.Tensor) -> torch.Tensor:
    """mean over the batch of ‖Ẑ Ẑᵀ − I‖₁ / K² for unit-norm slot embeddings (batch, K, D) (msam.md §6)."""
    slots = slot_embeds.shape[1]
    identity = torch.eye(slots, device=slot_embeds.device, dtype=slot_embeds.dtype)
    gram = slot_embeds @ slot_embeds.transpose(1, 2)
    return (gram - identity).abs().sum((1, 2)).mean() / slots**2


def focal_binary_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """FBCE(z, y) = −mean[α y (1−p)^γ log p + (1−α)(1−y) p^γ log(1−p)], p = sigmoid(z), over every element.

    With γ = 0 and α = 0.5 it is half the plain binary cross-entropy.
    """
    labels = labels.to(logits.dtype)
    probabilities = torch.sigmoid(logits)
    # log p and log(1 − p) from logsigmoid: exact where sigmoid saturates.
    positive = alpha * labels * (1 - probabilities) ** gamma * F.logsigmoid(logits)
    negative = (1 - alpha) * (1 - labels) * probabilities**gamma * F.logsigmoid(-logits)
    return -(positive + negative).mean()


def attribute_kl_divergence(
    text_logits: torch.Tensor,
    video_logits: torch.Tensor,
    temperature: float = 1.0,
    distribution: str = "softmax",
    symmetric: bool = False,
) -> torch.Tensor:
    """KL(text ‖ video) between the attribute predictions of matching pairs (row i with row i), mean over pairs.

    `distribution="softmax"`: one categorical distribution softmax(z / T) over the level's attributes;
    `"bernoulli"`: one Bernoulli(sigmoid(z / T)) per attribute, KL averaged over attributes. `symmetric` averages
    both directions.
    """
    text_logits, video_logits = text_logits / temperature, video_logits / temperature

    def kl(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if distribution == "softmax":
            source_log, target_log = source.log_softmax(-1), target.log_softmax(-1)
            return (source_log.exp() * (source_log - target_log)).sum(-1).mean()
        source_p = torch.sigmoid(source)
        on = source_p * (F.logsigmoid(source) - F.logsigmoid(target))
        off = (1 - source_p) * (F.logsigmoid(-source) - F.logsigmoid(-target))
        return (on + off).mean()

    if symmetric:
        return 0.5 * (kl(text_logits, video_logits) + kl(video_logits, text_logits))
    return kl(text_logits, video_logits)


def attribute_objective(
    config,
    text_logits: dict[str, torch.Tensor],
    video_logits: dict[str, torch.Tensor],
    attribute_labels: torch.Tensor | None = None,
    video_attribute_labels: torch.Tensor | None = None,
    kl_temperature: float = 1.0,
    kl_distribution: str = "softmax",
    kl_symmetric: bool = False,
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """MCSAN's attribute losses from the per-level logits of paired captions and videos (row i with row i), each
    averaged over the levels of `text_logits`: the focal BCE on the labels (None without labels; text and video terms
    averaged) and the KL alignment (`attribute_kl_divergence`). Labels are multi-hot `(items, config.num_attributes)`
    in `config.attribute_slices` layout; a video's default to its caption's."""
    if video_attribute_labels is None:
        video_attribute_labels = attribute_labels
    rows = next(iter(text_logits.values())).shape[0], next(iter(video_logits.values())).shape[0]
    for name, labels, items in zip(
        ("attribute_labels", "video_attribute_labels"), (attribute_labels, video_attribute_labels), rows
    ):
        if labels is not None and tuple(labels.shape) != (items, config.num_attributes):
            sizes = ", ".join(f"{level} {size}" for level, size in config.attribute_vocabulary_sizes.items())
            raise ValueError(
                f"{name} has shape {tuple(labels.shape)}, expected {(items, config.num_attributes)}: one multi-hot row "
                f"per item over the attribute vocabulary ({sizes}), as `AttributeVocabulary.labels` builds them."
            )
    focal, kl = [], []
    for level in text_logits:
        kl.append(
            attribute_kl_divergence(
                text_logits[level], video_logits[level], kl_temperature, kl_distribution, kl_symmetric
            )
        )
        if attribute_labels is not None:
            columns = config.attribute_slices[level]
            focal.append(
                0.5
                * sum(
                    focal_binary_cross_entropy(
                        logits[level], labels[:, columns], config.focal_alpha, config.focal_gamma
                    )
                    for logits, labels in ((text_logits, attribute_labels), (video_logits, video_attribute_labels))
                )
            )
    return (torch.stack(focal).mean() if focal else None), torch.stack(kl).mean()


# The weighted parts of the training loss, after the contrastive loss, in the order they are added.
LOSS_WEIGHTS = {
    "distribution_loss": "distribution_loss_weight",
    "diversity_loss": "diversity_loss_weight",
    "attribute_loss": "attribute_loss_weight",
    "kl_loss": "kl_loss_weight",
}


def weighted_loss(config, contrastive_loss: torch.Tensor | float, **parts: torch.Tensor | None) -> torch.Tensor:
    """The training loss: contrastive_loss + Σ weight · part over the parts of `LOSS_WEIGHTS` that are given and
    not None (MSAM's semantic branch, msam.md §7, and the attribute objective), each weight read from `config`.
    Gradient caching passes 0 as `contrastive_loss` for a micro-batch's share of the other parts."""
    unknown = set(parts) - set(LOSS_WEIGHTS)
    if unknown:
        raise ValueError(f"weighted_loss got unknown loss parts {sorted(unknown)}; known: {list(LOSS_WEIGHTS)}.")
    loss = contrastive_loss
    for name, weight in LOSS_WEIGHTS.items():
        if parts.get(name) is not None:
            loss = loss + getattr(config, weight) * parts[name]
    return loss


def _all_gather_padded(tensor: torch.Tensor, frames: int | None = None) -> torch.Tensor:
    """All-gather `(batch, ...)` tensors of possibly different batch sizes (and frame counts, dim 1, padded with
    zeros to `frames`) from every process, keeping gradients: each process's slice backpropagates to its owner."""
    if frames is not None:
        tensor = zero_pad(tensor, frames)
    sizes = [torch.zeros(1, dtype=torch.long, device=tensor.device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor([tensor.shape[0]], device=tensor.device))
    sizes = [int(size) for size in sizes]
    padded = zero_pad(tensor, max(sizes), dim=0)
    # Backward sums each slice's gradients from every process into its owner (torch's recommended successor of
    # torch.distributed.nn.functional.all_gather, which is deprecated).
    gathered = functional_collectives.all_gather_single_autograd(padded, gather_dim=0, group=dist.group.WORLD)
    gathered = functional_collectives.wait_tensor(gathered).view(len(sizes), max(sizes), *tensor.shape[1:])
    return torch.cat([chunk[:size] for chunk, size in zip(gathered, sizes)])


def is_multi_process() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_across_processes(*features: ModelOutput) -> tuple[ModelOutput, ...]:
    """Every field of each text or video output, gathered over the whole batch across processes with gradients, so
    the contrastive loss (and CIFFP's caption set J) spans the global batch; dim 1 (frames) is zero-padded to the
    longest of any process. `accelerator.gather` would cut the gradients of other processes' features. Pass only
    what the similarity reads (`similarity_inputs`): the other losses stay per process (they are means over pairs,
    and gradient averaging across processes makes them global means)."""
    gathered = []
    for output in features:
        fields = {}
        for name, tensor in output.items():
            longest = torch.tensor([tensor.shape[1]], device=tensor.device)
            dist.all_reduce(longest, op=dist.ReduceOp.MAX)
            fields[name] = _all_gather_padded(tensor, int(longest))
        gathered.append(type(output)(**fields))
    return tuple(gathered)
