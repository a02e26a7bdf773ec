"""Training from a frozen backbone's cached features (`msam_hf.feature_cache`, `train.py --feature_cache_dir`): a
step from the cache is the step from pixels, entries are reused and keyed on what they depend on, and train.py trains
an ordinary model from them."""

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from msam_hf import McsanConfig
from msam_hf import McsanModel
from msam_hf import MsamConfig
from msam_hf import MsamModel
from msam_hf import default_processor
from msam_hf import feature_cache
from msam_hf.data import VideoTextCollator
from msam_hf.data import VideoTextDataset
from msam_hf.data import load_video_text_dataset
from msam_hf.data.synthetic import SynthConfig
from msam_hf.data.synthetic import generate_synthetic_dataset
from msam_hf.evaluation import evaluate_retrieval
from msam_hf.evaluation import extract_features
from msam_hf.feature_cache import CachedFeatureCollator
from msam_hf.feature_cache import CachedFeatureDataset
from msam_hf.feature_cache import encode_split
from msam_hf.feature_cache import retrieval_features
from msam_hf.grad_cache import MODEL_INPUTS

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "training" / "train.py"
VOCABULARY = {"entity": ["car", "boat", "house"], "action": ["drive", "sail"], "relationship": ["car on road"]}


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    config = SynthConfig(
        num_videos=20,
        width=48,
        height=48,
        duration=3.0,
        fps=4.0,
        seed=5,
        videos_per_site=2,
        hard_negative_fraction=0.0,
        split_fractions=(0.6, 0.2, 0.2),
    )
    return generate_synthetic_dataset(tmp_path_factory.mktemp("synth"), config, num_workers=1, progress=False)


def frozen(model):
    model.clip.requires_grad_(False)
    model.clip.logit_scale.requires_grad_(True)
    return model


