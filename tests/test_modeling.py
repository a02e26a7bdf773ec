"""MSAM model: wiring against transformers' CLIP, the maths of msam.md, invariances, losses and input errors."""

from functools import partial

import pytest
import torch
import torch.nn.functional as F
from transformers import CLIPModel

from msam_hf import MsamConfig
from msam_hf import MsamModel
from msam_hf import apply_lora
from msam_hf.loss_msam import gaussian_kl_divergence
from msam_hf.loss_msam import slot_diversity
from msam_hf.modeling_msam import MsamTextOutput
from msam_hf.modeling_msam import MsamVideoOutput
from msam_hf.testing_utils import direct_ciffp_scores
from msam_hf.testing_utils import direct_semantic_losses

HEADS = ["mean", "seq_transformer", "attention", "ciffp"]


def tiny_model(seed: int = 0, **config) -> MsamModel:
    torch.manual_seed(seed)
    return MsamModel(MsamConfig.tiny(**config)).eval()


def random_inputs(num_videos=4, num_frames=5, length=9, frames_per_video=(5, 3, 1, 4), seed=0):
    """Token ids with an end token and padding after it, and videos with some frames masked."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(300, 40000, (num_videos, length), generator=generator)
    input_ids[:, 0] = 49406
    lengths = torch.tensor([length, length - 3, 4, length - 1])[:num_videos]
    attention_mask = (torch.arange(length)[None] < lengths[:, None]).long()
    input_ids[torch.arange(num_videos), lengths - 1] = 49407
    input_ids = input_ids.masked_fill(attention_mask == 0, 49407)
    pixels = torch.randn(num_videos, num_frames, 3, 64, 64, generator=generator)
    video_mask = (torch.arange(num_frames)[None] < torch.tensor(frames_per_video[:num_videos])[:, None]).long()
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "pixel_values_videos": pixels,
        "video_mask": video_mask,
    }


def test_mean_head_video_embeddings_equal_normalised_mean_of_clip_image_features():
    model = tiny_model(similarity_head="mean")
    inputs = random_inputs()
    with torch.no_grad():
        video_embeds = model.get_video_features(inputs["pixel_values_videos"], inputs["video_mask"]).video_embeds
        for index, valid_frames in enumerate(inputs["video_mask"].sum(1).tolist()):
            frames = inputs["pixel_values_videos"][index, :valid_frames]
            clip_features = model.clip.get_image_features(pixel_values=frames).pooler_output
            expected = F.normalize(F.normalize(clip_features, dim=-1).mean(0), dim=-1)
            torch.testing.assert_close(video_embeds[index], expected, atol=1e-5, rtol=1e-5)


def test_text_embeddings_are_normalised_clip_text_features():
    model = tiny_model()
    inputs = random_inputs()
    with torch.no_grad():
        ours = model.get_text_features(inputs["input_ids"], inputs["attention_mask"]).text_embeds
        clip = model.clip.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    torch.testing.assert_close(ours, F.normalize(clip.pooler_output, dim=-1))


@pytest.mark.parametrize("head", HEADS)
def test_padding_frames_and_tokens_changes_no_score(head):
    model = tiny_model(similarity_head=head)
    inputs = random_inputs()
    padded = dict(inputs)
    padded["pixel_values_videos"] = torch.cat([inputs["pixel_values_videos"], torch.randn(4, 3, 3, 64, 64)], dim=1)
    padded["video_mask"] = torch.cat([inputs["video_mask"], torch.zeros(4, 3, dtype=torch.long)], dim=1)
    padded["input_ids"] = torch.cat([inputs["input_ids"], torch.full((4, 5), 49407)], dim=1)
    padded["attention_mask"] = torch.cat([inputs["attention_mask"], torch.zeros(4, 5, dtype=torch.long)], dim=1)
    with torch.no_grad():
        reference = model(**inputs).logits_per_text
        with_padding = model(**padded).logits_per_text
    torch.testing.assert_close(with_padding, reference, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("head", HEADS)
def test_permuting_the_batch_permutes_the_logits(head):
    model = tiny_model(similarity_head=head)
    inputs = random_inputs()
    text_order, video_order = torch.tensor([2, 0, 3, 1]), torch.tensor([3, 1, 0, 2])
    permuted = {
        "input_ids": inputs["input_ids"][text_order],
        "attention_mask": inputs["attention_mask"][text_order],
        "pixel_values_videos": inputs["pixel_values_videos"][video_order],
        "video_mask": inputs["video_mask"][video_order],
    }
    with torch.no_grad():
        reference = model(**inputs).logits_per_text
        result = model(**permuted).logits_per_text
    torch.testing.assert_close(result, reference[text_order][:, video_order], atol=1e-4, rtol=1e-5)


def test_ciffp_with_one_caption_per_set_is_gamma_times_frame_attention_pooling():
    model = tiny_model()
    inputs = random_inputs()
    with torch.no_grad():
        text = model.get_text_features(inputs["input_ids"], inputs["attention_mask"])
        video = model.get_video_features(inputs["pixel_values_videos"], inputs["video_mask"])
        logits = model.similarity(text, video, text_context_size=1)
        # Parameter-free frame attention pooling at τ = 0.01 over the valid frames.
        frame_text = torch.einsum("vtd,jd->jvt", video.frame_embeds, text.text_embeds)
        weights = (frame_text / 0.01).masked_fill(video.video_mask[None] == 0, float("-inf")).softmax(-1)
        pooled = torch.einsum("jvt,vtd->jvd", weights, video.frame_embeds)
        expected = 0.4 * torch.einsum("jvd,jd->jv", F.normalize(pooled, dim=-1), text.text_embeds)
    torch.testing.assert_close(logits / model.logit_scale, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mask_padded_frames", [True, False])
def test_ciffp_expanded_form_equals_direct_transcription_of_the_paper(mask_padded_frames):
    model = tiny_model(ciffp_mask_padded_frames=mask_padded_frames)
    generator = torch.Generator().manual_seed(1)
    texts = F.normalize(torch.randn(6, 128, generator=generator), dim=-1)
    frames = F.normalize(torch.randn(5, 4, 128, generator=generator), dim=-1)
    video_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]])
    with torch.no_grad():
        # Gate weights large enough that the gate really varies between pairs.
        model.ciffp.gate_hidden.weight.normal_(std=0.5)
        model.ciffp.gate_output.weight.normal_(std=0.5)
        fast, _ = model.ciffp(texts[None], frames, video_mask)
        direct = direct_ciffp_scores(model.ciffp, texts, frames, video_mask)
    torch.testing.assert_close(fast[0], direct, atol=1e-5, rtol=1e-5)


def test_semantic_losses_equal_the_authors_computation_in_values_and_gradients():
    model = tiny_model(semantic_loss=True).train()
    model.video_semantics.dropout.p = model.text_semantics.dropout.p = 0.0  # the same losses on both paths
    generator = torch.Generator().manual_seed(3)
    frames = torch.randn(6, 4, 128, generator=generator, requires_grad=True)
    words = torch.randn(6, 9, 128, generator=generator, requires_grad=True)
    texts = torch.randn(6, 128, generator=generator, requires_grad=True)

    def losses(compute):
        text = MsamTextOutput(
            text_embeds=F.normalize(texts, dim=-1), word_embeds=words, attention_mask=torch.ones(6, 9, dtype=torch.long)
        )
        video = MsamVideoOutput(
            video_embeds=F.normalize(frames.mean(1), dim=-1),
            frame_features=frames,
            video_mask=torch.ones(6, 4, dtype=torch.long),
        )
        distribution, diversity = compute(text, video)
        inputs_and_weights = [frames, words, texts, *model.parameters()]
        gradients = torch.autograd.grad(distribution + 0.3 * diversity, inputs_and_weights, allow_unused=True)
        return distribution.detach(), diversity.detach(), gradients

    fast, direct = losses(model.semantic_losses), losses(partial(direct_semantic_losses, model))
    torch.testing.assert_close(fast[:2], direct[:2], atol=1e-5, rtol=1e-5)
    for ours, reference in zip(fast[2], direct[2]):
        assert (ours is None) == (reference is None)
        if ours is not None:
            torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("mask_padded_frames", [True, False])
def test_ciffp_single_caption_fast_path_equals_the_general_form_one_caption_at_a_time(mask_padded_frames):
    model = tiny_model(ciffp_mask_padded_frames=mask_padded_frames)
    generator = torch.Generator().manual_seed(2)
    texts = F.normalize(torch.randn(3, 128, generator=generator), dim=-1)
    frames = F.normalize(torch.randn(50, 5, 128, generator=generator), dim=-1)
    video_mask = (torch.arange(5) < torch.randint(1, 6, (50, 1), generator=generator)).long()
    with torch.no_grad():
        model.ciffp.gate_hidden.weight.normal_(std=0.5)  # a gate that varies: at |J| = 1 it must not matter
        scores, attention = model.ciffp.single_caption_scores(texts, frames, video_mask)  # ‖p‖ from the Gram matrix
        for index, text in enumerate(texts):
            lone_scores, lone_attention = model.ciffp.single_caption_scores(text[None], frames, video_mask)  # from p
            direct = direct_ciffp_scores(model.ciffp, text[None], frames, video_mask)
            logits = model.similarity(
                MsamTextOutput(text_embeds=text[None]),
                MsamVideoOutput(frame_embeds=frames, video_mask=video_mask),
                text_context_size=1,
            )
            torch.testing.assert_close(lone_scores, direct, atol=1e-5, rtol=0)
            torch.testing.assert_close(lone_scores, scores[index : index + 1], atol=1e-5, rtol=0)
            torch.testing.assert_close(lone_attention, attention[index : index + 1], atol=1e-6, rtol=0)
            torch.testing.assert_close(logits, model.logit_scale * lone_scores)


def test_similarity_scores_consecutive_caption_sets_and_chunking_changes_nothing():
    model = tiny_model()
    generator = torch.Generator().manual_seed(2)
    inputs = random_inputs(num_videos=4)
    with torch.no_grad():
        video = model.get_video_features(inputs["pixel_values_videos"], inputs["video_mask"])
        text = model.get_text_features(inputs["input_ids"], inputs["attention_mask"])
        text.text_embeds = F.normalize(torch.randn(7, 128, generator=generator), dim=-1)
        whole = model.similarity(text, video, text_context_size=3)
        chunked = model.similarity(text, video, text_context_size=3, text_chunk_size=3, video_chunk_size=1)
        # |J| = 3 over 7 captions: sets {0,1,2}, {3,4,5}, {6}.
        for caption_set in ([0, 1, 2], [3, 4, 5], [6]):
            subset = type(text)(text_embeds=text.text_embeds[caption_set])
            expected = model.similarity(subset, video, text_context_size=None)
            torch.testing.assert_close(whole[caption_set], expected)
        all_in_one = model.similarity(text, video, text_context_size=None)
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(all_in_one, whole), "the caption set must influence CIFFP scores"


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("semantic_tokens", ["frames", "patches"])
def test_every_loss_part_is_finite_and_reaches_its_parameters(head, semantic_tokens):
    model = tiny_model(similarity_head=head, semantic_tokens=semantic_tokens).train()
    output = model(**random_inputs(), return_loss=True)
    for part in ("loss", "contrastive_loss", "distribution_loss", "diversity_loss"):
        assert torch.isfinite(getattr(output, part)), part

    def grads_of(loss):
        model.zero_grad()
        loss.backward(retain_graph=True)
        return {
            name
            for name, parameter in model.named_parameters()
            if parameter.grad is not None and parameter.grad.abs().sum() > 0
        }

    contrastive = grads_of(output.contrastive_loss)
    distribution = grads_of(output.distribution_loss)
    diversity = grads_of(output.diversity_loss)
    assert "clip.logit_scale" in contrastive
    assert any(name.startswith("clip.vision_model") for name in contrastive)
    assert any(name.startswith("clip.text_model") for name in contrastive)
    assert not any("semantics" in name or name.startswith("distribution") for name in contrastive)
    assert {
        "video_semantics.slot_gate.weight",
        "text_semantics.slot_gate.weight",
        "distribution.mu.0.weight",
        "distribution.sigma.0.weight",
    } <= distribution
    assert any(name.startswith("clip.vision_model") for name in distribution)
    assert "distribution.sigma.2.weight" in diversity and "video_semantics.output_projection.weight" in diversity
    if head in ("seq_transformer", "ciffp"):
        assert "temporal.layers.0.self_attn.q_proj.weight" in contrastive
    if head == "ciffp":
        assert "ciffp.gate_hidden.weight" in contrastive
    if head == "attention":
        assert "attention_pooling.q_proj.weight" in contrastive


def test_lora_gradients_reach_adapters_and_msam_modules_but_not_frozen_clip_weights():
    model = apply_lora(tiny_model().train(), r=4)
    output = model(**random_inputs(), return_loss=True)
    output.loss.backward()
    with_grad = {name for name, parameter in model.named_parameters() if parameter.grad is not None}
    frozen = {name for name, parameter in model.named_parameters() if not parameter.requires_grad}
    assert any("lora_A" in name and "vision_model" in name for name in with_grad)
    assert any("lora_B" in name and "text_model" in name for name in with_grad)
    assert any("ciffp" in name and "modules_to_save" in name for name in with_grad)
    assert any("temporal" in name and "modules_to_save" in name for name in with_grad)
    assert any(name.endswith("vision_model.encoder.layers.0.mlp.fc1.weight") for name in frozen)
    assert not with_grad & frozen
    assert not any("temporal" in name and "lora_" in name for name in with_grad), (
        "LoRA must leave the temporal module alone"
    )


def test_kl_divergence_is_zero_for_identical_distributions_and_positive_otherwise():
    mu, sigma = torch.randn(3, 7, 16), torch.rand(3, 7, 16) + 0.1
    assert gaussian_kl_divergence(mu, sigma, mu, sigma).abs() < 1e-6
    assert gaussian_kl_divergence(mu, sigma, mu + 0.5, sigma * 2) > 0.1


def test_slot_diversity_is_zero_for_orthonormal_slots_and_one_for_identical_slots():
    orthonormal = torch.eye(7, 16).expand(2, 7, 16)
    identical = F.normalize(torch.ones(2, 7, 16), dim=-1)
    assert slot_diversity(orthonormal) == 0
    torch.testing.assert_close(slot_diversity(identical), torch.tensor((49 - 7) / 49))


def test_from_clip_keeps_clip_weights_and_starts_temporal_module_from_text_blocks(tmp_path):
    torch.manual_seed(3)
    clip = CLIPModel(MsamConfig.tiny().clip_config)
    clip.save_pretrained(tmp_path / "tiny-clip")
    model = MsamModel.from_clip(str(tmp_path / "tiny-clip"))
    assert model.config.base_clip_model == str(tmp_path / "tiny-clip")
    for name, tensor in clip.state_dict().items():
        torch.testing.assert_close(model.clip.state_dict()[name], tensor, rtol=0, atol=0)
    torch.testing.assert_close(
        model.temporal.frame_position_embeddings.weight, clip.text_model.embeddings.position_embedding.weight
    )
    for temporal_layer, text_layer in zip(model.temporal.layers, clip.text_model.encoder.layers):
        torch.testing.assert_close(temporal_layer.mlp.fc2.weight, text_layer.mlp.fc2.weight, rtol=0, atol=0)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda inputs: inputs.update(pixel_values_videos=inputs["pixel_values_videos"][0]), "rank 4"),
        (lambda inputs: inputs.update(input_ids=inputs["input_ids"][0]), "rank 1"),
        (
            lambda inputs: inputs.update(
                pixel_values_videos=torch.randn(4, 13, 3, 64, 64), video_mask=torch.ones(4, 13, dtype=torch.long)
            ),
            "13 frames",
        ),
        (lambda inputs: inputs.update(video_mask=torch.ones(4, 4, dtype=torch.long)), "video_mask has shape"),
        (lambda inputs: inputs.update(attention_mask=inputs["attention_mask"][:, :3]), "attention_mask has shape"),
        (lambda inputs: inputs["video_mask"][1].zero_(), "no frame"),
        (lambda inputs: inputs.update(pixel_values_videos=torch.randn(4, 5, 3, 32, 32)), "3×64×64"),
        (
            lambda inputs: inputs.update(input_ids=torch.ones(4, 40, dtype=torch.long), attention_mask=None),
            "max_text_length",
        ),
    ],
)
def test_bad_inputs_raise_a_clear_value_error(change, message):
    model = tiny_model()
    inputs = random_inputs()
    change(inputs)
    with pytest.raises(ValueError, match=message):
        model(**inputs)


def test_loss_needs_paired_captions_and_videos():
    model = tiny_model()
    inputs = random_inputs()
    inputs["input_ids"], inputs["attention_mask"] = inputs["input_ids"][:3], inputs["attention_mask"][:3]
    with pytest.raises(ValueError, match="3 captions for 4 videos"):
        model(**inputs, return_loss=True)


@pytest.mark.parametrize(
    "field, value", [("similarity_head", "max"), ("semantic_tokens", "pixels"), ("max_frames", 100)]
)
def test_bad_config_values_raise_a_clear_value_error(field, value):
    with pytest.raises(ValueError, match=field):
        MsamConfig.tiny(**{field: value})


ATTRIBUTE_VOCABULARY = {
    "entity": ["car", "boat", "house"],
    "action": ["drive", "sail"],
    "relationship": ["car on road", "boat on lake"],
}


def test_attribute_objective_is_off_by_default_and_adds_focal_bce_and_kl_when_on():
    tiny_inputs = random_inputs()
    plain = MsamModel(MsamConfig.tiny()).eval()
    assert not hasattr(plain, "attribute_head")
    with pytest.raises(ValueError, match="without an attribute_vocabulary"):
        plain.predict_attributes(plain.get_text_features(tiny_inputs["input_ids"], tiny_inputs["attention_mask"]))
    assert plain(**tiny_inputs, return_loss=True).attribute_loss is None

    torch.manual_seed(0)
    model = MsamModel(MsamConfig.tiny(attribute_vocabulary=ATTRIBUTE_VOCABULARY, semantic_dropout=0.0)).eval()
    captions = tiny_inputs["input_ids"].shape[0]
    labels = (torch.rand(captions, 7, generator=torch.Generator().manual_seed(0)) < 0.4).float()
    output = model(**tiny_inputs, attribute_labels=labels, return_loss=True)
    semantic = output.distribution_loss + model.config.diversity_loss_weight * output.diversity_loss
    torch.testing.assert_close(output.loss, output.contrastive_loss + semantic + output.attribute_loss + output.kl_loss)

    # One projection per level serves both modalities: logits are that Linear applied to ŝ and to v̄.
    entity = model.attribute_head.projections["entity"]
    for logits, embeds in (
        (model.predict_attributes(output.text_outputs), output.text_embeds),
        (model.predict_attributes(output.video_outputs), output.video_embeds),
    ):
        torch.testing.assert_close(logits["entity"], embeds @ entity.weight.T + entity.bias)
    # The bias starts at the prior probability; labels of the wrong width are named.
    torch.testing.assert_close(torch.sigmoid(entity.bias), torch.full((3,), 0.01))
    with pytest.raises(ValueError, match=r"attribute_labels has shape \(\d+, 6\), expected"):
        model(**tiny_inputs, attribute_labels=labels[:, :6], return_loss=True)


def test_attribute_vocabulary_survives_save_and_load(tmp_path):
    model = MsamModel(MsamConfig.tiny(attribute_vocabulary=ATTRIBUTE_VOCABULARY))
    model.save_pretrained(tmp_path)
    loaded = MsamModel.from_pretrained(tmp_path)
    assert loaded.config.attribute_vocabulary == ATTRIBUTE_VOCABULARY
    torch.testing.assert_close(
        loaded.attribute_head.projections["action"].weight, model.attribute_head.projections["action"].weight
    )
    with pytest.raises(ValueError, match=r"no attributes for level\(s\) \['action'\]"):
        MsamConfig.tiny(attribute_vocabulary={**ATTRIBUTE_VOCABULARY, "action": []})
