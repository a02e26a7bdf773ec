"""MSAM: Multi-Semantic Adaptive Mining for drone video-text retrieval (arXiv 2510.15470).

A CLIP backbone (transformers' `CLIPModel`), CLIP4Clip's temporal module, one of four similarity heads (`mean`,
`seq_transformer`, `attention`, `ciffp`) and, for training, MSAM's adaptive semantic construction branch. Section
numbers refer to the method note `design/msam.md`; every deviation from the reference code is a config switch.

This file travels to the Hub next to the weights: it imports only torch, transformers and its sibling modules
(`configuration_msam`, `modeling_clip_video`, the shared backbone, and `loss_msam`).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_msam import MsamConfig
from .loss_msam import attribute_objective
from .loss_msam import check_paired_logits
from .loss_msam import contrastive_loss
from .loss_msam import gaussian_kl_divergence
from .loss_msam import slot_diversity
from .modeling_clip_video import AttributeProjection
from .modeling_clip_video import ClipVideoTextPreTrainedModel
from .modeling_clip_video import MsamTemporalModule
from .modeling_clip_video import MsamTextOutput
from .modeling_clip_video import MsamVideoOutput
from .modeling_clip_video import in_float32
from .modeling_clip_video import l2_normalize
from .modeling_clip_video import mask_logits
from .modeling_clip_video import masked_mean


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
        if text_embeds.shape[1] == 1:
            scores, attention = self.single_caption_scores(text_embeds[:, 0], frame_embeds, video_mask)
            return scores[:, None], attention[:, None]
        frame_text, attention = self._frame_attention(text_embeds, frame_embeds, video_mask)
        p_dot_text = (attention * frame_text).sum(-1)  # ⟨p_ij, ŝ_j⟩: (blocks, videos, J)
        gram = frame_embeds @ frame_embeds.transpose(1, 2)  # (videos, frames, frames)
        p_norm_sq = torch.einsum("nvjt,vts,nvjs->nvj", attention, gram, attention)

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
        return self.score_scale * scores.transpose(1, 2), attention.permute(0, 2, 1, 3)

    def single_caption_scores(
        self, text_embeds: torch.Tensor, frame_embeds: torch.Tensor, video_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """CIFFP at |J| = 1 for each caption on its own (what search serves): with one caption q_i = p_i, so
        u_i = 2 p_i whatever the gate says and the score is γ · ⟨p_i, ŝ⟩ / ‖p_i‖, p_i = Σ_t a_it v_it (msam.md §3).

        ‖p_i‖ comes from p_i itself for a lone caption (videos × T × D), and otherwise from each video's frame Gram
        matrix (videos × T² × D), which every caption of the call shares.

        Args:
            text_embeds: (texts, D) unit-norm captions.
            frame_embeds: (videos, frames, D) unit-norm frame features v_t.
            video_mask: (videos, frames).
        Returns:
            scores (texts, videos) = γ · cos(p_i, ŝ), without the logit scale; frame attention (texts, videos, frames).
        """
        # Frame attention of caption sets of one caption: (texts, videos, 1, frames).
        frame_text, attention = self._frame_attention(text_embeds[:, None], frame_embeds, video_mask)
        p_dot_text = (attention * frame_text).sum(-1)  # (texts, videos, 1)
        if text_embeds.shape[0] == 1:
            p_norm = torch.einsum("nvjt,vtd->nvjd", attention, frame_embeds).norm(dim=-1).clamp(min=1e-12)
        else:
            gram = frame_embeds @ frame_embeds.transpose(1, 2)  # (videos, frames, frames)
            p_norm = torch.einsum("nvjt,vts,nvjs->nvj", attention, gram, attention).clamp(min=1e-24).sqrt()
        return self.score_scale * (p_dot_text / p_norm)[..., 0], attention[:, :, 0]

    def _frame_attention(
        self, text_embeds: torch.Tensor, frame_embeds: torch.Tensor, video_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """⟨v_it, ŝ_j⟩ and the frame attention a_ijt = softmax_t(⟨v_it, ŝ_j⟩ / τ) of caption sets (blocks, J, D)
        (msam.md §3 step 1), both (blocks, videos, J, frames)."""
        frame_text = torch.einsum("vtd,njd->nvjt", frame_embeds, text_embeds)
        frame_mask = video_mask[:, None, :] if self.mask_padded_frames else None
        attention = mask_logits(frame_text / self.frame_temperature, frame_mask).softmax(dim=-1)
        return frame_text, attention


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

    def forward(
        self, tokens: torch.Tensor, global_embeds: torch.Tensor, token_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """tokens (batch, tokens, D) of any norm, global_embeds (batch, D), token_mask (batch, tokens) or None.
        Returns the slot embeddings E (batch, K, D) of the unit-norm tokens X = l2n(tokens) (msam.md §4).

        X is never built: a token's 1/‖x‖ scales its projection W_a x (a linear map without bias) and its weight in
        R = A X, which saves the normalisation's full-size passes (forward and backward) over every token."""
        inverse_norms = 1 / tokens.norm(dim=-1, keepdim=True).clamp(min=1e-12)  # F.normalize's floor
        slot_logits = self.slot_queries(torch.tanh(self.token_projection(tokens) * inverse_norms))  # (batch, T, K)
        mask = token_mask[..., None] if token_mask is not None else None
        slot_attention = mask_logits(slot_logits, mask).softmax(dim=1)
        regions = (slot_attention * inverse_norms).transpose(1, 2) @ tokens  # R = A X: (batch, K, D)
        gates = self.dropout(torch.sigmoid(self.slot_gate(regions)))
        return self.output_projection(self.layer_norm(gates * global_embeds[:, None, :]))


