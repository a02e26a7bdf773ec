"""Where does CIFFP's frame attention go on the events benchmark, and does it find the seconds a caption describes?

For a trained CIFFP model (MSAM or `ciffp`) and an events benchmark (`msam data synth --events`), every test caption
that describes one event is scored against its own video at |J| = 1, and the probe reports:

- the spread of the frame–caption cosines ⟨v_t, ŝ⟩ within a video (max − min over its frames), and the frame
  attention softmax_t(⟨v_t, ŝ⟩ / τ) that spread gives at the model's temperature τ;
- how saturated the attention is (its largest weight, and how often it exceeds 0.99);
- how much of it falls on the seconds the ground truth lists as showing the described object, against the share
  of those seconds (what uniform attention, i.e. mean pooling, would put there);
- the same with the attention recomputed at other temperatures on the same features (no retraining).

    python research/frame_attention_probe.py MODEL_DIR EVENTS_DATA_DIR [--temperatures 0.01 0.03 0.1 1]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from msam_hf.data import load_video_text_dataset
from msam_hf.evaluation import extract_features
from msam_hf.evaluation import load_model_and_processor
from msam_hf.evaluation import read_ground_truth
from msam_hf.modeling_msam import MsamTextOutput


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("data")
    parser.add_argument("--split", default="test")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.01, 0.03, 0.1, 1.0])
    parser.add_argument("--frame_cache_dir", default=None)
    args = parser.parse_args()

    model, processor = load_model_and_processor(args.model)
    if model.config.similarity_head != "ciffp":
        raise SystemExit(
            f"{args.model} has the {model.config.similarity_head!r} head; the probe reads CIFFP's attention"
        )
    truth = read_ground_truth(args.data)
    split = load_video_text_dataset(args.data)[args.split]
    features = extract_features(model, split, processor, frame_cache_dir=args.frame_cache_dir)
    rows, visible = _described_events(features, truth)
    text = MsamTextOutput(text_embeds=features.text.text_embeds[rows])
    videos = features.caption_to_video[rows]
    frame_embeds = features.video.frame_embeds[videos]  # (captions, frames, D): each caption's own video
    mask = features.video.video_mask[videos].bool()
    cosines = torch.einsum("ctd,cd->ct", frame_embeds, text.text_embeds).masked_fill(~mask, float("nan"))
    spread = (cosines.nan_to_num(-2).amax(1) - cosines.nan_to_num(2).amin(1)).numpy()
    uniform_share = (visible & mask).sum(1) / mask.sum(1)

    report = {
        "model": args.model,
        "captions": len(rows),
        "temperature": model.config.frame_attention_temperature,
        "cosine_spread": _summary(spread),
        "uniform_share_on_event": float(uniform_share.mean()),
        "by_temperature": {},
    }
    for temperature in args.temperatures:
        attention = (cosines / temperature).nan_to_num(float("-inf")).softmax(1)
        on_event = (attention * visible).sum(1).numpy()
        peak = attention.amax(1).numpy()
        report["by_temperature"][str(temperature)] = {
            "share_on_event": float(on_event.mean()),
            "peak_weight": _summary(peak),
            "saturated": float((peak > 0.99).mean()),
            "peak_on_event": float(visible[torch.arange(len(rows)), attention.argmax(1)].float().mean()),
        }
    print(json.dumps(report, indent=2))


def _described_events(features, truth: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of the captions that describe an event, and for each a (frames,) mask of the seconds it is visible in
    (the frames are sampled at 1 fps, so frame t is second t)."""
    frames = features.video.video_mask.shape[1]
    first_caption = {}
    for row, video in enumerate(features.caption_to_video.tolist()):
        first_caption.setdefault(video, row)
    rows, visible = [], []
    for row, video in enumerate(features.caption_to_video.tolist()):
        record = truth[features.video_ids[video]]
        event = record["caption_events"][row - first_caption[video]]
        if event is None:
            continue
        seconds = [round(time) for time in features.timestamps[video]]
        listed = set(record["events"][event]["visible_seconds"])
        rows.append(row)
        visible.append([second in listed for second in seconds] + [False] * (frames - len(seconds)))
    return torch.tensor(rows), torch.tensor(visible)


def _summary(values: np.ndarray) -> dict:
    return {
        "mean": float(np.mean(values)),
        "median": float(np.median(values)),
        "p10": float(np.percentile(values, 10)),
        "p90": float(np.percentile(values, 90)),
    }


if __name__ == "__main__":
    main()
