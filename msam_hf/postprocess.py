"""Test-time post-processing of a caption × video similarity matrix: DSL, QB-Norm and Sinkhorn.

Text-video retrieval papers often report numbers after re-scoring the whole test matrix, sometimes without saying
so. `msam evaluate --postprocess` offers the common methods, off by default, and reports each as an extra row
labelled `MODEL (+DSL)` etc. next to the plain numbers, never instead of them (docs/evaluation.md).

Every function takes a (captions × videos) matrix, a torch tensor or anything numpy reads, and returns a float64
tensor of the same shape: scores to rank, not probabilities. Higher is better, as in `msam_hf.metrics`.

The multi-sentence protocol (several captions per video; video-to-text ranks a video's caption *group* by its best
caption, `msam_hf.metrics`): each method is applied to the caption × video matrix as a whole, and both directions
are then ranked from the result by the same `retrieval_metrics` — as CLIP4Clip-derived evaluation scripts do in
their multi-sentence branch. Where a method needs to know how many captions a video has (Sinkhorn's marginals), it
takes `caption_to_video`. What each method assumes is in its docstring and in `POSTPROCESSORS[name].caveat`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

DSL_TEMPERATURE = 1.0
QBNORM_BETA = 20.0
QBNORM_TOP_K = 1
SINKHORN_TEMPERATURE = 1.0
SINKHORN_ITERATIONS = 10


def dual_softmax(similarity: Any, temperature: float = DSL_TEMPERATURE) -> torch.Tensor:
    """Dual softmax at inference (DSL; Cheng et al. 2021, "Improving Video-Text Retrieval by Multi-Stream Corpus
    Alignment and Dual Softmax Loss", arXiv:2109.04290, CAMoE):

        S' = S ⊙ softmax(S / τ, dim=0) · num_captions

    Each video's column is turned into a prior over *all captions* (softmax along the caption axis), and every score
    is weighted by it, so a "hub" video that scores high for every caption gets a flat prior and loses its lead.
    This is the form of CAMoE's `DSL.py` (`sim * F.softmax(sim / temp, dim=0) * len(sim)`) with the inference
    temperature τ = 1 that its users evaluate with (`F.softmax(sim_matrix / 1, dim=0) * len(sim_matrix)` behind the
    `--DSL` switch of CLIP4Clip-derived `main_retrieval.py` scripts), applied as they do to the model's scaled
    logits (logit_scale · cosine, what `MsamModel.similarity` returns). The factor num_captions is a constant kept
    for fidelity; it changes no rank. In their multi-sentence branch those scripts rank both directions from this
    one matrix, as `msam evaluate` does.

    Caveats: it needs every test query at once (a column's softmax reads the other queries' scores), so it is not
    usable for a single search query. With several captions per video the prior mass of a video is shared among its
    captions (the reference does the same). For a negative score the product S · prior is not monotone in S.
    """
    scores = _as_scores(similarity)
    return scores * torch.softmax(scores / temperature, dim=0) * scores.shape[0]


def querybank_normalise(
    similarity: Any, bank_similarity: Any, beta: float = QBNORM_BETA, top_k: int = QBNORM_TOP_K
) -> torch.Tensor:
    """Querybank normalisation with the dynamic inverted softmax (QB-Norm / DIS; Bogolin et al., CVPR 2022, "Cross
    Modal Retrieval with Querybank Normalisation", github.com/ioanacroi/qb-norm `dynamic_inverted_softmax.py`).

    `bank_similarity` (bank queries × videos) scores a bank of queries that are not test queries (by default the
    training split's captions) against the same gallery. The bank gives each video j a normaliser
    Z_j = Σ_b exp(β · bank[b, j]) and an activation set A: the videos that are the top-`top_k` of at least one bank
    query (the gallery's hubs as the bank sees them). A test query q whose own top-1 video is in A is normalised:

        S'[q, j] = exp(β · S[q, j]) / Z_j          (returned as its log: β · S[q, j] − log Z_j)

    and a query whose top-1 is not in A is left exactly as it is (`S'[q] = S[q]`), as in the reference code. Only
    ranks *within a row* are meaningful: the log keeps exp(β · S) from overflowing (it ranks each row as the
    reference's ratio does), and rows that were left alone are on another scale than rows that were normalised.
    Defaults are the paper's: β = 20 and top-k = 1, for cosine similarities (the reference's inverse temperature
    for cosine-scale models); `msam evaluate` divides the model's logits by its logit scale before this.

    Caveats: it needs the query bank (training captions, encoded by the same model) and the whole gallery at once.
    It re-ranks text-to-video only; a video-to-text QB-Norm would need a bank of videos, so `msam evaluate` reports
    the plain video-to-text numbers on its QB-Norm rows.
    """
    scores, bank = _as_scores(similarity), _as_scores(bank_similarity)
    if bank.shape[1] != scores.shape[1]:
        raise ValueError(f"bank_similarity has {bank.shape[1]} videos (columns), similarity {scores.shape[1]}.")
    if not 1 <= top_k <= scores.shape[1]:
        raise ValueError(f"top_k must be between 1 and the number of videos ({scores.shape[1]}), got {top_k}.")
    activation_set = torch.zeros(scores.shape[1], dtype=torch.bool)
    activation_set[query_bank_activation_set(bank, top_k)] = True
    log_normaliser = torch.logsumexp(beta * bank, dim=0)  # log Z_j
    normalised = activation_set[scores.argmax(dim=1)]  # tied maxima: the first
    result = scores.clone()
    result[normalised] = beta * scores[normalised] - log_normaliser
    return result


def query_bank_activation_set(bank_similarity: Any, top_k: int = QBNORM_TOP_K) -> torch.Tensor:
    """The videos (column indices, ascending) that QB-Norm normalises against: the top-`top_k` of some bank query."""
    return _as_scores(bank_similarity).topk(top_k, dim=1).indices.flatten().unique()


def sinkhorn(
    similarity: Any,
    caption_to_video: Any = None,
    temperature: float = SINKHORN_TEMPERATURE,
    iterations: int = SINKHORN_ITERATIONS,
) -> torch.Tensor:
    """Sinkhorn normalisation of the score matrix (Sinkhorn–Knopp; Cuturi 2013, "Sinkhorn Distances", as applied
    to text-video retrieval by Yakovlev et al., SIGIR 2023, "Sinkhorn Transformations for Single-Query
    Postprocessing in Text-Video Retrieval"). Returns log P, where

        P = exp(S / τ), then `iterations` times: scale every column to its marginal c, then every row to r,

    so P's rows sum to r exactly and its columns to c up to the remaining error (which shrinks with the iterations).
    The log ranks as P does and keeps tiny entries that P would round to 0 (and so tie) apart; the iterations run
    in the log domain for the same reason. DSL is the first half-step of this (one column normalisation, multiplied
    by S instead of iterated).

    Marginals: every caption is one query, r_i = 1 / num_captions. A video's column mass is proportional to its
    number of captions, c_j = n_j / num_captions (`caption_to_video` gives n_j; without it every video gets
    1 / num_videos, the one-caption-per-video case). Uniform column marginals would ask a video with five
    captions to spread the mass of one query over five, which is wrong under the multi-sentence protocol.

    Defaults: τ = 1 on the model's logits (logit_scale · cosine: the model's own learned temperature, the same scale
    DSL's τ = 1 works on; τ = 0.01 on cosine similarities for a logit scale of 100) and 10 iterations.

    Caveats: it needs all test queries at once and treats the test set as an assignment problem in which every
    video is the answer to its share of the queries — knowledge of the test set's composition that a search engine
    does not have.
    """
    scores = _as_scores(similarity)
    num_captions, num_videos = scores.shape
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}.")
    log_rows = torch.full((num_captions, 1), -np.log(num_captions), dtype=torch.float64)
    if caption_to_video is None:
        log_columns = torch.full((1, num_videos), -np.log(num_videos), dtype=torch.float64)
    else:
        video_index = torch.as_tensor(np.asarray(caption_to_video), dtype=torch.long)
        if video_index.shape != (num_captions,):
            raise ValueError(f"caption_to_video needs one video per caption ({num_captions}), got {video_index.shape}.")
        counts = torch.bincount(video_index, minlength=num_videos).to(torch.float64)
        if len(counts) != num_videos or (counts == 0).any():
            raise ValueError("caption_to_video must give every video (column) at least one caption, and no other.")
        log_columns = (counts / num_captions).log()[None, :]
    log_plan = scores / temperature
    for _ in range(iterations):
        log_plan = log_plan - torch.logsumexp(log_plan, dim=0, keepdim=True) + log_columns
        log_plan = log_plan - torch.logsumexp(log_plan, dim=1, keepdim=True) + log_rows
    return log_plan


def _as_scores(similarity: Any) -> torch.Tensor:
    if isinstance(similarity, torch.Tensor):
        scores = similarity.detach().cpu().to(torch.float64)
    else:
        scores = torch.as_tensor(np.asarray(similarity, dtype=np.float64))
    if scores.ndim != 2 or 0 in scores.shape:
        raise ValueError(f"expected a non-empty (captions, videos) matrix, got shape {tuple(scores.shape)}.")
    return scores


# ----------------------------------------------------------------------------- registry (msam evaluate --postprocess)


@dataclass(frozen=True)
class Postprocessor:
    """One `--postprocess` method: how `msam evaluate` labels, runs and annotates it.

    `apply(similarity, caption_to_video, logit_scale, bank_similarity)` gets the model's logits (and, when
    `needs_query_bank`, the bank's logits against the same videos); `directions` are the retrieval directions whose
    numbers it changes (the others are reported plain).
    """

    name: str
    label: str
    apply: Callable[..., torch.Tensor]
    parameters: dict[str, float]
    caveat: str
    directions: tuple[str, ...] = ("t2v", "v2t")
    needs_query_bank: bool = False


POSTPROCESSORS = {
    "dsl": Postprocessor(
        name="dsl",
        label="DSL",
        apply=lambda similarity, caption_to_video, logit_scale, bank_similarity=None: dual_softmax(similarity),
        parameters={"temperature": DSL_TEMPERATURE},
        caveat="dual softmax over all test captions (Cheng et al. 2021): needs every query at once, so no single "
        "search query can have it",
    ),
    "qbnorm": Postprocessor(
        name="qbnorm",
        label="QB-Norm",
        apply=lambda similarity, caption_to_video, logit_scale, bank_similarity=None: querybank_normalise(
            similarity / logit_scale, bank_similarity / logit_scale
        ),
        parameters={"beta": QBNORM_BETA, "top_k": QBNORM_TOP_K},
        caveat="querybank normalisation with the dynamic inverted softmax (Bogolin et al. 2022): needs a bank of "
        "training captions scored against the whole test gallery; re-ranks text-to-video only (its V2T "
        "columns are the plain ones)",
        directions=("t2v",),
        needs_query_bank=True,
    ),
    "sinkhorn": Postprocessor(
        name="sinkhorn",
        label="Sinkhorn",
        apply=lambda similarity, caption_to_video, logit_scale, bank_similarity=None: sinkhorn(
            similarity, caption_to_video
        ),
        parameters={"temperature": SINKHORN_TEMPERATURE, "iterations": SINKHORN_ITERATIONS},
        caveat="Sinkhorn normalisation of exp(logits) (Yakovlev et al. 2023): needs every query at once and treats "
        "the test set as an assignment in which each video answers its share of the captions",
    ),
}


def parse_postprocess(values: list[str] | None) -> list[str]:
    """Method names from `--postprocess` values (each one name or a comma list), in order, without repeats."""
    names = [name.strip().lower() for value in values or [] for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in POSTPROCESSORS]
    if unknown:
        raise ValueError(
            f"--postprocess: unknown method(s) {unknown}; choose from {', '.join(POSTPROCESSORS)} "
            "(and give MODEL and DATA before --postprocess)"
        )
    return list(dict.fromkeys(names))


__all__ = [
    "POSTPROCESSORS",
    "Postprocessor",
    "dual_softmax",
    "parse_postprocess",
    "query_bank_activation_set",
    "querybank_normalise",
    "sinkhorn",
]
