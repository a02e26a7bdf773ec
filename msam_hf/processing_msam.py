"""MSAM's processor: CLIP's tokenizer plus MSAM's video processor. This file travels to the Hub next to the weights."""

from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin


class MsamProcessor(ProcessorMixin):
    r"""
    Tokenizes captions (CLIP BPE, truncated to `max_text_length` tokens, start and end included) and turns videos
    into pixel tensors in one call:

    ```python
    >>> inputs = processor(text=["a car parks beside the lake"], videos=[frames], return_tensors="pt")
    >>> sorted(inputs.keys())
    ['attention_mask', 'input_ids', 'pixel_values_videos', 'video_mask']
    ```

    Args:
        image_processor ([`MsamVideoProcessor`]): frames → `pixel_values_videos` and `video_mask`.
        tokenizer ([`CLIPTokenizer`]): CLIP's BPE tokenizer.
        max_text_length (`int`, *optional*, defaults to 32): caption length in tokens (msam.md §1).
    """

    def __init__(self, image_processor=None, tokenizer=None, max_text_length: int = 32, **kwargs):
        self.max_text_length = max_text_length
        super().__init__(image_processor, tokenizer, **kwargs)

    def __call__(self, text=None, videos=None, return_tensors: str | None = "pt", **kwargs) -> BatchFeature:
        if text is None and videos is None:
            raise ValueError("Pass text=, videos= or both.")
        features = {}
        if text is not None:
            if isinstance(text, str):
                text = [text]
            empty = [index for index, caption in enumerate(text) if not isinstance(caption, str) or not caption.strip()]
            if empty:
                raise ValueError(f"caption(s) at index {empty} are empty or not strings.")
            features.update(
                self.tokenizer(
                    text,
                    padding=True,
                    truncation=True,
                    max_length=self.max_text_length,
                    return_tensors=return_tensors,
                )
            )
        if videos is not None:
            features.update(self.image_processor(videos, return_tensors=return_tensors, **kwargs))
        return BatchFeature(features, tensor_type=return_tensors)

    @property
    def model_input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", "pixel_values_videos", "video_mask"]


__all__ = ["MsamProcessor"]
