"""MCSAN model: the loss maths, the shared attribute projection, level ablations, padding, input errors and a
fresh-process `AutoModel` round trip with `trust_remote_code`."""

import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from safetensors.torch import save_file
from transformers import CLIPModel

from msam_hf import apply_lora
from msam_hf import default_processor
from msam_hf.configuration_mcsan import McsanConfig
from msam_hf.loss_msam import attribute_kl_divergence
from msam_hf.loss_msam import focal_binary_cross_entropy
from msam_hf.modeling_clip_video import concatenate_outputs
from msam_hf.modeling_mcsan import McsanModel

SIZES = {"entity": 6, "action": 4, "relationship": 5}


def tiny_model(seed: int = 0, **config) -> McsanModel:
    torch.manual_seed(seed)
    config.setdefault("attribute_vocabulary_sizes", SIZES)
    return McsanModel(McsanConfig.tiny(**config)).eval()


def random_inputs(frames_per_video=(3, 2, 1), num_frames=3, length=7, seed=0):
    """Three captions (with padding after the end token) and three videos with some frames masked."""
    generator = torch.Generator().manual_seed(seed)
    count = len(frames_per_video)
    input_ids = torch.randint(300, 40000, (count, length), generator=generator)
    input_ids[:, 0] = 49406
    lengths = torch.tensor([length, length - 2, 4])[:count]
    attention_mask = (torch.arange(length)[None] < lengths[:, None]).long()
    input_ids[torch.arange(count), lengths - 1] = 49407
    input_ids = input_ids.masked_fill(attention_mask == 0, 49407)
    pixels = torch.randn(count, num_frames, 3, 64, 64, generator=generator)
    video_mask = (torch.arange(num_frames)[None] < torch.tensor(frames_per_video)[:, None]).long()
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "pixel_values_videos": pixels,
        "video_mask": video_mask,
    }


def test_focal_bce_with_gamma_0_and_alpha_half_is_half_the_plain_bce():
    generator = torch.Generator().manual_seed(0)
    logits = 4 * torch.randn(8, 20, generator=generator)
    labels = (torch.rand(8, 20, generator=generator) < 0.2).float()
    focal = focal_binary_cross_entropy(logits, labels, alpha=0.5, gamma=0.0)
    torch.testing.assert_close(focal, 0.5 * F.binary_cross_entropy_with_logits(logits, labels))


def test_focal_bce_down_weights_easy_examples_as_the_formula_says():
    # One easy positive (p = σ(2)) and one hard negative (p = σ(1)), α = 0.25, γ = 2, by hand.
    p_positive, p_negative = 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(-1))
    expected = (
        -(0.25 * (1 - p_positive) ** 2 * math.log(p_positive) + 0.75 * p_negative**2 * math.log(1 - p_negative)) / 2
    )
    focal = focal_binary_cross_entropy(torch.tensor([2.0, 1.0]), torch.tensor([1, 0]))
    assert focal.item() == pytest.approx(expected, rel=1e-6)
    assert focal < 0.5 * F.binary_cross_entropy_with_logits(torch.tensor([2.0, 1.0]), torch.tensor([1.0, 0.0]))


@pytest.mark.parametrize("distribution", ["softmax", "bernoulli"])
@pytest.mark.parametrize("symmetric", [False, True])
def test_kl_term_is_zero_for_identical_predictions_and_positive_otherwise(distribution, symmetric):
    logits = torch.randn(4, 9, generator=torch.Generator().manual_seed(1))
    same = attribute_kl_divergence(logits, logits.clone(), distribution=distribution, symmetric=symmetric)
    assert same.abs().item() < 1e-7
    assert attribute_kl_divergence(logits, logits.flip(0), distribution=distribution, symmetric=symmetric) > 1e-3


def test_softmax_kl_term_matches_torch_kl_div():
    text, video = torch.randn(2, 4, 7, generator=torch.Generator().manual_seed(2))
    reference = F.kl_div(video.log_softmax(-1), text.log_softmax(-1), log_target=True, reduction="batchmean")
    torch.testing.assert_close(attribute_kl_divergence(text, video, temperature=1.0), reference)


