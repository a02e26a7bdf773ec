"""Gradio Space: search drone videos with a text query using an MSAM model from the Hub.

The model, its processor, its frame decoder and the `video-text-retrieval` pipeline all come from the model repo
(`trust_remote_code=True`), so this Space needs only torch, transformers, PyAV and gradio; msam_hf is used when it
happens to be installed, which lets a plain `save_pretrained` folder (e.g. a training run's `best/`) work too.

Settings (environment variables):
    MSAM_MODEL    Hub repo id or local folder of the model (default: the first entry of `models:` in README.md).
    MSAM_SAMPLES  folder of sample videos searched by default (default: `samples/` next to this file).

Every video is decoded at 1 frame per second (at most the model's `max_frames`) and encoded once; a query is then
scored against each video on its own (CIFFP's caption set |J| = 1), so adding videos never changes a score.
"""

import base64
import functools
import html
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
import torch
from huggingface_hub import SpaceCard
from PIL import Image
from transformers import pipeline

try:
    import msam_hf  # noqa: F401  registers the task for folders without `custom_pipelines`
except ImportError:
    pass

HERE = Path(__file__).resolve().parent
SAMPLES_DIR = Path(os.environ.get("MSAM_SAMPLES", HERE / "samples"))
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi")
THUMBNAIL_SIZE = 160  # pixels, longest side: what the cache keeps of each frame
EXAMPLE_QUERIES = [
    "a white boat passes under a bridge",
    "a red car parks beside the lake",
    "two people walk across the grass",
]


def default_model() -> str:
    """MSAM_MODEL, else the model this Space's card links to (`models:` in README.md)."""
    if os.environ.get("MSAM_MODEL"):
        return os.environ["MSAM_MODEL"]
    models = SpaceCard.load(HERE / "README.md").data.models
    if not models:
        raise ValueError(
            "set MSAM_MODEL to a model folder or Hub repo id, or list the model under `models:` in "
            f"{HERE / 'README.md'}"
        )
    return models[0]


@dataclass
class EncodedVideo:
    name: str
    thumbnails: list[Image.Image]  # the frames the model saw, downscaled
    timestamps: list[float]  # seconds
    features: object  # the model's MsamVideoOutput for this video alone


@dataclass
class Hit:
    name: str
    score: float
    timestamps: list[float]
    attention: list[float] | None  # the query's frame attention; None for heads without one (mean pooling)
    thumbnails: list[Image.Image]

    @property
    def best_frame(self) -> int:
        return int(np.argmax(self.attention)) if self.attention is not None else len(self.timestamps) // 2


class VideoSearch:
    """Ranks videos (paths) for a text query; each video is decoded and encoded once (LRU-cached by path)."""

    def __init__(self, model_path_or_id: str):
        self.pipeline = pipeline("video-text-retrieval", model=model_path_or_id, trust_remote_code=True)
        self.model, self.processor = self.pipeline.model, self.pipeline.processor
        # The frame decoder (video_io.read_frames, PyAV) travels in the model repo next to the pipeline code.
        self.read_frames = sys.modules[type(self.pipeline).__module__].read_frames
        self.max_frames = min(self.model.config.max_frames, self.processor.image_processor.num_frames)
        # Gradio stores each upload under a folder named by its content hash, so a path always means one video.
        self.encode = functools.lru_cache(maxsize=64)(self._encode)

    @torch.inference_mode()
    def _encode(self, path: str) -> EncodedVideo:
        decoded = self.read_frames(path, fps=1.0, max_frames=self.max_frames)
        features = self.model.get_video_features(**self.processor(videos=[decoded.frames], return_tensors="pt"))
        thumbnails = []
        for frame in decoded.frames:
            image = Image.fromarray(frame)
            image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
            thumbnails.append(image)
        return EncodedVideo(Path(path).name, thumbnails, decoded.timestamps.tolist(), features)

    @torch.inference_mode()
    def rank(self, query: str, paths: list[str]) -> list[Hit]:
        """All `paths` ranked by score for `query`, best first (ties keep the given order)."""
        tokens = self.processor(text=[query], return_tensors="pt")
        text = self.model.get_text_features(tokens["input_ids"], tokens["attention_mask"])
        hits = []
        for path in paths:
            video = self.encode(str(path))
            logits, attention = self.model.similarity(
                text, video.features, text_context_size=1, return_frame_attention=True
            )
            hits.append(
                Hit(
                    video.name,
                    logits[0, 0].item(),
                    video.timestamps,
                    None if attention is None else attention[0, 0].tolist(),
                    video.thumbnails,
                )
            )
        return sorted(hits, key=lambda hit: -hit.score)


