"""Text-video retrieval metrics: the CLIP4Clip / MSVD multi-sentence protocol (msam.md §8).

A similarity matrix has one row per caption and one column per video. Every caption
is a text-to-video query against all videos; every video is a video-to-text query
against the caption *groups* (all captions of one video), a group scoring the maximum
over its captions, as CLIP4Clip's `tensor_video_to_text_sim` does.

Ties are counted explicitly instead of being left to a sort order. For a query whose
true candidate scores `s`, let `greater` be the number of other candidates scoring
strictly more than `s` and `equal` the number of other candidates scoring exactly `s`:

- ``"pessimistic"`` (default): rank = 1 + greater + equal. The true candidate is placed
  after everything it ties with, so a model cannot gain from ties: a constant-score
  model gets the worst rank for every query, where a sort would hand it whatever the
  order of the gallery gives (R@1 = 100 % if the true video happens to come first).
- ``"optimistic"``: rank = 1 + greater (an upper bound; the gap to pessimistic shows
  how much of a result rests on ties).
- ``"mean"``: the expectation under uniformly random tie-breaking. The rank is uniform
  over 1 + greater, ..., 1 + greater + equal, so the reported rank is
  1 + greater + equal / 2 and R@K is the probability min(1, max(0, K - greater) /
  (equal + 1)); MnR and R@K are exact expectations, MdR is the median of expected ranks.
  This is the fair policy for models that produce many ties (e.g. count-based baselines).
"""

from pathlib import Path
from typing import Any

import numpy as np

# The `evaluate` module wrapping retrieval_metrics: `evaluate.load(str(EVALUATE_MODULE_PATH))`.
EVALUATE_MODULE_PATH = Path(__file__).parent / "evaluate_metrics" / "video_text_retrieval"
# One sentence per tie policy (the module docstring has the formulas), e.g. for model cards.
TIE_MEANINGS = {
    "pessimistic": "a true item ranks after every item with the same score, so a constant model cannot score.",
    "optimistic": "a true item ranks before every item with the same score.",
    "mean": "a true item gets its expected rank under random tie-breaking.",
}
TIE_POLICIES = tuple(TIE_MEANINGS)
RECALL_CUTOFFS = (1, 5, 10)
# Upper bound on the elements of one (queries × candidates) block, so that 10k × 10k (and
# larger) matrices are ranked with bounded temporary memory (~16 MB per float32 block).
_CHUNK_ELEMENTS = 1 << 22


def retrieval_metrics(similarity: Any, caption_to_video: Any, ties: str = "pessimistic") -> dict[str, float]:
    """Text-to-video and video-to-text retrieval metrics of a caption × video similarity matrix.

    Args:
        similarity: scores of shape (num_captions, num_videos), numpy array, torch tensor or
            nested list; higher means more similar. -inf is allowed, NaN is not.
        caption_to_video: for each caption (row), the index of its video (column). Every
            video needs at least one caption (video-to-text ranks caption groups).
        ties: how equal scores are ranked: "pessimistic", "optimistic" or "mean" (module
            docstring).

    Returns:
        ``t2v_r1``, ``t2v_r5``, ``t2v_r10`` (percent), ``t2v_median_rank``,
        ``t2v_mean_rank`` (1-based), ``t2v_rsum`` (R@1 + R@5 + R@10), the same six with
        ``v2t_``, and ``rsum`` (sum of both directions' rsum).
    """
    if ties not in TIE_POLICIES:
        raise ValueError(f"ties={ties!r} is not a tie policy; use one of {TIE_POLICIES}.")
    scores = _as_score_matrix(similarity)
    video_index = _as_caption_to_video(caption_to_video, scores.shape)

    metrics = _summarise(*_text_to_video_counts(scores, video_index), ties, "t2v")
    metrics.update(_summarise(*_video_to_text_counts(scores, video_index), ties, "v2t"))
    metrics["rsum"] = metrics["t2v_rsum"] + metrics["v2t_rsum"]
    return metrics


