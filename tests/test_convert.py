"""`msam convert`: CLIP4Clip / MSAM-authors training checkpoints become MsamModel folders.

The checkpoints here are written from random tiny MsamModels with `clip4clip_state_dict`, an independent
transcription of the reference layout (OpenAI CLIP names, packed q/k/v, `x @ proj` projections).
"""

import copy
import json
import subprocess
import sys
import textwrap
from collections import OrderedDict

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from safetensors.torch import save_file
from torch import nn
from transformers.models.clip.modeling_clip import CLIPEncoderLayer

from msam_hf import MsamConfig
from msam_hf import MsamModel
from msam_hf import default_processor
from msam_hf.cli import main as msam
from msam_hf.configuration_msam import TINY_CLIP_CONFIG
from msam_hf.convert import ConversionError
from msam_hf.convert import convert_checkpoint
from msam_hf.convert import rename_checkpoint
from msam_hf.testing_utils import clip4clip_state_dict


def tiny_reference_model(similarity_head: str = "ciffp", semantic_loss: bool = True) -> MsamModel:
    """A random tiny model shaped like a CLIP4Clip one: width/64 attention heads (OpenAI's rule, the only head
    count a checkpoint implies), and sizes away from the defaults so that inferring them is tested."""
    clip_config = copy.deepcopy(TINY_CLIP_CONFIG)
    clip_config["text_config"]["num_attention_heads"] = 2
    clip_config["vision_config"] |= {
        "hidden_size": 64,
        "intermediate_size": 256,
        "num_attention_heads": 1,
        "patch_size": 16,
    }
    config = MsamConfig(
        clip_config=clip_config,
        similarity_head=similarity_head,
        semantic_loss=semantic_loss,
        max_frames=4,
        temporal_num_layers=2,
        semantic_num_slots=3,
        semantic_hidden_size=32,
        distribution_mu_hidden_size=48,
        distribution_sigma_hidden_size=16,
    )
    torch.manual_seed(0)
    model = MsamModel(config).eval()
    with torch.no_grad():  # LayerNorms and biases start at 1 / 0: move them so a swapped name would show
        for parameter in model.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
    return model


def make_inputs(model: MsamModel) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(0)
    videos = [rng.integers(0, 256, (frames, 40, 56, 3), dtype=np.uint8) for frames in (3, 4, 2)]
    captions = ["a red car drives along the road", "two boats on the lake", "aerial view of a forest"]
    return dict(default_processor(model.config)(text=captions, videos=videos))


def scores_and_semantic_losses(model: MsamModel, inputs: dict) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        outputs = {"logits_per_text": model(**inputs).logits_per_text}
        if model.config.semantic_loss:
            text = model.get_text_features(inputs["input_ids"], inputs["attention_mask"])
            video = model.get_video_features(inputs["pixel_values_videos"], inputs["video_mask"])
            outputs["distribution_loss"], outputs["diversity_loss"] = model.semantic_losses(text, video)
    return outputs


def assert_same_weights(converted: MsamModel, original: MsamModel) -> None:
    converted_state, original_state = converted.state_dict(), original.state_dict()
    assert converted_state.keys() == original_state.keys()
    different = [name for name in original_state if not torch.equal(converted_state[name], original_state[name])]
    assert not different, f"tensors that changed in the round trip: {different}"


