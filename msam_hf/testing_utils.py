"""Line-by-line transcriptions of msam.md, the oracles that tests and benchmarks check the fast code against."""

import torch
import torch.nn.functional as F

from .modeling_msam import MsamCiffpHead


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
