"""training/train.py end to end on a small synthetic dataset: resume after SIGKILL, NaN stop, undecodable videos,
gradient caching against the unaccumulated step (MSAM and MCSAN), and MCSAN runs with their attribute vocabulary."""

import importlib.util
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from safetensors.torch import load_file

from conftest import accelerate_launch
from msam_hf import McsanConfig
from msam_hf import McsanModel
from msam_hf import MsamConfig
from msam_hf import MsamModel
from msam_hf.data.synthetic import SynthConfig
from msam_hf.data.synthetic import generate_synthetic_dataset
from msam_hf.grad_cache import accumulated_contrastive_step

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "training" / "train.py"
FAST = ["--batch_size", "4", "--num_workers", "0", "--log_with", "none", "--max_frames", "3"]


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    # 17 videos: 12 train (3 full steps of 4 per epoch: every video is read), 2 validation, 3 test
    config = SynthConfig(
        num_videos=17, width=48, height=48, duration=3.0, fps=4.0, seed=3, videos_per_site=1, hard_negative_fraction=0.0
    )
    return generate_synthetic_dataset(tmp_path_factory.mktemp("synth"), config, num_workers=1, progress=False)


def run_training(*arguments, check=True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, str(TRAIN), *map(str, arguments)], capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    if check and result.returncode != 0:
        raise AssertionError(f"train.py failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


def final_weights(output_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(output_dir / "final" / "model.safetensors")


def test_resume_after_sigkill_gives_the_uninterrupted_weights(dataset_dir, tmp_path):
    arguments = [
        "--data_dir",
        dataset_dir,
        *FAST,
        "--num_epochs",
        "2",
        "--eval_every_epoch",
        "false",
        "--checkpointing_steps",
        "1",
        "--checkpoints_total_limit",
        "3",
    ]
    run_training(*arguments, "--output_dir", tmp_path / "straight")
    # accelerate's rotation keeps the newest three, named by step.
    kept = sorted(int(path.name.split("_")[1]) for path in (tmp_path / "straight" / "checkpoints").iterdir())
    last = json.loads(
        (tmp_path / "straight" / "checkpoints" / f"checkpoint_{kept[-1]}" / "train_state.json").read_text()
    )
    assert last["step"] >= 4 and kept == [last["step"] - 2, last["step"] - 1, last["step"]]

    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen(
        [sys.executable, str(TRAIN), *map(str, arguments), "--output_dir", str(interrupted)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    first_checkpoint = interrupted / "checkpoints" / "checkpoint_1" / "train_state.json"
    deadline = time.monotonic() + 300
    while not first_checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert first_checkpoint.exists(), "the run died or timed out before its first checkpoint"
    assert not (interrupted / "final").exists(), "the run finished before it could be killed"

    resumed = run_training(*arguments, "--output_dir", interrupted, "--resume_from_checkpoint", "latest")
    assert "resumed from" in resumed.stdout
    straight, after_resume = final_weights(tmp_path / "straight"), final_weights(interrupted)
    assert straight.keys() == after_resume.keys()
    different = [name for name in straight if not torch.equal(straight[name], after_resume[name])]
    assert not different, f"{len(different)} tensors differ after resuming, e.g. {different[:3]}"


NAN_AT_SECOND_STEP = """
import sys
import msam_hf.modeling_msam as modeling
sys.path.insert(0, "training")
import train

calls = {"count": 0}
original = modeling.gaussian_kl_divergence
def nan_on_second_step(*args):
    calls["count"] += 1
    value = original(*args)
    return value * float("nan") if calls["count"] == 2 else value
modeling.gaussian_kl_divergence = nan_on_second_step
train.main(sys.argv[1:])
"""


def test_nan_loss_stops_the_run_naming_step_videos_and_parts(dataset_dir, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            NAN_AT_SECOND_STEP,
            "--data_dir",
            str(dataset_dir),
            *FAST,
            "--num_epochs",
            "1",
            "--checkpointing_steps",
            "1",
            "--output_dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("FloatingPointError")]
    assert errors, result.stderr[-3000:]
    message = errors[-1]
    assert message.startswith("FloatingPointError: non-finite loss at step 1 (epoch 0)")
    assert "distribution_loss=nan" in message and "synth_" in message  # the loss part and the batch's video ids
    assert "checkpoint_1" in message
    good = tmp_path / "checkpoints" / "checkpoint_1"
    assert (good / "train_state.json").is_file() and json.loads((good / "train_state.json").read_text())["step"] == 1
    assert not (tmp_path / "checkpoints" / "checkpoint_2").exists()


def test_undecodable_training_video_is_skipped_and_counted(dataset_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(dataset_dir, data)
    broken = sorted(line for line in (data / "train_list.txt").read_text().splitlines())[0]
    video = data / "Videos" / f"{broken}.mp4"
    video.write_bytes(video.read_bytes()[:300])  # truncated: the header survives, the frames do not
    result = run_training(
        "--data_dir", data, *FAST, "--num_epochs", "1", "--eval_every_epoch", "false", "--output_dir", tmp_path / "run"
    )
    assert "skipped 1 undecodable video(s)" in result.stdout
    assert broken in result.stderr  # the warning names the video
    assert all(torch.isfinite(tensor).all() for tensor in final_weights(tmp_path / "run").values())


def test_resuming_after_a_skipped_batch_continues_where_the_run_was(dataset_dir, tmp_path):
    # Batches of one video: the broken video's batch is skipped (no optimiser step) in every epoch, so the run's
    # step count falls behind the batches it has read; resuming must continue from the batches, not the steps.
    data = tmp_path / "data"
    shutil.copytree(dataset_dir, data)
    broken = sorted(line for line in (data / "train_list.txt").read_text().splitlines())[0]
    (data / "Videos" / f"{broken}.mp4").write_bytes(b"not a video")
    arguments = ["--data_dir", data, *FAST, "--batch_size", "1", "--num_epochs", "2", "--eval_every_epoch", "false"]
    arguments += ["--checkpointing_steps", "1", "--checkpoints_total_limit", "100"]
    run_training(*arguments, "--output_dir", tmp_path / "straight")
    videos = len((data / "train_list.txt").read_text().split())
    epoch_end = tmp_path / "straight" / "checkpoints" / f"checkpoint_{videos - 1}"  # one batch of epoch 0 skipped
    assert json.loads((epoch_end / "train_state.json").read_text())["skipped_steps"] == 1
    resumed = tmp_path / "resumed"
    shutil.copytree(epoch_end, resumed / "checkpoints" / epoch_end.name)
    result = run_training(*arguments, "--output_dir", resumed, "--resume_from_checkpoint", "latest")
    assert "(epoch 1, batch 0)" in result.stdout
    straight, after_resume = final_weights(tmp_path / "straight"), final_weights(resumed)
    assert all(torch.equal(straight[name], after_resume[name]) for name in straight)


def test_best_model_is_saved_with_eval_results(dataset_dir, tmp_path):
    result = run_training("--data_dir", dataset_dir, *FAST, "--num_epochs", "1", "--output_dir", tmp_path)
    assert (
        "training MsamModel (ciffp head, --finetune full) on cpu, 1 process(es), no mixed precision: 3 steps of 4 "
        f"videos (4 per process × 1 accumulation), 3 steps per epoch; logging to none; output in {tmp_path}"
    ) in result.stdout
    assert "best model (epoch 0, validation R@1 " in result.stdout
    assert f"last model in {tmp_path / 'final'}" in result.stdout
    assert "Writing model shards" not in result.stderr  # transformers' bars only with --verbose
    results = json.loads((tmp_path / "best" / "eval_results.json").read_text())
    assert results["split"] == "validation" and results["primary"] == "|J|=32"
    assert set(results["metrics"]) == {"|J|=32", "|J|=1"}
    assert 0 <= results["metrics"]["|J|=1"]["t2v_r1"] <= 100
    loaded = MsamModel.from_pretrained(tmp_path / "best")
    assert loaded.config.similarity_head == "ciffp"
    for folder in ("best", "final"):  # the run's arguments, for the card's training recipe
        recorded = json.loads((tmp_path / folder / "training_args.json").read_text())
        assert (recorded["batch_size"], recorded["max_frames"], recorded["num_epochs"]) == (4, 3, 1)
        assert recorded["data_dir"] == str(dataset_dir) and recorded["clip_model"] is None
        assert recorded["num_processes"] == 1
        # What pipeline(model=folder, trust_remote_code=True) needs (test_pipeline runs it on a saved folder).
        config = json.loads((tmp_path / folder / "config.json").read_text())
        assert set(config["custom_pipelines"]) == {"video-text-retrieval"}
        assert {"pipeline_msam.py", "video_io.py", "processor_config.json"} <= {
            path.name for path in (tmp_path / folder).iterdir()
        }


def random_batch(size: int = 6, frames: int = 3) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(300, 40000, (size, 7), generator=generator)
    input_ids[:, 0], input_ids[:, -1] = 49406, 49407
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 4:] = 0
    video_mask = torch.ones(size, frames, dtype=torch.long)
    video_mask[2, 1:] = 0
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "video_mask": video_mask,
        "pixel_values_videos": torch.randn(size, frames, 3, 64, 64, generator=generator),
    }


@pytest.mark.parametrize(
    "head,semantic_tokens", [("ciffp", "frames"), ("ciffp", "patches"), ("mean", "frames"), ("attention", "frames")]
)
def test_gradient_caching_equals_the_full_batch_step(head, semantic_tokens):
    config = MsamConfig.tiny(
        similarity_head=head, semantic_tokens=semantic_tokens, semantic_dropout=0.0, attention_head_dropout=0.0
    )
    torch.manual_seed(0)
    reference = MsamModel(config).train()
    accumulated = MsamModel(config).train()
    accumulated.load_state_dict(reference.state_dict())
    batch = random_batch()

    output = reference(**batch, return_loss=True)
    output.loss.backward()
    parts = accumulated_contrastive_step(Accelerator(cpu=True), accumulated, batch, num_micro_batches=3)

    torch.testing.assert_close(parts["loss"], output.loss.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(parts["distribution_loss"], output.distribution_loss.detach(), atol=1e-6, rtol=1e-5)
    for (name, expected), actual in zip(reference.named_parameters(), accumulated.parameters()):
        if expected.grad is None:
            assert actual.grad is None or not actual.grad.any(), name
            continue
        torch.testing.assert_close(
            actual.grad, expected.grad, atol=1e-5, rtol=1e-4, msg=lambda m, name=name: f"{name}: {m}"
        )


SMALL_VOCABULARY = {
    "entity": ["car", "boat", "house", "tree", "person"],
    "action": ["drive", "sail", "walk"],
    "relationship": ["car on road", "boat on lake", "person near house", "car next to car"],
}


@pytest.mark.parametrize(
    "model_class,config",
    [
        (McsanModel, McsanConfig.tiny(attribute_vocabulary=SMALL_VOCABULARY)),
        (
            MsamModel,
            MsamConfig.tiny(attribute_vocabulary=SMALL_VOCABULARY, semantic_dropout=0.0),
        ),  # auxiliary objective
    ],
    ids=["mcsan", "msam-attributes"],
)
def test_gradient_caching_equals_the_full_batch_step_with_attribute_losses(model_class, config):
    torch.manual_seed(0)
    reference = model_class(config)
    accumulated = model_class(reference.config)
    accumulated.load_state_dict(reference.state_dict())
    batch = random_batch()
    labels = torch.rand(6, 12, generator=torch.Generator().manual_seed(1)) < 0.3
    batch["attribute_labels"] = labels.float()
    batch["video_attribute_labels"] = (labels | (torch.rand(6, 12) < 0.2)).float()

    output = reference.train()(**batch, return_loss=True)
    output.loss.backward()
    parts = accumulated_contrastive_step(Accelerator(cpu=True), accumulated.train(), batch, num_micro_batches=3)

    for name in ("loss", "contrastive_loss", "attribute_loss", "kl_loss"):
        torch.testing.assert_close(parts[name], getattr(output, name).detach(), atol=1e-5, rtol=1e-5)
    for (name, expected), actual in zip(reference.named_parameters(), accumulated.parameters()):
        torch.testing.assert_close(
            actual.grad, expected.grad, atol=1e-5, rtol=1e-4, msg=lambda m, name=name: f"{name}: {m}"
        )


def test_gradient_caching_refuses_a_model_that_is_not_msam_or_mcsan():
    with pytest.raises(TypeError, match="needs an MsamModel or McsanModel, got Linear"):
        accumulated_contrastive_step(Accelerator(cpu=True), torch.nn.Linear(2, 2), random_batch(), 2)


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--fps", "0", "--fps must be positive, got 0.0"),
        ("--learning_rate", "-1", "--learning_rate must be positive, got -1.0"),
        ("--gradient_accumulation_steps", "0", "--gradient_accumulation_steps must be positive, got 0"),
        ("--num_workers", "-2", "--num_workers must not be negative, got -2"),
        ("--warmup_ratio", "1.5", "--warmup_ratio must be in [0, 1), got 1.5"),
    ],
)
def test_a_bad_value_fails_at_once_in_one_line_naming_its_flag(dataset_dir, tmp_path, capsys, flag, value, message):
    code = load_train_module().run(["--data_dir", str(dataset_dir), "--output_dir", str(tmp_path / "run"), flag, value])
    assert code == 2
    assert capsys.readouterr().err == f"train.py: error: {message}\n"
    assert not (tmp_path / "run").exists()


def test_a_tracker_that_is_not_installed_is_refused_before_anything_is_written(dataset_dir, tmp_path, capsys):
    arguments = ["--data_dir", str(dataset_dir), "--output_dir", str(tmp_path / "run"), "--log_with", "nosuchtracker"]
    assert load_train_module().run(arguments) == 2
    error = capsys.readouterr().err
    assert error.startswith("train.py: error: --log_with nosuchtracker: not an installed tracker")
    assert "accelerate knows aim, tensorboard, wandb" in error and "--log_with none" in error
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is not None, reason="needs tensorboard not installed")
def test_log_with_auto_says_that_it_logs_nowhere_without_tensorboard(dataset_dir, tmp_path):
    arguments = [*FAST, "--log_with", "auto", "--max_steps", "1", "--eval_every_epoch", "false"]
    result = run_training("--data_dir", dataset_dir, *arguments, "--output_dir", tmp_path)
    assert "logging to none (--log_with auto: tensorboard is not installed; pip install 'msam-hf[tensorboard]'" in (
        result.stdout
    )


def test_a_folder_holding_a_run_is_refused_unless_resumed_or_overwritten(dataset_dir, tmp_path):
    arguments = ["--data_dir", dataset_dir, *FAST, "--num_epochs", "1", "--eval_every_epoch", "false"]
    run_training(*arguments, "--output_dir", tmp_path)
    first_run = sorted((tmp_path / "checkpoints").iterdir())
    stale = tmp_path / "checkpoints" / "checkpoint_99"  # a checkpoint only the first run has
    shutil.copytree(first_run[-1], stale)
    refused = run_training(*arguments, "--output_dir", tmp_path, check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines()[-1] == (
        f"train.py: error: {tmp_path} holds a previous run (checkpoints, final): resume it with "
        "--resume_from_checkpoint latest, replace it with --overwrite_output_dir, or choose another --output_dir"
    )
    assert stale.exists()  # refused before anything was written
    replaced = run_training(*arguments, "--output_dir", tmp_path, "--overwrite_output_dir", "true")
    assert "removing the previous run's checkpoints, final" in replaced.stdout
    assert not stale.exists() and (tmp_path / "final" / "model.safetensors").is_file()


def test_batch_size_must_split_over_processes_and_accumulation():
    train = load_train_module()
    arguments = train.TrainArguments(output_dir="unused", batch_size=4, gradient_accumulation_steps=3)
    with pytest.raises(ValueError, match=r"--batch_size 4 must split evenly into 2 process\(es\) × 3 accumulation"):
        train._micro_batch_size(arguments, num_processes=2)
    arguments.gradient_accumulation_steps = 2
    assert train._micro_batch_size(arguments, num_processes=2) == 1


def test_two_process_run_with_accumulation_trains_and_saves(dataset_dir, tmp_path):
    # A real 2-process CPU run (gloo): global-batch gather, gradient caching, the collective skip/NaN checks,
    # evaluation on the main process and the saves must all line up across processes.
    command = accelerate_launch(
        TRAIN,
        "--data_dir",
        dataset_dir,
        *FAST,
        "--gradient_accumulation_steps",
        "2",
        "--num_epochs",
        "1",
        "--output_dir",
        tmp_path,
    )
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-5000:]
    assert "epoch 0: validation text-to-video R@1" in result.stdout
    assert json.loads((tmp_path / "checkpoints" / "checkpoint_3" / "train_state.json").read_text())["step"] == 3
    assert all(torch.isfinite(tensor).all() for tensor in final_weights(tmp_path).values())
    recorded = json.loads((tmp_path / "final" / "training_args.json").read_text())
    assert (recorded["num_processes"], recorded["gradient_accumulation_steps"]) == (2, 2)


def test_model_options_reach_the_config_and_frozen_keeps_only_the_logit_scale_of_clip():
    train = load_train_module()
    model = train.build_model(
        train.ModelArguments(
            similarity_head="ciffp", semantic_loss=False, frame_attention_temperature=0.1, finetune="frozen"
        ),
        train.DataArguments(data_dir="unused", max_frames=5),
    )
    assert model.config.frame_attention_temperature == 0.1 and model.config.max_frames == 5
    assert not model.config.semantic_loss
    trainable_clip = [name for name, parameter in model.clip.named_parameters() if parameter.requires_grad]
    assert trainable_clip == ["logit_scale"]
    assert all(parameter.requires_grad for parameter in model.ciffp.parameters())


def load_train_module():
    spec = importlib.util.spec_from_file_location("train", TRAIN)
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    return train


def test_mcsan_trains_on_mined_attributes_and_msam_evaluate_reports_attribute_map(dataset_dir, tmp_path, capsys):
    from msam_hf.cli import main as msam

    result = run_training(
        "--model",
        "mcsan",
        "--data_dir",
        dataset_dir,
        *FAST,
        "--num_epochs",
        "1",
        "--max_steps",
        "2",
        "--output_dir",
        tmp_path / "run",
    )
    assert (
        "no --attribute_vocab: mined the attribute vocabulary from the 60 captions of the 'train' split"
        in result.stdout
    )
    assert "attribute mAP (video labels)" in result.stdout
    best = tmp_path / "run" / "best"
    # The vocabulary travels in the config; the file beside it adds the tagger that mined it.
    vocabulary = json.loads((best / "attribute_vocabulary.json").read_text())
    assert McsanModel.from_pretrained(best).config.attribute_vocabulary == vocabulary["levels"]
    assert json.loads((best / "training_args.json").read_text())["model"] == "mcsan"
    assert set(json.loads((best / "eval_results.json").read_text())["attribute_map"]) >= {"video", "caption"}

    report = tmp_path / "report"
    assert (
        msam(
            [
                "evaluate",
                str(best),
                str(dataset_dir),
                "--split",
                "test",
                "--num-workers",
                "0",
                "--output-dir",
                str(report),
            ]
        )
        == 0
    )
    assert "| best | multi_level | 32 |" in capsys.readouterr().out
    attribute_map = json.loads((report / "results.json").read_text())["best"]["attribute_map"]
    assert set(attribute_map) == {"tagger", "video", "caption", "ground_truth"}  # synthetic data: ground truth too
    for kind in ("video", "caption", "ground_truth"):
        for scores in attribute_map[kind].values():
            assert set(scores) == {"map", "attributes", "chance"}
            assert scores["map"] is None or 0 <= scores["map"] <= 100
    assert "| best | video (ground truth) |" in (report / "results.md").read_text()


def test_mcsan_with_a_vocabulary_file_lora_and_gradient_caching(dataset_dir, tmp_path):
    from msam_hf.data.attributes import mine_dataset_attributes

    vocabulary = mine_dataset_attributes(dataset_dir, min_count=1, sizes={"entity": 4, "action": 3, "relationship": 2})
    vocabulary.save(tmp_path / "vocab.json")
    result = run_training(
        "--model",
        "mcsan",
        "--attribute_vocab",
        tmp_path / "vocab.json",
        "--finetune",
        "lora",
        "--lora_r",
        "2",
        "--levels",
        "global",
        "entity",
        "action",
        "--data_dir",
        dataset_dir,
        *FAST,
        "--gradient_accumulation_steps",
        "2",
        "--max_steps",
        "1",
        "--eval_every_epoch",
        "false",
        "--output_dir",
        tmp_path / "run",
    )
    assert "mined" not in result.stdout
    config = McsanModel.from_pretrained(tmp_path / "run" / "final").config  # LoRA merged: a plain McsanModel
    assert config.attribute_vocabulary == vocabulary.levels and config.levels == ["global", "entity", "action"]
    assert all(torch.isfinite(tensor).all() for tensor in final_weights(tmp_path / "run").values())


def test_msam_attribute_loss_mines_a_vocabulary_and_trains_the_auxiliary_objective(dataset_dir, tmp_path):
    result = run_training(
        "--attribute_loss",
        "--data_dir",
        dataset_dir,
        *FAST,
        "--num_epochs",
        "1",
        "--max_steps",
        "2",
        "--gradient_accumulation_steps",
        "2",
        "--output_dir",
        tmp_path / "run",
    )
    assert "mined the attribute vocabulary" in result.stdout and "attribute mAP (video labels)" in result.stdout
    model = MsamModel.from_pretrained(tmp_path / "run" / "best")
    assert model.config.attribute_vocabulary and model.config.similarity_head == "ciffp"
    assert set(model.attribute_head.projections) == {"entity", "action", "relationship"}
    assert set(json.loads((tmp_path / "run" / "best" / "eval_results.json").read_text())["attribute_map"]) >= {"video"}


def test_a_missing_or_malformed_attribute_vocabulary_is_named_with_what_to_do(tmp_path):
    train = load_train_module()
    with pytest.raises(ValueError, match=r"--attribute_vocab .*nowhere\.json: no such file; write one with `msam data"):
        train.load_attribute_vocabulary(str(tmp_path / "nowhere.json"))
    broken = tmp_path / "broken.json"
    broken.write_text('{"levels": {"entity": ["car"],')
    with pytest.raises(ValueError, match=r"broken\.json is not valid JSON"):
        train.load_attribute_vocabulary(str(broken))
    broken.write_text(json.dumps({"levels": {"entity": ["car"], "action": [], "relationship": ["car on road"]}}))
    with pytest.raises(ValueError, match=r"broken\.json: levels\.action must be a non-empty list"):
        train.load_attribute_vocabulary(str(broken))
    broken.write_text(json.dumps({"levels": {"entity": ["car"], "action": ["drive"], "relationship": ["car on road"]}}))
    with pytest.raises(ValueError, match=r"is not an attribute vocabulary"):
        train.load_attribute_vocabulary(str(broken))


def test_options_of_the_other_model_are_refused():
    train = load_train_module()
    data = train.DataArguments(data_dir="unused")
    with pytest.raises(ValueError, match="--similarity_head apply to --model msam only, not --model mcsan"):
        train.build_model(train.ModelArguments(model="mcsan", similarity_head="mean"), data)
    with pytest.raises(ValueError, match="--focal_gamma apply to --model mcsan only"):
        train.build_model(train.ModelArguments(focal_gamma=0.0), data)
    with pytest.raises(ValueError, match="--attribute_loss adds MCSAN's attribute objective to MSAM"):
        train.attribute_vocabulary_for(train.ModelArguments(model="mcsan", attribute_loss=True), None, "train", print)
    with pytest.raises(ValueError, match="--model must be one of msam, mcsan"):
        train.build_model(train.ModelArguments(model="clip4clip"), data)