class MsamDistributionHead(nn.Module):
    """μ and σ of each slot's Gaussian (msam.md §5); one head shared by videos and captions."""

    def __init__(self, config: MsamConfig):
        super().__init__()
        width = config.projection_dim
        mu_hidden, sigma_hidden = config.distribution_mu_hidden_size, config.distribution_sigma_hidden_size
        self.mu = nn.Sequential(
            nn.Linear(width, mu_hidden),
            nn.ReLU(),
            nn.Linear(mu_hidden, mu_hidden),
            nn.ReLU(),
            nn.Linear(mu_hidden, width),
        )
        self.sigma = nn.Sequential(
            nn.Linear(width, sigma_hidden), nn.ReLU(), nn.Linear(sigma_hidden, width), nn.Softplus()
        )

    def forward(self, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mu(slots), self.sigma(slots)


class MsamAttributeHead(nn.Module):
    """The auxiliary attribute objective (`attribute_vocabulary`): MCSAN's parameter-shared projection per level,
    applied to MSAM's global embeddings ŝ and v̄, as MSAM has no per-level embeddings."""

    def __init__(self, config: MsamConfig):
        super().__init__()
        self.projections = nn.ModuleDict(
            {
                level: AttributeProjection(config.projection_dim, size)
                for level, size in config.attribute_vocabulary_sizes.items()
            }
        )

    def forward(self, embeds: torch.Tensor) -> dict[str, torch.Tensor]:
        return {level: projection(embeds) for level, projection in self.projections.items()}


class MsamPreTrainedModel(ClipVideoTextPreTrainedModel):
    config: MsamConfig
    config_class = MsamConfig
    base_model_prefix = "msam"

    @torch.no_grad()
    def _init_weights(self, module):
        if isinstance(module, MsamSemanticConstruction):
            init.xavier_uniform_(module.token_projection.weight)
            init.xavier_uniform_(module.slot_queries.weight)
            init.xavier_uniform_(module.slot_gate.weight)
            init.zeros_(module.slot_gate.bias)
        elif isinstance(module, MsamAttentionPoolingHead):
            for projection in (module.q_proj, module.k_proj, module.v_proj, module.out_proj, module.linear_proj):
                init.eye_(projection.weight)
                init.zeros_(projection.bias)
        else:
            super()._init_weights(module)


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

    output_class = MsamOutput

    def __init__(self, config: MsamConfig):
        super().__init__(config)
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
    def needs_word_embeds(self) -> bool:
        """Whether training reads the word tokens w (the text side of the semantic branch, or attribute levels)."""
        return self.config.semantic_loss

    @property
    def needs_patch_embeds(self) -> bool:
        """Whether training reads the projected patch tokens (`semantic_tokens="patches"`)."""
        return self.config.semantic_loss and self.config.semantic_tokens == "patches"

    def _video_feature_options(self, return_loss: bool | None) -> dict:
        # Only the semantic branch's losses read patch tokens: scoring does without them.
        return {"return_patch_embeds": bool(return_loss) and self.needs_patch_embeds}

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
        return self._backbone_text_or_given(input_ids, attention_mask, text_embeds, word_embeds)

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
        backbone = self._backbone_video_or_given(
            pixel_values_videos, video_mask, return_patch_embeds, frame_features, patch_embeds
        )
        frame_features, video_mask, patch_embeds = backbone.frame_features, backbone.video_mask, backbone.patch_embeds
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

    @in_float32
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
        if context == 1:
            return self.ciffp.single_caption_scores(text_embeds, frame_embeds, video_mask)
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

    def similarity_inputs(
        self, text_features: MsamTextOutput, video_features: MsamVideoOutput
    ) -> tuple[MsamTextOutput, MsamVideoOutput]:
        """Only what `similarity` reads, the features that are gathered across processes and that gradient caching
        keeps: ŝ, v̄ and the frame-level features with their mask."""
        return MsamTextOutput(text_embeds=text_features.text_embeds), MsamVideoOutput(
            video_embeds=video_features.video_embeds,
            frame_embeds=video_features.frame_embeds,
            video_mask=video_features.video_mask,
        )

    @in_float32
    def contrastive_outputs(
        self,
        text_features: MsamTextOutput,
        video_features: MsamVideoOutput,
        text_context_size: int | None = None,
        return_loss: bool = True,
    ) -> dict[str, torch.Tensor | None]:
        """`logits_per_text` and `frame_attention` of the captions against the videos, CIFFP's caption set J
        spanning `text_context_size` captions (all by default, as in training), and with `return_loss` the symmetric
        InfoNCE `contrastive_loss` of the pairs (caption i with video i)."""
        logits_per_text, frame_attention = self.similarity(
            text_features, video_features, text_context_size=text_context_size, return_frame_attention=True
        )
        outputs = {"logits_per_text": logits_per_text, "frame_attention": frame_attention}
        if return_loss:
            check_paired_logits(logits_per_text)
            outputs["contrastive_loss"], _ = contrastive_loss(logits_per_text)
        return outputs

    @in_float32
    def pair_losses(
        self,
        text_features: MsamTextOutput,
        video_features: MsamVideoOutput,
        attribute_labels: torch.Tensor | None = None,
        video_attribute_labels: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor | None]:
        """The loss parts besides the contrastive loss, means over the pairs (caption i with video i) that need no
        other pair: the semantic branch's `distribution_loss` and `diversity_loss` (with `semantic_loss`) and the
        attribute objective's `attribute_loss` and `kl_loss` (with an `attribute_vocabulary`)."""
        parts = {}
        if self.config.semantic_loss:
            parts["distribution_loss"], parts["diversity_loss"] = self.semantic_losses(text_features, video_features)
        if self.config.attribute_vocabulary:
            parts["attribute_loss"], parts["kl_loss"] = self.attribute_losses(
                text_features, video_features, attribute_labels, video_attribute_labels
            )
        return parts

    def semantic_losses(
        self, text_features: MsamTextOutput, video_features: MsamVideoOutput
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The distribution (KL) and diversity terms of the adaptive semantic branch for paired videos and captions
        (msam.md §4-6): video i goes with caption i."""
        if not self.config.semantic_loss:
            raise ValueError("This model was built with semantic_loss=False: it has no semantic branch.")
        if text_features.word_embeds is None:
            raise ValueError(
                "the semantic branch reads the captions' word_embeds; precomputed text features must include them."
            )
        mask_padding = self.config.semantic_mask_padded_tokens
        if self.config.semantic_tokens == "patches":
            if video_features.patch_embeds is None:
                raise ValueError(
                    "semantic_tokens='patches' needs get_video_features(..., return_patch_embeds=True) "
                    "or precomputed patch_embeds."
                )
            video_tokens = video_features.patch_embeds
            patches_per_frame = video_tokens.shape[1] // video_features.video_mask.shape[1]
            video_token_mask = video_features.video_mask.repeat_interleave(patches_per_frame, dim=1)
        else:
            video_tokens = video_features.frame_features
            video_token_mask = video_features.video_mask
        video_slots = self.video_semantics(
            video_tokens, video_features.video_embeds, video_token_mask if mask_padding else None
        )
        text_slots = self.text_semantics(
            text_features.word_embeds,
            text_features.text_embeds,
            text_features.attention_mask if mask_padding else None,
        )
        # One pass of the shared head over both modalities' slots.
        mu, sigma = self.distribution(torch.cat([video_slots, text_slots]))
        (mu_video, mu_text), (sigma_video, sigma_text) = mu.chunk(2), sigma.chunk(2)
        distribution_loss = gaussian_kl_divergence(mu_video, sigma_video, mu_text, sigma_text)
        # The mean over both halves of the same size: ½ (video term + text term), msam.md §6.
        diversity_loss = slot_diversity(l2_normalize(mu / sigma))
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


__all__ = ["MsamModel", "MsamPreTrainedModel", "MsamOutput", "MsamTextOutput", "MsamVideoOutput"]
