"""Inference Endpoints handler for an MSAM model repo published with `msam push`.

Request body (JSON), videos as base64 (a `data:video/mp4;base64,` prefix is accepted):

    {"inputs": {"videos": ["<base64>", ...], "texts": ["a white boat passes under a bridge", ...]},
     "parameters": {"top_k": 5}}
    {"inputs": {"videos": ["<base64>", ...], "candidate_labels": ["boats", "cars"]},
     "parameters": {"hypothesis_template": "a drone video of {}."}}

or a text alone, as the model page's feature-extraction widget sends it:

    {"inputs": "a white boat passes under a bridge"}

Response: with `texts`, one ranked list of videos per text (`video_index`, `score`, `timestamp`); with
`candidate_labels`, one ranked list of labels per video (`label`, `score`, `timestamp`); for a text alone, its
unit-norm embedding (a list of `projection_dim` floats; a list of texts gets one per text), the vector videos are
ranked against. The endpoint never fetches URLs: a server that downloads what a request names can be pointed at
internal addresses.
"""

import base64
import binascii

import torch
from transformers import pipeline

# What a request may set; `allow_urls` is deliberately not among them.
REQUEST_PARAMETERS = ("top_k", "fps", "hypothesis_template")


class EndpointHandler:
    def __init__(self, path: str = ""):
        # The repo's config names one custom task (`video-text-retrieval`), so the pipeline finds it by itself.
        self.pipeline = pipeline(model=path or ".", trust_remote_code=True)

    def __call__(self, data: dict) -> list:
        inputs = data.get("inputs")
        parameters = data.get("parameters") or {}
        if _is_text(inputs):
            if parameters:
                raise ValueError(f"parameters {sorted(parameters)} apply to ranking videos; a text request takes none")
            return self._text_embeddings(inputs)
        if not isinstance(inputs, dict):
            raise ValueError(
                'the request needs "inputs": {"videos": [...], "texts": [...] or "candidate_labels": '
                '[...]}, or "inputs": "a text" (or a list of texts) for its embedding'
            )
        unknown = sorted(set(parameters) - set(REQUEST_PARAMETERS))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown}; allowed: {list(REQUEST_PARAMETERS)}")
        encoded_videos = inputs.get("videos")
        if not isinstance(encoded_videos, list) or not encoded_videos:
            raise ValueError('"inputs.videos" must be a non-empty list of base64-encoded video files')
        videos = [_decode_base64(value, index) for index, value in enumerate(encoded_videos)]
        texts, labels = inputs.get("texts"), inputs.get("candidate_labels")
        if (texts is None) == (labels is None):
            raise ValueError(
                'give "inputs.texts" (rank the videos per text) or "inputs.candidate_labels" '
                "(rank the labels per video), not both or neither"
            )
        if texts is not None:
            return self.pipeline(videos=videos, texts=[texts] if isinstance(texts, str) else list(texts), **parameters)
        return self.pipeline(videos=videos, candidate_labels=list(labels), **parameters)

    def _text_embeddings(self, texts):
        model_inputs = self.pipeline.processor(text=texts, return_tensors="pt").to(self.pipeline.device)
        with torch.inference_mode():
            embeds = self.pipeline.model.get_text_features(model_inputs["input_ids"], model_inputs["attention_mask"])
        vectors = embeds.text_embeds.float().tolist()
        return vectors[0] if isinstance(texts, str) else vectors


def _is_text(inputs) -> bool:
    return isinstance(inputs, str) or (
        isinstance(inputs, list) and bool(inputs) and all(isinstance(item, str) for item in inputs)
    )


def _decode_base64(value, index: int) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"inputs.videos[{index}] must be a base64 string, got {type(value).__name__}")
    if value.startswith("data:"):
        value = value.partition(",")[2]
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as error:
        raise ValueError(f"inputs.videos[{index}] is not valid base64 ({error})") from None
