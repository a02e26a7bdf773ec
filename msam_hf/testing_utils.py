"""Line-by-line transcriptions of msam.md, the oracles that tests and benchmarks check the fast code against."""

import torch
import torch.nn.functional as F

from .modeling_msam import MsamCiffpHead
from .modeling_msam import MsamModel
from .modeling_msam import MsamTextOutput
from .modeling_msam import MsamVideoOutput


def direct_ciffp_scores(
    head: MsamCiffpHead, text_embeds: torch.Tensor, frame_embeds: torch.Tensor, video_mask: torch.Tensor
) -> torch.Tensor:
    """CIFFP exactly as msam.md §3 writes it, materialising p_ij for every pair; J = all of `text_embeds`.

    text_embeds (J, D) unit-norm, frame_embeds (videos, frames, D) unit-norm. Returns γ·⟨l2n(u_ij), ŝ_j⟩ as
    (J, videos), without the logit scale.
    """
    logits = torch.einsum("vtd,jd->vjt", frame_embeds, text_embeds) / head.frame_temperature
    if head.mask_padded_frames:
        logits = logits.masked_fill(video_mask[:, None, :] == 0, torch.finfo(logits.dtype).min)
    a = logits.softmax(dim=-1)  # 1. frame attention
    p = torch.einsum("vjt,vtd->vjd", a, frame_embeds)  # 2. text-conditioned video vectors (videos, J, D)
    b = (torch.einsum("vjd,jd->vj", p, text_embeds) / head.caption_temperature).softmax(dim=-1)  # 3.
    q = torch.einsum("vj,vjd->vd", b, p)  # 4. interaction vector
    g = torch.sigmoid(head.gate_output(F.relu(head.gate_hidden(p)))) / head.gate_divisor  # 5. gate (videos, J, 1)
    u = g * p + (1 - g) * q[:, None, :] + p  # 6. fusion with residual
    scores = head.score_scale * torch.einsum("vjd,jd->vj", F.normalize(u, dim=-1), text_embeds)  # 7.
    return scores.T


def direct_semantic_losses(
    model: MsamModel, text_features: MsamTextOutput, video_features: MsamVideoOutput
) -> tuple[torch.Tensor, torch.Tensor]:
    """The semantic branch's distribution and diversity losses (msam.md §4-6) computed the way the MSAM authors'
    training code computes them: each module applied to each modality separately, softplus as log(1 + exp(x)), the
    KL summed over everything and divided by the batch, and the diversity term accumulated one sample at a time
    (each sample's slot embeddings normalised again, compared with the identity, divided by B K²).

    Frame tokens (`frame_features`), padding not masked (the reference's; equal to `MsamModel.semantic_losses` when
    every frame and word is valid).
    """

    def construct(module, tokens, global_embeds):
        attention = torch.softmax(module.slot_queries(torch.tanh(module.token_projection(tokens))), dim=1)
        regions = torch.bmm(attention.transpose(1, 2), tokens)
        gates = module.dropout(torch.sigmoid(module.slot_gate(regions)))
        return module.output_projection(module.layer_norm(torch.einsum("bkd,bd->bkd", gates, global_embeds)))

    def distribution(slots):
        mu = model.distribution.mu(slots)
        sigma = torch.log1p(torch.exp(model.distribution.sigma[:-1](slots)))  # the head without its Softplus
        return mu, sigma, F.normalize(mu / sigma, dim=-1)

    video_slots = construct(
        model.video_semantics, F.normalize(video_features.frame_features, dim=-1), video_features.video_embeds
    )
    text_slots = construct(
        model.text_semantics, F.normalize(text_features.word_embeds, dim=-1), text_features.text_embeds
    )
    mu_video, sigma_video, z_video = distribution(video_slots)
    mu_text, sigma_text, z_text = distribution(text_slots)
    kl = 0.5 * (
        2 * torch.log(sigma_text / sigma_video)
        - 1
        + (sigma_video / sigma_text).pow(2)
        + ((mu_text - mu_video) / sigma_text).pow(2)
    )
    distribution_loss = kl.sum() / mu_video.shape[0]
    batch, slots = z_video.shape[:2]
    identity = torch.eye(slots, device=z_video.device)
    diversity = {"video": torch.zeros(1, device=z_video.device), "text": torch.zeros(1, device=z_video.device)}
    for index in range(batch):
        for name, embeds in (("video", z_video), ("text", z_text)):
            rows = F.normalize(embeds[index], dim=1)
            diversity[name] = diversity[name] + torch.sum(torch.abs(rows @ rows.T - identity)) / batch / slots / slots
    return distribution_loss, ((diversity["video"] + diversity["text"]) / 2)[0]


