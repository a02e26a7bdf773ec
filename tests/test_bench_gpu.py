"""benchmarks/bench_gpu.py: the CPU smoke path runs every section and reports it; without CUDA the real run refuses.

No timing is asserted: only that every section, table and the setup are there and that the numbers are sane.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_gpu.py"
SECTIONS = ["training", "frozen_heads", "similarity", "encoding"]


def run_bench(*arguments, hide_gpus: bool = False) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if hide_gpus:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env=env,
    )


def positive(value) -> bool:
    return isinstance(value, (int, float)) and value > 0


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_gpu") / "smoke.json"
    result = run_bench("--smoke", "--out", out)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout, json.loads(out.read_text())


def test_smoke_prints_a_table_per_section(smoke):
    stdout, _ = smoke
    for heading in (
        "### Training step from pixels",
        "### MSAM's own modules from cached frozen features",
        "### Exhaustive CIFFP scoring",
        "### Encoding throughput",
        "Data-loading requirement",
    ):
        assert heading in stdout
    for header in (
        "| batch | checkpointing | mean step (s) | MSAM step (s) | MSAM / mean |",
        "| batch | steps / s |",
        "| \\|J\\| | chunks | time (s) | peak (GiB) |",
        "| pass | videos | time (s) | videos / s |",
        "| clip | frames from | CPU s / video |",
    ):
        assert header in stdout
    assert "skipped" not in stdout and "OOM" not in stdout


def test_smoke_json_records_the_setup(smoke):
    _, results = smoke
    assert results["smoke"] is True
    assert "--smoke" in results["command"]
    assert results["device"]["device"] == "cpu" and results["device"]["torch"]
    assert {"python", "cpu", "pip_freeze"} <= set(results["environment"])
    assert results["settings"]["tf32"] is True and results["settings"]["tiny"] is True
    assert list(results["sections"]) == SECTIONS
    assert results["stopped_early"] == []
    assert positive(results["elapsed_s"])


def test_smoke_training_measures_both_variants_with_and_without_checkpointing(smoke):
    _, results = smoke
    training = results["sections"]["training"]
    cases = {(case["variant"], case["checkpointing"]) for case in training["cases"]}
    assert cases == {("mean", False), ("mean", True), ("MSAM", False), ("MSAM", True)}
    for case in training["cases"]:
        assert case["status"] == "ok" and positive(case["step_s"]) and case["steps_timed"] >= 1
        assert case["peak_gib"] is None  # memory is counted on CUDA only
    for row in training["rows"]:
        assert row["step_ratio"] == pytest.approx(row["MSAM"]["step_s"] / row["mean"]["step_s"])


def test_smoke_frozen_heads_similarity_and_encoding_are_sane(smoke):
    _, results = smoke
    sections = results["sections"]
    for row in sections["frozen_heads"]["rows"]:
        assert row["status"] == "ok" and positive(row["steps_per_s"]) and row["steps_timed"] >= 1
        # The CLIP towers are frozen: only MSAM's modules (and the logit scale) train.
        assert 0 < row["trainable_parameters"] < 2_000_000
    settings = results["settings"]
    similarity = sections["similarity"]["rows"]
    assert {(row["context"], row["text_chunk_size"]) for row in similarity} == {
        (context, chunks[0]) for context in settings["contexts"] for chunks in settings["chunks"]
    }
    for row in similarity:
        assert row["status"] == "ok" and positive(row["seconds"]) and row["finite"] is True
        assert row["logits_shape"] == [settings["texts"], settings["videos"]]
    passes = sections["encoding"]["rows"]
    assert [row["pass"].split(":")[0] for row in passes] == ["cold", "warm"]
    for row in passes:
        assert row["status"] == "ok" and row["videos"] == settings["encode_videos"] and positive(row["videos_per_s"])
        assert row["captions"] >= row["videos"]
    for row in sections["encoding"]["requirement"]:
        assert row["status"] == "ok" and positive(row["cpu_s_per_video"]) and row["frames"] >= 1
        assert row["workers_needed"] >= 1


def test_a_spent_budget_still_writes_every_section_marked_skipped(tmp_path):
    out = tmp_path / "spent.json"
    result = run_bench("--smoke", "--budget_s", "0", "--out", out)
    assert result.returncode == 0, result.stderr[-4000:]
    results = json.loads(out.read_text())
    assert results["stopped_early"] == SECTIONS
    assert all(case["status"] == "skipped (time budget)" for case in results["sections"]["training"]["cases"])
    assert "reached its share of the 0 s budget" in result.stdout


def test_without_cuda_the_full_run_exits_with_a_clear_message(tmp_path):
    result = run_bench("--out", tmp_path / "none.json", hide_gpus=True)
    assert result.returncode != 0
    assert "measures one CUDA GPU" in result.stderr and "--smoke" in result.stderr
    assert not (tmp_path / "none.json").exists()


def load_script():
    import importlib.util

    if str(SCRIPT.parent) not in sys.path:
        sys.path.insert(0, str(SCRIPT.parent))  # as when run as a script: it imports its sibling bench_decode
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_gpu"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_a_deadline_inside_a_case_keeps_what_was_measured():
    import dataclasses

    import torch

    bench = load_script()
    sizes = dataclasses.replace(bench.SMOKE, texts=4096, videos=8)
    device = bench.Device("cpu", autocast=False)
    model = bench.Models(sizes, device).get("MSAM")
    # A past deadline: the step after the first stops the case, whose time is that first step's.
    case = bench.training_case(model, 2, sizes, device, deadline=0.0)
    assert case["status"] == "partial (time budget)" and len(case["step_times_s"]) == 1
    assert case["step_s"] == case["step_times_s"][0]
    # Scoring stops after its first slice of captions and extrapolates to all of them.
    width = model.config.projection_dim
    text = bench.MsamTextOutput(text_embeds=bench.unit(torch.randn(sizes.texts, width)))
    frames = bench.unit(torch.randn(sizes.videos, sizes.frames, width))
    video = bench.MsamVideoOutput(
        video_embeds=bench.unit(frames.mean(1)),
        frame_embeds=frames,
        video_mask=torch.ones(sizes.videos, sizes.frames, dtype=torch.long),
    )
    with torch.no_grad():
        row = bench.similarity_case(model.eval(), text, video, 32, 16, 16, sizes, device, deadline=0.0)
    assert row["status"] == "estimated (time budget)"
    assert 0 < row["captions_scored"] < sizes.texts and positive(row["seconds"])
