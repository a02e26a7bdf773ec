"""Retrieval evaluation of an MSAM or MCSAN model on a dataset split: the multi-sentence protocol of msam.md §8.

Every caption of the split is a text-to-video query against every video; every video is a video-to-text query
against the caption groups (`msam_hf.metrics`). Features are extracted once per split (videos and captions in
batches, progress bars), then scored in chunks with `MsamModel.similarity`, so memory stays bounded.

CIFFP scores a caption together with a caption set J (msam.md §3). The reference scores blocks of 32 consecutive
captions of the test list; here captions are taken in the split's order (video by video, each video's captions in
their stored order), cut into consecutive blocks of |J|, so the result is deterministic. |J| = 1 scores every
caption on its own: what a search engine serves. Both are reported; the other heads do not depend on |J|.

A model with attribute projections (a config with an `attribute_vocabulary` and a `predict_attributes` method, e.g.
MCSAN) also gets attribute mAP per level (`evaluate_attributes`): the attributes are predicted from the video
embedding and from the caption embedding through the same projection, and scored against the labels the model's
vocabulary mines from the split's captions (per caption, and per video as the union over its captions) and, on the
synthetic benchmark, against the generator's ground truth.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from tqdm.auto import tqdm

from .configuration_msam import attribute_slices
from .data.attributes import ATTRIBUTE_LEVELS
from .data.attributes import AttributeVocabulary
from .data.torch_dataset import VideoTextCollator
from .data.torch_dataset import VideoTextDataset
from .data.torch_dataset import without_video_decoding
from .metrics import RECALL_CUTOFFS
from .metrics import in_group_recall_at_1
from .metrics import retrieval_metrics
from .metrics import text_to_video_recall_curve
from .modeling_clip_video import concatenate_outputs
from .modeling_mcsan import McsanModel
from .modeling_msam import MsamModel
from .modeling_msam import MsamTextOutput
from .modeling_msam import MsamVideoOutput
from .postprocess import POSTPROCESSORS
from .postprocess import Postprocessor
from .postprocess import parse_postprocess
from .provenance import dataset_fingerprint
from .provenance import environment
from .video_io import FrameCache
from .video_io import read_frames

logger = logging.getLogger(__name__)

DEFAULT_TEXT_CONTEXT_SIZES = (32, 1)
# Written next to a model trained with attribute labels: the vocabulary with the tagger that mined it, so held-out
# captions are labelled by the same tagger (the config stores the attribute names only).
ATTRIBUTE_VOCABULARY_FILE = "attribute_vocabulary.json"


@dataclass
class RetrievalFeatures:
    """Everything the scores of one split need, computed once.

    `text` and `video` are the concatenated outputs of `get_text_features` / `get_video_features` (frames padded to
    the longest video, words to the longest caption); `caption_to_video[i]` is caption i's video (column);
    `timestamps[v]` are the seconds of video v's sampled frames.
    """

    text: MsamTextOutput
    video: MsamVideoOutput
    caption_to_video: torch.Tensor
    video_ids: list[str]
    captions: list[str]
    timestamps: list[list[float]]


@torch.no_grad()
def extract_features(
    model: MsamModel,
    dataset: datasets.Dataset,
    processor: Any,
    batch_size: int = 16,
    num_workers: int = 0,
    fps: float = 1.0,
    max_frames: int | None = None,
    progress: bool = True,
    frame_cache_dir: str | os.PathLike | None = None,
) -> RetrievalFeatures:
    """Encode every video and caption of one split (a video that cannot be decoded raises `VideoDecodeError`);
    `frame_cache_dir` reuses frames decoded earlier with the same sampling (`msam_hf.video_io.FrameCache`)."""
    max_frames = max_frames or model.config.max_frames
    loader = torch.utils.data.DataLoader(
        VideoTextDataset(dataset, mode="eval", fps=fps, max_frames=max_frames, frame_cache_dir=frame_cache_dir),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=VideoTextCollator(processor),
    )
    was_training = model.training
    model.eval()
    device = model.device
    text_parts, video_parts, caption_to_video = [], [], []
    video_ids, captions, timestamps = [], [], []
    for batch in tqdm(loader, desc="encoding videos and captions", unit="batch", disable=not progress):
        text_parts.append(model.get_text_features(batch["input_ids"].to(device), batch["attention_mask"].to(device)))
        video_parts.append(
            model.get_video_features(batch["pixel_values_videos"].to(device), batch["video_mask"].to(device))
        )
        caption_to_video.append(batch["caption_to_video"] + len(video_ids))
        video_ids += batch["video_ids"]
        captions += batch["captions"]
        timestamps += [list(map(float, times)) for times in batch["timestamps"]]
    model.train(was_training)
    if not video_ids:
        raise ValueError("the split has no videos to evaluate")
    return RetrievalFeatures(
        text=concatenate_outputs(text_parts),
        video=concatenate_outputs(video_parts),
        caption_to_video=torch.cat(caption_to_video),
        video_ids=video_ids,
        captions=captions,
        timestamps=timestamps,
    )


def evaluate_retrieval(
    model: MsamModel,
    features: RetrievalFeatures,
    text_context_sizes: tuple[int, ...] = DEFAULT_TEXT_CONTEXT_SIZES,
    ties: str = "pessimistic",
    video_sites: list[str] | None = None,
) -> dict[str, Any]:
    """Retrieval metrics of `features` at each CIFFP caption-set size.

    Returns `{"similarity_head", "num_videos", "num_captions", "ties", "text_context_sizes", "metrics": {"|J|=32":
    {...}, "|J|=1": {...}}, "primary": "|J|=32"}`; the primary entry is the first size (what model selection and the
    headline numbers use). Heads other than CIFFP ignore |J| and get one entry per size all the same. Given each
    video's site (`video_sites`, see `sites_of`), the metrics add `in_site_r1`: R@1 among the videos of the caption's
    own site (`msam_hf.metrics.in_group_recall_at_1`).
    """
    results: dict[str, Any] = {
        "similarity_head": model.config.similarity_head,
        "num_videos": len(features.video_ids),
        "num_captions": len(features.captions),
        "ties": ties,
        "text_context_sizes": list(text_context_sizes),
        "metrics": {},
        "recall_curve": {},
    }
    for size in text_context_sizes:
        with torch.no_grad():
            similarity = model.similarity(features.text, features.video, text_context_size=size).float().cpu()
        key = context_key(size)
        results["metrics"][key] = retrieval_metrics(similarity, features.caption_to_video, ties=ties)
        if video_sites is not None:
            results["metrics"][key]["in_site_r1"] = in_group_recall_at_1(
                similarity, features.caption_to_video, video_sites, ties=ties
            )
        results["recall_curve"][key] = text_to_video_recall_curve(similarity, features.caption_to_video, ties=ties)
    results["primary"] = context_key(text_context_sizes[0])
    return results


def sites_of(ground_truth: dict[str, dict] | None, video_ids: list[str]) -> list[str] | None:
    """Each video's site (`site_id` of the synthetic benchmark's ground truth), or None when the data has none."""
    if not ground_truth or not all("site_id" in ground_truth.get(video_id, {}) for video_id in video_ids):
        return None
    return [ground_truth[video_id]["site_id"] for video_id in video_ids]


def context_key(size: int | None) -> str:
    return "|J|=all" if size is None else f"|J|={size}"


# ----------------------------------------------------------------------------- attribute prediction


def has_attribute_head(model: Any) -> bool:
    """Whether `model` predicts attributes over a known vocabulary (MCSAN; any model with the same config field)."""
    return bool(getattr(model.config, "attribute_vocabulary", None)) and hasattr(model, "predict_attributes")


def model_attribute_vocabulary(model: Any, model_path: str | Path | None = None) -> AttributeVocabulary:
    """The model's vocabulary (`config.attribute_vocabulary`) with the tagger that mined it: the one recorded in
    the model folder's `attribute_vocabulary.json` when it matches the config, else the best installed one."""
    levels = {level: list(model.config.attribute_vocabulary[level]) for level in ATTRIBUTE_LEVELS}
    saved = Path(model_path) / ATTRIBUTE_VOCABULARY_FILE if model_path is not None else None
    if saved is not None and saved.is_file():
        vocabulary = AttributeVocabulary.load(saved)
        if vocabulary.levels == levels:
            return vocabulary
        logger.warning("%s does not match the model config's attribute_vocabulary; labelling with the config's", saved)
    return AttributeVocabulary(levels, {level: [] for level in ATTRIBUTE_LEVELS}, tagger_name="auto")


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision of one attribute: the mean precision at the positives' ranks, items ranked by score.
    Tied scores form one step (as scikit-learn's), so the order of the items cannot change the result."""
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order]
    run_ends = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # last item of each group of equal scores
    true_positives = np.cumsum(labels)[run_ends]
    precision = true_positives / (run_ends + 1)
    recall_steps = np.diff(np.r_[0, true_positives]) / true_positives[-1]
    return float((recall_steps * precision).sum())


