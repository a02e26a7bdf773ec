"""Processor: CLIP tokenization with the shipped vocabulary, and frames → CLIP-normalised pixel tensors."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoProcessor

from msam_hf import MsamConfig
from msam_hf import MsamProcessor
from msam_hf import MsamVideoProcessor
from msam_hf import default_processor
from msam_hf import default_tokenizer
from msam_hf.processors import CLIP_VOCAB_DIR

REPO = Path(__file__).resolve().parents[1]
SHARED_BPE = REPO.parent / "shared" / "data" / "clip_bpe" / "bpe_simple_vocab_16e6.txt.gz"


def test_tokenizer_gives_openai_clip_ids():
    tokenizer = default_tokenizer()
    assert len(tokenizer) == 49408
    # Reference ids of OpenAI CLIP's tokenizer for this caption.
    assert tokenizer("a photo of a cat")["input_ids"] == [49406, 320, 1125, 539, 320, 2368, 49407]


@pytest.mark.skipif(
    not SHARED_BPE.exists(), reason="needs ../shared/data/clip_bpe (the development checkout's reference data)"
)
def test_shipped_vocabulary_is_exactly_what_the_build_script_makes_from_openai_bpe(tmp_path):
    from msam_hf.clip_vocab.build import write_vocab

    write_vocab(SHARED_BPE, tmp_path)
    for name in ("vocab.json", "merges.txt"):
        assert (tmp_path / name).read_bytes() == (CLIP_VOCAB_DIR / name).read_bytes(), name


def test_captions_are_truncated_to_max_text_length_and_keep_the_end_token():
    processor = default_processor(MsamConfig.tiny())
    long_caption = " ".join(["a boat sails past a long white bridge over the river"] * 6)
    batch = processor(text=[long_caption, "a car"])
    assert batch["input_ids"].shape == (2, 32)
    assert batch["input_ids"][0, -1] == 49407
    assert batch["attention_mask"][1].tolist() == [1, 1, 1, 1] + [0] * 28


def test_frames_are_resized_cropped_and_normalised_like_clip():
    processor = MsamVideoProcessor(size=32, crop_size=32)
    frame = np.random.default_rng(0).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    pixels = processor([frame[None]])["pixel_values_videos"]
    # Short side 48 → 32 (bicubic), long side 80 → 53, then the centre 32×32.
    resized = np.asarray(Image.fromarray(frame).resize((53, 32), Image.BICUBIC)).astype(np.float32) / 255
    left = round((53 - 32) / 2)
    expected = (resized[:, left : left + 32] - np.array(processor.image_mean)) / np.array(processor.image_std)
    assert pixels.shape == (1, 1, 3, 32, 32)
    torch.testing.assert_close(pixels[0, 0], torch.tensor(expected.transpose(2, 0, 1), dtype=torch.float32))


def test_videos_are_padded_masked_and_subsampled_uniformly():
    processor = MsamVideoProcessor(size=16, crop_size=16, num_frames=4)
    # Each frame is a flat grey level equal to its index, so the chosen frames can be read back.
    long_video = np.stack([np.full((20, 20, 3), index, dtype=np.uint8) for index in range(10)])
    short_video = [Image.new("RGB", (30, 20), color=(200, 10, 10))] * 2
    batch = processor([long_video, short_video])
    assert batch["pixel_values_videos"].shape == (2, 4, 3, 16, 16)
    assert batch["video_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch["pixel_values_videos"][1, 2:].abs().sum() == 0
    grey = batch["pixel_values_videos"][0, :, 0, 0, 0] * processor.image_std[0] + processor.image_mean[0]
    chosen = torch.round(grey * 255).tolist()
    assert chosen == np.linspace(0, 9, num=4, dtype=int).tolist() == [0, 3, 6, 9]


@pytest.mark.parametrize(
    "videos, message",
    [
        (np.zeros((3, 10, 10), dtype=np.uint8), "shape"),
        ([np.zeros((2, 10, 10, 3), dtype=np.float32)], "uint8"),
        ([np.zeros((0, 10, 10, 3), dtype=np.uint8)], "no frames"),
        ([], "non-empty"),
    ],
)
def test_bad_videos_raise_a_clear_value_error(videos, message):
    with pytest.raises(ValueError, match=message):
        MsamVideoProcessor()(videos)


def test_empty_caption_raises_a_clear_value_error():
    with pytest.raises(ValueError, match=r"index \[1\]"):
        default_processor()(text=["a car", "  "])


def test_processor_saves_and_loads_through_auto_processor(tmp_path):
    processor = default_processor(MsamConfig.tiny())
    processor.save_pretrained(tmp_path)
    reloaded = AutoProcessor.from_pretrained(tmp_path, trust_remote_code=True)
    assert reloaded.max_text_length == 32
    assert reloaded.image_processor.crop_size == 64
    video = np.random.default_rng(1).integers(0, 256, (3, 50, 70, 3), dtype=np.uint8)
    expected, result = processor(text=["a car"], videos=[video]), reloaded(text=["a car"], videos=[video])
    for key in ("input_ids", "attention_mask", "pixel_values_videos", "video_mask"):
        assert torch.equal(result[key], expected[key]), key
    assert isinstance(processor, MsamProcessor)
