"""One training step of a tiny MSAM under `accelerate launch`, on this process's slice of a fixed global batch.

Writes the (process-mean) loss, the contrastive logits and the (process-averaged) gradients to the safetensors file given as the
first argument, from the main process. tests/test_distributed.py compares them with one process on the whole batch.
"""

import sys

import torch
from accelerate import Accelerator
from safetensors.torch import save_file

from msam_hf import MsamConfig
from msam_hf import MsamModel


def global_batch(size: int = 4) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(300, 40000, (size, 8), generator=generator)
    input_ids[:, 0], input_ids[:, -1] = 49406, 49407
    frames = torch.tensor([5, 2, 3, 4])[:size]  # the second half needs fewer frames: processes pad differently
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "pixel_values_videos": torch.randn(size, 5, 3, 64, 64, generator=generator),
        "video_mask": (torch.arange(5)[None] < frames[:, None]).long(),
    }


def build_model(head: str) -> MsamModel:
    torch.manual_seed(0)
    return MsamModel(MsamConfig.tiny(similarity_head=head, semantic_dropout=0.0)).train()


def local_slice(batch: dict[str, torch.Tensor], rank: int, world_size: int) -> dict[str, torch.Tensor]:
    per_process = batch["input_ids"].shape[0] // world_size
    local = {name: tensor[rank * per_process : (rank + 1) * per_process] for name, tensor in batch.items()}
    frames = int(local["video_mask"].sum(1).max())  # pad each process to its own longest video, as a collate would
    local["pixel_values_videos"], local["video_mask"] = (
        local["pixel_values_videos"][:, :frames],
        local["video_mask"][:, :frames],
    )
    return local


def main(output_path: str, head: str) -> None:
    accelerator = Accelerator(cpu=True)
    model = accelerator.prepare(build_model(head))
    inputs = local_slice(global_batch(), accelerator.process_index, accelerator.num_processes)
    output = model(**inputs, return_loss=True, gather_global_batch=True)
    accelerator.backward(output.loss)
    # Each process's loss holds the global contrastive term plus its own pairs' semantic terms; their mean is the
    # loss of the whole batch (and the mean of the gradients, which DDP takes, its gradient).
    loss = accelerator.reduce(output.loss.detach(), reduction="mean")
    if accelerator.is_main_process:
        results = {name: parameter.grad for name, parameter in accelerator.unwrap_model(model).named_parameters()}
        results |= {"loss": loss, "logits_per_text": output.logits_per_text.detach()}
        results["world_size"] = torch.tensor(accelerator.num_processes)
        save_file({name: tensor.contiguous() for name, tensor in results.items()}, output_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
