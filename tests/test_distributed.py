"""The contrastive loss spans the global batch: 2 CPU processes × batch b give the loss and gradients of
1 process × batch 2b (real processes, `accelerate launch`, gloo)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import accelerate_launch

sys.path.insert(0, str(Path(__file__).parent / "scripts"))
from global_batch_step import build_model  # noqa: E402
from global_batch_step import global_batch  # noqa: E402

SCRIPT = Path(__file__).parent / "scripts" / "global_batch_step.py"


@pytest.mark.parametrize("head", ["ciffp", "mean"])
def test_two_processes_give_the_loss_and_gradients_of_one_process_on_the_whole_batch(tmp_path, head):
    output_path = tmp_path / "two_processes.safetensors"
    command = accelerate_launch(SCRIPT, output_path, head)
    subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=tmp_path, timeout=300)
    two_processes = load_file(output_path)
    assert int(two_processes.pop("world_size")) == 2

    model = build_model(head)
    output = model(**global_batch(), return_loss=True)
    output.loss.backward()
    torch.testing.assert_close(two_processes.pop("loss"), output.loss.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        two_processes.pop("logits_per_text"), output.logits_per_text.detach(), atol=1e-5, rtol=1e-5
    )
    compared = 0
    for name, parameter in model.named_parameters():
        if parameter.grad is None:
            continue
        torch.testing.assert_close(two_processes[name], parameter.grad, atol=1e-5, rtol=1e-4, msg=name)
        compared += 1
    assert compared > 50 and "clip.logit_scale" in two_processes