def text_to_video_recall_curve(
    similarity: Any, caption_to_video: Any, max_k: int = 50, ties: str = "pessimistic"
) -> list[float]:
    """Text-to-video R@K in percent for K = 1 ... min(max_k, videos), with the same tie policies (for plots)."""
    if ties not in TIE_POLICIES:
        raise ValueError(f"ties={ties!r} is not a tie policy; use one of {TIE_POLICIES}.")
    scores = _as_score_matrix(similarity)
    greater, equal = _text_to_video_counts(scores, _as_caption_to_video(caption_to_video, scores.shape))
    return [_recall(greater, equal, cutoff, ties) for cutoff in range(1, min(max_k, scores.shape[1]) + 1)]


def in_group_recall_at_1(similarity: Any, caption_to_video: Any, video_groups: Any, ties: str = "pessimistic") -> float:
    """Text-to-video R@1 in percent among the videos of the caption's own group only.

    On the synthetic benchmark a group is a *site*: videos of one place flown the same way, which share the whole
    background, so only what differs between them — the objects, their actions — can put the right video first
    (chance: 1 / the group's size). `video_groups[v]` is video v's group (any hashable labels); ties as in
    `retrieval_metrics`.
    """
    if ties not in TIE_POLICIES:
        raise ValueError(f"ties={ties!r} is not a tie policy; use one of {TIE_POLICIES}.")
    scores = _as_score_matrix(similarity)
    video_index = _as_caption_to_video(caption_to_video, scores.shape)
    if len(video_groups) != scores.shape[1]:
        raise ValueError(f"video_groups has {len(video_groups)} entries for {scores.shape[1]} videos (columns).")
    _, group_ids = np.unique(np.asarray(video_groups, dtype=object).astype(str), return_inverse=True)
    greater, equal = _text_to_video_counts(scores, video_index, group_ids)
    return _recall(greater, equal, 1, ties)


