"""VideoTextDataset + VideoTextCollator with the real processor: caption draws, eval batches, workers, bad videos."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from msam_hf import default_processor
from msam_hf.data import VideoTextCollator
from msam_hf.data import VideoTextDataset
from msam_hf.data import load_video_text_dataset
from msam_hf.video_io import VideoDecodeError

IMAGE_SIZE = 32
CAPTIONS = {
    f"clip_{index}": [f"caption {caption} of clip {index}" for caption in range(1 + index % 3)] for index in range(8)
}


@pytest.fixture(scope="module")
def processor():
    return default_processor(image_size=IMAGE_SIZE)


@pytest.fixture
def split(make_videofolder):
    return load_video_text_dataset(make_videofolder(CAPTIONS))["train"]


def test_training_draws_one_caption_per_video_reproducibly_and_per_epoch(split):
    dataset = VideoTextDataset(split, mode="train", seed=7)
    draws = {}
    for epoch in range(4):
        dataset.set_epoch(epoch)
        draws[epoch] = [dataset[index]["caption_indices"][0] for index in range(len(dataset))]
    dataset.set_epoch(0)
    assert [dataset[index]["caption_indices"][0] for index in range(len(dataset))] == draws[0]
    assert len({tuple(draw) for draw in draws.values()}) > 1  # the draw changes with the epoch
    assert all(0 <= pick < len(CAPTIONS[f"clip_{index}"]) for index, pick in enumerate(draws[1]))
    item = dataset[4]
    assert item["captions"] == [CAPTIONS["clip_4"][item["caption_indices"][0]]]
    assert item["frames"].ndim == 4 and item["frames"].shape[0] == 2  # 2 s at 1 fps


def test_training_batches_hold_one_caption_per_video(split, processor):
    loader = DataLoader(VideoTextDataset(split, mode="train"), batch_size=3, collate_fn=VideoTextCollator(processor))
    batch = next(iter(loader))
    assert batch["video_ids"] == ["clip_0", "clip_1", "clip_2"]
    assert batch["pixel_values_videos"].shape == (3, 2, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert batch["video_mask"].tolist() == [[1, 1]] * 3
    assert batch["input_ids"].shape[0] == 3 and batch["attention_mask"].shape == batch["input_ids"].shape
    assert batch["caption_to_video"].tolist() == [0, 1, 2]
    assert batch["video_indices"].tolist() == [0, 1, 2]
    assert batch["skipped_video_ids"] == []


def test_evaluation_batches_hold_videos_once_and_every_caption(split, processor):
    loader = DataLoader(VideoTextDataset(split, mode="eval"), batch_size=4, collate_fn=VideoTextCollator(processor))
    batches = list(loader)
    first = batches[0]
    # clip_0..3 have 1, 2, 3, 1 captions.
    assert first["pixel_values_videos"].shape[0] == 4
    assert first["input_ids"].shape[0] == 7
    assert first["caption_to_video"].tolist() == [0, 1, 1, 2, 2, 2, 3]
    assert first["caption_indices"].tolist() == [0, 0, 1, 0, 1, 2, 0]
    assert first["captions"][5] == CAPTIONS["clip_2"][2]
    assert sum(len(batch["video_ids"]) for batch in batches) == 8
    assert sum(len(batch["captions"]) for batch in batches) == sum(len(texts) for texts in CAPTIONS.values())


@pytest.mark.parametrize("cached", [False, True], ids=["decoded", "frame-cache"])
def test_two_workers_give_the_same_batches_as_the_main_process(split, processor, cached, tmp_path):
    def batches(num_workers):
        dataset = VideoTextDataset(split, mode="train", seed=3, frame_cache_dir=tmp_path / "cache" if cached else None)
        dataset.set_epoch(2)
        loader = DataLoader(dataset, batch_size=3, num_workers=num_workers, collate_fn=VideoTextCollator(processor))
        return [(batch["video_ids"], batch["captions"], batch["pixel_values_videos"]) for batch in loader]

    single, parallel = batches(0), batches(2)
    assert [ids for ids, _, _ in single] == [ids for ids, _, _ in parallel]
    assert [captions for _, captions, _ in single] == [captions for _, captions, _ in parallel]
    for (_, _, pixels), (_, _, parallel_pixels) in zip(single, parallel):
        torch.testing.assert_close(pixels, parallel_pixels)
    assert len(list(tmp_path.rglob("*.npz"))) == (len(split) if cached else 0)  # workers filled one cache


def test_frames_from_the_cache_equal_freshly_decoded_ones(split, tmp_path):
    fresh = VideoTextDataset(split, mode="eval")
    for _ in range(2):  # the first pass writes the cache, the second reads it
        cached = VideoTextDataset(split, mode="eval", frame_cache_dir=tmp_path)
        for index in range(len(split)):
            np.testing.assert_array_equal(cached[index]["frames"], fresh[index]["frames"])
            np.testing.assert_array_equal(cached[index]["timestamps"], fresh[index]["timestamps"])


def test_a_broken_video_is_skipped_in_training_and_raises_in_evaluation(make_videofolder, processor, caplog):
    root = make_videofolder({"good_a": ["a"], "broken": ["b"], "good_b": ["c"]})
    (root / "broken.mp4").write_bytes(b"not a video at all")
    split = load_video_text_dataset(root)["train"]

    collate = VideoTextCollator(processor)
    batch = collate([VideoTextDataset(split, mode="train")[index] for index in range(3)])
    assert batch["video_ids"] == ["good_a", "good_b"]
    assert batch["skipped_video_ids"] == ["broken"]
    assert batch["pixel_values_videos"].shape[0] == 2 and batch["input_ids"].shape[0] == 2
    assert "broken" in caplog.text

    only_broken = collate([VideoTextDataset(split, mode="train")[1]])
    assert only_broken == {"video_ids": [], "skipped_video_ids": ["broken"]}

    with pytest.raises(VideoDecodeError, match="video id 'broken'"):
        VideoTextDataset(split, mode="eval")[1]


def test_rows_without_a_video_file_are_refused_until_selected_away(make_videofolder):
    split = load_video_text_dataset(make_videofolder({"gone": ["y"], "a": ["x"]}, without_file=("gone",)))["train"]
    with pytest.raises(ValueError, match="gone"):
        VideoTextDataset(split)
    with_files = VideoTextDataset(split.select([1]))
    assert len(with_files) == 1 and with_files[0]["video_id"] == "a"


def test_unknown_mode_is_refused(split):
    with pytest.raises(ValueError, match="mode"):
        VideoTextDataset(split, mode="inference")


def test_attribute_labels_per_caption_and_per_video_over_all_its_captions(make_videofolder, processor):
    from msam_hf.data.attributes import AttributeVocabulary

    vocabulary = AttributeVocabulary(
        levels={
            "entity": ["car", "boat", "lake"],
            "action": ["drive"],
            "relationship": ["car on road", "boat on lake"],
        },
        counts={"entity": [], "action": [], "relationship": []},
        tagger_name="lexicon",
    )
    captions = {"road": ["a red car drives on the road", "a boat on the lake"], "lake": ["the lake"]}
    split = load_video_text_dataset(make_videofolder(captions))["train"]
    collate = VideoTextCollator(processor, attribute_vocabulary=vocabulary)
    # columns: car boat lake | drive | car-on-road boat-on-lake
    expected = {
        "a red car drives on the road": [1, 0, 0, 1, 1, 0],
        "a boat on the lake": [0, 1, 1, 0, 0, 1],
        "the lake": [0, 0, 1, 0, 0, 0],
    }

    dataset = VideoTextDataset(split, mode="train")
    batch = collate([dataset[0], dataset[1]])
    assert batch["attribute_labels"].tolist() == [expected[caption] for caption in batch["captions"]]
    # The video's row is the union over all its captions, whichever caption was drawn.
    assert batch["video_attribute_labels"].tolist() == [[1, 1, 1, 1, 1, 1], [0, 0, 1, 0, 0, 0]]
    assert batch["attribute_labels"].dtype == torch.float32

    eval_batch = collate([VideoTextDataset(split, mode="eval")[index] for index in range(2)])
    assert eval_batch["attribute_labels"].tolist() == [expected[caption] for caption in eval_batch["captions"]]
    assert eval_batch["video_attribute_labels"].shape == (2, 6)
    assert "attribute_labels" not in VideoTextCollator(processor)([dataset[0]])  # no vocabulary, no labels