@pytest.mark.parametrize("semantic_loss", [False, True], ids=["no-semantic", "semantic"])
@pytest.mark.parametrize("similarity_head", ["mean", "seq_transformer", "ciffp"])
def test_round_trip_through_the_reference_layout_keeps_weights_and_scores(tmp_path, similarity_head, semantic_loss):
    original = tiny_reference_model(similarity_head, semantic_loss)
    torch.save(clip4clip_state_dict(original), tmp_path / "pytorch_model.bin.4")

    converted, report = convert_checkpoint(tmp_path / "pytorch_model.bin.4", tmp_path / "msam", max_frames=4)

    config = converted.config
    assert (config.similarity_head, config.semantic_loss) == (similarity_head, semantic_loss)
    assert (config.max_frames, config.projection_dim) == (4, 128)
    assert config.clip_config.vision_config.image_size == 64
    assert_same_weights(converted, original)
    inputs = make_inputs(original)
    expected, actual = scores_and_semantic_losses(original, inputs), scores_and_semantic_losses(converted, inputs)
    assert actual.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], atol=1e-5, rtol=1e-5, msg=name)
    assert report["partial"] is False and report["unused_keys"] == report["missing_keys"] == []
    assert sum(report["mapped_tensors"].values()) == len(original.state_dict())
    assert json.loads((tmp_path / "msam" / "conversion_report.json").read_text()) == report


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class OpenAIResidualBlock(nn.Module):
    """OpenAI CLIP's ResidualAttentionBlock (clip/model.py), the block CLIP4Clip checkpoints store."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict(c_fc=nn.Linear(width, 4 * width), gelu=QuickGELU(), c_proj=nn.Linear(4 * width, width))
        )
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x):  # x: (length, batch, width), OpenAI's order
        normed = self.ln_1(x)
        x = x + self.attn(normed, normed, normed, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


def test_a_converted_openai_block_computes_what_the_original_block_computes():
    torch.manual_seed(0)
    block = OpenAIResidualBlock(width=128, heads=2).eval()
    renamed = rename_checkpoint(
        {f"transformerClip.resblocks.0.{name}": tensor for name, tensor in block.state_dict().items()}
    )
    layer_config = MsamConfig.tiny().clip_config.text_config
    layer_config.num_attention_heads, layer_config._attn_implementation = 2, "eager"
    layer = CLIPEncoderLayer(layer_config).eval()
    layer.load_state_dict({name.removeprefix("temporal.layers.0."): tensor for name, tensor in renamed.weights.items()})

    frames = torch.randn(3, 5, 128)
    with torch.no_grad():
        torch.testing.assert_close(layer(frames, None), block(frames.transpose(0, 1)).transpose(0, 1))


def test_openai_projection_matrices_become_linear_weights():
    projection = torch.randn(64, 128)  # OpenAI: features @ proj, (vision width, projection dim)
    renamed = rename_checkpoint({"clip.visual.proj": projection})
    features = torch.randn(2, 64)
    linear_weight = renamed.weights["clip.visual_projection.weight"]
    torch.testing.assert_close(nn.functional.linear(features, linear_weight), features @ projection)


def test_unknown_and_missing_keys_are_refused_by_name_and_allow_partial_writes_a_loud_report(tmp_path, capsys):
    original = tiny_reference_model("ciffp", semantic_loss=False)
    checkpoint = clip4clip_state_dict(original)
    del checkpoint["select.afp.attention_fc.2.weight"]
    checkpoint["select.afp.attention_fc.4.weight"] = torch.zeros(1)  # e.g. a deeper gate than MSAM's
    torch.save(checkpoint, tmp_path / "model.bin")

    assert msam(["convert", str(tmp_path / "model.bin"), str(tmp_path / "refused"), "--max-frames", "4"]) == 2
    error = capsys.readouterr().err
    assert "select.afp.attention_fc.2.weight (→ ciffp.gate_output.weight)" in error
    assert "select.afp.attention_fc.4.weight" in error and "--allow-partial" in error
    assert not (tmp_path / "refused").exists()

    assert (
        msam(
            ["convert", str(tmp_path / "model.bin"), str(tmp_path / "partial"), "--max-frames", "4", "--allow-partial"]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "WARNING: PARTIAL CONVERSION" in captured.err
    report = json.loads((tmp_path / "partial" / "conversion_report.json").read_text())
    assert report["partial"] is True and "PARTIAL CONVERSION" in report["warning"]
    assert report["unused_keys"] == ["select.afp.attention_fc.4.weight"]
    assert report["missing_keys"] == ["select.afp.attention_fc.2.weight (→ ciffp.gate_output.weight)"]
    written = MsamModel.from_pretrained(tmp_path / "partial")
    assert torch.equal(written.ciffp.gate_hidden.weight, original.ciffp.gate_hidden.weight)


def test_modules_the_reference_builds_but_never_uses_are_reported_not_refused(tmp_path):
    original = tiny_reference_model("mean", semantic_loss=True)
    checkpoint = clip4clip_state_dict(original)
    dead = {
        "preloss.p.pie_net_video.noise_scale": torch.ones(1) * 0.1,
        "preloss.p.uncertain_net_text.fc2.weight": torch.zeros(128, 128),
    }
    torch.save(checkpoint | dead, tmp_path / "model.bin")

    converted, report = convert_checkpoint(tmp_path / "model.bin", tmp_path / "msam", max_frames=4)

    assert report["reference_unused_keys"] == list(dead)
    assert report["partial"] is False
    assert_same_weights(converted, original)


def test_a_checkpoint_that_would_run_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "code-ran"

    class RunsCodeWhenUnpickled:
        def __reduce__(self):
            return open, (str(marker), "w")

    torch.save({"clip.logit_scale": RunsCodeWhenUnpickled()}, tmp_path / "evil.bin")

    with pytest.raises(ConversionError, match=r"refused to load .*evil\.bin"):
        convert_checkpoint(tmp_path / "evil.bin", tmp_path / "msam")
    assert not marker.exists()
    assert not (tmp_path / "msam").exists()


FRESH_PROCESS_SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoModel, AutoProcessor

    folder, inputs_file, outputs_file = sys.argv[1:]
    model = AutoModel.from_pretrained(folder, trust_remote_code=True)
    AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    with torch.no_grad():
        logits = model(**load_file(inputs_file)).logits_per_text
    assert not any(name.startswith("msam_hf") for name in sys.modules), "the fresh process imported msam_hf"
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    save_file({"logits_per_text": logits.contiguous()}, outputs_file)
    """
)