MODELS = {
    "msam": lambda: MsamModel(MsamConfig.tiny(max_frames=3, semantic_dropout=0.0)),
    # The reference's switches: padded frames and words take part, so padding must match the pixel path exactly.
    "msam-patches-reference-padding": lambda: MsamModel(
        MsamConfig.tiny(
            max_frames=3,
            semantic_dropout=0.0,
            semantic_tokens="patches",
            ciffp_mask_padded_frames=False,
            semantic_mask_padded_tokens=False,
        )
    ),
    "mean": lambda: MsamModel(MsamConfig.tiny(max_frames=3, similarity_head="mean", semantic_loss=False)),
    "mcsan": lambda: McsanModel(McsanConfig.tiny(max_frames=3, attribute_vocabulary=VOCABULARY)),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_a_step_from_cached_features_equals_a_step_from_pixels(name, dataset_dir, tmp_path):
    torch.manual_seed(0)
    model = frozen(MODELS[name]())
    processor = default_processor(model.config)
    train = load_video_text_dataset(dataset_dir)["train"]
    cached = encode_split(model, train, processor, tmp_path, "train", max_frames=3, progress=False)
    rows = [0, 3, 5, 7, 10]
    pixel_batch = VideoTextCollator(processor)([VideoTextDataset(train, max_frames=3, seed=7)[row] for row in rows])
    cached_items = CachedFeatureDataset(cached, seed=7)
    cached_batch = CachedFeatureCollator(cached)([cached_items[row] for row in rows])
    assert cached_batch["captions"] == pixel_batch["captions"]  # the same caption drawn for each video
    assert "pixel_values_videos" not in cached_batch and "input_ids" not in cached_batch

    from_pixels, from_cache = copy.deepcopy(model).train(), copy.deepcopy(model).train()
    expected = from_pixels(**{key: pixel_batch[key] for key in MODEL_INPUTS if key in pixel_batch}, return_loss=True)
    actual = from_cache(**{key: cached_batch[key] for key in MODEL_INPUTS if key in cached_batch}, return_loss=True)
    expected.loss.backward()
    actual.loss.backward()
    torch.testing.assert_close(actual.loss, expected.loss, atol=1e-5, rtol=1e-5)
    trained = 0
    for (parameter_name, reference), parameter in zip(from_pixels.named_parameters(), from_cache.parameters()):
        if reference.grad is None:
            assert parameter.grad is None, parameter_name
            continue
        trained += 1
        torch.testing.assert_close(
            parameter.grad,
            reference.grad,
            atol=1e-5,
            rtol=1e-4,
            msg=lambda message, name=parameter_name: f"{name}: {message}",
        )
    # The logit scale learns, and so do the new modules (`mean` has none).
    assert from_cache.clip.logit_scale.grad is not None and (trained > 1 or name == "mean")


def test_evaluation_from_the_cache_equals_evaluation_from_the_videos(dataset_dir, tmp_path):
    model = MsamModel(MsamConfig.tiny(max_frames=3)).eval()
    processor = default_processor(model.config)
    split = load_video_text_dataset(dataset_dir)["validation"]
    cached = encode_split(model, split, processor, tmp_path, "validation", max_frames=3, progress=False)
    from_videos = extract_features(model, split, processor, max_frames=3, progress=False)
    from_cache = retrieval_features(model, cached)
    assert from_cache.video_ids == from_videos.video_ids and from_cache.captions == from_videos.captions
    torch.testing.assert_close(from_cache.text.text_embeds, from_videos.text.text_embeds, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        model.similarity(from_cache.text, from_cache.video, text_context_size=4),
        model.similarity(from_videos.text, from_videos.video, text_context_size=4),
        atol=1e-4,
        rtol=1e-4,
    )
    assert evaluate_retrieval(model, from_cache)["metrics"] == evaluate_retrieval(model, from_videos)["metrics"]


def test_an_entry_is_reused_and_keyed_on_backbone_sampling_and_data(dataset_dir, tmp_path, monkeypatch):
    model = MsamModel(MsamConfig.tiny(max_frames=3, semantic_loss=False))  # reads frames and sentences only
    processor = default_processor(model.config)
    split = load_video_text_dataset(dataset_dir)["validation"]
    first = encode_split(model, split, processor, tmp_path / "cache", "validation", max_frames=3, progress=False)

    def no_encoding(*args, **kwargs):
        raise AssertionError("the entry should have been read, not encoded again")

    with monkeypatch.context() as patch:
        patch.setattr(feature_cache, "_encode_shard", no_encoding)
        again = encode_split(model, split, processor, tmp_path / "cache", "validation", max_frames=3, progress=False)
        # Training moves the logit scale, not the features: the same entry serves.
        with torch.no_grad():
            model.clip.logit_scale.add_(1.0)
        assert (
            encode_split(model, split, processor, tmp_path / "cache", "validation", max_frames=3, progress=False).path
            == first.path
        )
    assert again.path == first.path
    torch.testing.assert_close(again.frame_features, first.frame_features)
    # An entry with more features (word tokens) is a new one, and then serves a model that reads fewer.
    with_words = encode_split(
        model, split, processor, tmp_path / "cache", "validation", max_frames=3, words=True, progress=False
    )
    assert with_words.path != first.path and with_words.word_embeds is not None
    shutil.rmtree(first.path)
    assert (
        encode_split(model, split, processor, tmp_path / "cache", "validation", max_frames=3, progress=False).path
        == with_words.path
    )

    existing = {first.path, with_words.path}
    other_sampling = encode_split(
        model, split, processor, tmp_path / "cache", "validation", max_frames=2, progress=False
    )
    assert other_sampling.path not in existing and other_sampling.video_mask.shape[1] == 2
    with torch.no_grad():
        model.clip.visual_projection.weight.mul_(2.0)
    assert encode_split(
        model, split, processor, tmp_path / "cache", "validation", max_frames=3, progress=False
    ).path not in existing | {other_sampling.path}
    # A video file that changes is a different split.
    copied = tmp_path / "copied"
    shutil.copytree(dataset_dir, copied)
    edited = load_video_text_dataset(copied)["validation"]
    key = feature_cache.cache_key(model, processor, edited, 1.0, 3)
    video = Path(copied / "Videos" / f"{edited[0]['video_id']}.mp4")
    video.write_bytes(video.read_bytes() + b"\0")
    assert feature_cache.cache_key(model, processor, edited, 1.0, 3) != key


def test_an_interrupted_encoding_is_never_read_and_resumes_from_finished_shards(dataset_dir, tmp_path, monkeypatch):
    model = MsamModel(MsamConfig.tiny(max_frames=3))
    processor = default_processor(model.config)
    split = load_video_text_dataset(dataset_dir)["train"]
    encode_shard = feature_cache._encode_shard
    calls = []

    def fail_on_second_shard(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return encode_shard(*args, **kwargs)

    monkeypatch.setattr(feature_cache, "_encode_shard", fail_on_second_shard)
    with pytest.raises(KeyboardInterrupt):
        encode_split(model, split, processor, tmp_path, "train", max_frames=3, shard_size=5, progress=False)
    assert not [path for path in tmp_path.iterdir() if not path.name.startswith(".")]  # nothing looks finished
    calls.clear()
    monkeypatch.setattr(feature_cache, "_encode_shard", encode_shard)
    resumed = encode_split(model, split, processor, tmp_path, "train", max_frames=3, shard_size=5, progress=False)
    complete = encode_split(
        model, split, processor, tmp_path / "straight", "train", max_frames=3, shard_size=5, progress=False
    )
    assert resumed.video_ids == complete.video_ids == list(split["video_id"])
    torch.testing.assert_close(resumed.frame_features, complete.frame_features)


def test_undecodable_videos_are_left_out_of_training_and_refused_in_evaluation(dataset_dir, tmp_path):
    copied = tmp_path / "data"
    shutil.copytree(dataset_dir, copied)
    split = load_video_text_dataset(copied)["train"]
    broken = split[2]["video_id"]
    (copied / "Videos" / f"{broken}.mp4").write_bytes(b"not a video")
    model = MsamModel(MsamConfig.tiny(max_frames=3))
    processor = default_processor(model.config)
    cached = encode_split(
        model, split, processor, tmp_path / "cache", "train", max_frames=3, skip_undecodable=True, progress=False
    )
    assert cached.skipped_video_ids == (broken,) and broken not in cached.video_ids
    assert len(cached.video_ids) == len(split) - 1 and cached.rows[2] == 3  # rows keep the caption draws aligned
    with pytest.raises(ValueError, match=f"{broken}.*could not be decoded"):
        encode_split(model, split, processor, tmp_path / "cache", "train", max_frames=3, progress=False)


def run_training(*arguments) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TRAIN), *map(str, arguments)], capture_output=True, text=True, timeout=600, cwd=ROOT
    )


