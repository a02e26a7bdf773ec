"""MSAM: Multi-Semantic Adaptive Mining for drone video-text retrieval (arXiv 2510.15470).

A CLIP backbone (transformers' `CLIPModel`), CLIP4Clip's temporal module, one of four similarity heads (`mean`,
`seq_transformer`, `attention`, `ciffp`) and, for training, MSAM's adaptive semantic construction branch. Section
numbers refer to the method note `design/msam.md`; every deviation from the reference code is a config switch.

This file travels to the Hub next to the weights: it imports only torch, transformers and `configuration_msam`.
"""

import copy
import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as functional_collectives
import torch.nn.functional as F
from torch import nn
from transformers import CLIPModel, PreTrainedModel
from transformers import initialization as init
from transformers.models.clip.modeling_clip import CLIPEncoderLayer
from transformers.utils import ModelOutput, logging

from .configuration_msam import MsamConfig

logger = logging.get_logger(__name__)


@dataclass
class MsamTextOutput(ModelOutput):
    """
    Args:
        text_embeds (`torch.FloatTensor` of shape `(texts, projection_dim)`):
            ŝ, the unit-norm sentence embedding (projected end-of-text token).
        word_embeds (`torch.FloatTensor` of shape `(texts, length, projection_dim)`):
            w, the text projection applied to every position of the text encoder's last hidden state.
        attention_mask (`torch.LongTensor` of shape `(texts, length)`):
            1 for real tokens, 0 for padding.
    """

    text_embeds: torch.FloatTensor | None = None
    word_embeds: torch.FloatTensor | None = None
    attention_mask: torch.LongTensor | None = None


@dataclass
class MsamVideoOutput(ModelOutput):
    """
    Args:
        video_embeds (`torch.FloatTensor` of shape `(videos, projection_dim)`):
            v̄, the unit-norm text-agnostic video embedding (what a search index stores).
        frame_embeds (`torch.FloatTensor` of shape `(videos, frames, projection_dim)`):
            The frame-level features the similarity head consumes: v_t after the temporal module (`seq_transformer`,
            `ciffp`), unit-norm CLIP frame features (`mean`) or raw CLIP frame features (`attention`).
        frame_features (`torch.FloatTensor` of shape `(videos, frames, projection_dim)`):
            f_t, the raw CLIP image embeddings; zero at padded frames.
        video_mask (`torch.LongTensor` of shape `(videos, frames)`):
            1 for real frames, 0 for padding.
        patch_embeds (`torch.FloatTensor` of shape `(videos, frames * patches, projection_dim)`, *optional*):
            Unit-norm projected patch tokens, the region tokens of `semantic_tokens="patches"`.
    """

    video_embeds: torch.FloatTensor | None = None
    frame_embeds: torch.FloatTensor | None = None
    frame_features: torch.FloatTensor | None = None
    video_mask: torch.LongTensor | None = None
    patch_embeds: torch.FloatTensor | None = None


@dataclass
class MsamOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `return_loss=True`):
            contrastive_loss + distribution_loss_weight · distribution_loss + diversity_loss_weight · diversity_loss
            (+ attribute_loss_weight · attribute_loss + kl_loss_weight · kl_loss with an `attribute_vocabulary`).
        contrastive_loss (`torch.FloatTensor`, *optional*):
            Symmetric cross-entropy over the batch similarity matrix, matching pairs on the diagonal.
        distribution_loss (`torch.FloatTensor`, *optional*):
            KL divergence between the video and caption slot distributions (msam.md §5).
        diversity_loss (`torch.FloatTensor`, *optional*):
            Slot diversity term (msam.md §6).
        attribute_loss (`torch.FloatTensor`, *optional*, with an `attribute_vocabulary` and attribute labels):
            Focal binary cross-entropy of the auxiliary attribute objective.
        kl_loss (`torch.FloatTensor`, *optional*, with an `attribute_vocabulary`):
            KL term between the caption's and the video's attribute predictions.
        logits_per_text (`torch.FloatTensor` of shape `(texts, videos)`):
            Scaled similarity scores; the caption set J of CIFFP is every caption in the batch.
        logits_per_video (`torch.FloatTensor` of shape `(videos, texts)`):
            The transpose of `logits_per_text`.
        text_embeds (`torch.FloatTensor` of shape `(texts, projection_dim)`):
            Unit-norm sentence embeddings.
        video_embeds (`torch.FloatTensor` of shape `(videos, projection_dim)`):
            Unit-norm text-agnostic video embeddings.
        frame_attention (`torch.FloatTensor` of shape `(texts, videos, frames)`, *optional*):
            How much each caption attended to each frame (`ciffp` and `attention` heads).
        text_outputs (`MsamTextOutput`), video_outputs (`MsamVideoOutput`):
            The full outputs of `get_text_features` and `get_video_features`.
    """

    loss: torch.FloatTensor | None = None
    contrastive_loss: torch.FloatTensor | None = None
    distribution_loss: torch.FloatTensor | None = None
    diversity_loss: torch.FloatTensor | None = None
    attribute_loss: torch.FloatTensor | None = None
    kl_loss: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    logits_per_video: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    video_embeds: torch.FloatTensor | None = None
    frame_attention: torch.FloatTensor | None = None
    text_outputs: MsamTextOutput | None = None
    video_outputs: MsamVideoOutput | None = None


def l2_normalize(tensor: torch.Tensor) -> torch.Tensor:
    return F.normalize(tensor, dim=-1)


def masked_mean(tensor: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over dim 1 of `(batch, items, dim)` counting only items where `mask` is 1."""
    mask = mask.to(tensor.dtype).unsqueeze(-1)
    return (tensor * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def symmetric_info_nce(logits_per_text: torch.Tensor) -> torch.Tensor:
    """½(CE(S) + CE(Sᵀ)) with caption i matching video i: the contrastive loss of both directions."""
    targets = torch.arange(logits_per_text.shape[0], device=logits_per_text.device)
    return 0.5 * (F.cross_entropy(logits_per_text, targets) + F.cross_entropy(logits_per_text.T, targets))


def mask_logits(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Set logits at masked positions (mask == 0, broadcast over leading dims) to the dtype's minimum."""
    if mask is None:
        return logits
    return logits.masked_fill(mask == 0, torch.finfo(logits.dtype).min)


def zero_pad(tensor: torch.Tensor, size: int, dim: int = 1) -> torch.Tensor:
    """`tensor` zero-padded along `dim` to `size` (padded frames and words are masked, padded rows cut off)."""
    missing = size - tensor.shape[dim]
    if missing <= 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor, tensor.new_zeros(shape)], dim=dim)


