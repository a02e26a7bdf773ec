"""MCSAN: multi-level cross-modal semantic alignment for video-text retrieval (Nian et al., Mathematics 2022).

Videos and captions are each encoded at four semantic levels (global, entity, action, relationship) on MSAM's CLIP
backbone, scored by a weighted sum of per-level cosines, and tied together by per-level contrastive losses plus,
on the entity / action / relationship levels, a cross-modal parameter-shared attribute projection trained with focal
binary cross-entropy on mined attribute labels and a KL term between the two modalities' attribute predictions.

Only the paper's abstract is available to us: it fixes the four levels, the shared attribute projection, the KL
alignment and the focal BCE. Everything below is our realisation (`design/mcsan.md`); choices the paper leaves open:

- **Backbone and inputs**: MSAM's (same CLIP, same processor, same input checks); the global level is MSAM's
  `seq_transformer` path (temporal module initialised from CLIP's text blocks, masked mean).
- **Entity level**: one learned query attends over the projected patch tokens of all sampled frames
  (`entity_tokens="patches"`), or over the frame features (`"frames"`).
- **Action level**: tokens f_t + W_d (f_{t+1} - f_t) (the difference is zero at a video's last frame), one CLIP
  block with frame positions (`action_num_layers`), then a learned-query attention pooling.
- **Relationship level**: one CLIP block (`relationship_num_layers`) over the union of the entity and action
  tokens, told apart by a learned type embedding, then a learned-query attention pooling.
- **Text levels**: the global level is CLIP's sentence embedding; entity / action / relationship each pool the
  projected word tokens with their own learned query (the attribute supervision teaches each query its words).
- **Attention pooling**: a single learned query, keys from a LayerNorm + linear map of the tokens, values the tokens
  themselves, then a linear output map initialised to the identity, so a level starts as a weighted token mean.
- **Shared attribute projection**: one `Linear(D, V_ℓ)` per level applied to the unit-norm level embeddings of both
  modalities (the space the score compares); its bias starts at logit(0.01), RetinaNet's prior for rare positives.
- **Labels**: a caption's own attributes for the text side; for the video side the union over all its captions
  (`video_attribute_labels`), falling back to the paired caption's labels when not given.
- **Focal BCE**: mean over items and attributes, α = 0.25, γ = 2 (RetinaNet's values); the text and video terms are
  averaged, then the levels.
- **KL alignment**: KL(softmax(z^t/T) ‖ softmax(z^v/T)) per matching pair, averaged over pairs and levels;
  `attribute_kl_symmetric` averages both directions, `attribute_kl_distribution="bernoulli"` compares the
  per-attribute sigmoids instead of one softmax over the level's attributes.
- **Score**: S = λ Σ_ℓ w_ℓ cos(e^v_ℓ, e^t_ℓ) with λ CLIP's logit scale and w a softmax over levels (learned from
  uniform by default, or fixed), so Σ w = 1 and S keeps CLIP's range.
- **Contrastive losses**: symmetric InfoNCE on S plus `level_contrastive_weight` × the mean of the per-level
  InfoNCE losses on λ cos_ℓ (the fused loss is what trains w).

This file travels to the Hub next to the weights: it imports only torch, transformers and its sibling modules
(`configuration_mcsan`, `modeling_clip_video`, the backbone code it shares with MSAM, and `loss_msam`).
"""

from dataclasses import dataclass

import torch
from torch import nn
from transformers import initialization as init
from transformers.models.clip.modeling_clip import CLIPEncoderLayer
from transformers.utils import ModelOutput

from .configuration_mcsan import McsanConfig
from .loss_msam import attribute_objective
from .loss_msam import check_paired_logits
from .loss_msam import contrastive_loss
from .modeling_clip_video import AttributeProjection
from .modeling_clip_video import ClipVideoTextPreTrainedModel
from .modeling_clip_video import MsamTemporalModule
from .modeling_clip_video import in_float32
from .modeling_clip_video import l2_normalize
from .modeling_clip_video import mask_logits
from .modeling_clip_video import masked_mean
from .modeling_clip_video import residual_blocks
from .modeling_clip_video import temporal_layer_config


