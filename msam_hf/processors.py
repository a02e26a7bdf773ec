"""Ready-made processors that work offline: the package ships CLIP's real vocabulary (see clip_vocab/LICENSE)."""

from pathlib import Path

from transformers import CLIPTokenizer

from .configuration_msam import MsamConfig
from .processing_msam import MsamProcessor
from .video_processing_msam import MsamVideoProcessor

CLIP_VOCAB_DIR = Path(__file__).parent / "clip_vocab"


def default_tokenizer() -> CLIPTokenizer:
    """OpenAI CLIP's BPE tokenizer (49408 tokens), from the vocabulary shipped in this package."""
    # from_pretrained(folder) rather than CLIPTokenizer(vocab_file=...): transformers 5 ignores those keywords.
    return CLIPTokenizer.from_pretrained(CLIP_VOCAB_DIR)


def default_processor(config: MsamConfig | None = None, image_size: int | None = None) -> MsamProcessor:
    """The processor for a model: CLIP's tokenizer plus frames resized and cropped to the vision tower's input size.

    With neither argument it matches CLIP ViT-B/32 (224 px, 12 frames, 32 tokens).
    """
    config = config or MsamConfig()
    image_size = image_size or config.clip_config.vision_config.image_size
    video_processor = MsamVideoProcessor(size=image_size, crop_size=image_size, num_frames=config.max_frames)
    return MsamProcessor(video_processor, default_tokenizer(), max_text_length=config.max_text_length)