def mean_average_precision(logits: torch.Tensor, labels: np.ndarray) -> dict[str, float | int | None]:
    """Macro mAP (percent) over the attributes (columns) with at least one positive item (row), their number, and
    chance: the attributes' mean positive rate (percent), about the mAP of a random ranking."""
    scores, labels = logits.float().cpu().numpy(), np.asarray(labels, dtype=np.float64)
    present = np.flatnonzero(labels.sum(axis=0) > 0)
    if not len(present):
        return {"map": None, "attributes": 0, "chance": None}
    precisions = [average_precision(scores[:, column], labels[:, column]) for column in present]
    return {
        "map": 100 * float(np.mean(precisions)),
        "attributes": int(len(present)),
        "chance": 100 * float(labels[:, present].mean()),
    }


@torch.no_grad()
def evaluate_attributes(
    model: Any,
    features: RetrievalFeatures,
    vocabulary: AttributeVocabulary,
    ground_truth: dict[str, dict] | None = None,
) -> dict[str, Any]:
    """Attribute mAP per level of `features` (see `mean_average_precision`).

    - `"video"`: predicted from each video's embedding, against the union of its captions' labels;
    - `"caption"`: predicted from each caption's embedding, against its own labels;
    - `"ground_truth"` (given `ground_truth`, `{video_id: record}` of the synthetic benchmark's
      `ground_truth.jsonl`): the video predictions against the generator's entities, actions and relations
      (normalised to mined forms by the vocabulary's tagger), over the attributes in both vocabularies.

    Labels are mined by `vocabulary` from the split's captions; attributes with no positive in the split are left
    out. Returns `{"tagger", "video": {level: {"map", "attributes", "chance"}}, "caption": {...}, ...}`.
    """
    caption_labels = vocabulary.labels(features.captions)
    video_labels = np.zeros((len(features.video_ids), vocabulary.num_attributes), dtype=np.uint8)
    np.maximum.at(video_labels, features.caption_to_video.numpy(), caption_labels)
    predictions = {
        "video": model.predict_attributes(features.video),
        "caption": model.predict_attributes(features.text),
    }
    labels = {"video": video_labels, "caption": caption_labels}
    slices = attribute_slices(vocabulary.sizes)
    results: dict[str, Any] = {"tagger": vocabulary.tagger.name}
    for kind in ("video", "caption"):
        results[kind] = {
            level: mean_average_precision(logits, labels[kind][:, slices[level]])
            for level, logits in predictions[kind].items()
        }
    if ground_truth:
        results["ground_truth"] = _ground_truth_attribute_map(features, vocabulary, ground_truth, predictions["video"])
    return results


