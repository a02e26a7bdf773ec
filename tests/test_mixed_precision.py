"""Mixed precision, gradient checkpointing and torch.compile: the heads and losses run in float32 under bf16 autocast
(on the CPU here, as on a GPU), a bf16 forward stays near the float32 one, checkpointed towers give the same step,
`accelerate launch --mixed_precision bf16 training/train.py --gradient_checkpointing true` trains and saves, and so
does `--torch_compile` (with the eager backend here: inductor's C++ build would take minutes)."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import accelerate_launch
from msam_hf import McsanConfig
from msam_hf import McsanModel
from msam_hf import MsamConfig
from msam_hf import MsamModel
from msam_hf.data.synthetic import SynthConfig
from msam_hf.data.synthetic import generate_synthetic_dataset

TRAIN = Path(__file__).resolve().parents[1] / "training" / "train.py"
VOCABULARY = {"entity": ["car", "boat", "house"], "action": ["drives", "parks"], "relationship": ["near", "on"]}
MODELS = {
    "msam": lambda: MsamModel(MsamConfig.tiny(max_frames=4)),
    "msam-patches": lambda: MsamModel(MsamConfig.tiny(max_frames=4, semantic_tokens="patches")),
    "mcsan": lambda: McsanModel(McsanConfig.tiny(max_frames=4, attribute_vocabulary=VOCABULARY)),
}


def inputs(size: int = 6, frames: int = 4) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(300, 40000, (size, 9), generator=generator)
    input_ids[:, 0], input_ids[:, -1] = 49406, 49407
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "pixel_values_videos": torch.randn(size, frames, 3, 64, 64, generator=generator),
        "video_mask": torch.ones(size, frames, dtype=torch.long),
    }


def encoded(model, batch):
    text = model.get_text_features(batch["input_ids"], batch["attention_mask"])
    patches = {"return_patch_embeds": model.needs_patch_embeds} if isinstance(model, MsamModel) else {}
    video = model.get_video_features(batch["pixel_values_videos"], batch["video_mask"], **patches)
    return text, video


def heads(model, text, video) -> dict[str, torch.Tensor]:
    outputs = model.contrastive_outputs(text, video)
    outputs.update(model.pair_losses(text, video))
    outputs["logits_at_j1"] = model.similarity(text, video, text_context_size=1)
    return {name: value for name, value in outputs.items() if value is not None}


@pytest.mark.parametrize("name", MODELS)
def test_heads_and_losses_run_in_float32_under_bf16_autocast(name):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    with torch.no_grad():
        text, video = encoded(model, inputs())
        reference = heads(model, text, video)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            under_autocast = heads(model, text, video)
            # What the towers hand over under autocast: bf16 features, upcast by the heads.
            half_text, half_video = (
                type(features)(
                    **{key: value.bfloat16() if value.is_floating_point() else value for key, value in features.items()}
                )
                for features in (text, video)
            )
            from_bf16_features = heads(model, half_text, half_video)
    assert reference.keys() == under_autocast.keys() == from_bf16_features.keys()
    for key, value in reference.items():
        assert under_autocast[key].dtype == torch.float32, key
        torch.testing.assert_close(under_autocast[key], value, rtol=0, atol=0, msg=key)
        # Only the features' own rounding (8 significant bits: ≤ 2⁻⁹ relative) reaches the scores and losses.
        torch.testing.assert_close(from_bf16_features[key], value, rtol=0.02, atol=0.02 * model.logit_scale.item())


@pytest.mark.parametrize("name", MODELS)
def test_a_bf16_autocast_forward_stays_close_to_float32(name):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    batch = inputs()
    with torch.no_grad():
        reference = model(**batch, return_loss=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model(**batch, return_loss=True)
    assert mixed.logits_per_text.dtype == mixed.loss.dtype == torch.float32
    # The towers run in bf16 (relative error ~2⁻⁸ per operation, a few percent after the blocks); the logits are
    # λ · cosines (λ ≈ 14 here), so 0.05 · λ bounds a 5 % error of a cosine.
    scale = model.logit_scale.item()
    torch.testing.assert_close(mixed.logits_per_text, reference.logits_per_text, rtol=0, atol=0.05 * scale)
    torch.testing.assert_close(mixed.loss, reference.loss, rtol=0.02, atol=0.02)


@pytest.mark.parametrize("name", ["msam", "mcsan"])
def test_gradient_checkpointing_in_the_towers_gives_the_same_step(name):
    torch.manual_seed(0)
    plain = MODELS[name]().train()
    checkpointed = copy.deepcopy(plain)
    checkpointed.clip.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    assert checkpointed.clip.text_model.encoder.gradient_checkpointing
    assert checkpointed.clip.vision_model.encoder.gradient_checkpointing
    batch = inputs()
    losses = []
    for model in (plain, checkpointed):
        torch.manual_seed(1)  # the same dropout draws in both
        loss = model(**batch, return_loss=True).loss
        loss.backward()
        losses.append(loss.detach())
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-6, atol=1e-6)
    for (key, parameter), other in zip(plain.named_parameters(), checkpointed.parameters()):
        if parameter.grad is not None:
            torch.testing.assert_close(other.grad, parameter.grad, rtol=1e-5, atol=1e-6, msg=key)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """12 short videos, one per site: 8 training videos (two steps of 4), 1 for validation."""
    config = SynthConfig(
        num_videos=12, width=48, height=48, duration=2.0, fps=2.0, seed=5, videos_per_site=1, hard_negative_fraction=0.0
    )
    return generate_synthetic_dataset(tmp_path_factory.mktemp("data"), config, num_workers=1, progress=False)


def test_train_py_under_bf16_mixed_precision_with_gradient_checkpointing(data, tmp_path):
    command = accelerate_launch(
        TRAIN,
        "--data_dir",
        str(data),
        "--output_dir",
        str(tmp_path / "run"),
        "--batch_size",
        "4",
        "--max_frames",
        "2",
        "--num_epochs",
        "1",
        "--num_workers",
        "0",
        "--log_with",
        "none",
        "--gradient_checkpointing",
        "true",
        num_processes=1,
        mixed_precision="bf16",
    )
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-5000:]
    assert "gradient checkpointing in the CLIP towers" in result.stdout
    results = json.loads((tmp_path / "run" / "final" / "eval_results.json").read_text())
    assert results["step"] == 2
    weights = MsamModel.from_pretrained(tmp_path / "run" / "final").state_dict()
    assert all(tensor.dtype == torch.float32 and torch.isfinite(tensor).all() for tensor in weights.values())


def test_train_py_with_compiled_towers_saves_a_model_that_loads(data, tmp_path):
    arguments = ["--data_dir", data, "--output_dir", tmp_path / "run", "--batch_size", "4", "--max_frames", "2"]
    arguments += ["--num_epochs", "1", "--num_workers", "0", "--log_with", "none", "--eval_every_epoch", "false"]
    arguments += ["--torch_compile", "true", "--torch_compile_backend", "eager"]
    result = subprocess.run([sys.executable, TRAIN, *map(str, arguments)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-5000:]
    assert "the CLIP towers compile with torch.compile (backend eager)" in result.stdout
    saved = MsamModel.from_pretrained(tmp_path / "run" / "final").state_dict()
    assert saved.keys() == MsamModel(MsamConfig.tiny(max_frames=2)).state_dict().keys()  # no "_orig_mod." names