def sample_videos(samples_dir: Path) -> list[Path]:
    if not samples_dir.is_dir():
        return []
    return sorted(path for path in samples_dir.iterdir() if path.suffix.lower() in VIDEO_SUFFIXES)


def _data_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def render_hits(query: str, hits: list[Hit]) -> str:
    """The ranked list as HTML: rank, name, score, the best frame and the strip of frames with their attention."""
    rows = []
    for rank, hit in enumerate(hits, start=1):
        best = hit.best_frame
        strip = []
        for index, (thumbnail, time) in enumerate(zip(hit.thumbnails, hit.timestamps)):
            weight = None if hit.attention is None else hit.attention[index]
            caption = f"{time:g} s" if weight is None else f"{time:g} s · {weight:.0%}"
            # Opacity follows the attention, relative to the most attended frame, so the strip reads at a glance.
            opacity = 1.0 if weight is None else 0.25 + 0.75 * weight / max(hit.attention)
            border = "#f97316" if index == best and weight is not None else "transparent"
            strip.append(
                f'<figure class="msam-frame" data-attention="{weight if weight is not None else ""}" '
                f'style="margin:0;text-align:center;font-size:11px">'
                f'<img src="{_data_url(thumbnail)}" alt="frame at {time:g} s" '
                f'style="height:48px;opacity:{opacity:.2f};border:2px solid {border}">'
                f"<figcaption>{caption}</figcaption></figure>"
            )
        best_note = (
            f"most attended frame at {hit.timestamps[best]:g} s"
            if hit.attention is not None
            else "this model's similarity head has no frame attention"
        )
        name = html.escape(hit.name)
        rows.append(
            f'<li class="msam-result" data-video="{name}" data-score="{hit.score!r}" '
            f'style="display:flex;gap:12px;align-items:flex-start;margin:10px 0">'
            f'<img class="msam-thumbnail" src="{_data_url(hit.thumbnails[best])}" alt="{name}" '
            f'style="width:120px;border-radius:4px">'
            f'<div><div><b>{rank}. {name}</b> · score <span class="msam-score">{hit.score:.3f}</span> · {best_note}'
            f'</div><div class="msam-strip" style="display:flex;gap:4px;margin-top:6px">{"".join(strip)}</div></div>'
            "</li>"
        )
    return (
        f'<p class="msam-summary">{len(hits)} videos ranked for “{html.escape(query)}”</p>'
        f'<ol class="msam-results" style="list-style:none;padding:0">{"".join(rows)}</ol>'
    )


def build_demo(model_path_or_id: str, samples_dir: Path = SAMPLES_DIR) -> gr.Blocks:
    search = VideoSearch(model_path_or_id)
    samples = sample_videos(Path(samples_dir))
    for path in samples:  # encode the samples now, so the first query is fast
        search.encode(str(path))
    config = search.model.config

    def run(query: str, uploads: list[str] | None, use_samples: bool) -> str:
        query = (query or "").strip()
        if not query:
            raise gr.Error("Type a query first.")
        paths = list(uploads or []) + ([str(path) for path in samples] if use_samples else [])
        if not paths:
            raise gr.Error("Upload videos or tick the sample videos.")
        try:
            return render_hits(query, search.rank(query, paths))
        except ValueError as error:  # the decoder's VideoDecodeError names the file and the reason
            raise gr.Error(str(error)) from error

    with gr.Blocks(title="MSAM drone video search") as demo:
        gr.Markdown(
            "# MSAM drone video search\n"
            f"Model: `{model_path_or_id}` ({config.similarity_head} similarity head). Each video is read at one "
            f"frame per second, at most {search.max_frames} frames. The strip under each result shows those frames; "
            "the brighter a frame, the more the query attended to it."
        )
        with gr.Row():
            with gr.Column(scale=1):
                query = gr.Textbox(label="Query", placeholder=EXAMPLE_QUERIES[0], elem_id="query")
                uploads = gr.File(label="Your videos", file_count="multiple", file_types=["video"], elem_id="uploads")
                use_samples = gr.Checkbox(
                    label=f"Search the {len(samples)} sample videos",
                    value=bool(samples),
                    visible=bool(samples),
                    elem_id="use-samples",
                )
                button = gr.Button("Search", variant="primary", elem_id="search")
                gr.Examples(EXAMPLE_QUERIES, inputs=query)
            with gr.Column(scale=2):
                results = gr.HTML(elem_id="results")
        gr.on([button.click, query.submit], run, inputs=[query, uploads, use_samples], outputs=results)
    return demo


if __name__ == "__main__":
    build_demo(default_model()).launch()
