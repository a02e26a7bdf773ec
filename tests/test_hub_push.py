"""`msam push` / `push_to_hub` offline: what would be uploaded (model, code, processor, pipeline, handler, card), the
card rendered from the config, eval_results.json and training_args.json, its snippet run against the folder in a
fresh process, the widget's examples answered by handler.py, LoRA folders merged or published alone, and the token
kept out of every error and log."""

import copy
import importlib.util
import json
import logging
import os
import re
import subprocess
import sys
import traceback
from pathlib import Path
from unittest import mock

import huggingface_hub.constants
import numpy as np
import pytest
import torch
import yaml
from huggingface_hub import HfApi
from huggingface_hub import ModelCard
from huggingface_hub import RepoUrl
from huggingface_hub.hf_api import CommitInfo
from safetensors.torch import load_file
from transformers import PreTrainedModel
from transformers import pipeline

from conftest import write_video
from msam_hf import MsamConfig
from msam_hf import MsamModel
from msam_hf import apply_lora
from msam_hf import default_processor
from msam_hf import merge_lora
from msam_hf.cli import main as msam
from msam_hf.evaluation import RetrievalFeatures
from msam_hf.evaluation import evaluate_retrieval
from msam_hf.hub import ENDPOINT_HANDLER
from msam_hf.hub import HubPushError
from msam_hf.hub import build_model_card
from msam_hf.hub import prepare_hub_folder
from msam_hf.hub import push_to_hub

TRAIN = Path(__file__).resolve().parents[1] / "training" / "train.py"
REPO_ID = "someone/msam-drone"
DATASET_ID = "someone/drone-clips"
FULL_REPO_FILES = {
    "README.md",
    "config.json",
    "model.safetensors",
    "eval_results.json",
    "training_args.json",
    "handler.py",
    "configuration_msam.py",
    "modeling_msam.py",
    "modeling_clip_video.py",
    "loss_msam.py",
    "processing_msam.py",
    "video_processing_msam.py",
    "pipeline_msam.py",
    "video_io.py",
    "processor_config.json",
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
}
QUERY = "a white boat passes under a bridge"


def load_module(name: str, path):
    """A script as its runner imports it: training/train.py, or handler.py from a repo's root."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_features(model, processor) -> RetrievalFeatures:
    """Six random clips with two captions each, encoded: what `evaluate_retrieval` needs."""
    rng = np.random.default_rng(0)
    videos = [rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8) for _ in range(6)]
    captions = [
        f"{colour} {thing}" for colour in ("a red", "a blue", "a green") for thing in ("car", "boat", "truck", "house")
    ]
    inputs = processor(text=captions, videos=videos)
    with torch.no_grad():
        return RetrievalFeatures(
            text=model.get_text_features(inputs["input_ids"], inputs["attention_mask"]),
            video=model.get_video_features(inputs["pixel_values_videos"], inputs["video_mask"]),
            caption_to_video=torch.arange(12) // 2,
            video_ids=[f"clip_{index}" for index in range(6)],
            captions=captions,
            timestamps=[[0.0, 1.0, 2.0]] * 6,
        )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model folder as training/train.py leaves OUTPUT/best: weights, processor, eval_results.json and
    training_args.json (written by train.py's own code, for a 2-process LoRA run from a local data folder)."""
    folder = tmp_path_factory.mktemp("best")
    torch.manual_seed(0)
    model = MsamModel(MsamConfig.tiny(max_frames=4)).eval()
    processor = default_processor(model.config)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    results = {
        "epoch": 2,
        "step": 40,
        "split": "validation",
        **evaluate_retrieval(model, make_features(model, processor), text_context_sizes=(32, 1)),
    }
    (folder / "eval_results.json").write_text(json.dumps(results))
    train = load_module("train", TRAIN)
    arguments = train.parse_arguments(
        [
            "--data_dir",
            "/home/someone/data/drone-clips",
            "--output_dir",
            "runs/msam",
            "--max_frames",
            "4",
            "--finetune",
            "lora",
            "--lora_r",
            "8",
            "--gradient_accumulation_steps",
            "2",
            "--num_epochs",
            "3",
        ]
    )
    (folder / "training_args.json").write_text(json.dumps(train._training_args(arguments, num_processes=2)))
    return folder, model, results


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """The two videos the card's snippet names, in the folder it runs in."""
    folder = tmp_path_factory.mktemp("snippet")
    write_video(folder / "clip_a.mp4", seconds=2.0, rate=5, size=(48, 48))
    write_video(folder / "clip_b.mp4", seconds=2.0, rate=7, size=(48, 48))
    return folder


