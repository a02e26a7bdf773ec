"""benchmarks/ablation.py in the frozen regime on a dataset it has never seen: a CLIP4Clip-layout folder of ordinary
videos (no synthetic ground truth), a given backbone, two variants and two seeds; results.json / results.md in the
documented format, and a second call resumes instead of training again."""

import importlib.util
import json
import pickle
import subprocess
import sys
from pathlib import Path

from conftest import write_video
from msam_hf import MsamConfig
from msam_hf import MsamModel

ROOT = Path(__file__).resolve().parents[1]
SPLITS = {"train": 8, "val": 3, "test": 3}
WORDS = ["red", "blue", "green", "car", "boat", "house", "road", "river", "moves", "parks"]


def clip4clip_dataset(root: Path) -> Path:
    captions, index = {}, 0
    for split, count in SPLITS.items():
        ids = [f"{split}_{number:02d}" for number in range(count)]
        (root / f"{split}_list.txt").parent.mkdir(parents=True, exist_ok=True)
        (root / f"{split}_list.txt").write_text("".join(f"{video_id}\n" for video_id in ids))
        for video_id in ids:
            write_video(root / "Videos" / f"{video_id}.mp4", seconds=2.0, rate=3 + index % 4, size=(48, 48))
            captions[video_id] = [[WORDS[(index + k) % 10], WORDS[(3 * index + k) % 10], "view"] for k in range(2)]
            index += 1
    (root / "raw-captions.pkl").write_bytes(pickle.dumps(captions))
    return root


def run_ablation(*arguments) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ablation.py"), *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )


def test_frozen_ablation_on_a_clip4clip_dataset_writes_results_and_resumes(tmp_path):
    data_dir = clip4clip_dataset(tmp_path / "data")
    MsamModel(MsamConfig.tiny()).clip.save_pretrained(tmp_path / "clip")
    arguments = [
        "--regime",
        "frozen",
        "--data_dir",
        data_dir,
        "--backbone",
        tmp_path / "clip",
        "--variants",
        "mean",
        "msam",
        "--seeds",
        "0",
        "1",
        "--num_epochs",
        "2",
        "--batch_size",
        "4",
        "--output_dir",
        tmp_path / "out",
    ]
    result = run_ablation(*arguments)
    assert result.returncode == 0, result.stderr[-4000:]

    runs = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [(run["variant"], run["seed"]) for run in runs] == [("mean", 0), ("msam", 0), ("mean", 1), ("msam", 1)]
    for run in runs:
        assert {"t2v_r1", "t2v_median_rank", "v2t_r1", "rsum"} <= set(run["metrics"])
        assert "in_site_r1" not in run["metrics"]  # no ground-truth sites in this data
        assert set(run["metrics_by_text_context_size"]) == {"|J|=32", "|J|=1"}
        assert run["num_videos"] == 3 and run["num_captions"] == 6
        assert "frozen-heads.yaml" in run["command"] and f"--seed {run['seed']}" in run["command"]
        assert len(run["data_fingerprint"]) == 16 and any(
            line.startswith("torch==") for line in run["environment"]["pip_freeze"]
        )
    assert len({run["data_fingerprint"] for run in runs}) == 1
    # One feature cache serves every run: each split encoded once for `mean` (frames and sentences) and once more
    # with the word tokens MSAM's semantic branch reads; the second seed's runs encode nothing.
    entries = sorted(
        path.name.split("-")[0] + path.name.partition("+")[1] + path.name.partition("+")[2]
        for path in (tmp_path / "out" / "features").iterdir()
    )
    assert entries == ["test", "test+words", "train", "train+words", "validation", "validation+words"]

    report = (tmp_path / "out" / "results.md").read_text()
    assert "| mean (CLIP4Clip meanP) | 2 |" in report and "| msam (MSAM: CIFFP + semantic loss) | 2 |" in report
    difference = next(line for line in report.splitlines() if line.startswith("| msam |"))
    first = runs[1]["metrics"]["t2v_r1"] - runs[0]["metrics"]["t2v_r1"]
    assert difference.split("|")[2].strip().startswith(f"{first:+.1f} ")  # per-seed differences, seed 0 first
    assert "Regenerate: `" in report

    # a later call that adds a seed for one variant still reports one command for every row
    spec = importlib.util.spec_from_file_location("ablation", ROOT / "benchmarks" / "ablation.py")
    ablation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ablation)
    regenerate = ablation.regenerate_command(
        ["benchmarks/ablation.py", "--regime", "frozen", "--variants", "msam", "--seeds", "2", "--output_dir", "O"],
        [*runs, {**runs[1], "seed": 2}],
    )
    assert regenerate == (
        "python benchmarks/ablation.py --regime frozen --output_dir O --variants mean msam --seeds 0 1 2"
    )

    again = run_ablation(*arguments)
    assert again.returncode == 0 and "training" not in again.stderr  # every run was already in results.json
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == runs

    changed = run_ablation(*arguments[:-4], "--batch_size", "2", "--output_dir", tmp_path / "out")
    assert changed.returncode != 0 and "other settings" in changed.stderr
