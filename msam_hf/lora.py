"""LoRA on the CLIP towers through PEFT, with the modules MSAM or MCSAN add trained in full.

The reference recipe fine-tunes CLIP at lr 1e-7, which nearly freezes it (msam.md §7); low-rank adapters on the
attention projections of both towers are the parameter-efficient way to adapt it instead.
"""

from pathlib import Path

from peft import LoraConfig
from peft import PeftConfig
from peft import PeftModel
from peft import get_peft_model
from transformers import AutoModel

from .modeling_clip_video import ClipVideoTextPreTrainedModel
from .modeling_mcsan import McsanModel
from .modeling_msam import MsamModel

# The attention projections of CLIP's text and vision towers, and nothing else: the temporal module reuses CLIP's
# layer class (same module names), but it is the model's own and is trained in full instead.
LORA_TARGET_MODULES = (
    r"clip\.(text_model|vision_model)\.encoder\.layers\.\d+\.self_attn\.(q_proj|k_proj|v_proj|out_proj)"
)


def apply_lora(
    model: MsamModel | McsanModel,
    r: int = 16,
    alpha: int = 32,
    dropout: float = 0.05,
    target_modules: str | list[str] = LORA_TARGET_MODULES,
) -> PeftModel:
    """Wrap `model` with LoRA adapters on the CLIP towers; the modules it adds to CLIP (MSAM's temporal module, head
    and semantic branch; MCSAN's levels) stay fully trainable and are saved with the adapter (PEFT `modules_to_save`).

    PEFT modifies `model` in place: deep-copy or save it first if you need the original.
    """
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=target_modules,
        modules_to_save=model.msam_module_names,
    )
    return get_peft_model(model, config)


def load_lora(
    adapter_dir: str | Path, base_model: MsamModel | McsanModel | str | Path | None = None, is_trainable: bool = False
) -> PeftModel:
    """Load an adapter folder written by `PeftModel.save_pretrained` onto its base MSAM or MCSAN model.

    `base_model` is an `MsamModel` or `McsanModel`, or a folder / Hub id of one; by default the `base_model_name_or_path` recorded
    in the adapter's `adapter_config.json`.
    """
    if not isinstance(base_model, ClipVideoTextPreTrainedModel):
        base_path = base_model or PeftConfig.from_pretrained(str(adapter_dir)).base_model_name_or_path
        if not base_path:
            raise ValueError(
                f"{Path(adapter_dir) / 'adapter_config.json'} names no base model: pass base_model= (an MsamModel "
                "or McsanModel, or the folder / Hub id of the model the adapter was trained on)."
            )
        base_model = AutoModel.from_pretrained(str(base_path), trust_remote_code=True)
    return PeftModel.from_pretrained(base_model, str(adapter_dir), is_trainable=is_trainable)


def merge_lora(model: PeftModel) -> MsamModel | McsanModel:
    """Fold the adapters into the CLIP weights and return the plain model (saves and loads like any other)."""
    return model.merge_and_unload()