def test_the_attribute_projection_is_one_set_of_weights_for_both_modalities():
    model = tiny_model()
    inputs = random_inputs()
    with torch.no_grad():
        text = model.get_text_features(inputs["input_ids"], inputs["attention_mask"])
        video = model.get_video_features(inputs["pixel_values_videos"], inputs["video_mask"])
    for level, size in SIZES.items():
        # Exactly one weight matrix maps the joint space onto this level's attributes.
        matrices = [name for name, parameter in model.named_parameters() if parameter.shape == (size, 128)]
        assert matrices == [f"attribute_projections.{level}.weight"]
        projection = model.attribute_projections[level]
        torch.testing.assert_close(projection.bias, torch.full((size,), -math.log(99)))  # p = 0.01 at the start
        column = model.config.levels.index(level)
        for features in (text, video):
            expected = features.level_embeds[:, column] @ projection.weight.T + projection.bias
            torch.testing.assert_close(model.predict_attributes(features)[level], expected)
    # Gradients of the text-only and the video-only attribute loss land on that same weight.
    labels = torch.zeros(3, model.config.num_attributes)
    text_grad, video_grad = [], []
    for features, store in ((text, text_grad), (video, video_grad)):
        model.zero_grad()
        logits = model.predict_attributes(features)["entity"]
        focal_binary_cross_entropy(logits, labels[:, :6]).backward()
        store.append(model.attribute_projections["entity"].weight.grad.clone())
    assert text_grad[0].abs().sum() > 0 and video_grad[0].abs().sum() > 0
    assert not torch.allclose(text_grad[0], video_grad[0])


def test_forward_backward_reaches_every_trainable_parameter_and_sums_the_loss_parts():
    model = tiny_model().train()
    inputs = random_inputs()
    labels = torch.zeros(3, model.config.num_attributes)
    labels[[0, 1, 2, 2], [0, 7, 11, 3]] = 1
    output = model(**inputs, attribute_labels=labels, return_loss=True)
    config = model.config
    expected = (
        output.contrastive_loss
        + config.attribute_loss_weight * output.attribute_loss
        + config.kl_loss_weight * output.kl_loss
    )
    torch.testing.assert_close(output.loss, expected)
    assert output.level_contrastive_losses.shape == (4,)
    assert output.logits_per_text.shape == (3, 3) and output.level_logits_per_text.shape == (3, 3, 4)
    output.loss.backward()
    missing = [
        name for name, parameter in model.named_parameters() if parameter.requires_grad and parameter.grad is None
    ]
    assert missing == []


def test_score_is_the_weighted_sum_of_level_cosines_and_ignores_the_caption_set():
    model = tiny_model(level_weights=[4, 1, 2, 1], learn_level_weights=False)
    inputs = random_inputs()
    with torch.no_grad():
        output = model(**inputs)
        text, video = output.text_outputs, output.video_outputs
        weights = torch.tensor([4, 1, 2, 1]) / 8
        expected = (output.level_logits_per_text * weights).sum(-1)
        torch.testing.assert_close(output.logits_per_text, expected)
        torch.testing.assert_close(
            model.similarity(text, video, text_context_size=1), model.similarity(text, video, None)
        )
    assert not model.level_weights.logits.requires_grad


def test_features_encoded_in_batches_and_concatenated_score_like_one_batch():
    # What evaluation does (msam_hf.evaluation.extract_features): encode batches, concatenate, score once.
    model = tiny_model()
    inputs = random_inputs()
    with torch.no_grad():
        whole = model(**inputs).logits_per_text
        parts = [{name: value[rows] for name, value in inputs.items()} for rows in (slice(0, 1), slice(1, 3))]
        for part in parts:  # the first batch has 3 frames and 7 tokens, the second is cut to its longest
            part["pixel_values_videos"] = part["pixel_values_videos"][:, : int(part["video_mask"].sum(1).max())]
            part["video_mask"] = part["video_mask"][:, : part["pixel_values_videos"].shape[1]]
            part["input_ids"] = part["input_ids"][:, : int(part["attention_mask"].sum(1).max())]
            part["attention_mask"] = part["attention_mask"][:, : part["input_ids"].shape[1]]
        text = concatenate_outputs(
            [model.get_text_features(part["input_ids"], part["attention_mask"]) for part in parts]
        )
        video = concatenate_outputs(
            [model.get_video_features(part["pixel_values_videos"], part["video_mask"]) for part in parts]
        )
        torch.testing.assert_close(model.similarity(text, video, text_context_size=32), whole, atol=1e-4, rtol=1e-5)
    assert model.config.similarity_head == "multi_level" and "similarity_head" not in model.config.to_dict()


@pytest.mark.parametrize("levels", [["global", "action"], ["entity"], ["relationship"]])
def test_level_ablations_build_only_what_they_use(levels):
    model = tiny_model(levels=levels, entity_tokens="frames")
    output = model(**random_inputs(), attribute_labels=torch.zeros(3, 15), return_loss=True)
    assert output.level_logits_per_text.shape[-1] == len(levels)
    assert set(model.attribute_projections) == set(levels) - {"global"}
    assert hasattr(model, "temporal") == ("global" in levels)
    if levels == ["global", "action"]:
        assert not hasattr(model, "relationship_encoder") and "entity" not in model.video_pooling
    output.loss.backward()


