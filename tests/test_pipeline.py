"""The `video-text-retrieval` pipeline and the Inference Endpoints handler as a user gets them from a published repo
or from any folder a model was saved to: `pipeline(model=folder, trust_remote_code=True)` in a process that never
imports msam_hf, and `handler.py` fed a JSON payload. Scores are checked against the model's own forward pass at |J| = 1."""

import base64
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import pipeline

from conftest import write_video
from msam_hf import MsamConfig
from msam_hf import MsamModel
from msam_hf import MsamProcessor
from msam_hf import default_processor
from msam_hf.hub import prepare_hub_folder
from msam_hf.video_io import VideoDecodeError
from msam_hf.video_io import read_frames

TEXTS = ["a white boat passes under a bridge", "a red car parks beside the lake"]
LABELS = ["boats", "cars", "people walking"]
TEMPLATE = "a drone video of {}."

FRESH_PROCESS_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from transformers import pipeline

    request = json.loads(sys.argv[1])
    videos = request["videos"]
    search = pipeline(model=request["repo"], trust_remote_code=True)
    outputs = {
        "task": search.task,
        "module": type(search).__module__,
        "ranking": search(videos=videos, texts=request["texts"]),
        "from_bytes": search(videos=[open(path, "rb").read() for path in videos], texts=request["texts"][0]),
        "labels": search(videos[0], candidate_labels=request["labels"]),
        "labels_top_1": search(videos, candidate_labels=request["labels"], top_k=1),
    }
    assert not any(name.startswith("msam_hf") for name in sys.modules), "the fresh process imported msam_hf"
    print(json.dumps(outputs))
    """
)


@pytest.fixture(scope="module")
def saved_and_published(tmp_path_factory):
    """A tiny model saved with `save_pretrained` (model and processor), the same model published as `msam push` would
    (repo folder), and three short real MP4s.

    The clips' frames encode their frame number in gray levels; at these rates the frames sampled each second differ
    enough that even random weights give frame attention (and CIFFP's caption-set effect) something to work on.
    """
    root = tmp_path_factory.mktemp("pipeline")
    torch.manual_seed(0)
    model = MsamModel(MsamConfig.tiny(max_frames=4)).eval()
    model.save_pretrained(root / "model")
    default_processor(model.config).save_pretrained(root / "model")
    repo = prepare_hub_folder(root / "model", root / "repo", repo_id="someone/msam-tiny")
    videos = [
        write_video(root / f"clip_{rate}.mp4", seconds=seconds, rate=rate, size=(48, 48))
        for rate, seconds in ((16, 2.0), (24, 2.0), (30, 3.0))
    ]
    return {"saved": root / "model", "published": repo}, [str(path) for path in videos]


@pytest.fixture(scope="module")
def published(saved_and_published):
    folders, videos = saved_and_published
    return folders["published"], videos


def expected_outputs(repo, videos, texts):
    """Logits (texts, videos), frame attention and frame times from the model's forward pass at |J| = 1."""
    model = MsamModel.from_pretrained(repo).eval()
    processor = MsamProcessor.from_pretrained(repo)
    decoded = [read_frames(video, fps=1.0, max_frames=model.config.max_frames) for video in videos]
    with torch.no_grad():
        outputs = model(**processor(text=texts, videos=[clip.frames for clip in decoded]), text_context_size=1)
    return outputs.logits_per_text, outputs.frame_attention, [clip.timestamps.tolist() for clip in decoded]


def check_ranking(hits, logits, attention, timestamps, text_index, names):
    """`hits` rank every video by the text's logit, with the time of its most attended frame."""
    order = torch.argsort(logits[text_index], descending=True).tolist()
    assert [hit["video_index"] for hit in hits] == order
    for hit in hits:
        video_index = hit["video_index"]
        assert hit["score"] == pytest.approx(logits[text_index, video_index].item(), abs=1e-5)
        best_frame = attention[text_index, video_index].argmax().item()
        assert hit["timestamp"] == timestamps[video_index][best_frame]
        assert hit["video"] == names[video_index]


@pytest.mark.parametrize("kind", ["saved", "published"])
def test_the_pipeline_of_a_saved_or_published_folder_ranks_videos_and_labels_in_a_fresh_process(
    saved_and_published, kind
):
    folders, videos = saved_and_published
    repo = folders[kind]
    request = {"repo": str(repo), "videos": videos, "texts": TEXTS, "labels": LABELS}
    completed = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS_SCRIPT, json.dumps(request)],
        capture_output=True,
        text=True,
        cwd=repo.parent,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert completed.returncode == 0, completed.stderr
    fresh = json.loads(completed.stdout.strip().splitlines()[-1])
    assert fresh["task"] == "video-text-retrieval"
    assert fresh["module"].startswith("transformers_modules")

    logits, attention, timestamps = expected_outputs(repo, videos, TEXTS)
    assert len(fresh["ranking"]) == len(TEXTS)
    for text_index, hits in enumerate(fresh["ranking"]):
        check_ranking(hits, logits, attention, timestamps, text_index, videos)
    check_ranking(fresh["from_bytes"], logits, attention, timestamps, 0, [None] * len(videos))

    label_logits, label_attention, _ = expected_outputs(repo, videos, [TEMPLATE.format(label) for label in LABELS])
    probabilities = label_logits[:, 0].softmax(dim=0)
    labels = fresh["labels"]
    assert [entry["label"] for entry in labels] == [LABELS[i] for i in torch.argsort(probabilities, descending=True)]
    for entry in labels:
        label_index = LABELS.index(entry["label"])
        assert entry["score"] == pytest.approx(probabilities[label_index].item(), abs=1e-5)
        assert entry["timestamp"] == timestamps[0][label_attention[label_index, 0].argmax().item()]
    assert sum(entry["score"] for entry in labels) == pytest.approx(1.0)
    best_labels = [LABELS[label_logits[:, video].argmax().item()] for video in range(len(videos))]
    assert [[entry["label"] for entry in top] for top in fresh["labels_top_1"]] == [[label] for label in best_labels]


