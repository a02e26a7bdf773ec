"""MSAM model configuration.

This file travels to the Hub next to the weights: it imports only transformers.
"""

from transformers import CLIPConfig
from transformers import PreTrainedConfig

SIMILARITY_HEADS = ("mean", "seq_transformer", "attention", "ciffp")
SEMANTIC_TOKENS = ("frames", "patches")

# A small CLIP for tests, the demo and CPU training from scratch; the vocabulary stays CLIP's real 49408 tokens.
TINY_CLIP_CONFIG = {
    "projection_dim": 128,
    "text_config": {
        "hidden_size": 128,
        "intermediate_size": 512,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "max_position_embeddings": 77,
    },
    "vision_config": {
        "hidden_size": 128,
        "intermediate_size": 512,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "image_size": 64,
        "patch_size": 8,
    },
}


# Levels with attribute supervision (MCSAN's, and MSAM's optional auxiliary objective), in label-vector order.
ATTRIBUTE_LEVELS = ("entity", "action", "relationship")


def checked_attribute_vocabulary(vocabulary: dict) -> dict[str, list[str]]:
    """The three levels of a mined vocabulary as lists, or a clear error for a level without attributes."""
    missing = [level for level in ATTRIBUTE_LEVELS if not vocabulary.get(level)]
    if missing:
        raise ValueError(
            f"attribute_vocabulary has no attributes for level(s) {missing}; mine one with "
            "`msam data attributes DATA --out vocab.json` and pass its `levels`."
        )
    return {level: list(vocabulary[level]) for level in ATTRIBUTE_LEVELS}


def check_attribute_loss_options(config: PreTrainedConfig) -> None:
    if not 0 < config.attribute_prior_probability < 1:
        raise ValueError(f"attribute_prior_probability must be in (0, 1), got {config.attribute_prior_probability}.")
    if not 0 <= config.focal_alpha <= 1 or config.focal_gamma < 0:
        raise ValueError(
            f"focal_alpha must be in [0, 1] and focal_gamma >= 0, got {config.focal_alpha}, {config.focal_gamma}."
        )


def attribute_slices(sizes: dict[str, int]) -> dict[str, slice]:
    """Entity, action and relationship attributes concatenated, in that order: each level's slice."""
    slices, start = {}, 0
    for level in ATTRIBUTE_LEVELS:
        if level in sizes:
            slices[level] = slice(start, start + sizes[level])
            start += sizes[level]
    return slices


class ClipVideoTextConfigMixin:
    """What `MsamConfig` and `McsanConfig` share about the CLIP backbone, the frame and text limits and the attribute
    label layout (each config declares its own fields)."""

    def check_backbone_limits(self) -> None:
        """max_frames and max_text_length within the positions of CLIP's text tower (the temporal module takes its
        frame positions from CLIP's text position embedding)."""
        positions = self.clip_config.text_config.max_position_embeddings
        if not 1 <= self.max_frames <= positions:
            raise ValueError(
                f"max_frames={self.max_frames} must be between 1 and the {positions} frame positions that the "
                "temporal module takes from CLIP's text position embedding."
            )
        if not 2 <= self.max_text_length <= positions:
            raise ValueError(f"max_text_length={self.max_text_length} must be between 2 and {positions}.")

    @property
    def projection_dim(self) -> int:
        """D, the joint embedding width (512 for CLIP ViT-B/32)."""
        return self.clip_config.projection_dim

    @property
    def attribute_slices(self) -> dict[str, slice]:
        """Where each level's attributes sit in a label vector: entity, action, relationship, concatenated."""
        return attribute_slices(self.attribute_vocabulary_sizes)

    @property
    def num_attributes(self) -> int:
        """Length of a label vector."""
        return sum(self.attribute_vocabulary_sizes.values())

    @classmethod
    def tiny(cls, **kwargs):
        """A small random-weight preset for tests, the demo and training from scratch on a CPU."""
        return cls(clip_config=TINY_CLIP_CONFIG, **kwargs)


