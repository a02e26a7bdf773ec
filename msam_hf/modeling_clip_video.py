"""What MSAM and MCSAN share: a CLIP backbone (transformers' `CLIPModel`) that encodes captions and sampled frames,
the input checks, the temporal module's blocks, the logit scale, `from_clip`, the initialisation of new modules and
`forward` (encode, score, and the weighted loss of `loss_msam`; each model supplies its features, heads and losses).

`MsamPreTrainedModel` and `McsanPreTrainedModel` subclass `ClipVideoTextPreTrainedModel`, as X-CLIP builds on CLIP's
code. This file travels to the Hub next to the weights: it imports only torch, transformers and `loss_msam`.
"""

import copy
import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPModel
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.models.clip.modeling_clip import CLIPEncoderLayer
from transformers.utils import ModelOutput
from transformers.utils import logging

from .loss_msam import gather_across_processes
from .loss_msam import is_multi_process
from .loss_msam import weighted_loss
from .loss_msam import zero_pad

logger = logging.get_logger(__name__)


@dataclass
class MsamTextOutput(ModelOutput):
    """
    Caption features: what CLIP's text tower gives (`get_backbone_text_features`, of either model) and MSAM's
    `get_text_features`.

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
    Video features: what CLIP's vision tower gives (`get_backbone_video_features`, of either model: `frame_features`,
    `video_mask`, `patch_embeds`) and what MSAM's `get_video_features` adds.

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


def l2_normalize(tensor: torch.Tensor) -> torch.Tensor:
    return F.normalize(tensor, dim=-1)


def masked_mean(tensor: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over dim 1 of `(batch, items, dim)` counting only items where `mask` is 1."""
    mask = mask.to(tensor.dtype).unsqueeze(-1)
    return (tensor * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def mask_logits(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Set logits at masked positions (mask == 0, broadcast over leading dims) to the dtype's minimum."""
    if mask is None:
        return logits
    return logits.masked_fill(mask == 0, torch.finfo(logits.dtype).min)


def concatenate_outputs(parts: list[ModelOutput]) -> ModelOutput:
    """Concatenate text or video outputs of several batches along the batch, zero-padding dim 1 (words, frames) to
    the longest; pooled and per-level embeddings share their dim 1 already, so padding leaves them alone."""
    return type(parts[0])(
        **{
            name: torch.cat([zero_pad(part[name], max(other[name].shape[1] for other in parts)) for part in parts])
            for name in parts[0].keys()
        }
    )


def in_float32(method):
    """Run a model method in float32 under autocast (bf16/fp16 mixed precision), on float32 copies of its floating
    inputs. The towers gain from half precision; the heads and losses do not and are fragile in it: CIFFP's norms are
    expanded from Gram matrices (a²‖p‖² + 2ab⟨p,q⟩ + b²‖q‖²), which cancel, and the semantic branch's KL divides by
    variances. Outside autocast (and for a model cast to bf16 as a whole) the method runs as it is."""

    @functools.wraps(method)
    def in_float32_method(self, *args, **kwargs):
        device_type = self.clip.logit_scale.device.type
        if not torch.is_autocast_enabled(device_type):
            return method(self, *args, **kwargs)
        with torch.autocast(device_type, enabled=False):
            return method(self, *_as_float32(args), **_as_float32(kwargs))

    return in_float32_method


def _as_float32(value):
    """`value` with every floating tensor in it (also inside model outputs, tuples and dicts) as float32."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, ModelOutput):
        return type(value)(**{name: _as_float32(field) for name, field in value.items()})
    if isinstance(value, dict):
        return {name: _as_float32(field) for name, field in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_as_float32(item) for item in value)
    return value


def temporal_layer_config(config):
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


def residual_blocks(
    layers: nn.ModuleList, tokens: torch.Tensor, token_mask: torch.Tensor, position_embeds: torch.Tensor | None
) -> torch.Tensor:
    """CLIP blocks over a padded token set (batch, tokens, D), positions added first, the input added back after
    (CLIP4Clip's seqTransf, msam.md §2); unit-norm out. Attention is not causal; padded tokens are hidden as keys."""
    hidden_states = tokens if position_embeds is None else tokens + position_embeds
    key_mask = token_mask[:, None, None, :].expand(-1, 1, token_mask.shape[1], -1)  # (batch, 1, queries, keys)
    attention_mask = mask_logits(
        torch.zeros(key_mask.shape, dtype=hidden_states.dtype, device=key_mask.device), key_mask
    )
    for layer in layers:
        hidden_states = layer(hidden_states, attention_mask)
    return l2_normalize(hidden_states + tokens)


class MsamTemporalModule(nn.Module):
    """CLIP4Clip's seqTransf (msam.md §2): frame positions, residual attention blocks, residual to the raw frames.
    MSAM's temporal module, and the global level of MCSAN."""

    def __init__(self, config):
        super().__init__()
        layer_config = temporal_layer_config(config)
        self.frame_position_embeddings = nn.Embedding(
            config.clip_config.text_config.max_position_embeddings, config.projection_dim
        )
        self.layers = nn.ModuleList([CLIPEncoderLayer(layer_config) for _ in range(config.temporal_num_layers)])

    def forward(self, frame_features: torch.Tensor, video_mask: torch.Tensor) -> torch.Tensor:
        # frame_features: (videos, frames, dim)
        positions = self.frame_position_embeddings(torch.arange(frame_features.shape[1], device=frame_features.device))
        return residual_blocks(self.layers, frame_features, video_mask, positions)


class AttributeProjection(nn.Linear):
    """P_ℓ: unit-norm embedding → attribute logits of level ℓ, one instance for captions and videos alike (MCSAN's
    parameter sharing); its bias starts at the logit of `config.attribute_prior_probability`."""


class ClipVideoTextPreTrainedModel(PreTrainedModel):
    """A CLIP backbone (`self.clip`) plus new modules scoring captions against videos. Subclasses set `config_class`
    and initialise their own modules in `_init_weights` before deferring here."""

    output_class: type[ModelOutput]  # what `forward` returns, set by each model
    main_input_name = "input_ids"
    input_modalities = ("video", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["CLIPEncoderLayer", "CLIPTextEmbeddings", "CLIPVisionEmbeddings"]

    def __init__(self, config):
        super().__init__(config)
        self.clip = CLIPModel._from_config(config.clip_config)

    @torch.no_grad()
    def _init_weights(self, module):
        # CLIP's own modules are initialised by CLIPModel (a PreTrainedModel of its own); these are the new ones.
        if isinstance(module, AttributeProjection):
            init.normal_(module.weight, std=0.02)
            prior = self.config.attribute_prior_probability
            init.constant_(module.bias, -math.log((1 - prior) / prior))
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, std=0.02)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained`, and the folder also serves `pipeline(model=folder,
        trust_remote_code=True)`: the config names the `video-text-retrieval` pipeline in `custom_pipelines`, and its
        code travels with the model's (it is imported from this file). Save the processor beside it
        (`processor.save_pretrained(folder)`): the pipeline reads it from the same folder."""
        # Imported here, not at the top: it loads transformers' pipelines, which nothing else of the model needs.
        from .pipeline_msam import TASK
        from .pipeline_msam import MsamVideoTextRetrievalPipeline

        self.config.custom_pipelines = {
            TASK: {
                "impl": f"pipeline_msam.{MsamVideoTextRetrievalPipeline.__name__}",
                "pt": ["AutoModel"],
                "type": "multimodal",
            }
        }
        return super().save_pretrained(save_directory, *args, **kwargs)

    def push_to_hub(self, repo_id: str, *args, **kwargs):
        """`PushToHubMixin.push_to_hub`: uploads what `save_pretrained` writes (weights, code, the pipeline's entry).
        `msam push FOLDER REPO` publishes the whole repo instead: also the processor, the Inference Endpoints handler
        and a model card with the evaluation results."""
        logger.warning_once(
            f"{type(self).__name__}.push_to_hub uploads the weights, the code and the pipeline's entry, but not the "
            "processor, the endpoint handler or a model card with results. To publish all of them, save the model "
            "and its processor to a folder and run `msam push FOLDER REPO_ID` (or `msam_hf.push_to_hub`)."
        )
        return super().push_to_hub(repo_id, *args, **kwargs)

    @classmethod
    def from_clip(cls, clip: "str | CLIPModel", **config_kwargs) -> "ClipVideoTextPreTrainedModel":
        """Build the model on pretrained CLIP weights, e.g. `MsamModel.from_clip("openai/clip-vit-base-patch32")`.

        `clip` is a Hub id, a local folder written by `CLIPModel.save_pretrained`, or a `CLIPModel`. The temporal
        module starts from CLIP's text position embedding and first text blocks (msam.md §2); the other new modules
        are initialised randomly. `config_kwargs` set any other field of the model's config.
        """
        if not isinstance(clip, CLIPModel):
            clip = CLIPModel.from_pretrained(clip)
        config = cls.config_class(
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
    def msam_module_names(self) -> list[str]:
        """Names of the modules added on top of CLIP: trained in full under LoRA (PEFT `modules_to_save`). A
        per-level `ModuleDict` is listed by level, as PEFT cannot wrap a `ModuleDict` itself."""
        names = []
        for name, module in self.named_children():
            if isinstance(module, nn.ModuleDict):
                names += [f"{name}.{key}" for key in module]
            elif name != "clip":
                names.append(name)
        return names

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
        self,
        pixel_values_videos: torch.Tensor,
        video_mask: torch.Tensor | None = None,
        return_patch_embeds: bool = False,
    ) -> MsamVideoOutput:
        """CLIP's vision tower alone: the raw frame features f_t (zero at padded frames, which never go through the
        tower) and, on request, the unit-norm projected patch tokens. Only `frame_features`, `video_mask` and
        `patch_embeds` are set; `get_video_features(frame_features=...)` adds what the model's own modules compute."""
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

    def _backbone_text_or_given(
        self,
        input_ids: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        text_embeds: torch.Tensor | None,
        word_embeds: torch.Tensor | None,
    ) -> MsamTextOutput:
        """CLIP's text features of `input_ids`, or a frozen backbone's precomputed `text_embeds` (and `word_embeds`)."""
        if text_embeds is None:
            if input_ids is None:
                raise ValueError("get_text_features needs input_ids, or precomputed text_embeds.")
            return self.get_backbone_text_features(input_ids, attention_mask)
        if input_ids is not None:
            raise ValueError("Pass input_ids or precomputed text_embeds, not both.")
        if word_embeds is not None and attention_mask is None:
            attention_mask = torch.ones(word_embeds.shape[:2], dtype=torch.long, device=word_embeds.device)
        return MsamTextOutput(text_embeds=text_embeds, word_embeds=word_embeds, attention_mask=attention_mask)

    def _backbone_video_or_given(
        self,
        pixel_values_videos: torch.Tensor | None,
        video_mask: torch.Tensor | None,
        return_patch_embeds: bool,
        frame_features: torch.Tensor | None,
        patch_embeds: torch.Tensor | None,
    ) -> MsamVideoOutput:
        """CLIP's frame features of `pixel_values_videos`, or a frozen backbone's precomputed `frame_features` (and
        `patch_embeds`); the video mask defaults to every frame."""
        if frame_features is None:
            if pixel_values_videos is None:
                raise ValueError("get_video_features needs pixel_values_videos, or precomputed frame_features.")
            return self.get_backbone_video_features(pixel_values_videos, video_mask, return_patch_embeds)
        if pixel_values_videos is not None:
            raise ValueError("Pass pixel_values_videos or precomputed frame_features, not both.")
        if video_mask is None:
            video_mask = torch.ones(frame_features.shape[:2], dtype=torch.long, device=frame_features.device)
        return MsamVideoOutput(frame_features=frame_features, video_mask=video_mask, patch_embeds=patch_embeds)

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
    ) -> ModelOutput:
        r"""
        Scores every caption against every video and, with `return_loss`, computes the training loss.

        Args:
            input_ids (`torch.LongTensor` of shape `(texts, length)`): CLIP token ids (the processor's output).
            attention_mask (`torch.LongTensor` of shape `(texts, length)`, *optional*): 1 for tokens, 0 for padding.
            pixel_values_videos (`torch.FloatTensor` of shape `(videos, frames, 3, height, width)`): normalised frames.
            video_mask (`torch.LongTensor` of shape `(videos, frames)`, *optional*): 1 for frames, 0 for padding.
            attribute_labels (`torch.Tensor` of shape `(texts, num_attributes)`, *optional*): multi-hot attribute
                labels of each caption, in `config.attribute_slices` layout, for the auxiliary attribute objective
                (MSAM with an `attribute_vocabulary`; MCSAN's focal BCE).
            video_attribute_labels (`torch.Tensor` of shape `(videos, num_attributes)`, *optional*): the video's
                labels (the union over its captions); defaults to `attribute_labels`.
            return_loss (`bool`, *optional*): compute the training loss; caption i must describe video i.
            text_context_size (`int`, *optional*): MSAM's CIFFP caption set size |J|, every caption of the batch by
                default, as in training; MCSAN's scores do not depend on it.
            gather_global_batch (`bool`, *optional*): in a multi-process run, score against the features of every
                process (with gradients), so logits and the contrastive loss cover the global batch; the losses of
                single pairs stay per process (means over pairs, averaged across processes with the gradients).
            text_embeds, word_embeds, frame_features, patch_embeds (*optional*): a frozen backbone's precomputed
                outputs (`get_backbone_text_features` / `get_backbone_video_features`, e.g. read from
                `msam_hf.feature_cache`) instead of `input_ids` and `pixel_values_videos`.

        Returns:
            The model's `output_class` (`MsamOutput`, `McsanOutput`).
        """
        self._check_paired_inputs(input_ids, text_embeds, pixel_values_videos, frame_features)
        text_outputs = self.get_text_features(
            input_ids, attention_mask, text_embeds=text_embeds, word_embeds=word_embeds
        )
        video_outputs = self.get_video_features(
            pixel_values_videos,
            video_mask,
            frame_features=frame_features,
            patch_embeds=patch_embeds,
            **self._video_feature_options(return_loss),
        )
        outputs = self._paired_outputs(
            text_outputs,
            video_outputs,
            return_loss,
            text_context_size,
            gather_global_batch,
            attribute_labels,
            video_attribute_labels,
        )
        return self.output_class(
            **outputs,
            logits_per_video=outputs["logits_per_text"].T,
            text_embeds=text_outputs.text_embeds,
            video_embeds=video_outputs.video_embeds,
            text_outputs=text_outputs,
            video_outputs=video_outputs,
        )

    def _video_feature_options(self, return_loss: bool | None) -> dict:
        """Extra `get_video_features` arguments of `forward` (a model whose losses read more than its scores)."""
        return {}

    def _paired_outputs(
        self,
        text_outputs: ModelOutput,
        video_outputs: ModelOutput,
        return_loss: bool | None,
        text_context_size: int | None,
        gather_global_batch: bool,
        attribute_labels: torch.Tensor | None,
        video_attribute_labels: torch.Tensor | None,
    ) -> dict[str, torch.Tensor | None]:
        """The output fields `forward` computes from the encoded captions and videos: logits (over the global batch
        with `gather_global_batch` in a multi-process run) and, with `return_loss`, the contrastive loss, the
        per-pair losses of this process (`pair_losses`) and their weighted sum `loss`."""
        scored_text, scored_video = text_outputs, video_outputs
        if gather_global_batch and is_multi_process():
            scored_text, scored_video = gather_across_processes(*self.similarity_inputs(text_outputs, video_outputs))
        outputs = self.contrastive_outputs(scored_text, scored_video, text_context_size, return_loss=bool(return_loss))
        if return_loss:
            parts = self.pair_losses(text_outputs, video_outputs, attribute_labels, video_attribute_labels)
            outputs.update(parts, loss=weighted_loss(self.config, outputs["contrastive_loss"], **parts))
        return outputs

    def _check_paired_inputs(self, input_ids, text_embeds, pixel_values_videos, frame_features) -> None:
        if (input_ids is None and text_embeds is None) or (pixel_values_videos is None and frame_features is None):
            raise ValueError(
                f"{type(self).__name__} needs both input_ids and pixel_values_videos (or a frozen "
                "backbone's text_embeds and frame_features); see get_text_features / get_video_features "
                "to encode one modality."
            )


__all__ = ["ClipVideoTextPreTrainedModel"]