@dataclass
class McsanTextOutput(ModelOutput):
    """
    Args:
        text_embeds (`torch.FloatTensor` of shape `(texts, projection_dim)`):
            ŝ, the unit-norm sentence embedding (the global level).
        level_embeds (`torch.FloatTensor` of shape `(texts, levels, projection_dim)`):
            Unit-norm embedding of every level in `config.levels`, in that order.
        word_embeds (`torch.FloatTensor` of shape `(texts, length, projection_dim)`):
            The text projection applied to every position of the text encoder's last hidden state.
        attention_mask (`torch.LongTensor` of shape `(texts, length)`):
            1 for real tokens, 0 for padding.
    """

    text_embeds: torch.FloatTensor | None = None
    level_embeds: torch.FloatTensor | None = None
    word_embeds: torch.FloatTensor | None = None
    attention_mask: torch.LongTensor | None = None


@dataclass
class McsanVideoOutput(ModelOutput):
    """
    Args:
        video_embeds (`torch.FloatTensor` of shape `(videos, projection_dim)`):
            The unit-norm global-level embedding (the masked mean of unit-norm frame features when `"global"` is not
            in `config.levels`).
        level_embeds (`torch.FloatTensor` of shape `(videos, levels, projection_dim)`):
            Unit-norm embedding of every level in `config.levels`, in that order.
        frame_features (`torch.FloatTensor` of shape `(videos, frames, projection_dim)`):
            f_t, the raw CLIP image embeddings; zero at padded frames.
        video_mask (`torch.LongTensor` of shape `(videos, frames)`):
            1 for real frames, 0 for padding.
    """

    video_embeds: torch.FloatTensor | None = None
    level_embeds: torch.FloatTensor | None = None
    frame_features: torch.FloatTensor | None = None
    video_mask: torch.LongTensor | None = None