def _as_score_matrix(similarity: Any) -> np.ndarray:
    if hasattr(similarity, "detach"):  # a torch tensor, without importing torch here
        tensor = similarity.detach().cpu()
        # bfloat16 has no numpy dtype; widening to float32 is exact, so ties are unchanged.
        if tensor.is_floating_point() and tensor.element_size() < 4:
            tensor = tensor.float()
        similarity = tensor.numpy()
    try:
        scores = np.asarray(similarity)
    except ValueError as error:  # ragged nested lists
        raise ValueError(f"similarity must be a rectangular (num_captions, num_videos) matrix: {error}") from None
    if scores.ndim != 2 or 0 in scores.shape:
        raise ValueError(
            f"similarity must be a non-empty 2-D (num_captions, num_videos) matrix, got shape {scores.shape}."
        )
    if not (np.issubdtype(scores.dtype, np.floating) or np.issubdtype(scores.dtype, np.integer)):
        raise ValueError(f"similarity must hold real numbers, got dtype {scores.dtype}.")
    if np.issubdtype(scores.dtype, np.floating):
        rows_per_chunk = max(1, _CHUNK_ELEMENTS // scores.shape[1])
        num_nan = sum(
            int(np.isnan(scores[start : start + rows_per_chunk]).sum())
            for start in range(0, scores.shape[0], rows_per_chunk)
        )
        if num_nan:
            raise ValueError(
                f"similarity has {num_nan} NaN score(s) out of {scores.size}; NaN cannot be ranked. "
                "Fix the model outputs (or use -inf for pairs that must never match)."
            )
    return scores


def _as_caption_to_video(caption_to_video: Any, shape: tuple[int, int]) -> np.ndarray:
    if hasattr(caption_to_video, "detach"):
        caption_to_video = caption_to_video.detach().cpu().numpy()
    video_index = np.asarray(caption_to_video)
    num_captions, num_videos = shape
    if video_index.shape != (num_captions,):
        raise ValueError(
            f"caption_to_video must have one video index per similarity row ({num_captions}), "
            f"got shape {video_index.shape}."
        )
    if not np.issubdtype(video_index.dtype, np.integer):
        raise ValueError(f"caption_to_video must hold integer video indices, got dtype {video_index.dtype}.")
    out_of_range = (video_index < 0) | (video_index >= num_videos)
    if out_of_range.any():
        raise ValueError(
            f"caption_to_video has {int(out_of_range.sum())} index(es) outside [0, {num_videos}) "
            f"(the similarity columns), e.g. caption {int(np.flatnonzero(out_of_range)[0])}."
        )
    captionless = np.flatnonzero(np.bincount(video_index, minlength=num_videos) == 0)
    if captionless.size:
        raise ValueError(
            f"{captionless.size} video(s) have no caption (e.g. columns {captionless[:10].tolist()}), so "
            "video-to-text retrieval is undefined; drop those columns from similarity."
        )
    return video_index.astype(np.int64, copy=False)


def _text_to_video_counts(
    scores: np.ndarray, video_index: np.ndarray, video_groups: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per caption: how many other videos (of its own video's group, given `video_groups`) score above / equal to
    its own video."""
    num_captions, num_videos = scores.shape
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // num_videos)
    greater = np.empty(num_captions, dtype=np.int64)
    equal = np.empty(num_captions, dtype=np.int64)
    for start in range(0, num_captions, rows_per_chunk):
        block = scores[start : start + rows_per_chunk]  # (captions, videos)
        true_videos = video_index[start : start + len(block)]
        true_score = block[np.arange(len(block)), true_videos][:, None]
        candidates = True if video_groups is None else video_groups[None, :] == video_groups[true_videos][:, None]
        greater[start : start + len(block)] = ((block > true_score) & candidates).sum(axis=1)
        equal[start : start + len(block)] = ((block == true_score) & candidates).sum(axis=1) - 1  # not the true video
    return greater, equal


def _video_to_text_counts(scores: np.ndarray, video_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per video: how many other caption groups score above / equal to its own group."""
    num_captions, num_videos = scores.shape
    # Sort captions by video so each group is a contiguous run that `maximum.reduceat` can
    # reduce; every video has a caption, so run k is video k's group.
    order = np.argsort(video_index, kind="stable")
    run_starts = np.searchsorted(video_index[order], np.arange(num_videos))
    columns_per_chunk = max(1, _CHUNK_ELEMENTS // num_captions)
    greater = np.empty(num_videos, dtype=np.int64)
    equal = np.empty(num_videos, dtype=np.int64)
    for start in range(0, num_videos, columns_per_chunk):
        stop = min(start + columns_per_chunk, num_videos)
        # (caption groups, query videos): group k's best caption score for video v
        group_scores = np.maximum.reduceat(scores[:, start:stop][order], run_starts, axis=0)
        true_score = group_scores[np.arange(start, stop), np.arange(stop - start)][None, :]
        greater[start:stop] = (group_scores > true_score).sum(axis=0)
        equal[start:stop] = (group_scores == true_score).sum(axis=0) - 1
    return greater, equal


def _summarise(greater: np.ndarray, equal: np.ndarray, ties: str, prefix: str) -> dict[str, float]:
    if ties == "pessimistic":
        ranks = 1.0 + greater + equal
    elif ties == "optimistic":
        ranks = 1.0 + greater
    else:
        ranks = 1.0 + greater + equal / 2.0
    metrics = {}
    for cutoff in RECALL_CUTOFFS:
        metrics[f"{prefix}_r{cutoff}"] = _recall(greater, equal, cutoff, ties)
    metrics[f"{prefix}_median_rank"] = float(np.median(ranks))
    metrics[f"{prefix}_mean_rank"] = float(np.mean(ranks))
    metrics[f"{prefix}_rsum"] = sum(metrics[f"{prefix}_r{cutoff}"] for cutoff in RECALL_CUTOFFS)
    return metrics


def _recall(greater: np.ndarray, equal: np.ndarray, cutoff: int, ties: str) -> float:
    """R@cutoff in percent from per-query counts of candidates scoring above / equal to the true one."""
    if ties == "mean":
        hit = np.clip(cutoff - greater, 0, equal + 1) / (equal + 1)
    elif ties == "optimistic":
        hit = greater < cutoff
    else:
        hit = greater + equal < cutoff
    return float(100.0 * np.mean(hit))