def concatenate_outputs(parts: list[ModelOutput]) -> ModelOutput:
    """Concatenate `MsamTextOutput`s or `MsamVideoOutput`s of several batches along the batch, zero-padding dim 1
    (words, frames) to the longest; pooled embeddings share their dim 1 already, so padding leaves them alone."""
    return type(parts[0])(**{
        name: torch.cat([zero_pad(part[name], max(other[name].shape[1] for other in parts)) for part in parts])
        for name in parts[0].keys()
    })


def _temporal_layer_config(config: MsamConfig):
    """CLIP text-block hyper-parameters at the joint width D, so the blocks can start from CLIP's text blocks."""
    text_config = config.clip_config.text_config
    width = config.projection_dim
    layer_config = copy.deepcopy(text_config)
    if text_config.hidden_size != width:
        heads = text_config.num_attention_heads if width % text_config.num_attention_heads == 0 else 1
        layer_config.hidden_size = width
        layer_config.num_attention_heads = heads
        layer_config.intermediate_size = 4 * width
    layer_config._attn_implementation = "sdpa"
    return layer_config


class MsamTemporalModule(nn.Module):
    """CLIP4Clip's seqTransf (msam.md §2): frame positions, residual attention blocks, residual to the raw frames."""

    def __init__(self, config: MsamConfig):
        super().__init__()
        layer_config = _temporal_layer_config(config)
        self.frame_position_embeddings = nn.Embedding(
            config.clip_config.text_config.max_position_embeddings, config.projection_dim
        )
        self.layers = nn.ModuleList([CLIPEncoderLayer(layer_config) for _ in range(config.temporal_num_layers)])

    def forward(self, frame_features: torch.Tensor, video_mask: torch.Tensor) -> torch.Tensor:
        # frame_features: (videos, frames, dim)
        positions = torch.arange(frame_features.shape[1], device=frame_features.device)
        hidden_states = frame_features + self.frame_position_embeddings(positions)
        # Key padding mask, additive, (videos, 1, queries, keys); the reference's temporal module is not causal.
        key_mask = video_mask[:, None, None, :].expand(-1, 1, video_mask.shape[1], -1)
        attention_mask = mask_logits(torch.zeros(key_mask.shape, dtype=hidden_states.dtype, device=key_mask.device), key_mask)
        for layer in self.layers:
            hidden_states = layer(hidden_states, attention_mask)
        return l2_normalize(hidden_states + frame_features)