@dataclass
class McsanOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `return_loss=True`):
            contrastive_loss + attribute_loss_weight · attribute_loss + kl_loss_weight · kl_loss.
        contrastive_loss (`torch.FloatTensor`, *optional*):
            Symmetric InfoNCE on the fused score plus `level_contrastive_weight` × the mean per-level InfoNCE.
        level_contrastive_losses (`torch.FloatTensor` of shape `(levels,)`, *optional*):
            Symmetric InfoNCE on each level's scaled cosine, in `config.levels` order.
        attribute_loss (`torch.FloatTensor`, *optional*, when attribute labels are given):
            Focal binary cross-entropy of the shared attribute projection, averaged over modalities and levels.
        kl_loss (`torch.FloatTensor`, *optional*):
            KL divergence between caption and video attribute predictions, averaged over pairs and levels.
        logits_per_text (`torch.FloatTensor` of shape `(texts, videos)`):
            S = λ Σ_ℓ w_ℓ cos(e^v_ℓ, e^t_ℓ).
        logits_per_video (`torch.FloatTensor` of shape `(videos, texts)`):
            The transpose of `logits_per_text`.
        level_logits_per_text (`torch.FloatTensor` of shape `(texts, videos, levels)`):
            λ cos(e^v_ℓ, e^t_ℓ) per level.
        level_weights (`torch.FloatTensor` of shape `(levels,)`):
            w, summing to 1.
        text_embeds (`torch.FloatTensor` of shape `(texts, projection_dim)`), video_embeds (`(videos,
        projection_dim)`): the global-level embeddings.
        text_outputs (`McsanTextOutput`), video_outputs (`McsanVideoOutput`):
            The full outputs of `get_text_features` and `get_video_features`.
    """

    loss: torch.FloatTensor | None = None
    contrastive_loss: torch.FloatTensor | None = None
    level_contrastive_losses: torch.FloatTensor | None = None
    attribute_loss: torch.FloatTensor | None = None
    kl_loss: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    logits_per_video: torch.FloatTensor | None = None
    level_logits_per_text: torch.FloatTensor | None = None
    level_weights: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    video_embeds: torch.FloatTensor | None = None
    text_outputs: McsanTextOutput | None = None
    video_outputs: McsanVideoOutput | None = None


class McsanTokenEncoder(nn.Module):
    """Residual CLIP blocks at the joint width over a padded token set, with optional positions; unit-norm out."""

    def __init__(self, config: McsanConfig, num_layers: int, num_positions: int | None = None):
        super().__init__()
        width = config.projection_dim
        self.position_embeddings = nn.Embedding(num_positions, width) if num_positions else None
        self.layers = nn.ModuleList([CLIPEncoderLayer(temporal_layer_config(config)) for _ in range(num_layers)])

    def forward(self, tokens: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        # tokens: (batch, tokens, dim)
        positions = None
        if self.position_embeddings is not None:
            positions = self.position_embeddings(torch.arange(tokens.shape[1], device=tokens.device))
        return residual_blocks(self.layers, tokens, token_mask, positions)


class McsanAttentionPooling(nn.Module):
    """One learned query attends over a padded token set; the weighted token sum goes through a linear map that
    starts as the identity."""

    def __init__(self, config: McsanConfig):
        super().__init__()
        width = config.projection_dim
        self.query = nn.Parameter(torch.zeros(width))
        self.layer_norm = nn.LayerNorm(width)
        self.key_proj = nn.Linear(width, width)
        self.out_proj = nn.Linear(width, width)
        self.scale = width**-0.5

    def forward(self, tokens: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        """tokens (batch, tokens, D), token_mask (batch, tokens) → unit-norm pooled embeddings (batch, D)."""
        logits = self.key_proj(self.layer_norm(tokens)) @ self.query * self.scale  # (batch, tokens)
        weights = mask_logits(logits, token_mask).softmax(dim=-1)
        return l2_normalize(self.out_proj(torch.einsum("bn,bnd->bd", weights, tokens)))


class McsanLevelWeights(nn.Module):
    """w of the multi-level score: a softmax over per-level logits, trainable or frozen (`learn_level_weights`)."""

    def __init__(self, config: McsanConfig):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(len(config.levels)), requires_grad=config.learn_level_weights)
        self.initial_weights = config.level_weights or [1.0] * len(config.levels)

    def forward(self) -> torch.Tensor:
        return self.logits.softmax(dim=0)


class McsanPreTrainedModel(ClipVideoTextPreTrainedModel):
    config: McsanConfig
    config_class = McsanConfig
    base_model_prefix = "mcsan"

    @torch.no_grad()
    def _init_weights(self, module):
        if isinstance(module, McsanAttentionPooling):
            init.normal_(module.query, std=0.02)
            init.normal_(module.key_proj.weight, std=0.02)
            init.zeros_(module.key_proj.bias)
            init.eye_(module.out_proj.weight)
            init.zeros_(module.out_proj.bias)
            init.ones_(module.layer_norm.weight)
            init.zeros_(module.layer_norm.bias)
        elif isinstance(module, McsanLevelWeights):
            weights = torch.tensor(module.initial_weights, dtype=module.logits.dtype)
            init.copy_(module.logits, (weights / weights.sum()).log())  # a fixed weight of 0 gives −inf: w = 0
        else:
            super()._init_weights(module)


class McsanModel(McsanPreTrainedModel):
    r"""
    MCSAN for text-video retrieval: four semantic levels per side, a weighted multi-level score and, in training,
    attribute supervision through a projection shared by both modalities. Build one from pretrained CLIP weights
    with [`McsanModel.from_clip`], or load a trained one with `AutoModel.from_pretrained(repo,
    trust_remote_code=True)`. Inputs come from MSAM's processor (`default_processor(model.config)`).

    Example:

    ```python
    >>> from msam_hf import McsanModel, default_processor
    >>> model = McsanModel.from_clip("openai/clip-vit-base-patch32", attribute_vocabulary=vocab["levels"])
    >>> processor = default_processor(model.config)
    >>> inputs = processor(text=["a white boat passes under a bridge"], videos=[frames], return_tensors="pt")
    >>> model(**inputs).logits_per_text
    ```
    """

    output_class = McsanOutput

    def __init__(self, config: McsanConfig):
        super().__init__(config)
        levels, width = config.levels, config.projection_dim
        if "global" in levels:
            self.temporal = MsamTemporalModule(config)
        # The relationship level is built on the action tokens, so they exist whenever either level does.
        if "action" in levels or "relationship" in levels:
            self.action_difference = nn.Linear(width, width)  # W_d
            self.action_encoder = McsanTokenEncoder(
                config, config.action_num_layers, config.clip_config.text_config.max_position_embeddings
            )
        if "relationship" in levels:
            self.token_type_embeddings = nn.Embedding(2, width)  # entity, action
            self.relationship_encoder = McsanTokenEncoder(config, config.relationship_num_layers)
        self.video_pooling = nn.ModuleDict({level: McsanAttentionPooling(config) for level in config.attribute_levels})
        self.text_pooling = nn.ModuleDict({level: McsanAttentionPooling(config) for level in config.attribute_levels})
        # One projection per level, applied to video and text alike: the paper's parameter sharing.
        self.attribute_projections = nn.ModuleDict(
            {
                level: AttributeProjection(width, config.attribute_vocabulary_sizes[level])
                for level in config.attribute_levels
            }
        )
        self.level_weights = McsanLevelWeights(config)
        self.post_init()

    @property
    def needs_word_embeds(self) -> bool:
        """Whether the text side reads the word tokens (every attribute level pools them)."""
        return bool(self.config.attribute_levels)

    @property
    def needs_patch_embeds(self) -> bool:
        """Whether the video side reads the projected patch tokens (the entity level's, `entity_tokens="patches"`)."""
        return self.config.entity_tokens == "patches" and bool(self.config.attribute_levels)

    def get_text_features(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        text_embeds: torch.Tensor | None = None,
        word_embeds: torch.Tensor | None = None,
    ) -> McsanTextOutput:
        """Encode captions at every level: CLIP's sentence embedding (global) and a learned-query pooling of the
        projected word tokens per attribute level. Instead of `input_ids`, a frozen backbone's precomputed
        `text_embeds` and `word_embeds` may be given (`get_backbone_text_features`)."""
        text = self._backbone_text_or_given(input_ids, attention_mask, text_embeds, word_embeds)
        levels = {"global": text.text_embeds}
        if self.text_pooling:
            if text.word_embeds is None:
                raise ValueError(
                    "MCSAN's attribute levels pool the captions' word_embeds; precomputed text features "
                    "must include them."
                )
            words = l2_normalize(text.word_embeds)
            for level, pooling in self.text_pooling.items():
                levels[level] = pooling(words, text.attention_mask)
        return McsanTextOutput(
            text_embeds=text.text_embeds,
            level_embeds=torch.stack([levels[level] for level in self.config.levels], dim=1),
            word_embeds=text.word_embeds,
            attention_mask=text.attention_mask,
        )

    def get_video_features(
        self,
        pixel_values_videos: torch.Tensor | None = None,
        video_mask: torch.Tensor | None = None,
        frame_features: torch.Tensor | None = None,
        patch_embeds: torch.Tensor | None = None,
    ) -> McsanVideoOutput:
        """Encode videos at every level. Only valid frames go through the vision tower; padded frames and their
        patches are zero and masked. Instead of `pixel_values_videos`, a frozen backbone's precomputed
        `frame_features` (and `patch_embeds` for `entity_tokens="patches"`) may be given
        (`get_backbone_video_features`)."""
        backbone = self._backbone_video_or_given(
            pixel_values_videos, video_mask, self.needs_patch_embeds, frame_features, patch_embeds
        )
        frame_features, video_mask, patch_embeds = backbone.frame_features, backbone.video_mask, backbone.patch_embeds
        unit_frames = l2_normalize(frame_features)

        levels = {}
        if "global" in self.config.levels:
            levels["global"] = l2_normalize(masked_mean(self.temporal(frame_features, video_mask), video_mask))
        if self.config.attribute_levels:
            entity_tokens, entity_mask = unit_frames, video_mask
            if self.needs_patch_embeds:
                if patch_embeds is None:
                    raise ValueError(
                        "entity_tokens='patches' pools patch tokens; precomputed video features must "
                        "include patch_embeds."
                    )
                entity_tokens = patch_embeds
                entity_mask = video_mask.repeat_interleave(patch_embeds.shape[1] // video_mask.shape[1], dim=1)
            if "entity" in self.config.levels:
                levels["entity"] = self.video_pooling["entity"](entity_tokens, entity_mask)
            if hasattr(self, "action_encoder"):
                # f_{t+1} − f_t where frame t+1 exists, 0 at a video's last frame.
                next_frames = torch.cat([frame_features[:, 1:], torch.zeros_like(frame_features[:, :1])], dim=1)
                next_mask = torch.cat([video_mask[:, 1:], torch.zeros_like(video_mask[:, :1])], dim=1)
                differences = (next_frames - frame_features) * next_mask[..., None]
                action_tokens = self.action_encoder(frame_features + self.action_difference(differences), video_mask)
                if "action" in self.config.levels:
                    levels["action"] = self.video_pooling["action"](action_tokens, video_mask)
            if "relationship" in self.config.levels:
                tokens = torch.cat(
                    [
                        entity_tokens + self.token_type_embeddings.weight[0],
                        action_tokens + self.token_type_embeddings.weight[1],
                    ],
                    dim=1,
                )
                token_mask = torch.cat([entity_mask, video_mask], dim=1)
                levels["relationship"] = self.video_pooling["relationship"](
                    self.relationship_encoder(tokens, token_mask), token_mask
                )
        video_embeds = levels.get("global")
        if video_embeds is None:
            video_embeds = l2_normalize(masked_mean(unit_frames, video_mask))
        return McsanVideoOutput(
            video_embeds=video_embeds,
            level_embeds=torch.stack([levels[level] for level in self.config.levels], dim=1),
            frame_features=frame_features,
            video_mask=video_mask,
        )

    @in_float32
    def similarity(
        self,
        text_features: McsanTextOutput,
        video_features: McsanVideoOutput,
        text_context_size: int | None = 1,
        text_chunk_size: int = 256,
        video_chunk_size: int = 256,
        return_frame_attention: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, None]:
        """Scaled multi-level similarity logits (texts, videos): λ Σ_ℓ w_ℓ cos(e^v_ℓ, e^t_ℓ).

        Same signature as `MsamModel.similarity` so evaluation serves both models. A caption's score does not
        depend on the other captions, so `text_context_size` changes nothing; one matrix product needs no chunks
        (memory texts × videos), so the chunk sizes are unused too. MCSAN has no frame attention: with
        `return_frame_attention` the second value is None.
        """
        if text_context_size is not None and text_context_size < 1:
            raise ValueError(f"text_context_size must be at least 1 or None, got {text_context_size}.")
        weights = self.level_weights()
        # Σ_ℓ w_ℓ ⟨t_ℓ, v_ℓ⟩ as one product over the flattened (levels × D) axis.
        weighted_text = (text_features.level_embeds * weights[None, :, None]).flatten(1)
        logits = self.logit_scale * weighted_text @ video_features.level_embeds.flatten(1).T
        return (logits, None) if return_frame_attention else logits

    def level_similarities(self, text_features: McsanTextOutput, video_features: McsanVideoOutput) -> torch.Tensor:
        """Per-level scaled cosines λ cos(e^v_ℓ, e^t_ℓ): (texts, videos, levels), in `config.levels` order."""
        return self.logit_scale * torch.einsum("tld,vld->tvl", text_features.level_embeds, video_features.level_embeds)

    def similarity_inputs(
        self, text_features: McsanTextOutput, video_features: McsanVideoOutput
    ) -> tuple[McsanTextOutput, McsanVideoOutput]:
        """Only what `similarity` reads, the features that are gathered across processes and that gradient caching
        keeps: the per-level embeddings."""
        return (
            McsanTextOutput(level_embeds=text_features.level_embeds),
            McsanVideoOutput(level_embeds=video_features.level_embeds),
        )

    @in_float32
    def contrastive_outputs(
        self,
        text_features: McsanTextOutput,
        video_features: McsanVideoOutput,
        text_context_size: int | None = None,
        return_loss: bool = True,
    ) -> dict[str, torch.Tensor | None]:
        """`logits_per_text` and `level_logits_per_text` of the captions against the videos, the `level_weights` that
        fuse the levels and, with `return_loss`, for the pairs (caption i with video i) the `contrastive_loss` (fused
        plus `level_contrastive_weight` × mean per-level InfoNCE) and the `level_contrastive_losses`."""
        logits_per_text = self.similarity(text_features, video_features, text_context_size=text_context_size)
        level_logits = self.level_similarities(text_features, video_features)
        outputs = {
            "logits_per_text": logits_per_text,
            "level_logits_per_text": level_logits,
            "level_weights": self.level_weights(),
        }
        if return_loss:
            check_paired_logits(logits_per_text)
            outputs["contrastive_loss"], outputs["level_contrastive_losses"] = contrastive_loss(
                logits_per_text, level_logits, self.config.level_contrastive_weight
            )
        return outputs

    @in_float32
    def pair_losses(
        self,
        text_features: McsanTextOutput,
        video_features: McsanVideoOutput,
        attribute_labels: torch.Tensor | None = None,
        video_attribute_labels: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor | None]:
        """The loss parts besides the contrastive losses, means over the pairs that need no other pair: the
        attribute levels' `attribute_loss` (None without labels) and `kl_loss` (both None without attribute levels)."""
        attribute_loss, kl_loss = self.attribute_losses(
            text_features, video_features, attribute_labels, video_attribute_labels
        )
        return {"attribute_loss": attribute_loss, "kl_loss": kl_loss}

    def predict_attributes(self, features: McsanTextOutput | McsanVideoOutput) -> dict[str, torch.Tensor]:
        """Attribute logits per attribute level, {level: (items, V_ℓ)}, from the shared projections; the same call
        serves captions and videos."""
        return {
            level: projection(features.level_embeds[:, self.config.levels.index(level)])
            for level, projection in self.attribute_projections.items()
        }

    def attribute_losses(
        self,
        text_features: McsanTextOutput,
        video_features: McsanVideoOutput,
        attribute_labels: torch.Tensor | None = None,
        video_attribute_labels: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The focal BCE on the labels (None without labels) and the KL alignment of matching pairs (caption i with
        video i), each averaged over the attribute levels; (None, None) when no attribute level is enabled.

        Labels are multi-hot `(items, config.num_attributes)` in `config.attribute_slices` layout; the video's
        default to its caption's.
        """
        if not self.attribute_projections:
            return None, None
        return attribute_objective(
            self.config,
            self.predict_attributes(text_features),
            self.predict_attributes(video_features),
            attribute_labels,
            video_attribute_labels,
            kl_temperature=self.config.attribute_kl_temperature,
            kl_distribution=self.config.attribute_kl_distribution,
            kl_symmetric=self.config.attribute_kl_symmetric,
        )


__all__ = ["McsanModel", "McsanPreTrainedModel", "McsanOutput", "McsanTextOutput", "McsanVideoOutput"]