@pytest.fixture(scope="module")
def search(published):
    """The pipeline built in-package, through the task msam_hf registers."""
    repo, _ = published
    return pipeline(
        "video-text-retrieval",
        model=MsamModel.from_pretrained(repo).eval(),
        processor=MsamProcessor.from_pretrained(repo),
    )


def test_a_score_does_not_depend_on_the_other_texts_of_the_call(search, published):
    repo, videos = published
    logits_at_one, _, _ = expected_outputs(repo, videos, TEXTS)  # forward defaults to J = every text of the call
    model = MsamModel.from_pretrained(repo).eval()
    processor = MsamProcessor.from_pretrained(repo)
    clips = [read_frames(video, max_frames=model.config.max_frames).frames for video in videos]
    with torch.no_grad():
        logits_together = model(**processor(text=TEXTS, videos=clips)).logits_per_text
    assert not torch.allclose(logits_at_one, logits_together, atol=1e-4)  # these clips make J matter

    alone = search(videos=videos, texts=TEXTS[1])
    together = search(videos=videos, texts=TEXTS)[1]  # padded to the longer caption: float rounding differs
    assert [(hit["video_index"], hit["timestamp"]) for hit in alone] == [
        (hit["video_index"], hit["timestamp"]) for hit in together
    ]
    assert [hit["score"] for hit in alone] == pytest.approx([hit["score"] for hit in together], abs=1e-6)


def test_urls_are_fetched_only_when_allowed(search, published):
    _, videos = published
    url = "http://127.0.0.1:9/clip.mp4"  # nothing listens on the discard port: FFmpeg fails at once if it tries
    with pytest.raises(ValueError, match="allow_urls=True"):
        search(videos=[videos[0], url], texts=TEXTS[0])
    with pytest.raises(VideoDecodeError, match="127.0.0.1:9"):
        search(videos=[videos[0], url], texts=TEXTS[0], allow_urls=True)


def test_bad_calls_say_what_to_pass(search, published):
    _, videos = published
    with pytest.raises(ValueError, match="either texts= .* or candidate_labels="):
        search(videos=videos, texts=TEXTS, candidate_labels=LABELS)
    with pytest.raises(ValueError, match="either texts="):
        search(videos=videos)
    with pytest.raises(ValueError, match="no '{}'"):
        search(videos[0], candidate_labels=LABELS, hypothesis_template="a drone video")
    with pytest.raises(TypeError, match="unknown parameter"):
        search(videos=videos, texts=TEXTS, text_context_size=32)


def load_handler(repo):
    """handler.py as Inference Endpoints imports it: a file at the root of the repo."""
    spec = importlib.util.spec_from_file_location("handler", repo / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.EndpointHandler(str(repo))


def test_the_endpoint_handler_answers_json_payloads_with_base64_videos(published):
    repo, videos = published
    handler = load_handler(repo)
    encoded = [base64.b64encode(open(path, "rb").read()).decode("ascii") for path in videos]
    logits, attention, timestamps = expected_outputs(repo, videos, TEXTS)

    payload = json.loads(json.dumps({"inputs": {"videos": encoded, "texts": TEXTS}, "parameters": {"top_k": 2}}))
    response = json.loads(json.dumps(handler(payload)))  # the response must survive JSON
    assert len(response) == len(TEXTS)
    for text_index, hits in enumerate(response):
        assert [hit["video_index"] for hit in hits] == torch.argsort(logits[text_index], descending=True)[:2].tolist()
        assert hits[0]["score"] == pytest.approx(logits[text_index].max().item(), abs=1e-5)
        assert (
            hits[0]["timestamp"]
            == timestamps[hits[0]["video_index"]][attention[text_index, hits[0]["video_index"]].argmax().item()]
        )

    data_url = "data:video/mp4;base64," + encoded[0]
    labels = handler({"inputs": {"videos": [data_url], "candidate_labels": LABELS}})
    assert len(labels) == 1 and sorted(entry["label"] for entry in labels[0]) == sorted(LABELS)
    assert sum(entry["score"] for entry in labels[0]) == pytest.approx(1.0)


def test_the_endpoint_handler_rejects_bad_payloads_and_never_fetches_urls(published):
    repo, videos = published
    handler = load_handler(repo)
    encoded = base64.b64encode(open(videos[0], "rb").read()).decode("ascii")
    with pytest.raises(ValueError, match=r"inputs.videos\[1\] is not valid base64"):
        handler({"inputs": {"videos": [encoded, "not base64!"], "texts": TEXTS}})
    with pytest.raises(ValueError, match="unknown parameter"):
        handler({"inputs": {"videos": [encoded], "texts": TEXTS}, "parameters": {"allow_urls": True}})
    with pytest.raises(ValueError, match="not both or neither"):
        handler({"inputs": {"videos": [encoded], "texts": TEXTS, "candidate_labels": LABELS}})
    with pytest.raises(ValueError, match='needs "inputs"'):
        handler({"videos": [encoded], "texts": TEXTS})