def _ground_truth_attribute_map(features, vocabulary, ground_truth, video_predictions) -> dict[str, Any]:
    from .data.synthetic.ground_truth import normalise_ground_truth

    # Only the split's videos: an attribute needs a positive among them to be scored anyway.
    truth = {
        video_id: normalise_ground_truth(ground_truth[video_id], vocabulary.tagger)
        for video_id in features.video_ids
        if video_id in ground_truth
    }
    rows = [row for row, video_id in enumerate(features.video_ids) if video_id in truth]
    if len(rows) < len(features.video_ids):
        logger.warning(
            "%d of %d videos have no ground-truth record; the ground-truth mAP leaves them out",
            len(features.video_ids) - len(rows),
            len(features.video_ids),
        )
    results = {}
    for level, logits in video_predictions.items():
        # Attributes the generator never states have no positive, so the mAP covers those in both vocabularies.
        names = vocabulary.levels[level]
        labels = np.array(
            [[name in truth[features.video_ids[row]][level] for name in names] for row in rows], dtype=np.uint8
        ).reshape(len(rows), len(names))
        results[level] = mean_average_precision(logits[rows], labels)
    return results


def read_ground_truth(data_dir: str | Path) -> dict[str, dict] | None:
    """`{video_id: record}` of a synthetic benchmark folder's `ground_truth.jsonl`, or None for other data."""
    path = Path(data_dir) / "ground_truth.jsonl"
    if not path.is_file():
        return None
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {record["video_id"]: record for record in records}


