"""The `video-text-retrieval` pipeline: rank videos for text queries, or labels for videos (zero-shot).

```python
>>> from transformers import pipeline
>>> search = pipeline(model="user/msam-drone", trust_remote_code=True)
>>> search(videos=["harbour.mp4", "forest.mp4"], texts="a white boat passes under a bridge")
[{'video': 'harbour.mp4', 'video_index': 0, 'score': 4.73, 'timestamp': 3.0}, {'video': 'forest.mp4', ...}]
>>> search("harbour.mp4", candidate_labels=["boats", "cars", "people"])
[{'label': 'boats', 'score': 0.71, 'timestamp': 3.0}, ...]
```

This file travels to the Hub next to the weights (the model's `custom_pipelines` entry points at it): it imports
only torch, transformers and `video_io` (PyAV + numpy), which travels with it.
"""

import os
from collections.abc import Mapping

import torch
from transformers import Pipeline

from .video_io import read_frames

TASK = "video-text-retrieval"


class MsamVideoTextRetrievalPipeline(Pipeline):
    r"""
    Text-to-video retrieval and zero-shot video classification with an MSAM model.

    Videos are decoded with PyAV at `fps` frames per second (at most the model's `max_frames`, uniformly spaced, as
    in training). Every text is scored on its own: CIFFP's caption set J is the text alone (|J| = 1), so a score
    does not depend on which other texts or labels are in the call.

    Call with `videos` and either:

    - `texts` (a string or a list): for each text, the videos ranked by score, each with the `timestamp` (seconds)
      of the frame the text attended to most (`None` for the `mean` / `seq_transformer` heads and MCSAN, which have
      no frame attention). `score` is the model's scaled similarity logit.
    - `candidate_labels` (a list): for each video, the labels ranked by probability (softmax over the labels of the
      logits of `hypothesis_template.format(label)`), each with its best-matching `timestamp`.

    A video is a file path, raw bytes, a binary file object or a `{"path": ..., "bytes": ...}` dict (a
    `datasets.Video(decode=False)` value). URLs are refused unless the pipeline is built or called with
    `allow_urls=True`: FFmpeg then fetches them, so only allow it for URLs you trust.

    Parameters (at construction or per call): `fps` (default 1.0), `allow_urls` (default False),
    `hypothesis_template` (default `"a drone video of {}."`), `top_k` (default: all).

    All videos of a call are decoded and encoded in one batch: for large collections, encode once with
    `model.get_video_features` and score with `model.similarity` instead.
    """

    # The model's processor (CLIP tokenizer + frame processor) comes as one AutoProcessor, not as separate parts.
    _load_processor = True
    _load_tokenizer = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_video_processor = False

    def __call__(self, videos=None, texts=None, candidate_labels=None, **kwargs):
        if (texts is None) == (candidate_labels is None):
            raise ValueError(
                "Pass either texts= (rank the videos for each text) or candidate_labels= (rank the "
                "labels for each video), not both or neither."
            )
        single_video = not isinstance(videos, (list, tuple))
        video_list = [videos] if single_video else list(videos)
        if not video_list or any(video is None for video in video_list):
            raise ValueError("Pass videos= (a path, bytes, or a list of them).")
        if texts is not None:
            request = {
                "mode": "retrieval",
                "texts": [texts] if isinstance(texts, str) else list(texts),
                "single_output": isinstance(texts, str),
            }
        else:
            if isinstance(candidate_labels, str):
                candidate_labels = [label.strip() for label in candidate_labels.split(",")]
            request = {"mode": "classification", "labels": list(candidate_labels), "single_output": single_video}
        return super().__call__({"videos": video_list, **request}, **kwargs)

    def _sanitize_parameters(self, fps=None, allow_urls=None, hypothesis_template=None, top_k=None, **kwargs):
        if kwargs:
            raise TypeError(
                f"unknown parameter(s) {sorted(kwargs)}; this pipeline takes fps, allow_urls, "
                "hypothesis_template and top_k."
            )
        preprocess_params = {}
        if fps is not None:
            preprocess_params["fps"] = fps
        if allow_urls is not None:
            preprocess_params["allow_urls"] = allow_urls
        if hypothesis_template is not None:
            preprocess_params["hypothesis_template"] = hypothesis_template
        postprocess_params = {} if top_k is None else {"top_k": top_k}
        return preprocess_params, {}, postprocess_params

    def preprocess(self, request, fps=1.0, allow_urls=False, hypothesis_template="a drone video of {}."):
        if request["mode"] == "classification":
            if "{}" not in hypothesis_template:
                raise ValueError(f"hypothesis_template {hypothesis_template!r} has no '{{}}' to put the label in.")
            texts = [hypothesis_template.format(label) for label in request["labels"]]
        else:
            texts = request["texts"]
        if not texts:
            raise ValueError("Pass at least one text or candidate label.")
        max_frames = min(self.model.config.max_frames, self.processor.image_processor.num_frames)
        frames, timestamps, names = [], [], []
        for index, video in enumerate(request["videos"]):
            name = _video_name(video)
            if _opens_url(video) and not allow_urls:
                raise ValueError(
                    f"video {index} is a URL ({name}); download it first, or pass allow_urls=True to let "
                    "FFmpeg fetch it (only for URLs you trust)."
                )
            decoded = read_frames(video, fps=fps, max_frames=max_frames)
            frames.append(decoded.frames)
            timestamps.append(decoded.timestamps.tolist())
            names.append(name)
        model_inputs = dict(self.processor(text=texts, videos=frames, return_tensors="pt"))
        request = {key: value for key, value in request.items() if key != "videos"}
        return {**model_inputs, "request": request, "timestamps": timestamps, "video_names": names}

    def _forward(self, model_inputs):
        text = self.model.get_text_features(model_inputs["input_ids"], model_inputs["attention_mask"])
        video = self.model.get_video_features(model_inputs["pixel_values_videos"], model_inputs["video_mask"])
        logits, frame_attention = self.model.similarity(text, video, text_context_size=1, return_frame_attention=True)
        best_frames = None
        if frame_attention is not None:  # (texts, videos, frames); padded frames never win
            valid = model_inputs["video_mask"][None].bool()
            best_frames = frame_attention.masked_fill(~valid, -1.0).argmax(dim=-1)
        return {
            "logits_per_text": logits,
            "best_frames": best_frames,
            "request": model_inputs["request"],
            "timestamps": model_inputs["timestamps"],
            "video_names": model_inputs["video_names"],
        }

    def postprocess(self, model_outputs, top_k=None):
        request, timestamps = model_outputs["request"], model_outputs["timestamps"]
        logits = model_outputs["logits_per_text"].float()  # (texts, videos)
        best_frames = model_outputs["best_frames"]

        def timestamp(text_index, video_index):
            if best_frames is None:
                return None
            return timestamps[video_index][int(best_frames[text_index, video_index])]

        if request["mode"] == "retrieval":
            outputs = []
            for text_index in range(logits.shape[0]):
                order = torch.argsort(logits[text_index], descending=True, stable=True)[:top_k].tolist()
                outputs.append(
                    [
                        {
                            "video": model_outputs["video_names"][video_index],
                            "video_index": video_index,
                            "score": logits[text_index, video_index].item(),
                            "timestamp": timestamp(text_index, video_index),
                        }
                        for video_index in order
                    ]
                )
        else:
            probabilities = logits.T.softmax(dim=-1)  # (videos, labels)
            outputs = []
            for video_index in range(probabilities.shape[0]):
                order = torch.argsort(probabilities[video_index], descending=True, stable=True)[:top_k].tolist()
                outputs.append(
                    [
                        {
                            "label": request["labels"][label_index],
                            "score": probabilities[video_index, label_index].item(),
                            "timestamp": timestamp(label_index, video_index),
                        }
                        for label_index in order
                    ]
                )
        return outputs[0] if request["single_output"] else outputs


def _opens_url(video) -> bool:
    """Whether decoding `video` would make FFmpeg open a URL (embedded bytes win over a dict's path)."""
    if isinstance(video, Mapping):
        location = video.get("path") if video.get("bytes") is None else None
    else:
        location = os.fspath(video) if isinstance(video, (str, os.PathLike)) else None
    return location is not None and "://" in location


def _video_name(video) -> str | None:
    """The path or URL a video came from, None for raw bytes and file objects without a name."""
    if isinstance(video, Mapping):
        return video.get("path")
    if isinstance(video, (str, os.PathLike)):
        return os.fspath(video)
    return getattr(video, "name", None) if hasattr(video, "read") else None