class MsamConfig(ClipVideoTextConfigMixin, PreTrainedConfig):
    r"""
    Configuration of [`MsamModel`]: a CLIP backbone plus MSAM's temporal module, similarity head and semantic branch
    (Multi-Semantic Adaptive Mining, arXiv 2510.15470). Every default is the paper's reference value.

    Args:
        clip_config (`dict` or `CLIPConfig`, *optional*):
            The CLIP backbone. Defaults to `openai/clip-vit-base-patch32`'s architecture.
        similarity_head (`str`, *optional*, defaults to `"ciffp"`):
            How a caption is scored against a video: `"mean"` (CLIP4Clip meanP), `"seq_transformer"` (CLIP4Clip
            seqTransf), `"attention"` (X-Pool-style text-conditioned pooling) or `"ciffp"` (MSAM's cross-modal
            interactive feature fusion pooling).
        max_frames (`int`, *optional*, defaults to 12):
            Maximum number of frames per video (1 fps, uniformly subsampled beyond this).
        max_text_length (`int`, *optional*, defaults to 32):
            Maximum caption length in CLIP tokens, start and end tokens included.
        temporal_num_layers (`int`, *optional*, defaults to 4):
            Residual attention blocks of the temporal module, initialised from the first text blocks of CLIP.
        frame_attention_temperature (`float`, *optional*, defaults to 0.01):
            τ of CIFFP's frame attention softmax over frames (msam.md §3 step 1).
        caption_attention_temperature (`float`, *optional*, defaults to 0.01):
            τ of CIFFP's caption attention softmax over the caption set J (msam.md §3 step 3).
        ciffp_score_scale (`float`, *optional*, defaults to 0.4):
            γ, the factor on CIFFP's cosine score.
        ciffp_gate_divisor (`float`, *optional*, defaults to 0.7):
            The gate is `sigmoid(MLP(p)) / ciffp_gate_divisor`.
        ciffp_mask_padded_frames (`bool`, *optional*, defaults to `True`):
            Mask padded frames in CIFFP's frame attention. The reference code does not (its padded frames are encoded
            black images); `False` lets padded frame slots take part, for reference compatibility.
        semantic_loss (`bool`, *optional*, defaults to `True`):
            Train with the adaptive semantic construction branch (distribution and diversity terms). Inference never
            uses it.
        semantic_tokens (`str`, *optional*, defaults to `"frames"`):
            Video tokens of the semantic branch: `"frames"` (frame features, as the reference code) or `"patches"`
            (region tokens from the vision tower's patch grid, as the paper's text describes).
        semantic_mask_padded_tokens (`bool`, *optional*, defaults to `True`):
            Mask padded words and frames in the slot attention. The reference does not; `False` reproduces it.
        semantic_num_slots (`int`, *optional*, defaults to 7):
            K, the number of semantic slots per video and per caption.
        semantic_hidden_size (`int`, *optional*, defaults to 256):
            H, the width of the slot attention.
        semantic_dropout (`float`, *optional*, defaults to 0.2):
            Dropout on the slot gates.
        distribution_mu_hidden_size (`int`, *optional*, defaults to 256):
            Hidden width of the shared μ head.
        distribution_sigma_hidden_size (`int`, *optional*, defaults to 64):
            Hidden width of the shared σ head.
        distribution_loss_weight (`float`, *optional*, defaults to 1.0):
            Weight of the KL term between video and caption slot distributions.
        diversity_loss_weight (`float`, *optional*, defaults to 0.01):
            Weight of the slot diversity term.
        attention_head_dropout (`float`, *optional*, defaults to 0.3):
            Dropout of the `"attention"` (X-Pool) head, X-Pool's default.
        attribute_vocabulary (`dict[str, list[str]]`, *optional*):
            Turns on the auxiliary attribute objective (MCSAN's, on MSAM's global embeddings; not in the MSAM paper):
            the mined vocabulary `{"entity": [...], "action": [...], "relationship": [...]}` of `msam data
            attributes`. `None` (the default) trains MSAM as the paper does.
        attribute_loss_weight (`float`, *optional*, defaults to 1.0):
            Weight of the focal binary cross-entropy on the attribute labels.
        kl_loss_weight (`float`, *optional*, defaults to 1.0):
            Weight of the KL term between caption and video attribute predictions (softmax over a level's
            attributes, KL(text ‖ video), as MCSAN's default).
        focal_alpha (`float`, *optional*, defaults to 0.25), focal_gamma (`float`, *optional*, defaults to 2.0):
            α and γ of the focal binary cross-entropy.
        attribute_prior_probability (`float`, *optional*, defaults to 0.01):
            Initial predicted probability of every attribute (the projections' bias).
        logit_scale_max (`float`, *optional*, defaults to 100.0):
            Clamp of `exp(logit_scale)`, as in CLIP.
        base_clip_model (`str`, *optional*):
            Name or path of the CLIP weights the model was built from, for cards and provenance.
    """

    model_type = "msam"
    sub_configs_defaults = {"clip_config": CLIPConfig}

    clip_config: dict | CLIPConfig | None = None
    similarity_head: str = "ciffp"
    max_frames: int = 12
    max_text_length: int = 32
    temporal_num_layers: int = 4
    frame_attention_temperature: float = 0.01
    caption_attention_temperature: float = 0.01
    ciffp_score_scale: float = 0.4
    ciffp_gate_divisor: float = 0.7
    ciffp_mask_padded_frames: bool = True
    semantic_loss: bool = True
    semantic_tokens: str = "frames"
    semantic_mask_padded_tokens: bool = True
    semantic_num_slots: int = 7
    semantic_hidden_size: int = 256
    semantic_dropout: float = 0.2
    distribution_mu_hidden_size: int = 256
    distribution_sigma_hidden_size: int = 64
    distribution_loss_weight: float = 1.0
    diversity_loss_weight: float = 0.01
    attention_head_dropout: float = 0.3
    attribute_vocabulary: dict[str, list[str]] | None = None
    attribute_loss_weight: float = 1.0
    kl_loss_weight: float = 1.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    attribute_prior_probability: float = 0.01
    logit_scale_max: float = 100.0
    base_clip_model: str | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.similarity_head not in SIMILARITY_HEADS:
            raise ValueError(
                f"Unknown similarity_head={self.similarity_head!r}; choose one of {', '.join(SIMILARITY_HEADS)}."
            )
        if self.semantic_tokens not in SEMANTIC_TOKENS:
            raise ValueError(
                f"Unknown semantic_tokens={self.semantic_tokens!r}; choose one of {', '.join(SEMANTIC_TOKENS)}."
            )
        self.check_backbone_limits()
        for name in ("frame_attention_temperature", "caption_attention_temperature", "ciffp_gate_divisor"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}.")
        if self.attribute_vocabulary is not None:
            self.attribute_vocabulary = checked_attribute_vocabulary(self.attribute_vocabulary)
        check_attribute_loss_options(self)

    @property
    def uses_temporal_module(self) -> bool:
        return self.similarity_head in ("seq_transformer", "ciffp")

    @property
    def attribute_levels(self) -> list[str]:
        """The levels with an attribute projection: all three with an `attribute_vocabulary`, none without."""
        return list(ATTRIBUTE_LEVELS) if self.attribute_vocabulary else []

    @property
    def attribute_vocabulary_sizes(self) -> dict[str, int]:
        return {level: len(self.attribute_vocabulary[level]) for level in self.attribute_levels}


__all__ = ["MsamConfig"]