@pytest.fixture(scope="module")
def lora(tmp_path_factory):
    """A base model folder and a LoRA adapter folder trained (here: perturbed) on it."""
    root = tmp_path_factory.mktemp("lora")
    torch.manual_seed(1)
    base = MsamModel(MsamConfig.tiny(max_frames=4))
    base.save_pretrained(root / "base")
    default_processor(base.config).save_pretrained(root / "base")
    # Loaded from its folder, so the adapter records where its base lives (a local path, not a Hub id).
    lora_model = apply_lora(MsamModel.from_pretrained(root / "base"), r=2)
    with torch.no_grad():
        for parameter in lora_model.parameters():
            if parameter.requires_grad:
                parameter.add_(0.05 * torch.randn_like(parameter))
    lora_model.eval().save_pretrained(root / "adapter")
    return root, lora_model


def python_blocks(card_text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", card_text, flags=re.DOTALL)


def run_in_fresh_process(code: str, cwd) -> dict:
    """Run `code` offline in a new interpreter that must never import msam_hf; return the JSON it prints last."""
    code += (
        "\nimport json, sys\n"
        "assert not any(name.startswith('msam_hf') for name in sys.modules), 'msam_hf was imported'\n"
        "print(json.dumps({'ranking': ranking}))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def in_process_ranking(model, processor, clips) -> dict[int, float]:
    """Score of each video (by index) for the snippet's query, from the pipeline built in-package."""
    search = pipeline("video-text-retrieval", model=model.eval(), processor=processor)
    ranking = search(videos=[str(clips / "clip_a.mp4"), str(clips / "clip_b.mp4")], texts=QUERY)
    return {hit["video_index"]: hit["score"] for hit in ranking}


def scores_by_video(ranking: list[dict]) -> dict[int, float]:
    return {hit["video_index"]: hit["score"] for hit in ranking}


def test_the_prepared_folder_holds_model_code_processor_pipeline_handler_and_card(trained, tmp_path):
    folder, model, _ = trained
    out = prepare_hub_folder(folder, tmp_path / "repo", repo_id=REPO_ID, dataset=DATASET_ID)
    assert {path.name for path in out.iterdir()} == FULL_REPO_FILES
    config = json.loads((out / "config.json").read_text())
    assert config["custom_pipelines"] == {
        "video-text-retrieval": {
            "impl": "pipeline_msam.MsamVideoTextRetrievalPipeline",
            "pt": ["AutoModel"],
            "type": "multimodal",
        }
    }
    assert config["auto_map"]["AutoModel"] == "modeling_msam.MsamModel"
    weights = load_file(out / "model.safetensors")
    assert all(torch.equal(weights[name], tensor) for name, tensor in model.state_dict().items())
    assert (out / "handler.py").read_bytes() == ENDPOINT_HANDLER.read_bytes()


def test_the_card_metadata_and_sections_come_from_the_config_and_eval_results(trained, tmp_path):
    folder, _, results = trained
    out = prepare_hub_folder(folder, tmp_path / "repo", repo_id=REPO_ID, dataset=DATASET_ID)
    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "transformers"
    assert card.data.pipeline_tag == "feature-extraction"
    assert card.data.license == "apache-2.0"
    assert card.data.datasets == [DATASET_ID]
    assert card.data.base_model is None  # the tiny preset starts from no pretrained CLIP
    assert {"msam", "video-text-retrieval", "arxiv:2510.15470"} <= set(card.data.tags)

    reported = {(result.task_type, result.metric_name): result for result in card.data.eval_results}
    assert len(reported) == 2 * 10  # |J| = 32 and 1, five measures in each direction
    t2v_r1 = reported[("text-to-video-retrieval", "T2V R@1 (|J|=32)")]
    assert t2v_r1.metric_value == round(results["metrics"]["|J|=32"]["t2v_r1"], 2)
    assert t2v_r1.metric_args == {"text_context_size": 32, "ties": "pessimistic"}
    assert t2v_r1.dataset_name == DATASET_ID and t2v_r1.dataset_split == "validation"
    v2t_mdr = reported[("video-to-text-retrieval", "V2T MdR (|J|=1)")]
    assert v2t_mdr.metric_value == round(results["metrics"]["|J|=1"]["v2t_median_rank"], 2)

    text = card.text
    for placeholder in ("{{", "{%", "[More Information Needed]", "None", "<user>"):
        assert placeholder not in text
    for heading in (
        "## What it is",
        "## How to use",
        "## Configuration",
        "## Training recipe",
        "## Evaluation",
        "## Limitations",
        "## Citation",
    ):
        assert heading in text
    assert "best epoch (2, step 40) by text-to-video R@1 on the `validation` split" in text
    assert "| similarity head | `ciffp`" in text and "| frames per video | at most 4 " in text
    assert f"{results['num_captions']}\ncaptions, {results['num_videos']} videos" in text
    assert "**Ties**: `pessimistic`" in text and "|J| = 32, 1" in text
    assert "CIFFP scores depend on the caption set" in text
    assert "not initialised from pretrained weights" in text
    assert "arXiv:2510.15470" in text and "Nian, Fudong" in text


def evaluate_results_file(path, model_dir, results, names=("best",)) -> Path:
    """A results.json as `msam evaluate` writes it: one entry per model, here the training results on the test split
    with every metric shifted, so the card's numbers show which file they came from."""
    shifted = {
        size: {name: value + 1.0 for name, value in metrics.items()} for size, metrics in results["metrics"].items()
    }
    entry = {key: value for key, value in results.items() if key not in ("epoch", "step")}
    entry.update(split="test", metrics=shifted, model=str(model_dir))
    entry["provenance"] = {"command": f"msam evaluate {model_dir} /home/someone/data", "data_fingerprint": "0123"}
    path.write_text(json.dumps({name: entry for name in names}))
    return path


def test_the_card_reports_msam_evaluate_results_on_the_test_split_when_given(trained, tmp_path):
    folder, _, results = trained
    results_file = evaluate_results_file(tmp_path / "results.json", folder, results)
    out = prepare_hub_folder(
        folder, tmp_path / "repo", repo_id=REPO_ID, dataset=DATASET_ID, eval_results_file=results_file
    )
    card = ModelCard.load(out / "README.md")
    reported = {result.metric_name: result for result in card.data.eval_results}
    t2v_r1 = reported["T2V R@1 (|J|=32)"]
    assert t2v_r1.dataset_split == "test"
    assert t2v_r1.metric_value == round(results["metrics"]["|J|=32"]["t2v_r1"] + 1.0, 2)
    # The checkpoint was still selected on training's validation split, and the card says so.
    assert "best epoch (2, step 40) by text-to-video R@1 on the `validation` split" in card.text
    published = json.loads((out / "eval_results.json").read_text())
    assert published["split"] == "test" and published["data_fingerprint"] == "0123"
    assert "model" not in published and "provenance" not in published  # no local paths in the repo

    two_models = evaluate_results_file(tmp_path / "two.json", tmp_path / "other", results, names=("a", "b"))
    with pytest.raises(ValueError, match="holds the results of a, b, and none names"):
        prepare_hub_folder(
            folder, tmp_path / "repo2", repo_id=REPO_ID, dataset=DATASET_ID, eval_results_file=two_models
        )


def test_a_model_without_eval_results_gets_no_results_and_names_its_clip(tmp_path):
    config = MsamConfig.tiny(similarity_head="mean", base_clip_model="openai/clip-vit-base-patch32")
    card = build_model_card(config, repo_id=REPO_ID)
    assert "model-index" not in str(card.data.to_dict()) and card.data.eval_results is None
    assert card.data.base_model == "openai/clip-vit-base-patch32"
    assert card.data.datasets is None
    assert "## Evaluation" not in card.text and "not initialised from pretrained weights" not in card.text
    assert "CIFFP scores depend" not in card.text  # the mean head has no caption set
    assert "`openai/clip-vit-base-patch32`" in card.text
    assert "## Training recipe" not in card.text  # no training_args.json, no recipe


def recipe_rows(card_text: str) -> dict[str, str]:
    """The rows of the card's training recipe table, without its header."""
    section = card_text.split("## Training recipe", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| ([^|]+) \| (.+) \|$", section, flags=re.MULTILINE))
    assert rows.pop("setting") == "value"
    return rows


def test_the_training_recipe_table_comes_from_training_args(trained, tmp_path):
    folder, _, _ = trained
    out = prepare_hub_folder(folder, tmp_path / "repo", repo_id=REPO_ID, dataset=DATASET_ID)
    assert (out / "training_args.json").read_bytes() == (folder / "training_args.json").read_bytes()
    assert recipe_rows(ModelCard.load(out / "README.md").text) == {
        "training data": "a local folder, `drone-clips`, split `train`",  # its name, not the trainer's home
        "batch size": "64 videos per optimiser step, one caption each (over 2 process(es) × 2 accumulated "
        "micro-batch(es))",
        "epochs": "3",
        "learning rate": "0.0001 (MSAM's modules and LoRA adapters)",
        "CLIP learning rate": "1e-07 (learning rate × backbone coefficient 0.001)",
        "optimiser": "AdamW, betas (0.9, 0.98), eps 1e-06",
        "weight decay": "0.2 (none on biases, norms, logit scale)",
        "schedule": "linear warm-up over 10% of the steps, then cosine decay",
        "gradient clipping": "global norm 1",
        "seed": "42",
        "similarity head": "`ciffp`",
        "semantic loss": "adaptive semantic branch, slots over frames",
        "fine-tuning": "LoRA on CLIP (r 8, alpha 32, dropout 0.05), MSAM's modules in full; the adapters are merged "
        "into these weights",
        "frames": "at most 4 per video, sampled at 1 fps",
    }


def test_a_training_recipe_is_rendered_only_from_what_is_recorded_and_refuses_bad_values(trained, tmp_path):
    config = MsamConfig.tiny()
    prepared = {"video_fps": 3.0, "short_side": 224, "source": "/data/raw"}
    recorded = {"batch_size": 8, "finetune": "frozen", "data_preparation": prepared}
    assert recipe_rows(build_model_card(config, repo_id=REPO_ID, training_args=recorded).text) == {
        "batch size": "8 videos per optimiser step, one caption each",
        "fine-tuning": "CLIP frozen, MSAM's modules trained",
        "video preparation": "re-encoded to 3 fps and a 224-px short side (`msam data prepare`): prepare videos the "
        "same way before scoring them",
    }
    with pytest.raises(ValueError, match=r"'learning rate' row from learning_rate='fast'"):
        build_model_card(config, repo_id=REPO_ID, training_args={"learning_rate": "fast"})

    folder, _, _ = trained
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_bytes((folder / "config.json").read_bytes())
    (broken / "training_args.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="training_args.json must hold one JSON object"):
        prepare_hub_folder(broken, tmp_path / "repo")


def card_metadata(readme) -> dict:
    return yaml.safe_load(readme.read_text().split("---\n")[1])


def test_the_widget_examples_are_captions_the_bundled_handler_embeds(trained, tmp_path):
    folder, model, _ = trained
    out = prepare_hub_folder(folder, tmp_path / "repo", repo_id=REPO_ID, dataset=DATASET_ID)
    metadata = card_metadata(out / "README.md")
    assert metadata["pipeline_tag"] == "feature-extraction"  # its widget sends {"inputs": "<text>"}
    examples = [example["text"] for example in metadata["widget"]]
    assert len(examples) >= 2 and all(isinstance(text, str) and text.strip() for text in examples)
    assert "Inference Endpoint" in ModelCard.load(out / "README.md").text

    handler = load_module("handler", out / "handler.py").EndpointHandler(str(out))
    processor = default_processor(model.config)
    with torch.no_grad():
        inputs = processor(text=examples)
        expected = model.eval().get_text_features(inputs["input_ids"], inputs["attention_mask"]).text_embeds
    for text, vector in zip(examples, expected):
        response = json.loads(json.dumps(handler(json.loads(json.dumps({"inputs": text})))))
        assert len(response) == model.config.projection_dim and all(isinstance(value, float) for value in response)
        assert response == pytest.approx(vector.tolist(), abs=1e-5)
    np.testing.assert_allclose(handler({"inputs": examples}), expected.numpy(), atol=1e-5)  # one vector per text
    with pytest.raises(ValueError, match="a text request takes none"):
        handler({"inputs": examples[0], "parameters": {"top_k": 2}})
    with pytest.raises(ValueError, match='"inputs": "a text"'):
        handler({"inputs": 3})


def test_eval_results_need_the_name_of_the_data_they_were_measured_on(trained, tmp_path):
    folder, _, _ = trained
    with pytest.raises(ValueError, match=r"eval_results.json holds evaluation results.*--dataset"):
        prepare_hub_folder(folder, tmp_path / "repo")
    assert not (tmp_path / "repo").exists()


def test_the_card_snippet_runs_against_the_prepared_folder_in_a_fresh_process(trained, clips, tmp_path):
    folder, model, _ = trained
    out = prepare_hub_folder(folder, tmp_path / "repo", repo_id=REPO_ID, dataset=DATASET_ID)
    blocks = python_blocks((out / "README.md").read_text())
    assert len(blocks) == 1 and REPO_ID in blocks[0]
    fresh = run_in_fresh_process(blocks[0].replace(REPO_ID, str(out)), cwd=clips)

    assert sorted(hit["video"] for hit in fresh["ranking"]) == ["clip_a.mp4", "clip_b.mp4"]
    expected = in_process_ranking(model, default_processor(model.config), clips)
    assert scores_by_video(fresh["ranking"]) == pytest.approx(expected, abs=1e-5)


def offline_hub(monkeypatch):
    """Any request that is not patched fails: HF_HUB_OFFLINE is read at import, so set the constant it became."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def test_push_creates_the_repo_and_branch_and_uploads_the_prepared_folder(trained, monkeypatch, capsys):
    folder, _, _ = trained
    offline_hub(monkeypatch)
    uploaded = {}

    def upload_folder(**kwargs):
        uploaded.update(kwargs, files={path.name for path in kwargs["folder_path"].iterdir()})
        return CommitInfo(
            commit_url=f"https://huggingface.co/{REPO_ID}/commit/abc123",
            commit_message="first",
            commit_description="",
            oid="abc123",
        )

    with (
        mock.patch.object(
            HfApi, "create_repo", return_value=RepoUrl(f"https://huggingface.co/{REPO_ID}")
        ) as create_repo,
        mock.patch.object(HfApi, "create_branch") as create_branch,
        mock.patch.object(HfApi, "upload_folder", side_effect=upload_folder),
    ):
        code = msam(
            [
                "push",
                str(folder),
                REPO_ID,
                "--private",
                "--revision",
                "v1",
                "--commit-message",
                "first",
                "--dataset",
                DATASET_ID,
            ]
        )
    assert code == 0
    create_repo.assert_called_once_with(REPO_ID, repo_type="model", private=True, exist_ok=True)
    create_branch.assert_called_once_with(REPO_ID, branch="v1", repo_type="model", exist_ok=True)
    assert uploaded["files"] == FULL_REPO_FILES
    assert (uploaded["repo_id"], uploaded["revision"], uploaded["commit_message"]) == (REPO_ID, "v1", "first")
    assert not uploaded["folder_path"].exists()  # the staging folder is cleaned up
    assert f"https://huggingface.co/{REPO_ID}/commit/abc123" in capsys.readouterr().out


def test_the_models_own_push_to_hub_uploads_and_says_how_to_publish_the_whole_repo(caplog):
    model = MsamModel(MsamConfig.tiny(max_frames=4))
    with (
        mock.patch.object(PreTrainedModel, "push_to_hub", return_value="commit") as inherited_push,
        caplog.at_level(logging.WARNING),
    ):
        assert model.push_to_hub(REPO_ID, private=True) == "commit"
    inherited_push.assert_called_once_with(REPO_ID, private=True)
    assert "msam push FOLDER REPO_ID" in caplog.text and "not the processor" in caplog.text


def test_a_failed_push_never_shows_the_token(trained, monkeypatch, capsys, caplog):
    folder, _, _ = trained
    offline_hub(monkeypatch)
    caplog.set_level(logging.DEBUG)
    environment_token, explicit_token = "hf_" + "z" * 34, "hf_" + "q" * 34
    monkeypatch.setenv("HF_TOKEN", environment_token)

    # A client library that echoes the credential in its error must not get it printed.
    for token, leaked in ((None, environment_token), (explicit_token, explicit_token)):
        echo = ConnectionError(f"401 Client Error for url https://huggingface.co/api (Authorization: Bearer {leaked})")
        with mock.patch.object(HfApi, "create_repo"), mock.patch.object(HfApi, "upload_folder", side_effect=echo):
            with pytest.raises(HubPushError) as failure:
                push_to_hub(folder, REPO_ID, token=token, dataset=DATASET_ID)
        shown = "".join(traceback.format_exception(failure.value))
        assert leaked not in shown and "Bearer <token>" in shown and "401 Client Error" in shown

    # The real client, offline: the command reports the failure in one line, without the token.
    assert msam(["push", str(folder), REPO_ID, "--dataset", DATASET_ID]) == 1
    printed = capsys.readouterr()
    assert "offline mode is enabled" in printed.err and "Traceback" not in printed.err
    for secret in (environment_token, explicit_token):
        assert secret not in printed.out + printed.err + caplog.text
    assert f"to {REPO_ID}" in caplog.text  # the upload was logged, token-free


def test_a_lora_folder_is_pushed_merged_as_a_plain_model(lora, tmp_path):
    root, lora_model = lora
    out = prepare_hub_folder(root / "adapter", tmp_path / "repo", repo_id=REPO_ID)
    assert FULL_REPO_FILES - {"eval_results.json", "training_args.json"} == {path.name for path in out.iterdir()}
    assert "## Training recipe" not in (out / "README.md").read_text()
    inputs = dict(
        default_processor(lora_model.config)(
            text=["a red car", "two boats"], videos=[np.full((2, 40, 40, 3), value, np.uint8) for value in (30, 200)]
        )
    )
    with torch.no_grad():
        expected = merge_lora(copy.deepcopy(lora_model))(**inputs).logits_per_text
        published = MsamModel.from_pretrained(out).eval()(**inputs).logits_per_text
        base = MsamModel.from_pretrained(root / "base").eval()(**inputs).logits_per_text
    torch.testing.assert_close(published, expected)
    assert not torch.allclose(published, base, atol=1e-3)  # the adapters are in the weights


def test_adapter_only_publishes_the_adapter_with_its_hub_base(lora, tmp_path):
    root, _ = lora
    with pytest.raises(ValueError, match="--base-model"):  # the adapter records a local path, not a Hub id
        prepare_hub_folder(root / "adapter", tmp_path / "refused", adapter_only=True)
    out = prepare_hub_folder(
        root / "adapter",
        tmp_path / "repo",
        adapter_only=True,
        repo_id=f"{REPO_ID}-lora",
        base_model="someone/msam-base",
    )
    assert {path.name for path in out.iterdir()} == {"README.md", "adapter_config.json", "adapter_model.safetensors"}
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == "someone/msam-base"
    assert (out / "adapter_model.safetensors").read_bytes() == (
        root / "adapter" / "adapter_model.safetensors"
    ).read_bytes()
    card = ModelCard.load(out / "README.md")
    assert (card.data.library_name, card.data.base_model) == ("peft", "someone/msam-base")
    assert "widget" not in card_metadata(out / "README.md")  # no handler.py in an adapter repo to answer it
    assert {"lora", "peft"} <= set(card.data.tags)
    assert "[someone/msam-base](https://huggingface.co/someone/msam-base)" in card.text
    with pytest.raises(ValueError, match="not a LoRA adapter folder"):
        prepare_hub_folder(root / "base", tmp_path / "full", adapter_only=True)


def test_the_adapter_card_snippet_applies_the_adapter_in_a_fresh_process(lora, clips, tmp_path):
    root, lora_model = lora
    base_repo = prepare_hub_folder(root / "base", tmp_path / "base-repo", repo_id="someone/msam-base")
    adapter_repo = prepare_hub_folder(
        root / "adapter",
        tmp_path / "adapter-repo",
        adapter_only=True,
        repo_id=f"{REPO_ID}-lora",
        base_model="someone/msam-base",
    )
    blocks = python_blocks((adapter_repo / "README.md").read_text())
    assert len(blocks) == 1
    code = blocks[0].replace(f"{REPO_ID}-lora", str(adapter_repo)).replace("someone/msam-base", str(base_repo))
    fresh = run_in_fresh_process(code, cwd=clips)

    processor = default_processor(lora_model.config)
    merged = in_process_ranking(merge_lora(copy.deepcopy(lora_model)), processor, clips)
    base = in_process_ranking(MsamModel.from_pretrained(root / "base"), processor, clips)
    assert scores_by_video(fresh["ranking"]) == pytest.approx(merged, abs=1e-5)
    assert scores_by_video(fresh["ranking"]) != pytest.approx(base, abs=1e-5)


def test_an_mcsan_model_is_published_with_its_own_card_vocabulary_and_a_working_snippet(clips, tmp_path):
    from msam_hf import McsanConfig
    from msam_hf import McsanModel

    vocabulary = {"entity": ["boat", "car"], "action": ["sail"], "relationship": ["boat under bridge"]}
    torch.manual_seed(0)
    model = McsanModel(McsanConfig.tiny(max_frames=4, attribute_vocabulary=vocabulary)).eval()
    folder = tmp_path / "best"
    model.save_pretrained(folder)
    default_processor(model.config).save_pretrained(folder)
    (folder / "attribute_vocabulary.json").write_text(json.dumps({"levels": vocabulary}))

    out = prepare_hub_folder(folder, tmp_path / "repo", repo_id=REPO_ID)
    assert {"modeling_mcsan.py", "modeling_clip_video.py", "loss_msam.py", "attribute_vocabulary.json"} <= {
        p.name for p in out.iterdir()
    }
    card = ModelCard.load(out / "README.md")
    assert "mcsan" in card.data.tags and "msam" not in card.data.tags
    assert "An MCSAN text–video retrieval model" in card.text and "MSAM (Multi-Semantic" not in card.text
    assert "| levels | global, entity, action, relationship (score weights learned from uniform) |" in card.text
    assert "entity 2, action 1, relationship 1; focal BCE α 0.25, γ 2" in card.text

    fresh = run_in_fresh_process(python_blocks(card.text)[0].replace(REPO_ID, str(out)), cwd=clips)
    assert all(hit["timestamp"] is None for hit in fresh["ranking"])  # MCSAN has no frame attention
    expected = in_process_ranking(model, default_processor(model.config), clips)
    assert scores_by_video(fresh["ranking"]) == pytest.approx(expected, abs=1e-5)


def test_a_clip_read_from_a_local_folder_stays_out_of_the_card(tmp_path):
    (tmp_path / "demo_output" / "pretrain" / "clip").mkdir(parents=True)
    config = MsamConfig.tiny(base_clip_model=str(tmp_path / "demo_output" / "pretrain" / "clip"))
    card = build_model_card(config, repo_id=REPO_ID)
    assert card.data.base_model is None  # the Hub expects a repo id there
    assert "demo_output" not in str(card)
    assert "pretrained CLIP weights from a local folder" in card.text
    assert "not initialised from pretrained weights" not in card.text
