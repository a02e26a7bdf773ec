"""The paper's optimiser recipe (msam.md §7): AdamW, β = (0.9, 0.98), ε = 1e-6, weight decay 0.2 except biases and
norms, lr 1e-4 for new modules and lr × 1e-3 for the CLIP backbone, 10 % linear warm-up then cosine."""

import torch
from torch import nn
from transformers import get_cosine_schedule_with_warmup


def parameter_groups(
    model: nn.Module, learning_rate: float, backbone_lr_coefficient: float, weight_decay: float
) -> list[dict]:
    """AdamW parameter groups: (backbone | new modules) × (decayed | not decayed).

    The backbone is CLIP's pretrained weights (`clip.` and not a LoRA adapter: adapters are new modules). CLIP's
    logit scale goes with the backbone (the reference's recipe) unless the towers are frozen: then it is the one CLIP
    parameter that learns, at the new modules' rate. Biases, norm gains and the logit scale — every parameter with
    fewer than 2 dimensions — get no weight decay. Frozen parameters are left out.
    """

    def in_backbone(name: str) -> bool:
        return "clip." in name and "lora_" not in name and "modules_to_save" not in name

    towers_trained = any(
        parameter.requires_grad
        for name, parameter in model.named_parameters()
        if in_backbone(name) and not name.endswith("logit_scale")
    )
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        is_backbone = in_backbone(name) and (towers_trained or not name.endswith("logit_scale"))
        groups.setdefault((is_backbone, parameter.ndim >= 2), []).append(parameter)
    return [
        {
            "params": parameters,
            "lr": learning_rate * (backbone_lr_coefficient if is_backbone else 1.0),
            "weight_decay": weight_decay if decayed else 0.0,
            "name": f"{'backbone' if is_backbone else 'new'}{'' if decayed else '_no_decay'}",
        }
        for (is_backbone, decayed), parameters in sorted(groups.items())
    ]


def build_optimizer_and_scheduler(
    model: nn.Module,
    num_training_steps: int,
    learning_rate: float = 1e-4,
    backbone_lr_coefficient: float = 1e-3,
    weight_decay: float = 0.2,
    betas: tuple[float, float] = (0.9, 0.98),
    eps: float = 1e-6,
    warmup_ratio: float = 0.1,
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    optimizer = torch.optim.AdamW(
        parameter_groups(model, learning_rate, backbone_lr_coefficient, weight_decay), betas=betas, eps=eps
    )
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(warmup_ratio * num_training_steps), num_training_steps)
    return optimizer, scheduler