def clip4clip_state_dict(model: MsamModel) -> dict[str, torch.Tensor]:
    """The state dict the MSAM authors' CLIP4Clip-based code would save for `model`'s weights, written module by
    module from OpenAI CLIP's and CLIP4Clip's layouts: `msam convert`'s oracle (its inverse, written independently).

    OpenAI blocks pack q, k, v into one `in_proj`; the projections are `x @ proj` matrices (a `Linear`'s weight,
    transposed); the semantic branch uses the names listed in `msam_hf.convert`.
    """
    state = {}

    def add(name: str, tensor: torch.Tensor) -> None:
        state[name] = tensor.detach().clone().contiguous()

    def add_linear(name: str, module: torch.nn.Module) -> None:  # also LayerNorm: weight and bias
        add(f"{name}.weight", module.weight)
        if module.bias is not None:
            add(f"{name}.bias", module.bias)

    def add_block(prefix: str, layer) -> None:
        attention = layer.self_attn
        projections = (attention.q_proj, attention.k_proj, attention.v_proj)
        add(f"{prefix}.attn.in_proj_weight", torch.cat([projection.weight for projection in projections]))
        add(f"{prefix}.attn.in_proj_bias", torch.cat([projection.bias for projection in projections]))
        add_linear(f"{prefix}.attn.out_proj", attention.out_proj)
        add_linear(f"{prefix}.ln_1", layer.layer_norm1)
        add_linear(f"{prefix}.mlp.c_fc", layer.mlp.fc1)
        add_linear(f"{prefix}.mlp.c_proj", layer.mlp.fc2)
        add_linear(f"{prefix}.ln_2", layer.layer_norm2)

    text, vision = model.clip.text_model, model.clip.vision_model
    add("clip.token_embedding.weight", text.embeddings.token_embedding.weight)
    add("clip.positional_embedding", text.embeddings.position_embedding.weight)
    for index, layer in enumerate(text.encoder.layers):
        add_block(f"clip.transformer.resblocks.{index}", layer)
    add_linear("clip.ln_final", text.final_layer_norm)
    add("clip.text_projection", model.clip.text_projection.weight.T)
    add("clip.visual.class_embedding", vision.embeddings.class_embedding)
    add("clip.visual.positional_embedding", vision.embeddings.position_embedding.weight)
    add("clip.visual.conv1.weight", vision.embeddings.patch_embedding.weight)
    add_linear("clip.visual.ln_pre", vision.pre_layrnorm)
    for index, layer in enumerate(vision.encoder.layers):
        add_block(f"clip.visual.transformer.resblocks.{index}", layer)
    add_linear("clip.visual.ln_post", vision.post_layernorm)
    add("clip.visual.proj", model.clip.visual_projection.weight.T)
    add("clip.logit_scale", model.clip.logit_scale)

    if hasattr(model, "temporal"):
        add("frame_position_embeddings.weight", model.temporal.frame_position_embeddings.weight)
        for index, layer in enumerate(model.temporal.layers):
            add_block(f"transformerClip.resblocks.{index}", layer)
    if hasattr(model, "ciffp"):  # select.afp.attention_fc = nn.Sequential(Linear, ReLU, Linear)
        add_linear("select.afp.attention_fc.0", model.ciffp.gate_hidden)
        add_linear("select.afp.attention_fc.2", model.ciffp.gate_output)
    if model.config.semantic_loss:
        for side, semantics in (("video", model.video_semantics), ("text", model.text_semantics)):
            add_linear(f"preloss.p.pie_net_{side}.attention.w_1", semantics.token_projection)
            add_linear(f"preloss.p.pie_net_{side}.attention.w_2", semantics.slot_queries)
            add_linear(f"preloss.p.pie_net_{side}.fc", semantics.slot_gate)
            add_linear(f"preloss.p.pie_net_{side}.layer_norm", semantics.layer_norm)
            add_linear(f"preloss.p.pie_net_{side}.fc1", semantics.output_projection)
        # FCN_head: Linear_n modules in a Sequential named `layer`, ReLUs between them.
        for index, linear in enumerate(model.distribution.mu[::2]):
            add_linear(f"preloss.p.mean_head.layer.Linear_{index}", linear)
        for index, linear in enumerate(model.distribution.sigma[:3:2]):
            add_linear(f"preloss.p.var_head.layer.Linear_{index}", linear)
    return state