def test_padding_frames_and_tokens_changes_no_score():
    model = tiny_model()
    inputs = random_inputs()
    padded = dict(inputs)
    padded["pixel_values_videos"] = torch.cat([inputs["pixel_values_videos"], torch.randn(3, 2, 3, 64, 64)], dim=1)
    padded["video_mask"] = torch.cat([inputs["video_mask"], torch.zeros(3, 2, dtype=torch.long)], dim=1)
    padded["input_ids"] = torch.cat([inputs["input_ids"], torch.full((3, 4), 49407)], dim=1)
    padded["attention_mask"] = torch.cat([inputs["attention_mask"], torch.zeros(3, 4, dtype=torch.long)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(
            model(**padded).logits_per_text, model(**inputs).logits_per_text, atol=1e-4, rtol=1e-5
        )


def test_input_errors_name_the_problem():
    model = tiny_model()
    inputs = random_inputs()
    with pytest.raises(ValueError, match=r"attribute_labels has shape \(3, 7\), expected \(3, 15\)"):
        model(**inputs, attribute_labels=torch.zeros(3, 7), return_loss=True)
    with pytest.raises(ValueError, match="video_mask marks no frame"):
        model(**{**inputs, "video_mask": torch.tensor([[1, 0, 0], [0, 0, 0], [1, 1, 0]])})
    with pytest.raises(ValueError, match="levels must be distinct"):
        McsanConfig.tiny(levels=["global", "objects"])
    with pytest.raises(ValueError, match="one per level"):
        McsanConfig.tiny(level_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="no attributes for level"):
        McsanConfig.tiny(attribute_vocabulary={"entity": ["car"], "action": [], "relationship": ["car on road"]})


def test_from_clip_keeps_clip_weights_and_lora_trains_mcsans_own_modules_in_full():
    torch.manual_seed(3)
    clip = CLIPModel(McsanConfig.tiny().clip_config)
    model = McsanModel.from_clip(clip, attribute_vocabulary_sizes=SIZES)
    for name, tensor in clip.state_dict().items():
        torch.testing.assert_close(model.clip.state_dict()[name], tensor, rtol=0, atol=0)
    torch.testing.assert_close(
        model.temporal.layers[0].mlp.fc2.weight, clip.text_model.encoder.layers[0].mlp.fc2.weight
    )
    lora = apply_lora(model, r=2)
    trainable = {name.split(".")[2] for name, parameter in lora.named_parameters() if parameter.requires_grad}
    assert {"clip", "attribute_projections", "text_pooling", "video_pooling", "level_weights"} <= trainable
    assert all(
        "lora_" in name for name, parameter in lora.named_parameters() if parameter.requires_grad and ".clip." in name
    )  # CLIP itself stays frozen
    assert lora(**random_inputs(), return_loss=True).loss.isfinite()


FRESH_PROCESS_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoModel, AutoProcessor

    folder, inputs_file, outputs_file = sys.argv[1:]
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    inputs = processor(text=["a red car drives along the road", "two boats on the lake"],
                       videos=[torch.zeros(2, 40, 56, 3, dtype=torch.uint8).numpy()] * 2)
    assert torch.equal(inputs["input_ids"], load_file(inputs_file)["input_ids"])
    with torch.no_grad():
        logits = model(**load_file(inputs_file)).logits_per_text
    assert not any(name.startswith("msam_hf") for name in sys.modules), "the fresh process imported msam_hf"
    assert type(model).__name__ == "McsanModel" and type(model).__module__.startswith("transformers_modules")
    print(json.dumps(model.config.attribute_vocabulary))
    save_file({"logits": logits.contiguous()}, outputs_file)
    """
)


def test_saved_folder_loads_with_trust_remote_code_in_a_fresh_process(tmp_path):
    vocabulary = {"entity": ["car", "boat"], "action": ["drive"], "relationship": ["car on road", "boat on lake"]}
    model = tiny_model(attribute_vocabulary=vocabulary, attribute_vocabulary_sizes=None)
    processor = default_processor(model.config)
    model.save_pretrained(tmp_path / "mcsan")
    processor.save_pretrained(tmp_path / "mcsan")
    saved = {path.name for path in (tmp_path / "mcsan").glob("*.py")}
    assert {
        "configuration_mcsan.py",
        "modeling_mcsan.py",
        "configuration_msam.py",
        "modeling_clip_video.py",
        "loss_msam.py",
    } <= saved

    rng = np.random.default_rng(0)
    videos = [rng.integers(0, 256, (frames, 40, 56, 3), dtype=np.uint8) for frames in (3, 1)]
    inputs = dict(processor(text=["a red car drives along the road", "two boats on the lake"], videos=videos))
    save_file(inputs, tmp_path / "inputs.safetensors")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            FRESH_PROCESS_SCRIPT,
            str(tmp_path / "mcsan"),
            str(tmp_path / "inputs.safetensors"),
            str(tmp_path / "outputs.safetensors"),
        ],
        check=True,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == vocabulary
    with torch.no_grad():
        expected = model(**inputs).logits_per_text
    assert torch.equal(load_file(tmp_path / "outputs.safetensors")["logits"], expected)