def test_the_cli_writes_a_folder_that_loads_with_trust_remote_code_in_a_fresh_process(tmp_path):
    original = tiny_reference_model("ciffp", semantic_loss=True)
    torch.save(clip4clip_state_dict(original), tmp_path / "pytorch_model.bin.4")
    assert msam(["convert", str(tmp_path / "pytorch_model.bin.4"), str(tmp_path / "msam"), "--max-frames", "4"]) == 0

    inputs = make_inputs(original)
    save_file(inputs, tmp_path / "inputs.safetensors")
    subprocess.run(
        [
            sys.executable,
            "-c",
            FRESH_PROCESS_SCRIPT,
            str(tmp_path / "msam"),
            str(tmp_path / "inputs.safetensors"),
            str(tmp_path / "outputs.safetensors"),
        ],
        check=True,
        cwd=tmp_path,
    )

    with torch.no_grad():
        expected = original(**inputs).logits_per_text
    torch.testing.assert_close(load_file(tmp_path / "outputs.safetensors")["logits_per_text"], expected)


def test_a_data_parallel_module_prefix_is_stripped(tmp_path):
    original = tiny_reference_model("seq_transformer", semantic_loss=False)
    torch.save(
        {f"module.{name}": tensor for name, tensor in clip4clip_state_dict(original).items()}, tmp_path / "ddp.bin"
    )

    converted, report = convert_checkpoint(tmp_path / "ddp.bin", tmp_path / "msam", max_frames=4)

    assert report["unused_keys"] == []
    assert_same_weights(converted, original)


def test_a_safetensors_checkpoint_with_the_same_names_converts(tmp_path):
    original = tiny_reference_model("mean", semantic_loss=False)
    save_file(clip4clip_state_dict(original), tmp_path / "model.safetensors")

    converted, _ = convert_checkpoint(tmp_path / "model.safetensors", tmp_path / "msam", max_frames=4)

    assert_same_weights(converted, original)