class MsamCiffpHead(nn.Module):
    """CIFFP, cross-modal interactive feature fusion pooling (msam.md §3), in an exact expanded form.

    The direct form materialises the text-conditioned video vectors p_ij (videos × captions × D) and runs the gate
    MLP on each. Here p_ij is never built: every inner product involving p_ij or q_i is expanded into frame-level dot
    products (Gram matrices of the T frames), and the gate's first linear layer is applied to the frames before the
    frame-attention sum (it commutes with it). The largest tensor is (videos × captions × D/2), the gate's hidden
    layer; benchmarks/bench_model.py checks the scores against the direct transcription.
    """

    def __init__(self, config: MsamConfig):
        super().__init__()
        width = config.projection_dim
        self.gate_hidden = nn.Linear(width, width // 2)
        self.gate_output = nn.Linear(width // 2, 1)
        self.frame_temperature = config.frame_attention_temperature
        self.caption_temperature = config.caption_attention_temperature
        self.gate_divisor = config.ciffp_gate_divisor
        self.score_scale = config.ciffp_score_scale
        self.mask_padded_frames = config.ciffp_mask_padded_frames

    def forward(
        self, text_embeds: torch.Tensor, frame_embeds: torch.Tensor, video_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores of every caption against every video, with the captions of `text_embeds` as the caption set J.

        Args:
            text_embeds: (blocks, J, D) unit-norm captions; each block is one caption set J.
            frame_embeds: (videos, frames, D) unit-norm frame features v_t.
            video_mask: (videos, frames).
        Returns:
            scores (blocks, J, videos) = γ · cos(u_ij, ŝ_j), without the logit scale; frame attention
            (blocks, J, videos, frames).
        """
        frame_mask = video_mask if self.mask_padded_frames else None
        # ⟨v_it, ŝ_j⟩: (blocks, videos, J, frames)
        frame_text = torch.einsum("vtd,njd->nvjt", frame_embeds, text_embeds)
        attention = mask_logits(frame_text / self.frame_temperature, frame_mask[:, None, :] if frame_mask is not None else None)
        attention = attention.softmax(dim=-1)
        p_dot_text = (attention * frame_text).sum(-1)  # ⟨p_ij, ŝ_j⟩: (blocks, videos, J)
        gram = frame_embeds @ frame_embeds.transpose(1, 2)  # (videos, frames, frames)
        p_norm_sq = torch.einsum("nvjt,vts,nvjs->nvj", attention, gram, attention)
        frame_attention = attention.permute(0, 2, 1, 3)
        if text_embeds.shape[1] == 1:
            # |J| = 1: q_i = p_ij, so u_ij = 2 p_ij whatever the gate says; the score is γ·cos(p_ij, ŝ_j).
            scores = p_dot_text / p_norm_sq.clamp(min=1e-24).sqrt()
            return self.score_scale * scores.transpose(1, 2), frame_attention

        caption_attention = (p_dot_text / self.caption_temperature).softmax(dim=-1)  # b_ij over J: (blocks, videos, J)
        q_weights = torch.einsum("nvj,nvjt->nvt", caption_attention, attention)  # q_i = Σ_t q_weights_it v_it
        q_dot_text = torch.einsum("nvt,nvjt->nvj", q_weights, frame_text)
        p_dot_q = torch.einsum("nvjt,vts,nvs->nvj", attention, gram, q_weights)
        q_norm_sq = torch.einsum("nvt,vts,nvs->nv", q_weights, gram, q_weights).unsqueeze(-1)

        # Gate: W₁ p_ij = Σ_t a_ijt (W₁ v_it), so the first layer runs on T frames instead of J·T pairs.
        hidden = torch.einsum("nvjt,vth->nvjh", attention, frame_embeds @ self.gate_hidden.weight.T)
        hidden = F.relu(hidden + self.gate_hidden.bias)
        gate = torch.sigmoid(self.gate_output(hidden).squeeze(-1)) / self.gate_divisor  # (blocks, videos, J)

        # u_ij = g p_ij + (1 − g) q_i + p_ij = (1 + g) p_ij + (1 − g) q_i
        p_coefficient, q_coefficient = 1 + gate, 1 - gate
        u_dot_text = p_coefficient * p_dot_text + q_coefficient * q_dot_text
        u_norm_sq = (
            p_coefficient**2 * p_norm_sq + 2 * p_coefficient * q_coefficient * p_dot_q + q_coefficient**2 * q_norm_sq
        )
        scores = u_dot_text / u_norm_sq.clamp(min=1e-24).sqrt()
        return self.score_scale * scores.transpose(1, 2), frame_attention


class MsamAttentionPoolingHead(nn.Module):
    """X-Pool-style text-conditioned pooling (Gorti et al., CVPR 2022; msam.md §3b): the caption is the query, the
    frames are keys and values, one head. Projections start as the identity, as in X-Pool."""

    def __init__(self, config: MsamConfig):
        super().__init__()
        width = config.projection_dim
        self.layer_norm1 = nn.LayerNorm(width)
        self.layer_norm2 = nn.LayerNorm(width)
        self.layer_norm3 = nn.LayerNorm(width)
        self.q_proj = nn.Linear(width, width)
        self.k_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.out_proj = nn.Linear(width, width)
        self.linear_proj = nn.Linear(width, width)
        self.dropout = nn.Dropout(config.attention_head_dropout)
        self.scale = width**-0.5

    def forward(
        self, text_embeds: torch.Tensor, frame_features: torch.Tensor, video_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """text_embeds (texts, D) unit-norm; frame_features (videos, frames, D) raw. Returns the cosine scores
        (texts, videos) and the attention (texts, videos, frames)."""
        queries = self.q_proj(self.layer_norm1(text_embeds))  # (texts, D)
        frames = self.layer_norm1(frame_features)
        keys, values = self.k_proj(frames), self.v_proj(frames)  # (videos, frames, D)
        attention = torch.einsum("jd,vtd->jvt", queries, keys) * self.scale
        attention = mask_logits(attention, video_mask[None]).softmax(dim=-1)
        pooled = self.layer_norm2(self.out_proj(torch.einsum("jvt,vtd->jvd", attention, values)))
        pooled = self.layer_norm3(pooled + self.dropout(self.linear_proj(pooled)))  # (texts, videos, D)
        scores = torch.einsum("jvd,jd->jv", l2_normalize(pooled), text_embeds)
        return scores, attention


class MsamSemanticConstruction(nn.Module):
    """Adaptive semantic construction (PIE-style, msam.md §4): K slots from tokens, gated by the global embedding."""

    def __init__(self, config: MsamConfig):
        super().__init__()
        width = config.projection_dim
        self.token_projection = nn.Linear(width, config.semantic_hidden_size, bias=False)  # W_a
        self.slot_queries = nn.Linear(config.semantic_hidden_size, config.semantic_num_slots, bias=False)  # W_b
        self.slot_gate = nn.Linear(width, width)  # W_c, b_c
        self.dropout = nn.Dropout(config.semantic_dropout)
        self.layer_norm = nn.LayerNorm(width)
        self.output_projection = nn.Linear(width, width)  # W_o, b_o

    def forward(self, tokens: torch.Tensor, global_embeds: torch.Tensor, token_mask: torch.Tensor | None) -> torch.Tensor:
        """tokens (batch, tokens, D) unit-norm, global_embeds (batch, D), token_mask (batch, tokens) or None.
        Returns the slot embeddings E (batch, K, D)."""
        slot_logits = self.slot_queries(torch.tanh(self.token_projection(tokens)))  # (batch, tokens, K)
        mask = token_mask[..., None] if token_mask is not None else None
        slot_attention = mask_logits(slot_logits, mask).softmax(dim=1)
        regions = slot_attention.transpose(1, 2) @ tokens  # R = A X: (batch, K, D)
        gates = self.dropout(torch.sigmoid(self.slot_gate(regions)))
        return self.output_projection(self.layer_norm(gates * global_embeds[:, None, :]))


class MsamDistributionHead(nn.Module):
    """μ and σ of each slot's Gaussian (msam.md §5); one head shared by videos and captions."""

    def __init__(self, config: MsamConfig):
        super().__init__()
        width = config.projection_dim
        mu_hidden, sigma_hidden = config.distribution_mu_hidden_size, config.distribution_sigma_hidden_size
        self.mu = nn.Sequential(
            nn.Linear(width, mu_hidden), nn.ReLU(), nn.Linear(mu_hidden, mu_hidden), nn.ReLU(), nn.Linear(mu_hidden, width)
        )
        self.sigma = nn.Sequential(nn.Linear(width, sigma_hidden), nn.ReLU(), nn.Linear(sigma_hidden, width), nn.Softplus())

    def forward(self, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mu(slots), self.sigma(slots)


class MsamAttributeProjection(nn.Linear):
    """P_ℓ: unit-norm global embedding → attribute logits of level ℓ, one instance for captions and videos alike."""


class MsamAttributeHead(nn.Module):
    """The auxiliary attribute objective (`attribute_vocabulary`): MCSAN's parameter-shared projection per level,
    applied to MSAM's global embeddings ŝ and v̄, as MSAM has no per-level embeddings."""

    def __init__(self, config: MsamConfig):
        super().__init__()
        self.projections = nn.ModuleDict({
            level: MsamAttributeProjection(config.projection_dim, size)
            for level, size in config.attribute_vocabulary_sizes.items()
        })

    def forward(self, embeds: torch.Tensor) -> dict[str, torch.Tensor]:
        return {level: projection(embeds) for level, projection in self.projections.items()}


def gaussian_kl_divergence(mu_video, sigma_video, mu_text, sigma_text) -> torch.Tensor:
    """KL(N(μ_v, σ_v²) ‖ N(μ_t, σ_t²)) elementwise, summed over slots and dims, divided by the batch size."""
    kl = 0.5 * (
        2 * torch.log(sigma_text / sigma_video)
        - 1
        + (sigma_video / sigma_text) ** 2
        + ((mu_text - mu_video) / sigma_text) ** 2
    )
    return kl.sum() / kl.shape[0]


def slot_diversity(slot_embeds: torch.Tensor) -> torch.Tensor:
    """mean over the batch of ‖Ẑ Ẑᵀ − I‖₁ / K² for unit-norm slot embeddings (batch, K, D)."""
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
    for name, labels, items in zip(("attribute_labels", "video_attribute_labels"),
                                   (attribute_labels, video_attribute_labels), rows):
        if labels is not None and tuple(labels.shape) != (items, config.num_attributes):
            sizes = ", ".join(f"{level} {size}" for level, size in config.attribute_vocabulary_sizes.items())
            raise ValueError(
                f"{name} has shape {tuple(labels.shape)}, expected {(items, config.num_attributes)}: one multi-hot row "
                f"per item over the attribute vocabulary ({sizes}), as `AttributeVocabulary.labels` builds them."
            )
    focal, kl = [], []
    for level in text_logits:
        kl.append(attribute_kl_divergence(text_logits[level], video_logits[level], kl_temperature, kl_distribution,
                                          kl_symmetric))
        if attribute_labels is not None:
            columns = config.attribute_slices[level]
            focal.append(0.5 * sum(
                focal_binary_cross_entropy(logits[level], labels[:, columns], config.focal_alpha, config.focal_gamma)
                for logits, labels in ((text_logits, attribute_labels), (video_logits, video_attribute_labels))
            ))
    return (torch.stack(focal).mean() if focal else None), torch.stack(kl).mean()


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


def gather_across_processes(
    text_features: MsamTextOutput, video_features: MsamVideoOutput
) -> tuple[MsamTextOutput, MsamVideoOutput]:
    """The features of the whole batch across processes, with gradients, so the contrastive loss (and CIFFP's
    caption set J) spans the global batch. `accelerator.gather` would cut the gradients of other processes'
    features. Only what the similarity needs is gathered; the semantic losses stay per process (they are sums
    over pairs, and gradient averaging across processes makes them global means)."""
    frames = torch.tensor([video_features.video_mask.shape[1]], device=video_features.video_mask.device)
    dist.all_reduce(frames, op=dist.ReduceOp.MAX)
    frames = int(frames)
    text = MsamTextOutput(text_embeds=_all_gather_padded(text_features.text_embeds))
    video = MsamVideoOutput(
        video_embeds=_all_gather_padded(video_features.video_embeds),
        frame_embeds=_all_gather_padded(video_features.frame_embeds, frames),
        video_mask=_all_gather_padded(video_features.video_mask, frames),
    )
    return text, video


class MsamPreTrainedModel(PreTrainedModel):
    config: MsamConfig
    config_class = MsamConfig
    base_model_prefix = "msam"
    main_input_name = "input_ids"
    input_modalities = ("video", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["CLIPEncoderLayer", "CLIPTextEmbeddings", "CLIPVisionEmbeddings"]

    @torch.no_grad()
    def _init_weights(self, module):
        # CLIP's own modules are initialised by CLIPModel (a PreTrainedModel of its own); these are MSAM's.
        if isinstance(module, MsamSemanticConstruction):
            init.xavier_uniform_(module.token_projection.weight)
            init.xavier_uniform_(module.slot_queries.weight)
            init.xavier_uniform_(module.slot_gate.weight)
            init.zeros_(module.slot_gate.bias)
        elif isinstance(module, MsamAttributeProjection):
            init.normal_(module.weight, std=0.02)
            prior = self.config.attribute_prior_probability
            init.constant_(module.bias, -math.log((1 - prior) / prior))
        elif isinstance(module, MsamAttentionPoolingHead):
            for projection in (module.q_proj, module.k_proj, module.v_proj, module.out_proj, module.linear_proj):
                init.eye_(projection.weight)
                init.zeros_(projection.bias)
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, std=0.02)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)


class MsamModel(MsamPreTrainedModel):
    r"""
    MSAM for text-video retrieval. Build one from pretrained CLIP weights with [`MsamModel.from_clip`], or load a
    trained one with `AutoModel.from_pretrained(repo, trust_remote_code=True)`.

    Example:

    ```python
    >>> from msam_hf import MsamModel, default_processor
    >>> model = MsamModel.from_clip("openai/clip-vit-base-patch32")
    >>> processor = default_processor()
    >>> inputs = processor(text=["a white boat passes under a bridge"], videos=[frames], return_tensors="pt")
    >>> model(**inputs).logits_per_text
    ```
    """

    def __init__(self, config: MsamConfig):
        super().__init__(config)
        self.clip = CLIPModel._from_config(config.clip_config)
        if config.uses_temporal_module:
            self.temporal = MsamTemporalModule(config)
        if config.similarity_head == "ciffp":
            self.ciffp = MsamCiffpHead(config)
        elif config.similarity_head == "attention":
            self.attention_pooling = MsamAttentionPoolingHead(config)
        if config.semantic_loss:
            self.video_semantics = MsamSemanticConstruction(config)
            self.text_semantics = MsamSemanticConstruction(config)
            self.distribution = MsamDistributionHead(config)
        if config.attribute_vocabulary:
            self.attribute_head = MsamAttributeHead(config)
        self.post_init()

    @property
    def msam_module_names(self) -> list[str]:
        """Names of the modules MSAM adds on top of CLIP: trained in full under LoRA (PEFT `modules_to_save`)."""
        return [name for name, _ in self.named_children() if name != "clip"]

    @classmethod
    def from_clip(cls, clip: "str | CLIPModel", **config_kwargs) -> "MsamModel":
        """Build MSAM on pretrained CLIP weights, e.g. `MsamModel.from_clip("openai/clip-vit-base-patch32")`.

        `clip` is a Hub id, a local folder written by `CLIPModel.save_pretrained`, or a `CLIPModel`. The temporal
        module starts from CLIP's text position embedding and first text blocks (msam.md §2); the other new modules
        are initialised randomly. `config_kwargs` set any other [`MsamConfig`] field.
        """
        if not isinstance(clip, CLIPModel):
            clip = CLIPModel.from_pretrained(clip)
        config = MsamConfig(
            clip_config=clip.config.to_dict(), base_clip_model=clip.config.name_or_path or None, **config_kwargs
        )
        model = cls(config)
        model.clip.load_state_dict(clip.state_dict())
        model.initialize_temporal_from_text()
        return model

    @torch.no_grad()
    def initialize_temporal_from_text(self) -> None:
        """Copy CLIP's text position embedding and first text blocks into the temporal module (msam.md §2)."""
        if not hasattr(self, "temporal"):
            return
        text_model = self.clip.text_model
        if text_model.config.hidden_size != self.config.projection_dim:
            logger.warning(
                "CLIP's text width (%d) differs from the joint width (%d): the temporal module keeps its random "
                "initialisation instead of starting from the text blocks.",
                text_model.config.hidden_size,
                self.config.projection_dim,
            )
            return
        self.temporal.frame_position_embeddings.weight.copy_(text_model.embeddings.position_embedding.weight)
        text_layers = text_model.encoder.layers
        if len(text_layers) < len(self.temporal.layers):
            logger.warning(
                "CLIP has %d text blocks for %d temporal blocks: the last ones keep their random initialisation.",
                len(text_layers),
                len(self.temporal.layers),
            )
        for temporal_layer, text_layer in zip(self.temporal.layers, text_layers):
            temporal_layer.load_state_dict(text_layer.state_dict())

    @property
    def logit_scale(self) -> torch.Tensor:
        """λ = exp(CLIP's logit_scale), clamped at `config.logit_scale_max`."""
        return self.clip.logit_scale.exp().clamp(max=self.config.logit_scale_max)

    def _check_text_inputs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must have shape (texts, length), got a tensor of rank {input_ids.dim()}.")
        if input_ids.shape[1] > self.config.max_text_length:
            raise ValueError(
                f"input_ids has {input_ids.shape[1]} positions but max_text_length is {self.config.max_text_length}; "
                "tokenize with the model's processor (it truncates) or raise max_text_length in the config."
            )
        if attention_mask is None:
            return torch.ones_like(input_ids)
        if attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)} but input_ids has {tuple(input_ids.shape)}."
            )
        return attention_mask

    def _check_video_inputs(self, pixel_values_videos: torch.Tensor, video_mask: torch.Tensor | None) -> torch.Tensor:
        if pixel_values_videos.dim() != 5:
            raise ValueError(
                "pixel_values_videos must have shape (videos, frames, channels, height, width), got a tensor of rank "
                f"{pixel_values_videos.dim()}; batch single videos with the model's processor."
            )
        videos, frames, channels, height, width = pixel_values_videos.shape
        if frames > self.config.max_frames:
            raise ValueError(
                f"pixel_values_videos has {frames} frames per video but max_frames is {self.config.max_frames}; "
                "sample fewer frames (the processor subsamples uniformly) or raise max_frames in the config."
            )
        image_size = self.config.clip_config.vision_config.image_size
        if (channels, height, width) != (3, image_size, image_size):
            raise ValueError(
                f"frames must be 3×{image_size}×{image_size} for this vision tower, got {channels}×{height}×{width}; "
                "use the model's processor."
            )
        if video_mask is None:
            return torch.ones((videos, frames), dtype=torch.long, device=pixel_values_videos.device)
        if tuple(video_mask.shape) != (videos, frames):
            raise ValueError(
                f"video_mask has shape {tuple(video_mask.shape)} but pixel_values_videos has {videos} videos of "
                f"{frames} frames."
            )
        empty = (video_mask.sum(1) == 0).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"video_mask marks no frame as valid for video(s) at batch index {empty}.")
        return video_mask

    @property
    def needs_word_embeds(self) -> bool:
        """Whether training reads the word tokens w (the text side of the semantic branch, or attribute levels)."""
        return self.config.semantic_loss

    @property
    def needs_patch_embeds(self) -> bool:
        """Whether training reads the projected patch tokens (`semantic_tokens="patches"`)."""
        return self.config.semantic_loss and self.config.semantic_tokens == "patches"

    def get_backbone_text_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> MsamTextOutput:
        """CLIP's text tower alone: the unit-norm sentence embedding ŝ and the projected word tokens (msam.md §1).
        A frozen backbone's outputs can be computed once and passed to `get_text_features(text_embeds=...,
        word_embeds=...)` (`msam_hf.feature_cache`)."""
        attention_mask = self._check_text_inputs(input_ids, attention_mask)
        text_outputs = self.clip.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
        return MsamTextOutput(
            text_embeds=l2_normalize(text_outputs.pooler_output),
            word_embeds=self.clip.text_projection(text_outputs.last_hidden_state),
            attention_mask=attention_mask,
        )

    def get_backbone_video_features(
        self, pixel_values_videos: torch.Tensor, video_mask: torch.Tensor | None = None, return_patch_embeds: bool = False
    ) -> MsamVideoOutput:
        """CLIP's vision tower alone: the raw frame features f_t (zero at padded frames, which never go through the
        tower) and, on request, the unit-norm projected patch tokens. Only `frame_features`, `video_mask` and
        `patch_embeds` are set; `get_video_features(frame_features=...)` adds what MSAM's modules compute."""
        video_mask = self._check_video_inputs(pixel_values_videos, video_mask)
        videos, frames = video_mask.shape
        valid = video_mask.flatten().nonzero().flatten()
        image_outputs = self.clip.get_image_features(pixel_values=pixel_values_videos.flatten(0, 1)[valid])
        width = self.config.projection_dim
        frame_features = image_outputs.pooler_output.new_zeros(videos * frames, width)
        frame_features = frame_features.index_copy(0, valid, image_outputs.pooler_output).view(videos, frames, width)
        patch_embeds = None
        if return_patch_embeds:
            vision_model = self.clip.vision_model
            patches = self.clip.visual_projection(vision_model.post_layernorm(image_outputs.last_hidden_state[:, 1:]))
            patches_per_frame = patches.shape[1]
            patch_embeds = patches.new_zeros(videos * frames, patches_per_frame, width)
            patch_embeds = patch_embeds.index_copy(0, valid, l2_normalize(patches))
            patch_embeds = patch_embeds.view(videos, frames * patches_per_frame, width)
        return MsamVideoOutput(frame_features=frame_features, video_mask=video_mask, patch_embeds=patch_embeds)

    def get_text_features(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        text_embeds: torch.Tensor | None = None,
        word_embeds: torch.Tensor | None = None,
    ) -> MsamTextOutput:
        """Encode captions: the unit-norm sentence embedding ŝ and the projected word tokens (msam.md §1).

        Instead of `input_ids`, a frozen backbone's precomputed `text_embeds` (and `word_embeds`, which the
        semantic branch reads) may be given, as `get_backbone_text_features` returns them.
        """
        if text_embeds is None:
            if input_ids is None:
                raise ValueError("get_text_features needs input_ids, or precomputed text_embeds.")
            return self.get_backbone_text_features(input_ids, attention_mask)
        if input_ids is not None:
            raise ValueError("Pass input_ids or precomputed text_embeds, not both.")
        if word_embeds is not None and attention_mask is None:
            attention_mask = torch.ones(word_embeds.shape[:2], dtype=torch.long, device=word_embeds.device)
        return MsamTextOutput(text_embeds=text_embeds, word_embeds=word_embeds, attention_mask=attention_mask)

    def get_video_features(
        self,
        pixel_values_videos: torch.Tensor | None = None,
        video_mask: torch.Tensor | None = None,
        return_patch_embeds: bool = False,
        frame_features: torch.Tensor | None = None,
        patch_embeds: torch.Tensor | None = None,
    ) -> MsamVideoOutput:
        """Encode videos: frame-level features and the pooled text-agnostic embedding v̄ (msam.md §1-2).

        Only valid frames go through the vision tower; padded frames get zero features. Instead of
        `pixel_values_videos`, a frozen backbone's precomputed `frame_features` (and `patch_embeds`) may be given, as
        `get_backbone_video_features` returns them: then only MSAM's own modules run.
        """
        if frame_features is None:
            if pixel_values_videos is None:
                raise ValueError("get_video_features needs pixel_values_videos, or precomputed frame_features.")
            backbone = self.get_backbone_video_features(pixel_values_videos, video_mask, return_patch_embeds)
            frame_features, video_mask, patch_embeds = backbone.frame_features, backbone.video_mask, backbone.patch_embeds
        elif pixel_values_videos is not None:
            raise ValueError("Pass pixel_values_videos or precomputed frame_features, not both.")
        elif video_mask is None:
            video_mask = torch.ones(frame_features.shape[:2], dtype=torch.long, device=frame_features.device)

        head = self.config.similarity_head
        if head in ("seq_transformer", "ciffp"):
            frame_embeds = self.temporal(frame_features, video_mask)
            video_embeds = l2_normalize(masked_mean(frame_embeds, video_mask))
        else:
            unit_frames = l2_normalize(frame_features)
            video_embeds = l2_normalize(masked_mean(unit_frames, video_mask))
            frame_embeds = unit_frames if head == "mean" else frame_features
        return MsamVideoOutput(
            video_embeds=video_embeds,
            frame_embeds=frame_embeds,
            frame_features=frame_features,
            video_mask=video_mask,
            patch_embeds=patch_embeds,
        )

    def similarity(
        self,
        text_features: MsamTextOutput,
        video_features: MsamVideoOutput,
        text_context_size: int | None = 1,
        text_chunk_size: int = 256,
        video_chunk_size: int = 256,
        return_frame_attention: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        """Scaled similarity logits (texts, videos), computed in chunks so memory stays bounded.

        Args:
            text_context_size: |J|, the size of CIFFP's caption set (msam.md §3): consecutive blocks of this many
                captions are scored together; the last block may be shorter. 1 scores every caption on its own
                (independent queries, what search serves); `None` puts all captions in one set. Ignored by the
                other heads, whose scores do not depend on other captions.
            text_chunk_size, video_chunk_size: captions and videos per chunk (rounded up to whole caption sets).
            return_frame_attention: also return the frame attention (texts, videos, frames) of the `ciffp` and
                `attention` heads (None for the others).
        """
        text_embeds = text_features.text_embeds
        head = self.config.similarity_head
        if head in ("mean", "seq_transformer"):
            logits = self.logit_scale * text_embeds @ video_features.video_embeds.T
            return (logits, None) if return_frame_attention else logits

        texts = text_embeds.shape[0]
        context = texts if text_context_size is None else text_context_size
        if context < 1:
            raise ValueError(f"text_context_size must be at least 1 or None, got {text_context_size}.")
        text_step = max(text_chunk_size // context, 1) * context if head == "ciffp" else text_chunk_size
        score_rows, attention_rows = [], []
        for text_start in range(0, texts, text_step):
            chunk = text_embeds[text_start : text_start + text_step]
            score_columns, attention_columns = [], []
            for video_start in range(0, video_features.frame_embeds.shape[0], video_chunk_size):
                video_slice = slice(video_start, video_start + video_chunk_size)
                scores, attention = self._score_chunk(
                    chunk, video_features.frame_embeds[video_slice], video_features.video_mask[video_slice], context
                )
                score_columns.append(scores)
                attention_columns.append(attention if return_frame_attention else None)
            score_rows.append(torch.cat(score_columns, dim=1))
            if return_frame_attention:
                attention_rows.append(torch.cat(attention_columns, dim=1))
        logits = self.logit_scale * torch.cat(score_rows, dim=0)
        if return_frame_attention:
            return logits, torch.cat(attention_rows, dim=0)
        return logits

    def _score_chunk(
        self, text_embeds: torch.Tensor, frame_embeds: torch.Tensor, video_mask: torch.Tensor, context: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Unscaled scores (texts, videos) and frame attention (texts, videos, frames) of one chunk."""
        if self.config.similarity_head == "attention":
            return self.attention_pooling(text_embeds, frame_embeds, video_mask)
        full_sets = text_embeds.shape[0] // context * context
        scores, attention = [], []
        # Whole caption sets in one batched call, the shorter last set (if any) in a second.
        for start, end, size in ((0, full_sets, context), (full_sets, text_embeds.shape[0], None)):
            if end > start:
                caption_sets = text_embeds[start:end].view(-1, size or end - start, text_embeds.shape[-1])
                set_scores, set_attention = self.ciffp(caption_sets, frame_embeds, video_mask)
                scores.append(set_scores.flatten(0, 1))
                attention.append(set_attention.flatten(0, 1))
        return torch.cat(scores), torch.cat(attention)

    def semantic_losses(
        self, text_features: MsamTextOutput, video_features: MsamVideoOutput
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The distribution (KL) and diversity terms of the adaptive semantic branch for paired videos and captions
        (msam.md §4-6): video i goes with caption i."""
        if not self.config.semantic_loss:
            raise ValueError("This model was built with semantic_loss=False: it has no semantic branch.")
        if text_features.word_embeds is None:
            raise ValueError("the semantic branch reads the captions' word_embeds; precomputed text features must "
                             "include them.")
        mask_padding = self.config.semantic_mask_padded_tokens
        if self.config.semantic_tokens == "patches":
            if video_features.patch_embeds is None:
                raise ValueError("semantic_tokens='patches' needs get_video_features(..., return_patch_embeds=True) "
                                 "or precomputed patch_embeds.")
            video_tokens = video_features.patch_embeds
            patches_per_frame = video_tokens.shape[1] // video_features.video_mask.shape[1]
            video_token_mask = video_features.video_mask.repeat_interleave(patches_per_frame, dim=1)
        else:
            video_tokens = l2_normalize(video_features.frame_features)
            video_token_mask = video_features.video_mask
        video_slots = self.video_semantics(
            video_tokens, video_features.video_embeds, video_token_mask if mask_padding else None
        )
        text_slots = self.text_semantics(
            l2_normalize(text_features.word_embeds),
            text_features.text_embeds,
            text_features.attention_mask if mask_padding else None,
        )
        mu_video, sigma_video = self.distribution(video_slots)
        mu_text, sigma_text = self.distribution(text_slots)
        distribution_loss = gaussian_kl_divergence(mu_video, sigma_video, mu_text, sigma_text)
        diversity_loss = 0.5 * (
            slot_diversity(l2_normalize(mu_video / sigma_video)) + slot_diversity(l2_normalize(mu_text / sigma_text))
        )
        return distribution_loss, diversity_loss

    def predict_attributes(self, features: MsamTextOutput | MsamVideoOutput) -> dict[str, torch.Tensor]:
        """Attribute logits per level, {level: (items, V_ℓ)}, of captions or videos through the shared projections."""
        if not self.config.attribute_vocabulary:
            raise ValueError("This model was built without an attribute_vocabulary: it predicts no attributes.")
        embeds = features.text_embeds if isinstance(features, MsamTextOutput) else features.video_embeds
        return self.attribute_head(embeds)

    def attribute_losses(
        self,
        text_features: MsamTextOutput,
        video_features: MsamVideoOutput,
        attribute_labels: torch.Tensor | None = None,
        video_attribute_labels: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """The auxiliary objective for paired captions and videos (caption i with video i), averaged over levels:
        the focal BCE on the labels (None without labels) and KL(text ‖ video) of the softmax attribute predictions
        (see `attribute_objective`)."""
        return attribute_objective(
            self.config,
            self.predict_attributes(text_features),
            self.predict_attributes(video_features),
            attribute_labels,
            video_attribute_labels,
        )

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        video_mask: torch.Tensor | None = None,
        attribute_labels: torch.Tensor | None = None,
        video_attribute_labels: torch.Tensor | None = None,
        return_loss: bool | None = None,
        text_context_size: int | None = None,
        gather_global_batch: bool = False,
        text_embeds: torch.Tensor | None = None,
        word_embeds: torch.Tensor | None = None,
        frame_features: torch.Tensor | None = None,
        patch_embeds: torch.Tensor | None = None,
        **kwargs,
    ) -> MsamOutput:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(texts, length)`): CLIP token ids (the processor's output).
            attention_mask (`torch.LongTensor` of shape `(texts, length)`, *optional*): 1 for tokens, 0 for padding.
            pixel_values_videos (`torch.FloatTensor` of shape `(videos, frames, 3, height, width)`): normalised frames.
            video_mask (`torch.LongTensor` of shape `(videos, frames)`, *optional*): 1 for frames, 0 for padding.
            attribute_labels (`torch.Tensor` of shape `(texts, num_attributes)`, *optional*): multi-hot attribute
                labels of each caption, for the auxiliary objective of a model with an `attribute_vocabulary`.
            video_attribute_labels (`torch.Tensor` of shape `(videos, num_attributes)`, *optional*): the video's
                labels (the union over its captions); defaults to `attribute_labels`.
            return_loss (`bool`, *optional*): compute the training loss; caption i must describe video i.
            text_context_size (`int`, *optional*): CIFFP's caption set size |J|; defaults to every caption of the
                batch, as in training.
            gather_global_batch (`bool`, *optional*): in a multi-process run, score against the features of every
                process (with gradients), so logits and the contrastive loss cover the global batch.
            text_embeds, word_embeds, frame_features, patch_embeds (*optional*): a frozen backbone's precomputed
                outputs (`get_backbone_text_features` / `get_backbone_video_features`, e.g. read from
                `msam_hf.feature_cache`) instead of `input_ids` and `pixel_values_videos`.
        """
        if (input_ids is None and text_embeds is None) or (pixel_values_videos is None and frame_features is None):
            raise ValueError("MsamModel needs both input_ids and pixel_values_videos (or a frozen backbone's "
                             "text_embeds and frame_features); see get_text_features / get_video_features to encode "
                             "one modality.")
        need_semantics = bool(return_loss) and self.config.semantic_loss
        text_outputs = self.get_text_features(input_ids, attention_mask, text_embeds=text_embeds, word_embeds=word_embeds)
        video_outputs = self.get_video_features(
            pixel_values_videos,
            video_mask,
            return_patch_embeds=need_semantics and self.needs_patch_embeds,
            frame_features=frame_features,
            patch_embeds=patch_embeds,
        )
        scored_text, scored_video = text_outputs, video_outputs
        if gather_global_batch and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            scored_text, scored_video = gather_across_processes(text_outputs, video_outputs)
        logits_per_text, frame_attention = self.similarity(
            scored_text, scored_video, text_context_size=text_context_size, return_frame_attention=True
        )

        loss = contrastive_loss = distribution_loss = diversity_loss = attribute_loss = kl_loss = None
        if return_loss:
            if logits_per_text.shape[0] != logits_per_text.shape[1]:
                raise ValueError(
                    f"return_loss=True pairs caption i with video i, but got {logits_per_text.shape[0]} captions for "
                    f"{logits_per_text.shape[1]} videos."
                )
            contrastive_loss = symmetric_info_nce(logits_per_text)
            loss = contrastive_loss
            if need_semantics:
                distribution_loss, diversity_loss = self.semantic_losses(text_outputs, video_outputs)
                loss = (
                    loss
                    + self.config.distribution_loss_weight * distribution_loss
                    + self.config.diversity_loss_weight * diversity_loss
                )
            if self.config.attribute_vocabulary:
                attribute_loss, kl_loss = self.attribute_losses(
                    text_outputs, video_outputs, attribute_labels, video_attribute_labels
                )
                if attribute_loss is not None:
                    loss = loss + self.config.attribute_loss_weight * attribute_loss
                loss = loss + self.config.kl_loss_weight * kl_loss

        return MsamOutput(
            loss=loss,
            contrastive_loss=contrastive_loss,
            distribution_loss=distribution_loss,
            diversity_loss=diversity_loss,
            attribute_loss=attribute_loss,
            kl_loss=kl_loss,
            logits_per_text=logits_per_text,
            logits_per_video=logits_per_text.T,
            text_embeds=text_outputs.text_embeds,
            video_embeds=video_outputs.video_embeds,
            frame_attention=frame_attention,
            text_outputs=text_outputs,
            video_outputs=video_outputs,
        )


__all__ = ["MsamModel", "MsamPreTrainedModel", "MsamOutput", "MsamTextOutput", "MsamVideoOutput"]