# ----------------------------------------------------------------------------- reports


METRIC_COLUMNS = (
    [f"t2v_r{k}" for k in RECALL_CUTOFFS]
    + ["t2v_median_rank", "t2v_mean_rank"]
    + [f"v2t_r{k}" for k in RECALL_CUTOFFS]
    + ["v2t_median_rank", "v2t_mean_rank", "rsum"]
)
COLUMN_TITLES = {
    **{f"{side}_r{k}": f"{side.upper()} R@{k}" for side in ("t2v", "v2t") for k in RECALL_CUTOFFS},
    **{
        f"{side}_{kind}_rank": f"{side.upper()} {short}"
        for side in ("t2v", "v2t")
        for kind, short in (("median", "MdR"), ("mean", "MnR"))
    },
    "rsum": "rsum",
    "in_site_r1": "in-site R@1",
}


def markdown_table(results_by_model: dict[str, dict[str, Any]]) -> str:
    """One row per (model, |J|): R@1/5/10, MdR, MnR in both directions and rsum (and in-site R@1 when measured)."""
    columns = list(METRIC_COLUMNS)
    in_site = all(
        "in_site_r1" in metrics for results in results_by_model.values() for metrics in results["metrics"].values()
    )
    if in_site:
        columns.append("in_site_r1")
    titles = [COLUMN_TITLES[column] for column in columns]
    lines = ["| model | head | \\|J\\| | " + " | ".join(titles) + " |", "|---|---|---|" + "---|" * len(titles)]
    for name, results in results_by_model.items():
        for key, metrics in results["metrics"].items():
            values = " | ".join(f"{metrics[column]:.1f}" for column in columns)
            lines.append(f"| {name} | {results['similarity_head']} | {key.removeprefix('|J|=')} | {values} |")
    any_results = next(iter(results_by_model.values()))
    lines.append("")
    lines.append(
        f"{any_results['num_captions']} captions × {any_results['num_videos']} videos, ties: "
        f"{any_results['ties']}; |J| is CIFFP's caption-set size (other heads ignore it)."
        + (
            " In-site R@1: among the videos of the caption's own site (same background; chance 1 / videos per site)."
            if in_site
            else ""
        )
    )
    postprocessed = {
        results["postprocess"]["label"]: results["postprocess"]["caveat"]
        for results in results_by_model.values()
        if "postprocess" in results
    }
    if postprocessed:
        lines.append("")
        lines.append(
            "Rows marked (+METHOD) are test-time post-processing of the similarity matrix, not the model's "
            "own numbers (those are the unmarked rows; docs/evaluation.md): "
            + "; ".join(f"+{label}: {caveat}" for label, caveat in postprocessed.items())
            + "."
        )
    if any("attribute_map" in results for results in results_by_model.values()):
        lines += ["", attribute_markdown_table(results_by_model)]
    return "\n".join(lines)


