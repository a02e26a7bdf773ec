"""The stand-in for CLIP's weights (`msam_hf.tiny_clip`): a tiny CLIP pretrained on rendered frames, cached by recipe."""

import json

import numpy as np
import pytest
import torch
from transformers import CLIPModel

from msam_hf import MsamModel
from msam_hf import tiny_clip
from msam_hf.data.synthetic.scene import ENTITY_KINDS
from msam_hf.tiny_clip import TinyClipRecipe
from msam_hf.tiny_clip import pretrain_tiny_clip
from msam_hf.tiny_clip import render_corpus

SMALL = TinyClipRecipe(num_scenes=24, frames_per_scene=2, steps=40, batch_size=16, learning_rate=2e-3)


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return cache, pretrain_tiny_clip(SMALL, cache_dir=cache, num_workers=1, progress=False)


def test_the_stand_in_learns_and_is_a_clip_folder_msam_starts_from(stand_in):
    _, folder = stand_in
    summary = json.loads((folder / "pretraining.json").read_text())
    assert summary["pairs"] == 48 and summary["recipe"]["steps"] == 40
    assert summary["final_loss"] < 0.8 * summary["first_loss"]  # it learns the pairs
    clip = CLIPModel.from_pretrained(folder)
    assert summary["logit_scale"] == pytest.approx(clip.logit_scale.detach().exp().item(), abs=0.01)
    model = MsamModel.from_clip(str(folder), max_frames=2)
    assert model.config.clip_config.vision_config.image_size == 64
    assert np.allclose(model.clip.visual_projection.weight.detach(), clip.visual_projection.weight.detach())


def test_the_stand_in_is_cached_by_recipe(stand_in, monkeypatch):
    cache, folder = stand_in

    def no_rendering(*args, **kwargs):
        raise AssertionError("the cached stand-in should have been returned")

    monkeypatch.setattr(tiny_clip, "render_corpus", no_rendering)
    assert pretrain_tiny_clip(SMALL, cache_dir=cache) == folder
    other = TinyClipRecipe(**{**SMALL.__dict__, "steps": 41})
    assert tiny_clip.recipe_key(other) != tiny_clip.recipe_key(SMALL)
    with pytest.raises(AssertionError, match="cached stand-in"):
        pretrain_tiny_clip(other, cache_dir=cache)
    assert [path.name for path in (cache / "tiny-clip").iterdir()] == [folder.name]  # nothing half-written


def test_the_corpus_depends_on_the_seed_only_and_its_listings_name_every_object():
    recipe = TinyClipRecipe(num_scenes=6, frames_per_scene=2, batch_size=4, drone_caption_fraction=0.0)
    images, captions, listed = render_corpus(recipe, num_workers=1, progress=False)
    again, same_captions, _ = render_corpus(recipe, num_workers=2, progress=False)
    assert images.shape == (12, 64, 64, 3) and images.dtype == np.uint8 and listed.all()
    assert np.array_equal(images, again) and captions == same_captions
    other, _, _ = render_corpus(TinyClipRecipe(**{**recipe.__dict__, "seed": 1}), num_workers=1, progress=False)
    assert not np.array_equal(images, other)
    colours = {colour for spec in ENTITY_KINDS.values() for colour in spec["colours"]}
    for caption in captions:  # listings: "a red sedan, a house with a white roof and two people in blue"
        assert set(caption.replace(",", "").split()) & colours, caption
    _, drone_captions, drone_listed = render_corpus(
        TinyClipRecipe(**{**recipe.__dict__, "drone_caption_fraction": 1.0}), num_workers=1, progress=False
    )
    assert not drone_listed.any() and drone_captions != captions


def test_augmentation_is_one_of_the_eight_symmetries_of_the_square():
    image = torch.arange(3 * 4 * 4).reshape(3, 4, 4)  # (channels, height, width)
    rng = np.random.default_rng(0)
    seen = {tuple(tiny_clip._flipped_and_rotated(image, rng).flatten().tolist()) for _ in range(200)}
    as_array = image.permute(1, 2, 0).numpy()  # the same symmetries, written in numpy on (height, width, channels)
    symmetries = {
        tuple(np.rot90(flipped, k).transpose(2, 0, 1).flatten().tolist())
        for flipped in (as_array, as_array[:, ::-1])
        for k in range(4)
    }
    assert seen == symmetries


def test_a_recipe_that_cannot_run_is_refused():
    with pytest.raises(ValueError, match="batch_size 64 exceeds the corpus"):
        TinyClipRecipe(num_scenes=10, frames_per_scene=2, batch_size=64)
    with pytest.raises(ValueError, match="drone_caption_fraction"):
        TinyClipRecipe(drone_caption_fraction=1.5)
