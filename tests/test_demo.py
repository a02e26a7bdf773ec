"""`make demo` end to end at a smaller size: synth → the tiny CLIP stand-in → heads trained on cached frozen
features with accelerate launch → evaluate against chance and the background-only baseline → fresh-process search."""

import json
import os
import re
import subprocess
import sys


def test_demo_runs_every_step_at_a_small_size(tmp_path):
    environment = {**os.environ, "MSAM_HF_CACHE": str(tmp_path / "cache")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "msam_hf.demo",
            "--output_dir",
            str(tmp_path / "demo"),
            "--num_videos",
            "30",
            "--num_epochs",
            "2",
            "--resolution",
            "48",
            "--duration",
            "3",
            "--batch_size",
            "8",
            "--videos_per_site",
            "3",
            "--pretrain_scenes",
            "16",
            "--pretrain_steps",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=environment,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    output, demo = result.stdout, tmp_path / "demo"
    assert [int(number) for number in re.findall(r"== step (\d)/5", output)] == [1, 2, 3, 4, 5]
    assert len(list((demo / "data" / "Videos").glob("*.mp4"))) == 30
    # the stand-in is cached by recipe, and MSAM's frozen towers are its towers
    stand_ins = list((tmp_path / "cache" / "tiny-clip").iterdir())
    assert len(stand_ins) == 1 and json.loads((stand_ins[0] / "pretraining.json").read_text())["recipe"]["steps"] == 3
    trained = json.loads((demo / "run" / "best" / "config.json").read_text())
    assert trained["base_clip_model"] == str(stand_ins[0]) and trained["similarity_head"] == "ciffp"
    assert json.loads((demo / "run" / "final" / "training_args.json").read_text())["finetune"] == "frozen"
    # every split the training read was encoded once into the feature cache
    assert sorted(path.name.split("-")[0] for path in (demo / "feature_cache").iterdir()) == ["train", "validation"]
    results = json.loads((demo / "eval" / "results.json").read_text())["best"]
    assert set(results["metrics"]) == {"|J|=32", "|J|=1"} and "in_site_r1" in results["metrics"]["|J|=1"]
    assert (demo / "eval" / "recall_at_k.png").is_file() and (demo / "eval" / "frame_attention.png").is_file()
    assert re.search(
        r"test text-to-video R@1 at \|J\|=1: [\d.]+ % \(chance [\d.]+ %, background only [\d.]+ %\), "
        r"median rank [\d.]+ \(chance [\d.]+, background only [\d.]+\), in-site R@1 [\d.]+ %",
        output,
    )
    # the fresh process loaded the saved code, not msam_hf, and ranked the test videos for each query
    assert "msam_hf imported: False" in output
    assert output.count("query: ") == 2
    ranked = re.findall(r"^  [1-5]\. (synth_\d+)  score (-?[\d.]+)", output, flags=re.MULTILINE)
    assert len(ranked) == 10
    scores = [float(score) for _, score in ranked[:5]]
    assert scores == sorted(scores, reverse=True)
