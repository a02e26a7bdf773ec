"""Saved folders load with `trust_remote_code=True` in a fresh Python process that never imports msam_hf, and give
bit-identical logits: the full model, an adapter-only (PEFT) folder and a merged-LoRA folder."""

import copy
import json
import subprocess
import sys
import textwrap

import torch
from safetensors.torch import load_file
from safetensors.torch import save_file

from msam_hf import MsamConfig
from msam_hf import MsamModel
from msam_hf import apply_lora
from msam_hf import default_processor
from msam_hf import load_lora
from msam_hf import merge_lora

FRESH_PROCESS_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file, save_file
    from transformers import AutoModel, AutoProcessor

    folders = json.loads(sys.argv[1])
    inputs = load_file(folders["inputs"])
    outputs = {}
    with torch.no_grad():
        full = AutoModel.from_pretrained(folders["full"], trust_remote_code=True)
        processor = AutoProcessor.from_pretrained(folders["full"], trust_remote_code=True)
        outputs["full"] = full(**inputs).logits_per_text
        outputs["tokens"] = processor(text=["a photo of a cat"])["input_ids"]
        base = AutoModel.from_pretrained(folders["base"], trust_remote_code=True)
        outputs["adapter"] = PeftModel.from_pretrained(base, folders["adapter"]).eval()(**inputs).logits_per_text
        merged = AutoModel.from_pretrained(folders["merged"], trust_remote_code=True)
        outputs["merged"] = merged(**inputs).logits_per_text
    assert not any(name.startswith("msam_hf") for name in sys.modules), "the fresh process imported msam_hf"
    assert type(full).__module__.startswith("transformers_modules"), type(full).__module__
    save_file({name: tensor.contiguous() for name, tensor in outputs.items()}, folders["outputs"])
    """
)


def make_inputs(model: MsamModel) -> dict[str, torch.Tensor]:
    import numpy as np

    rng = np.random.default_rng(0)
    videos = [rng.integers(0, 256, (frames, 40, 56, 3), dtype=np.uint8) for frames in (3, 6, 2)]
    captions = ["a red car drives along the road", "two boats on the lake", "aerial view of a forest"]
    return dict(default_processor(model.config)(text=captions, videos=videos))


def test_full_adapter_and_merged_folders_give_identical_logits_in_a_fresh_process(tmp_path):
    torch.manual_seed(0)
    model = MsamModel(MsamConfig.tiny()).eval()
    processor = default_processor(model.config)
    inputs = make_inputs(model)
    model.save_pretrained(tmp_path / "full")
    processor.save_pretrained(tmp_path / "full")
    model.save_pretrained(tmp_path / "base")
    saved = {path.name for path in (tmp_path / "full").glob("*.py")}
    assert {"configuration_msam.py", "modeling_msam.py", "modeling_clip_video.py", "loss_msam.py"} <= saved

    lora_model = apply_lora(copy.deepcopy(model), r=4)
    with torch.no_grad():  # stand-in for training: move adapters and MSAM's modules away from their start
        for parameter in lora_model.parameters():
            if parameter.requires_grad:
                parameter.add_(0.02 * torch.randn_like(parameter))
    lora_model.eval()
    lora_model.save_pretrained(tmp_path / "adapter")
    merged = merge_lora(copy.deepcopy(lora_model))
    merged.save_pretrained(tmp_path / "merged")

    save_file(inputs, tmp_path / "inputs.safetensors")
    folders = {name: str(tmp_path / name) for name in ("full", "base", "adapter", "merged")}
    folders |= {"inputs": str(tmp_path / "inputs.safetensors"), "outputs": str(tmp_path / "outputs.safetensors")}
    subprocess.run([sys.executable, "-c", FRESH_PROCESS_SCRIPT, json.dumps(folders)], check=True, cwd=tmp_path)
    fresh = load_file(tmp_path / "outputs.safetensors")

    with torch.no_grad():
        expected_full = model(**inputs).logits_per_text
        expected_adapter = lora_model(**inputs).logits_per_text
        expected_merged = merged(**inputs).logits_per_text
        reloaded_adapter = (
            load_lora(tmp_path / "adapter", base_model=tmp_path / "base").eval()(**inputs).logits_per_text
        )
    assert torch.equal(fresh["full"], expected_full)
    assert torch.equal(fresh["adapter"], expected_adapter)
    assert torch.equal(fresh["merged"], expected_merged)
    assert torch.equal(reloaded_adapter, expected_adapter)
    assert fresh["tokens"].tolist() == [[49406, 320, 1125, 539, 320, 2368, 49407]]
    # Merging folds the adapters in: the same function up to float rounding, and not the untrained model.
    torch.testing.assert_close(expected_merged, expected_adapter, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(expected_adapter, expected_full, atol=1e-3)