ATTRIBUTE_LABEL_TITLES = {
    "video": "video (mined)",
    "caption": "caption (mined)",
    "ground_truth": "video (ground truth)",
}


def attribute_markdown_table(results_by_model: dict[str, dict[str, Any]]) -> str:
    """One row per (model, labels) of the models with attribute predictions: mAP per level."""
    lines = [
        "| model | labels | " + " | ".join(f"{level} mAP" for level in ATTRIBUTE_LEVELS) + " |",
        "|---|---|" + "---|" * len(ATTRIBUTE_LEVELS),
    ]
    for name, results in results_by_model.items():
        for kind, title in ATTRIBUTE_LABEL_TITLES.items():
            scores = results.get("attribute_map", {}).get(kind)
            if scores is not None:
                lines.append(
                    f"| {name} | {title} | "
                    + " | ".join(_map_cell(scores.get(level)) for level in ATTRIBUTE_LEVELS)
                    + " |"
                )
    lines += [
        "",
        "mAP (%) over the attributes with a positive in the split (how many: n); chance: their mean positive "
        "rate, about what a random ranking scores. Mined labels: the model's vocabulary applied to the split's "
        "captions, a video's being the union over its captions.",
    ]
    if any("ground_truth" in results.get("attribute_map", {}) for results in results_by_model.values()):
        lines.append(
            "Ground truth: the synthetic generator's entities, actions and relations of each video, in mined "
            "form; scored over the attributes that both vocabularies have."
        )
    return "\n".join(lines)


def _map_cell(scores: dict[str, Any] | None) -> str:
    if scores is None or scores["map"] is None:
        return "–"
    return f"{scores['map']:.1f} (chance {scores['chance']:.1f}, n={scores['attributes']})"


