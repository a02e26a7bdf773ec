"""MCSAN model configuration.

This file travels to the Hub next to the weights: it imports only transformers and `configuration_msam`.
"""

from transformers import CLIPConfig
from transformers import PreTrainedConfig

from .configuration_msam import ATTRIBUTE_LEVELS
from .configuration_msam import ClipVideoTextConfigMixin
from .configuration_msam import check_attribute_loss_options
from .configuration_msam import checked_attribute_vocabulary

LEVELS = ("global", "entity", "action", "relationship")
ENTITY_TOKENS = ("patches", "frames")
KL_DISTRIBUTIONS = ("softmax", "bernoulli")
DEFAULT_ATTRIBUTE_VOCABULARY_SIZES = {"entity": 512, "action": 256, "relationship": 256}


class McsanConfig(ClipVideoTextConfigMixin, PreTrainedConfig):
    r"""
    Configuration of [`McsanModel`]: a CLIP backbone with four semantic levels on both sides (global, entity, action,
    relationship), a cross-modal parameter-shared attribute projection per level, focal binary cross-entropy and KL
    alignment on the attributes, per-level contrastive losses and a weighted multi-level score (Nian et al.,
    "Multi-Level Cross-Modal Semantic Alignment Network for Video-Text Retrieval", Mathematics 2022). The paper's text
    fixes the levels and the losses, not their realisation; the defaults follow `design/mcsan.md` and
    `modeling_mcsan.py` lists every choice.

    Args:
        clip_config (`dict` or `CLIPConfig`, *optional*):
            The CLIP backbone. Defaults to `openai/clip-vit-base-patch32`'s architecture.
        max_frames (`int`, *optional*, defaults to 12):
            Maximum number of frames per video (as MSAM).
        max_text_length (`int`, *optional*, defaults to 32):
            Maximum caption length in CLIP tokens, start and end tokens included.
        levels (`list[str]`, *optional*, defaults to all of `("global", "entity", "action", "relationship")`):
            The semantic levels the model scores and trains; a subset removes levels (the ablation).
        temporal_num_layers (`int`, *optional*, defaults to 4):
            Blocks of the global level's temporal module (MSAM's, initialised from CLIP's first text blocks).
        entity_tokens (`str`, *optional*, defaults to `"patches"`):
            Video tokens of the entity level (and of the relationship level's entity part): `"patches"`, the
            projected patch tokens of every sampled frame (spatial "what"), or `"frames"`, the frame features.
        action_num_layers (`int`, *optional*, defaults to 1):
            Transformer blocks over the frame-difference tokens of the action level.
        relationship_num_layers (`int`, *optional*, defaults to 1):
            Transformer blocks over the union of entity and action tokens of the relationship level.
        attribute_vocabulary (`dict[str, list[str]]`, *optional*):
            The mined attribute vocabulary, `{"entity": [...], "action": [...], "relationship": [...]}` (see
            `msam data attributes`); it fixes the size of each level's attribute projection.
        attribute_vocabulary_sizes (`dict[str, int]`, *optional*, defaults to 512 / 256 / 256):
            Attributes per level when no `attribute_vocabulary` is given.
        level_weights (`list[float]`, *optional*):
            w_ℓ of the score S = λ Σ_ℓ w_ℓ cos(e^v_ℓ, e^t_ℓ), one per entry of `levels`; uniform when omitted.
        learn_level_weights (`bool`, *optional*, defaults to `True`):
            Learn w (a softmax over the levels, starting at `level_weights`) or keep `level_weights` fixed.
        level_contrastive_weight (`float`, *optional*, defaults to 1.0):
            Weight of the mean of the per-level contrastive losses, added to the contrastive loss of the fused score.
        attribute_loss_weight (`float`, *optional*, defaults to 1.0):
            Weight of the focal binary cross-entropy on the attribute labels.
        focal_alpha (`float`, *optional*, defaults to 0.25), focal_gamma (`float`, *optional*, defaults to 2.0):
            α and γ of the focal binary cross-entropy. γ = 0, α = 0.5 is half the plain binary cross-entropy.
        attribute_prior_probability (`float`, *optional*, defaults to 0.01):
            Initial predicted probability of every attribute (the projection's bias), so the rare positives do not
            start out swamped by the negatives.
        kl_loss_weight (`float`, *optional*, defaults to 1.0):
            Weight of the KL term between caption and video attribute predictions.
        attribute_kl_temperature (`float`, *optional*, defaults to 1.0):
            T of the KL term's softmax.
        attribute_kl_distribution (`str`, *optional*, defaults to `"softmax"`):
            `"softmax"`: KL between softmax(z / T) over a level's attributes; `"bernoulli"`: mean KL between the
            per-attribute sigmoid probabilities (a multi-label view).
        attribute_kl_symmetric (`bool`, *optional*, defaults to `False`):
            Average KL(text ‖ video) and KL(video ‖ text) instead of KL(text ‖ video) alone.
        logit_scale_max (`float`, *optional*, defaults to 100.0):
            Clamp of `exp(logit_scale)`, as in CLIP.
        base_clip_model (`str`, *optional*):
            Name or path of the CLIP weights the model was built from, for cards and provenance.
    """

    model_type = "mcsan"
    sub_configs_defaults = {"clip_config": CLIPConfig}

    clip_config: dict | CLIPConfig | None = None
    max_frames: int = 12
    max_text_length: int = 32
    levels: list[str] | None = None
    temporal_num_layers: int = 4
    entity_tokens: str = "patches"
    action_num_layers: int = 1
    relationship_num_layers: int = 1
    attribute_vocabulary: dict[str, list[str]] | None = None
    attribute_vocabulary_sizes: dict[str, int] | None = None
    level_weights: list[float] | None = None
    learn_level_weights: bool = True
    level_contrastive_weight: float = 1.0
    attribute_loss_weight: float = 1.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    attribute_prior_probability: float = 0.01
    kl_loss_weight: float = 1.0
    attribute_kl_temperature: float = 1.0
    attribute_kl_distribution: str = "softmax"
    attribute_kl_symmetric: bool = False
    logit_scale_max: float = 100.0
    base_clip_model: str | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        # Lists and dicts cannot be dataclass defaults: fill them here (saved configs then carry them explicitly).
        self.levels = list(LEVELS) if self.levels is None else list(self.levels)
        unknown = [level for level in self.levels if level not in LEVELS]
        if unknown or not self.levels or len(set(self.levels)) != len(self.levels):
            raise ValueError(
                f"levels must be distinct entries of {', '.join(LEVELS)} (at least one), got {self.levels}."
            )
        self.levels = [level for level in LEVELS if level in self.levels]  # canonical order: weights follow it
        if self.attribute_vocabulary is not None:
            self.attribute_vocabulary = checked_attribute_vocabulary(self.attribute_vocabulary)
            self.attribute_vocabulary_sizes = {level: len(names) for level, names in self.attribute_vocabulary.items()}
        sizes = {**DEFAULT_ATTRIBUTE_VOCABULARY_SIZES, **(self.attribute_vocabulary_sizes or {})}
        if any(not isinstance(sizes[level], int) or sizes[level] < 1 for level in ATTRIBUTE_LEVELS):
            raise ValueError(f"attribute_vocabulary_sizes must be positive integers, got {sizes}.")
        self.attribute_vocabulary_sizes = {level: sizes[level] for level in ATTRIBUTE_LEVELS}
        if self.level_weights is not None:
            self.level_weights = [float(weight) for weight in self.level_weights]
            if (
                len(self.level_weights) != len(self.levels)
                or min(self.level_weights) < 0
                or sum(self.level_weights) <= 0
            ):
                raise ValueError(
                    f"level_weights must be {len(self.levels)} non-negative numbers (one per level of {self.levels}) "
                    f"with a positive sum, got {self.level_weights}."
                )
            if self.learn_level_weights and min(self.level_weights) == 0:
                raise ValueError("learned level weights start from log(level_weights): every weight must be positive.")
        if self.entity_tokens not in ENTITY_TOKENS:
            raise ValueError(f"Unknown entity_tokens={self.entity_tokens!r}; choose one of {', '.join(ENTITY_TOKENS)}.")
        if self.attribute_kl_distribution not in KL_DISTRIBUTIONS:
            raise ValueError(
                f"Unknown attribute_kl_distribution={self.attribute_kl_distribution!r}; choose one of "
                f"{', '.join(KL_DISTRIBUTIONS)}."
            )
        self.check_backbone_limits()
        check_attribute_loss_options(self)
        if self.attribute_kl_temperature <= 0:
            raise ValueError(f"attribute_kl_temperature must be positive, got {self.attribute_kl_temperature}.")

    @property
    def similarity_head(self) -> str:
        """What scores a caption against a video, named like `MsamConfig.similarity_head` so evaluation and reports
        treat both models alike: MCSAN's weighted multi-level score (no frame attention, no caption set)."""
        return "multi_level"

    @property
    def attribute_levels(self) -> list[str]:
        """The levels of `levels` that have an attribute projection."""
        return [level for level in ATTRIBUTE_LEVELS if level in self.levels]


__all__ = ["McsanConfig"]
