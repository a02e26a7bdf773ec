"""Frames → normalised pixel tensors for MSAM, the CLIP recipe of msam.md §1.

transformers' video processors need torchvision, which does not work with CPU torch, so this one is an image
processor (Pillow and numpy only) that takes videos. This file travels to the Hub next to the weights.
"""

import numpy as np
import torch
from PIL import Image
from transformers.feature_extraction_utils import BatchFeature
from transformers.image_processing_utils import BaseImageProcessor

OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


class MsamVideoProcessor(BaseImageProcessor):
    r"""
    Turns videos (frames already sampled, e.g. by `msam_hf.video_io.read_frames`) into `pixel_values_videos`
    `(videos, frames, 3, crop_size, crop_size)` and a `video_mask` `(videos, frames)`; shorter videos are padded
    with zero frames and masked.

    Args:
        size (`int`, *optional*, defaults to 224): the short side after the bicubic resize.
        crop_size (`int`, *optional*, defaults to 224): the side of the centre crop.
        num_frames (`int`, *optional*, defaults to 12): videos with more frames are subsampled uniformly to this
            many (CLIP4Clip's `np.linspace` rule).
        image_mean, image_std (`list[float]`, *optional*): normalisation, CLIP's by default.
    """

    model_input_names = ["pixel_values_videos", "video_mask"]

    def __init__(
        self,
        size: int = 224,
        crop_size: int = 224,
        num_frames: int = 12,
        image_mean: list[float] | None = None,
        image_std: list[float] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.size = size
        self.crop_size = crop_size
        self.num_frames = num_frames
        self.image_mean = list(image_mean if image_mean is not None else OPENAI_CLIP_MEAN)
        self.image_std = list(image_std if image_std is not None else OPENAI_CLIP_STD)

    def __call__(self, videos, return_tensors: str | None = "pt", **kwargs) -> BatchFeature:
        return self.preprocess(videos, return_tensors=return_tensors, **kwargs)

    def preprocess(self, videos, return_tensors: str | None = "pt", num_frames: int | None = None) -> BatchFeature:
        """`videos`: one video or a list of videos; a video is a `(frames, height, width, 3)` uint8 array or tensor,
        or a list of PIL images / `(height, width, 3)` uint8 arrays."""
        num_frames = num_frames or self.num_frames
        batch = [self._video_to_frames(video, index) for index, video in enumerate(_as_video_list(videos))]
        batch = [
            frames[np.linspace(0, len(frames) - 1, num=num_frames, dtype=int)] if len(frames) > num_frames else frames
            for frames in batch
        ]
        longest = max(len(frames) for frames in batch)
        pixels = np.zeros((len(batch), longest, 3, self.crop_size, self.crop_size), dtype=np.float32)
        video_mask = np.zeros((len(batch), longest), dtype=np.int64)
        mean = np.asarray(self.image_mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.image_std, dtype=np.float32)[:, None, None]
        for video_index, frames in enumerate(batch):
            for frame_index, frame in enumerate(frames):
                chw = self.resize_and_crop(frame).astype(np.float32).transpose(2, 0, 1) / 255.0
                pixels[video_index, frame_index] = (chw - mean) / std
            video_mask[video_index, : len(frames)] = 1
        return BatchFeature({"pixel_values_videos": pixels, "video_mask": video_mask}, tensor_type=return_tensors)

    def resize_and_crop(self, frame: np.ndarray) -> np.ndarray:
        """One (height, width, 3) uint8 frame resized (short side to `size`, bicubic) and centre-cropped."""
        image = Image.fromarray(frame)
        width, height = image.size
        scale = self.size / min(width, height)
        # Like torchvision's Resize(int): the short side becomes `size`, the long side is truncated.
        new_size = (self.size, int(height * scale)) if width <= height else (int(width * scale), self.size)
        image = image.resize(new_size, Image.BICUBIC)
        left = int(round((new_size[0] - self.crop_size) / 2.0))
        top = int(round((new_size[1] - self.crop_size) / 2.0))
        return np.asarray(image.crop((left, top, left + self.crop_size, top + self.crop_size)))

    @staticmethod
    def _video_to_frames(video, index: int) -> np.ndarray:
        if isinstance(video, torch.Tensor):
            video = video.cpu().numpy()
        if isinstance(video, (list, tuple)):
            if not video:
                raise ValueError(f"video {index} has no frames.")
            video = np.stack(
                [
                    np.asarray(frame.convert("RGB")) if isinstance(frame, Image.Image) else np.asarray(frame)
                    for frame in video
                ]
            )
        if not isinstance(video, np.ndarray) or video.ndim != 4 or video.shape[-1] != 3:
            shape = getattr(video, "shape", type(video).__name__)
            raise ValueError(
                f"video {index} must be frames of shape (frames, height, width, 3), got {shape}; "
                "decode files with msam_hf.video_io.read_frames."
            )
        if video.shape[0] == 0:
            raise ValueError(f"video {index} has no frames.")
        if video.dtype != np.uint8:
            raise ValueError(f"video {index} must hold uint8 RGB values 0-255, got dtype {video.dtype}.")
        return video


def _as_video_list(videos) -> list:
    """One video or a batch of videos → a list of videos."""
    if isinstance(videos, (np.ndarray, torch.Tensor)):
        return list(videos) if videos.ndim == 5 else [videos]
    if isinstance(videos, (list, tuple)) and videos:
        first = videos[0]
        if isinstance(first, Image.Image) or (isinstance(first, (np.ndarray, torch.Tensor)) and first.ndim == 3):
            return [videos]
        return list(videos)
    raise ValueError("videos must be a video (frames, height, width, 3) or a non-empty list of videos.")


__all__ = ["MsamVideoProcessor"]