def write_report(
    results_by_model: dict[str, dict[str, Any]],
    output_dir: str | Path,
    attention_examples: dict[str, Any] | None = None,
) -> list[Path]:
    """Write `results.json`, `results.md`, `recall_at_k.png` and (given examples) `frame_attention.png`.

    Plots need matplotlib (the `plots` extra); without it the JSON and markdown are written and the plots skipped
    with a note.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = [output_dir / "results.json", output_dir / "results.md"]
    written[0].write_text(json.dumps(results_by_model, indent=2) + "\n", encoding="utf-8")
    report = markdown_table(results_by_model)
    provenance = next(iter(results_by_model.values())).get("provenance")
    if provenance:
        report += (
            f"\n\nCommand: `{provenance['command']}`; data fingerprint `{provenance['data_fingerprint']}`; "
            "packages (`pip freeze`) in results.json."
        )
    written[1].write_text(report + "\n", encoding="utf-8")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'msam-hf[plots]'): skipping the plots")
        return written

    figure, axis = plt.subplots(figsize=(6, 4))
    for name, results in results_by_model.items():
        for key, curve in results["recall_curve"].items():
            axis.plot(range(1, len(curve) + 1), curve, label=f"{name} ({key})")
    axis.set_xlabel("K")
    axis.set_ylabel("text-to-video R@K (%)")
    axis.set_ylim(0, 100)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(output_dir / "recall_at_k.png", dpi=120)
    plt.close(figure)
    written.append(output_dir / "recall_at_k.png")

    if attention_examples:
        written.append(_plot_frame_attention(plt, attention_examples, output_dir / "frame_attention.png"))
    return written


def frame_attention_examples(
    model: MsamModel, features: RetrievalFeatures, num_queries: int = 4
) -> dict[str, Any] | None:
    """For the first `num_queries` captions (|J| = 1): the frame attention over their own video's frames, and
    whether that video ranked first. None for heads without frame attention (`mean`, `seq_transformer`)."""
    if model.config.similarity_head not in ("ciffp", "attention"):
        return None
    rows = list(range(min(num_queries, len(features.captions))))
    text = MsamTextOutput(**{name: value[rows] for name, value in features.text.items()})
    logits, attention = model.similarity(text, features.video, text_context_size=1, return_frame_attention=True)
    examples = []
    for row in rows:
        video = int(features.caption_to_video[row])
        frames = int(features.video.video_mask[video].sum())
        examples.append(
            {
                "caption": features.captions[row],
                "video_id": features.video_ids[video],
                "timestamps": features.timestamps[video],
                "attention": attention[row, video, :frames].float().cpu().tolist(),
                "rank": int((logits[row] > logits[row, video]).sum()) + 1,
            }
        )
    return {"examples": examples}


def _add_example_frames(
    attention_examples: dict[str, Any],
    split: datasets.Dataset,
    fps: float,
    max_frames: int,
    frame_cache_dir: str | os.PathLike | None,
) -> None:
    """Put the frames each example's video was scored on into its entry (`frames`), for the plot's thumbnails."""
    read = FrameCache(frame_cache_dir).read if frame_cache_dir is not None else read_frames
    split = without_video_decoding(split)
    rows = {video_id: row for row, video_id in enumerate(split["video_id"])}
    for example in attention_examples["examples"]:
        video = split[rows[example["video_id"]]]["video"]
        example["frames"] = read(video, fps=fps, max_frames=max_frames).frames


def _plot_frame_attention(plt, attention_examples: dict[str, Any], path: Path) -> Path:
    """One row per caption: the frames the model saw (thumbnails, when the examples carry them) and, under each, the
    weight the caption gave it, so a reader sees what the caption attended to."""
    examples = attention_examples["examples"]
    columns = max(len(example["attention"]) for example in examples)
    with_frames = all(example.get("frames") is not None for example in examples)
    row_height = 1.6 if with_frames else 0.9
    size = (max(1.1 * columns, 6), row_height * len(examples) + 0.4)
    figure, axes = plt.subplots(len(examples), columns, figsize=size, squeeze=False)
    for row, example in zip(axes, examples):
        weights = np.asarray(example["attention"])
        strongest = weights.max()
        for frame, axis in enumerate(row):
            axis.set_xticks([])
            axis.set_yticks([])
            if frame >= len(weights):
                axis.axis("off")
                continue
            if with_frames:
                axis.imshow(example["frames"][frame])
            else:
                axis.imshow([[weights[frame]]], cmap="viridis", vmin=0, vmax=max(strongest, 1e-6))
            # The most attended frame is framed in red; every frame's weight and second are written under it.
            for side in axis.spines.values():
                side.set_edgecolor("red" if weights[frame] == strongest else "0.7")
                side.set_linewidth(2.5 if weights[frame] == strongest else 0.5)
            axis.set_xlabel(f"{example['timestamps'][frame]:.0f}s: {weights[frame]:.2f}", fontsize=7)
        row[0].set_title(
            f"{example['caption'][:90]}  ({example['video_id']}, rank {example['rank']})", fontsize=7, loc="left"
        )
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


# ----------------------------------------------------------------------------- test-time post-processing


class _PrecomputedScores:
    """Stands in for a model in `evaluate_retrieval`: its similarity per |J|, computed once, so the plain rows and
    every post-processed row rank the same matrix."""

    def __init__(self, config: Any, scores: dict[int, torch.Tensor]):
        self.config, self.scores = config, scores

    @classmethod
    @torch.no_grad()
    def of(cls, model: Any, text: Any, video: Any, text_context_sizes: tuple[int, ...]) -> _PrecomputedScores:
        return cls(
            model.config,
            {size: model.similarity(text, video, text_context_size=size).float().cpu() for size in text_context_sizes},
        )

    def similarity(self, text_features: Any, video_features: Any, text_context_size: int | None = 1) -> torch.Tensor:
        return self.scores[text_context_size]


def evaluate_postprocessed(
    plain_scores: _PrecomputedScores,
    features: RetrievalFeatures,
    method: Postprocessor,
    plain_results: dict[str, Any],
    logit_scale: float,
    bank_scores: _PrecomputedScores | None = None,
    ties: str = "pessimistic",
    video_sites: list[str] | None = None,
) -> dict[str, Any]:
    """`evaluate_retrieval`'s results for each |J|'s plain scores transformed by `method` (`msam_hf.postprocess`),
    plus `postprocess` (method, label, parameters, caveat). Both directions are ranked from the transformed
    caption × video matrix; a direction the method does not re-rank (QB-Norm's video-to-text) keeps the plain
    numbers of `plain_results`."""
    transformed = _PrecomputedScores(
        plain_scores.config,
        {
            size: method.apply(
                scores,
                features.caption_to_video,
                logit_scale,
                bank_scores.scores[size] if bank_scores is not None else None,
            )
            for size, scores in plain_scores.scores.items()
        },
    )
    results = evaluate_retrieval(
        transformed, features, text_context_sizes=tuple(plain_scores.scores), ties=ties, video_sites=video_sites
    )
    for key, metrics in results["metrics"].items():
        if "v2t" not in method.directions:
            metrics.update(
                {name: value for name, value in plain_results["metrics"][key].items() if name.startswith("v2t_")}
            )
            metrics["rsum"] = metrics["t2v_rsum"] + metrics["v2t_rsum"]
    results["postprocess"] = {
        "method": method.name,
        "label": method.label,
        "parameters": dict(method.parameters),
        "directions": list(method.directions),
        "caveat": method.caveat,
    }
    return results


@torch.no_grad()
def query_bank_scores(
    model: Any,
    processor: Any,
    captions: list[str],
    features: RetrievalFeatures,
    text_context_sizes: tuple[int, ...],
    batch_size: int = 256,
) -> _PrecomputedScores:
    """QB-Norm's query bank: `captions` encoded by the model (text only) and scored against the split's videos at
    each |J| (CIFFP scores the bank in consecutive blocks of |J| captions, as the test captions)."""
    parts = []
    for start in tqdm(range(0, len(captions), batch_size), desc="encoding the query bank", unit="batch"):
        inputs = processor(text=captions[start : start + batch_size], return_tensors="pt")
        parts.append(
            model.get_text_features(inputs["input_ids"].to(model.device), inputs["attention_mask"].to(model.device))
        )
    return _PrecomputedScores.of(model, concatenate_outputs(parts), features.video, text_context_sizes)


# ----------------------------------------------------------------------------- models, and `msam evaluate`


def load_model_and_processor(
    path: str | Path, base_model: str | Path | None = None
) -> tuple[MsamModel | McsanModel, Any]:
    """An MSAM or MCSAN model folder (or Hub id) written by `save_pretrained`, or a LoRA adapter folder merged onto
    its base (`base_model`, by default the one the adapter records), with its processor: the one saved with the
    model, else the one saved with the adapter's base, else the packaged default."""
    from transformers import AutoConfig

    from .lora import load_lora
    from .processing_msam import MsamProcessor
    from .processors import default_processor

    path = Path(path)
    if (path / "adapter_config.json").is_file():
        model = load_lora(path, base_model=base_model).merge_and_unload()
    else:
        model_classes = {"msam": MsamModel, "mcsan": McsanModel}
        model_type = AutoConfig.from_pretrained(path).model_type
        if model_type not in model_classes:
            raise ValueError(
                f"{path} holds a {model_type!r} model; msam evaluates {' and '.join(model_classes)} models"
            )
        model = model_classes[model_type].from_pretrained(path)
    for source in (path, base_model):
        if source is None:
            continue
        try:
            return model.eval(), MsamProcessor.from_pretrained(source)
        except (OSError, ValueError):
            continue
    return model.eval(), default_processor(model.config)


def evaluate_models(
    model_paths: list[str | Path],
    data: str | Path,
    split: str = "test",
    *,
    text_context_size: int = 32,
    ties: str = "pessimistic",
    batch_size: int = 16,
    num_workers: int = 2,
    fps: float = 1.0,
    frame_cache_dir: str | Path | None = None,
    attention_queries: int = 4,
    output_dir: str | Path = "msam-eval",
    attributes: bool = True,
    postprocess: list[str] | None = None,
    query_bank_split: str = "train",
    command: str | None = None,
) -> tuple[dict[str, dict[str, Any]], list[Path]]:
    """What `msam evaluate` does: evaluate every model on `data`'s `split` and write the report.

    Returns the results by row name (a model's folder name, or its path when two share a name; post-processed rows
    are labelled "NAME (+METHOD)") and the files written under `output_dir`. `command` is recorded in each result's
    provenance.
    """
    from .data import load_video_text_dataset

    dataset = load_video_text_dataset(data)
    if split not in dataset:
        raise ValueError(f"{data} has no split {split!r}; it has {list(dataset)}")
    sizes = tuple(dict.fromkeys((text_context_size, 1)))
    methods = [POSTPROCESSORS[name] for name in parse_postprocess(postprocess)]
    bank_captions = None
    if any(method.needs_query_bank for method in methods):
        if query_bank_split not in dataset:
            raise ValueError(
                f"QB-Norm's query bank: {data} has no split {query_bank_split!r}; it has "
                f"{list(dataset)} (--query-bank-split)"
            )
        if query_bank_split == split:
            logger.warning("QB-Norm's query bank is the evaluated split itself: its rows then see the test queries")
        bank_split = dataset[query_bank_split].select_columns(["captions"])
        bank_captions = [caption for captions in bank_split["captions"] for caption in captions]
        if not bank_captions:
            raise ValueError(f"QB-Norm's query bank: split {query_bank_split!r} has no captions")
    ground_truth = read_ground_truth(data)
    results, attention = {}, None
    for model_path in model_paths:
        name = Path(model_path).name if len({Path(p).name for p in model_paths}) == len(model_paths) else model_path
        model, processor = load_model_and_processor(model_path)
        features = extract_features(
            model,
            dataset[split],
            processor,
            batch_size=batch_size,
            num_workers=num_workers,
            fps=fps,
            frame_cache_dir=frame_cache_dir,
        )
        video_sites = sites_of(ground_truth, features.video_ids)
        # With post-processing, the plain scores are computed once and shared by the plain and the labelled rows.
        scores = _PrecomputedScores.of(model, features.text, features.video, sizes) if methods else model
        results[name] = evaluate_retrieval(
            scores, features, text_context_sizes=sizes, ties=ties, video_sites=video_sites
        )
        results[name]["model"] = str(model_path)
        results[name]["split"] = split
        if attributes and has_attribute_head(model):
            vocabulary = model_attribute_vocabulary(model, model_path)
            results[name]["attribute_map"] = evaluate_attributes(model, features, vocabulary, ground_truth)
        bank_scores = (
            query_bank_scores(model, processor, bank_captions, features, sizes) if bank_captions is not None else None
        )
        logit_scale = float(model.logit_scale.detach())
        for method in methods:
            results[f"{name} (+{method.label})"] = {
                **evaluate_postprocessed(
                    scores,
                    features,
                    method,
                    results[name],
                    logit_scale,
                    bank_scores,
                    ties=ties,
                    video_sites=video_sites,
                ),
                "model": str(model_path),
                "split": split,
            }
        if attention is None:
            attention = frame_attention_examples(model, features, attention_queries)
            if attention is not None:
                _add_example_frames(attention, dataset[split], fps, model.config.max_frames, frame_cache_dir)
    provenance = {
        "command": command,
        "data_fingerprint": dataset_fingerprint(datasets.DatasetDict({split: dataset[split]})),
        "environment": environment(),
    }
    for result in results.values():
        result["provenance"] = provenance
    written = write_report(results, output_dir, attention)
    return results, written
