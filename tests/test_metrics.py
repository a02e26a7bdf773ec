"""Retrieval metrics: hand-computed cases for each tie policy, multi-sentence text-to-video,
max-over-captions video-to-text, and the `evaluate` wrapper loaded offline."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import msam_hf.metrics
from msam_hf.metrics import EVALUATE_MODULE_PATH
from msam_hf.metrics import in_group_recall_at_1
from msam_hf.metrics import retrieval_metrics

# 3 videos, 5 captions (two for video 0, one for video 1, two for video 2).
CAPTION_TO_VIDEO = [0, 0, 1, 2, 2]
SIMILARITY = np.array(
    [
        [0.9, 0.3, 0.1],  # own video first: rank 1
        [0.2, 0.6, 0.4],  # own video last: rank 3
        [0.5, 0.5, 0.7],  # one video above, one tie: rank 3 / 2 / 2.5
        [0.1, 0.2, 0.8],  # rank 1
        [0.3, 0.9, 0.6],  # rank 2
    ]
)


def reference_ranks(scores: np.ndarray, caption_to_video: np.ndarray, ties: str) -> tuple[np.ndarray, np.ndarray]:
    """Loop implementation of the protocol, to check the vectorised one against."""

    def rank(candidate_scores: np.ndarray, true_index: int) -> float:
        others = np.delete(candidate_scores, true_index)
        greater = np.sum(others > candidate_scores[true_index])
        equal = np.sum(others == candidate_scores[true_index])
        return {"pessimistic": 1 + greater + equal, "optimistic": 1 + greater, "mean": 1 + greater + equal / 2}[ties]

    text_to_video = np.array([rank(row, video) for row, video in zip(scores, caption_to_video)])
    num_videos = scores.shape[1]
    groups = np.stack([scores[caption_to_video == video].max(axis=0) for video in range(num_videos)])
    video_to_text = np.array([rank(groups[:, video], video) for video in range(num_videos)])
    return text_to_video, video_to_text


def test_multi_sentence_text_to_video_pessimistic():
    metrics = retrieval_metrics(SIMILARITY, CAPTION_TO_VIDEO)
    # ranks 1, 3, 3, 1, 2
    assert metrics["t2v_r1"] == pytest.approx(40.0)
    assert metrics["t2v_r5"] == pytest.approx(100.0)
    assert metrics["t2v_median_rank"] == 2.0
    assert metrics["t2v_mean_rank"] == pytest.approx(2.0)
    assert metrics["t2v_rsum"] == pytest.approx(240.0)


def test_tie_policies_on_multi_sentence_ranks():
    # Caption 2's video ties one video and loses to another: rank 3 / 2 / 2.5, the rest are untied.
    mean_ranks = {
        ties: retrieval_metrics(SIMILARITY, CAPTION_TO_VIDEO, ties=ties)["t2v_mean_rank"]
        for ties in ("pessimistic", "optimistic", "mean")
    }
    assert mean_ranks == pytest.approx({"pessimistic": 10 / 5, "optimistic": 9 / 5, "mean": 9.5 / 5})


def test_mean_ties_give_expected_recall():
    # Caption 0's video ties two others at the top (rank 1, 2 or 3 with equal chance); the others are rank 1.
    similarity = np.eye(4)
    similarity[0] = [0.5, 0.5, 0.5, 0.2]
    r1 = {
        ties: retrieval_metrics(similarity, np.arange(4), ties=ties)["t2v_r1"]
        for ties in ("pessimistic", "optimistic", "mean")
    }
    assert r1 == pytest.approx({"pessimistic": 75.0, "optimistic": 100.0, "mean": 75.0 + 25.0 / 3})
    assert retrieval_metrics(similarity, np.arange(4), ties="mean")["t2v_mean_rank"] == pytest.approx((2 + 3) / 4)


def test_constant_model_gets_the_worst_rank_by_default():
    num_videos = 12
    metrics = retrieval_metrics(np.zeros((num_videos, num_videos)), np.arange(num_videos))
    assert metrics["t2v_r10"] == 0.0 and metrics["v2t_r10"] == 0.0
    assert metrics["t2v_median_rank"] == num_videos and metrics["v2t_mean_rank"] == num_videos
    # Under random tie-breaking it is chance.
    assert retrieval_metrics(np.zeros((num_videos, num_videos)), np.arange(num_videos), ties="mean")[
        "t2v_r1"
    ] == pytest.approx(100 / num_videos)


def test_video_to_text_scores_a_caption_group_by_its_best_caption():
    metrics = retrieval_metrics(SIMILARITY, CAPTION_TO_VIDEO)
    # Groups' max scores per video: v0 [0.9, 0.5, 0.3] -> 1; v1 [0.6, 0.5, 0.9] -> 3;
    # v2 [0.4, 0.7, 0.8] -> 1. (Averaging captions instead would tie v2's groups at 0.7.)
    assert metrics["v2t_r1"] == pytest.approx(200 / 3)
    assert metrics["v2t_median_rank"] == 1.0
    assert metrics["v2t_mean_rank"] == pytest.approx(5 / 3)
    assert metrics["rsum"] == pytest.approx(metrics["t2v_rsum"] + metrics["v2t_rsum"])


def test_perfect_model():
    caption_to_video = np.repeat(np.arange(6), 5)
    similarity = np.eye(6)[caption_to_video]  # each caption scores 1 with its video only
    metrics = retrieval_metrics(similarity, caption_to_video)
    for direction in ("t2v", "v2t"):
        assert metrics[f"{direction}_r1"] == metrics[f"{direction}_r10"] == 100.0
        assert metrics[f"{direction}_median_rank"] == metrics[f"{direction}_mean_rank"] == 1.0
    assert metrics["rsum"] == 600.0


def test_reversed_model_ranks_every_true_item_last():
    num_videos = 12
    caption_to_video = np.repeat(np.arange(num_videos), 2)
    similarity = -np.eye(num_videos)[caption_to_video] - np.linspace(0, 0.1, num_videos)  # own video lowest
    for ties in ("pessimistic", "optimistic", "mean"):
        metrics = retrieval_metrics(similarity, caption_to_video, ties=ties)
        assert metrics["t2v_r10"] == metrics["v2t_r10"] == 0.0
        assert metrics["t2v_median_rank"] == metrics["v2t_median_rank"] == num_videos


@pytest.mark.parametrize("ties", ["pessimistic", "optimistic", "mean"])
def test_chunked_ranking_matches_a_loop_reference(monkeypatch, ties):
    rng = np.random.default_rng(0)
    caption_to_video = rng.permutation(np.repeat(np.arange(9), 3))  # captions not grouped by video
    similarity = rng.integers(0, 4, size=(27, 9)).astype(np.float32)  # many ties
    text_to_video, video_to_text = reference_ranks(similarity, caption_to_video, ties)
    monkeypatch.setattr(msam_hf.metrics, "_CHUNK_ELEMENTS", 20)  # several row and column chunks
    metrics = retrieval_metrics(similarity, caption_to_video, ties=ties)
    assert metrics["t2v_mean_rank"] == pytest.approx(text_to_video.mean())
    assert metrics["t2v_median_rank"] == pytest.approx(np.median(text_to_video))
    assert metrics["v2t_mean_rank"] == pytest.approx(video_to_text.mean())
    if ties != "mean":  # with "mean", R@K is an expectation, not a count of fractional ranks
        assert metrics["t2v_r5"] == pytest.approx(100 * np.mean(text_to_video <= 5))
        assert metrics["v2t_r1"] == pytest.approx(100 * np.mean(video_to_text <= 1))


def test_torch_and_numpy_inputs_agree():
    rng = np.random.default_rng(1)
    similarity = np.round(rng.normal(size=(20, 10)), 1).astype(np.float32)  # with ties
    caption_to_video = np.repeat(np.arange(10), 2)
    expected = retrieval_metrics(similarity, caption_to_video, ties="mean")
    assert retrieval_metrics(torch.from_numpy(similarity), torch.from_numpy(caption_to_video), ties="mean") == expected
    half = torch.from_numpy(similarity).to(torch.bfloat16)
    assert retrieval_metrics(half, caption_to_video) == retrieval_metrics(half.float().numpy(), caption_to_video)


def test_nan_scores_are_rejected_with_their_count():
    similarity = SIMILARITY.copy()
    similarity[1, 2] = similarity[3, 0] = np.nan
    with pytest.raises(ValueError, match="2 NaN"):
        retrieval_metrics(similarity, CAPTION_TO_VIDEO)


@pytest.mark.parametrize(
    ("caption_to_video", "ties", "message"),
    [
        ([0, 0, 1, 1, 1], "pessimistic", "no caption"),  # video 2 has none
        ([0, 0, 1, 2, 3], "pessimistic", "outside"),
        ([0, 1, 2], "pessimistic", "one video index per similarity row"),
        (CAPTION_TO_VIDEO, "random", "tie policy"),
    ],
)
def test_bad_inputs_name_the_problem(caption_to_video, ties, message):
    with pytest.raises(ValueError, match=message):
        retrieval_metrics(SIMILARITY, caption_to_video, ties=ties)


def test_evaluate_module_loads_offline_and_matches(tmp_path):
    script = (
        "import json, sys, evaluate\n"
        "metric = evaluate.load(sys.argv[1])\n"
        "print(json.dumps(metric.compute(similarity=json.loads(sys.argv[2]), caption_to_video=json.loads(sys.argv[3]),"
        " ties='mean')))\n"
    )
    # A fresh process with no network access to the Hub and an empty cache.
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_EVALUATE_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"))
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(EVALUATE_MODULE_PATH),
            json.dumps(SIMILARITY.tolist()),
            json.dumps(CAPTION_TO_VIDEO),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    from_evaluate = json.loads(completed.stdout.strip().splitlines()[-1])
    assert from_evaluate == pytest.approx(retrieval_metrics(SIMILARITY, CAPTION_TO_VIDEO, ties="mean"))


def test_in_group_recall_ranks_each_caption_among_its_own_sites_videos_only():
    # Videos 0-1 are site "a", 2-4 site "b"; caption i describes video i. Captions 0 and 3 lose only to a video of the
    # other site, caption 1 and 2 to one of their own, caption 4 ties with video 2 of its own site.
    similarity = np.array(
        [
            [0.9, 0.1, 0.0, 0.95, 0.0],
            [0.5, 0.2, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.5, 0.0, 0.6],
            [0.99, 0.0, 0.0, 0.8, 0.0],
            [0.0, 0.0, 0.7, 0.1, 0.7],
        ]
    )
    owners, sites = [0, 1, 2, 3, 4], ["a", "a", "b", "b", "b"]
    assert in_group_recall_at_1(similarity, owners, sites) == pytest.approx(40.0)
    assert in_group_recall_at_1(similarity, owners, sites, ties="optimistic") == pytest.approx(60.0)
    assert in_group_recall_at_1(similarity, owners, sites, ties="mean") == pytest.approx(50.0)
    # One site holding every video is ordinary text-to-video R@1.
    for ties in ("pessimistic", "optimistic"):
        assert (
            in_group_recall_at_1(similarity, owners, ["x"] * 5, ties)
            == retrieval_metrics(similarity, owners, ties)["t2v_r1"]
        )
    with pytest.raises(ValueError, match="video_groups has 4 entries for 5 videos"):
        in_group_recall_at_1(similarity, owners, sites[:4])
