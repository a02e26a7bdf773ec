"""`make demo` end to end at a smaller size: synth → pretraining → accelerate launch training → evaluate →
fresh-process search."""

import json
import re
import subprocess
import sys


def test_demo_runs_every_step_at_a_small_size(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "msam_hf.demo", "--output_dir", str(tmp_path), "--num_videos", "30",
         "--num_epochs", "1", "--resolution", "48", "--duration", "3", "--batch_size", "8", "--videos_per_site", "3",
         "--pretrain_videos", "20"],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    output = result.stdout
    assert [int(number) for number in re.findall(r"== step (\d)/5", output)] == [1, 2, 3, 4, 5]
    assert len(list((tmp_path / "data" / "Videos").glob("*.mp4"))) == 30
    # the pretraining corpus: other scenes, captions listing every object; MSAM fine-tuned from its CLIP
    corpus = [json.loads(line) for line in (tmp_path / "pretrain" / "data" / "metadata.jsonl").open()]
    assert len(corpus) == 20 and {row["split"] for row in corpus} == {"train", "validation"}
    assert (tmp_path / "pretrain" / "clip" / "config.json").is_file()
    fine_tuned = json.loads((tmp_path / "run" / "best" / "config.json").read_text())
    assert fine_tuned["base_clip_model"] == str(tmp_path / "pretrain" / "clip")
    assert (tmp_path / "run" / "best" / "model.safetensors").is_file()
    # each video read was decoded once into the frame cache (one sampling: 1 fps, the recipe's 2 frames): the
    # validation and test videos, and the training videos of the one epoch's full batches of 8
    read = 0
    for metadata in (tmp_path / "data" / "metadata.jsonl", tmp_path / "pretrain" / "data" / "metadata.jsonl"):
        splits = [json.loads(line)["split"] for line in metadata.open()]
        read += splits.count("train") // 8 * 8 + splits.count("validation") + splits.count("test")
    assert len(list((tmp_path / "frame_cache").rglob("*.npz"))) == read
    results = json.loads((tmp_path / "eval" / "results.json").read_text())["best"]
    assert set(results["metrics"]) == {"|J|=32", "|J|=1"}
    assert (tmp_path / "eval" / "recall_at_k.png").is_file()
    assert re.search(r"test text-to-video R@1 at \|J\|=1: [\d.]+ % \(chance [\d.]+ %\)", output)
    # the fresh process loaded the saved code, not msam_hf, and ranked the test videos for each query
    assert "msam_hf imported: False" in output
    assert output.count("query: ") == 2
    ranked = re.findall(r"^  [1-5]\. (synth_\d+)  score (-?[\d.]+)", output, flags=re.MULTILINE)
    assert len(ranked) == 10
    scores = [float(score) for _, score in ranked[:5]]
    assert scores == sorted(scores, reverse=True)
