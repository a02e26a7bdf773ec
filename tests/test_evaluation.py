"""Evaluation: features of a split, the |J| caption sets, and `msam evaluate`'s report."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from msam_hf import MsamConfig
from msam_hf import MsamModel
from msam_hf import default_processor
from msam_hf.cli import main as msam
from msam_hf.data import load_video_text_dataset
from msam_hf.data.synthetic import SynthConfig
from msam_hf.data.synthetic import generate_synthetic_dataset
from msam_hf.evaluation import evaluate_retrieval
from msam_hf.evaluation import extract_features


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    # one video per site: exact split sizes
    config = SynthConfig(
        num_videos=10,
        width=48,
        height=48,
        duration=3.0,
        fps=2.0,
        seed=5,
        split_fractions=(0.4, 0.1, 0.5),
        videos_per_site=1,
        hard_negative_fraction=0.0,
    )
    return generate_synthetic_dataset(tmp_path_factory.mktemp("synth"), config, num_workers=1, progress=False)


@pytest.fixture(scope="module")
def model() -> MsamModel:
    torch.manual_seed(0)
    return MsamModel(MsamConfig.tiny(max_frames=3)).eval()


@pytest.fixture(scope="module")
def features(model, dataset_dir):
    test = load_video_text_dataset(dataset_dir)["test"]
    return extract_features(model, test, default_processor(model.config), batch_size=2, progress=False)


def test_features_cover_the_split_in_order(features, dataset_dir):
    test = load_video_text_dataset(dataset_dir)["test"]
    assert features.video_ids == test["video_id"]
    assert features.captions == [caption for captions in test["captions"] for caption in captions]
    expected = [video for video, captions in enumerate(test["captions"]) for _ in captions]
    assert features.caption_to_video.tolist() == expected


def test_batched_features_score_like_one_forward_pass(model, features, dataset_dir):
    # Batches pad frames and words differently; padding is masked, so scores equal a single pass over everything.
    test = load_video_text_dataset(dataset_dir)["test"]
    from msam_hf.data import VideoTextCollator
    from msam_hf.data import VideoTextDataset

    items = [VideoTextDataset(test, mode="eval", max_frames=3)[i] for i in range(len(test))]
    batch = VideoTextCollator(default_processor(model.config))(items)
    with torch.no_grad():
        expected = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            pixel_values_videos=batch["pixel_values_videos"],
            video_mask=batch["video_mask"],
            text_context_size=1,
        ).logits_per_text
        actual = model.similarity(features.text, features.video, text_context_size=1)
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=1e-5)


def test_caption_sets_are_consecutive_blocks_in_split_order(model, features):
    with torch.no_grad():
        scores = model.similarity(features.text, features.video, text_context_size=4)
        for start in (0, 4, 8):
            block = type(features.text)(**{name: value[start : start + 4] for name, value in features.text.items()})
            alone = model.similarity(block, features.video, text_context_size=None)
            torch.testing.assert_close(scores[start : start + 4], alone, atol=1e-5, rtol=1e-5)
        # the caption set matters for CIFFP: |J| = 4 and |J| = 1 differ
        assert not torch.allclose(scores, model.similarity(features.text, features.video, text_context_size=1))


def test_evaluate_retrieval_reports_each_caption_set_size(model, features):
    results = evaluate_retrieval(model, features, text_context_sizes=(4, 1), ties="mean")
    assert results["primary"] == "|J|=4" and list(results["metrics"]) == ["|J|=4", "|J|=1"]
    assert results["num_videos"] == len(features.video_ids) and results["ties"] == "mean"
    curve = results["recall_curve"]["|J|=1"]
    assert len(curve) == len(features.video_ids) and curve[-1] == 100.0
    assert curve[0] == pytest.approx(results["metrics"]["|J|=1"]["t2v_r1"])
    assert all(later >= earlier for earlier, later in zip(curve, curve[1:]))


def test_msam_evaluate_writes_json_markdown_and_plots(model, dataset_dir, tmp_path, capsys):
    folder = tmp_path / "tiny-msam"
    model.save_pretrained(folder)
    default_processor(model.config).save_pretrained(folder)
    output = tmp_path / "report"
    assert (
        msam(
            [
                "evaluate",
                str(folder),
                str(dataset_dir),
                "--split",
                "test",
                "--text-context-size",
                "8",
                "--num-workers",
                "0",
                "--output-dir",
                str(output),
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    printed = captured.out
    assert "| tiny-msam | ciffp | 8 |" in printed and "| tiny-msam | ciffp | 1 |" in printed
    assert "Loading weights" not in captured.err  # transformers' bar, noise on every command
    results = json.loads((output / "results.json").read_text())
    assert results["tiny-msam"]["split"] == "test" and results["tiny-msam"]["primary"] == "|J|=8"
    assert (output / "results.md").read_text().count("| tiny-msam |") == 2
    provenance = results["tiny-msam"]["provenance"]
    assert provenance["command"].startswith(f"msam evaluate {folder} ") and len(provenance["data_fingerprint"]) == 16
    assert any(line.startswith("torch==") for line in provenance["environment"]["pip_freeze"])
    assert f"data fingerprint `{provenance['data_fingerprint']}`" in (output / "results.md").read_text()
    for plot in ("recall_at_k.png", "frame_attention.png"):
        assert (output / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_msam_evaluate_names_a_missing_split(model, dataset_dir, tmp_path, capsys):
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    assert msam(["evaluate", str(folder), str(dataset_dir), "--split", "dev-2", "--output-dir", str(tmp_path)]) == 2
    assert "has no split 'dev-2'" in capsys.readouterr().err


def test_average_precision_by_hand_and_ties_count_as_one_step():
    from msam_hf.evaluation import average_precision
    from msam_hf.evaluation import mean_average_precision

    # Ranked: pos, neg, pos, neg → precision 1 at the first positive, 2/3 at the second.
    assert average_precision(np.array([0.9, 0.8, 0.7, 0.1]), np.array([1, 0, 1, 0])) == pytest.approx((1 + 2 / 3) / 2)
    # All scores tied: one step at recall 1, precision = the positive rate, whatever the item order.
    assert average_precision(np.zeros(4), np.array([1, 0, 0, 0])) == pytest.approx(0.25)
    assert average_precision(np.zeros(4), np.array([0, 0, 0, 1])) == pytest.approx(0.25)
    logits = torch.tensor([[2.0, 0.0, 5.0], [1.0, 0.0, 4.0], [0.0, 0.0, 3.0]])
    labels = np.array([[1, 0, 0], [0, 0, 0], [1, 0, 1]])  # the middle attribute has no positive: left out
    result = mean_average_precision(logits, labels)
    assert result["attributes"] == 2
    assert result["map"] == pytest.approx(100 * ((1 + 2 / 3) / 2 + 1 / 3) / 2)
    assert result["chance"] == pytest.approx(100 * 3 / 6)
    assert mean_average_precision(logits, np.zeros((3, 3)))["map"] is None


def test_attribute_map_of_mcsan_on_mined_labels_and_ground_truth(dataset_dir):
    from msam_hf import McsanConfig
    from msam_hf import McsanModel
    from msam_hf.data.attributes import mine_dataset_attributes
    from msam_hf.evaluation import evaluate_attributes
    from msam_hf.evaluation import has_attribute_head
    from msam_hf.evaluation import read_ground_truth

    vocabulary = mine_dataset_attributes(dataset_dir, split="train", min_count=1, tagger="lexicon")
    torch.manual_seed(0)
    mcsan = McsanModel(McsanConfig.tiny(max_frames=3, attribute_vocabulary=vocabulary.levels)).eval()
    assert has_attribute_head(mcsan) and not has_attribute_head(MsamModel(MsamConfig.tiny()))
    train = load_video_text_dataset(dataset_dir)["train"]
    features = extract_features(mcsan, train, default_processor(mcsan.config), batch_size=2, progress=False)
    results = evaluate_attributes(mcsan, features, vocabulary, read_ground_truth(dataset_dir))
    assert set(results) == {"tagger", "video", "caption", "ground_truth"}
    for kind in ("video", "caption", "ground_truth"):
        assert set(results[kind]) == {"entity", "action", "relationship"}
    # Mined from these very captions: every attribute has a positive caption, hence a positive video.
    assert results["caption"]["entity"]["attributes"] == len(vocabulary.levels["entity"])
    assert results["video"]["entity"]["attributes"] == len(vocabulary.levels["entity"])
    assert 0 < results["video"]["entity"]["map"] <= 100 and results["video"]["entity"]["chance"] > 0
    assert 0 < results["ground_truth"]["entity"]["attributes"] <= len(vocabulary.levels["entity"])