def test_train_py_trains_the_new_modules_from_the_cache_and_saves_an_ordinary_model(dataset_dir, tmp_path):
    clip = MsamModel(MsamConfig.tiny()).clip
    clip.save_pretrained(tmp_path / "clip")
    common = [
        "--data_dir",
        dataset_dir,
        "--clip_model",
        tmp_path / "clip",
        "--batch_size",
        "4",
        "--num_workers",
        "0",
        "--log_with",
        "none",
        "--max_frames",
        "3",
        "--num_epochs",
        "2",
        "--feature_cache_dir",
        tmp_path / "features",
    ]
    refused = run_training(*common, "--output_dir", tmp_path / "refused")
    assert refused.returncode != 0 and "needs --finetune frozen" in refused.stderr

    result = run_training(*common, "--finetune", "frozen", "--output_dir", tmp_path / "run")
    assert result.returncode == 0, result.stderr[-4000:]
    assert "train features: 12 videos, 60 captions" in result.stdout
    assert "epoch 1: validation text-to-video R@1" in result.stdout
    trained = MsamModel.from_pretrained(tmp_path / "run" / "final")
    assert type(trained) is MsamModel and trained.config.similarity_head == "ciffp"
    best = json.loads((tmp_path / "run" / "best" / "eval_results.json").read_text())
    assert best["split"] == "validation" and best["num_videos"] == 4
    # The towers are the pretrained CLIP's, bit for bit; its logit scale learned with the new modules.
    for tower in ("vision_model", "text_model", "visual_projection", "text_projection"):
        torch.testing.assert_close(
            getattr(trained.clip, tower).state_dict(), getattr(clip, tower).state_dict(), atol=0, rtol=0
        )
    assert trained.clip.logit_scale.item() != clip.logit_scale.item()
    entries = sorted(path.name.split("-")[0] for path in (tmp_path / "features").iterdir())
    assert entries == ["train", "validation"]

    again = run_training(*common, "--finetune", "frozen", "--output_dir", tmp_path / "again")
    assert again.returncode == 0 and "encoding" not in again.stderr  # both splits read from the cache
