"""`msam index` / `msam search` and `VideoIndex` on a small synthetic drone benchmark with a tiny random model.

A tiny model with random weights cannot match captions to videos, so retrieval is checked two ways that can fail:
queries built from one of a video's own frame features (a caption that matched that frame perfectly) must find that
video first, and caption queries must return exactly the model's own ranking of the whole folder (scores, order and
best frame), i.e. the index adds no error of its own.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import accelerate_launch
from conftest import write_video
from msam_hf import MsamConfig
from msam_hf import MsamModel
from msam_hf import default_processor
from msam_hf.cli import main as msam
from msam_hf.data.synthetic import SynthConfig
from msam_hf.data.synthetic import generate_synthetic_dataset
from msam_hf.evaluation import load_model_and_processor
from msam_hf.search import ModelMismatchError
from msam_hf.search import VideoIndex
from msam_hf.search import key_vectors
from msam_hf.video_io import read_frames

BUILD = {"shard_size": 4, "batch_size": 3, "num_workers": 0, "progress": False}


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory) -> Path:
    # one video per site and no twins: every video looks different
    config = SynthConfig(
        num_videos=10,
        width=48,
        height=48,
        duration=3.0,
        fps=2.0,
        seed=5,
        split_fractions=(0.4, 0.1, 0.5),
        videos_per_site=1,
        hard_negative_fraction=0.0,
    )
    root = generate_synthetic_dataset(tmp_path_factory.mktemp("synth"), config, num_workers=1, progress=False)
    return root / "Videos"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    model = MsamModel(MsamConfig.tiny(max_frames=3))
    model.save_pretrained(folder)
    default_processor(model.config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def model_and_processor(model_dir):
    return load_model_and_processor(model_dir)


@pytest.fixture(scope="module")
def built(tmp_path_factory, video_dir, model_and_processor) -> VideoIndex:
    return VideoIndex.build(video_dir, tmp_path_factory.mktemp("index") / "index", *model_and_processor, **BUILD)


@pytest.fixture
def videos(tmp_path, video_dir) -> Path:
    """A copy of the benchmark's videos that a test may change."""
    return Path(shutil.copytree(video_dir, tmp_path / "videos"))


def encode(model, processor, path: Path):
    """A direct pass of the model over one file: (frame_embeds (frames, dim), timestamps)."""
    decoded = read_frames(path, max_frames=model.config.max_frames)
    with torch.no_grad():
        features = model.get_video_features(**processor(videos=[decoded.frames], return_tensors="pt"))
    return features, decoded.timestamps


def count_encodings(monkeypatch, model) -> list[int]:
    """Record the batch size of every `get_video_features` call."""
    calls, original = [], model.get_video_features

    def counting(pixel_values_videos, video_mask=None, **kwargs):
        calls.append(pixel_values_videos.shape[0])
        return original(pixel_values_videos, video_mask, **kwargs)

    monkeypatch.setattr(model, "get_video_features", counting)
    return calls


def test_each_video_is_found_first_from_its_own_frame(built, video_dir, model_and_processor):
    model, processor = model_and_processor
    paths = sorted(video_dir.glob("*.mp4"))
    assert built.paths == [str(path) for path in paths] and built.report.added == built.paths
    for path in paths:
        features, timestamps = encode(model, processor, path)
        frame = 1  # the middle second
        hits = built.search(features.frame_embeds[0, frame].numpy(), k=3)
        assert hits[0].path == str(path)
        assert hits[0].timestamps[0] == pytest.approx(timestamps[frame])
        assert hits[0].score > hits[1].score


def test_caption_search_returns_the_models_own_ranking(built, video_dir, model_and_processor):
    model, processor = model_and_processor
    paths = sorted(video_dir.glob("*.mp4"))
    decoded = [read_frames(path, max_frames=model.config.max_frames) for path in paths]
    captions = ["a red car parks beside the lake", "a white boat sails under the bridge", "people walk on the road"]
    with torch.no_grad():
        video = model.get_video_features(**processor(videos=[clip.frames for clip in decoded], return_tensors="pt"))
        inputs = processor(text=captions, return_tensors="pt")
        text = model.get_text_features(inputs["input_ids"], inputs["attention_mask"])
        logits, attention = model.similarity(text, video, text_context_size=1, return_frame_attention=True)
    for row, caption in enumerate(captions):
        hits = built.search(caption, k=len(paths))
        expected = torch.argsort(logits[row], descending=True).tolist()
        assert [hit.path for hit in hits] == [str(paths[column]) for column in expected]
        # stored features are float16: scores agree to that precision
        torch.testing.assert_close(torch.tensor([hit.score for hit in hits]), logits[row, expected], atol=2e-2, rtol=0)
        best = attention[row, expected[0]].argmax()
        assert hits[0].timestamps[0] == pytest.approx(decoded[expected[0]].timestamps[best])


def test_cli_index_and_search(tmp_path, videos, model_dir, capsys):
    assert (
        msam(
            [
                "index",
                str(videos),
                "--model",
                str(model_dir),
                "--out",
                str(tmp_path / "index"),
                "--num-workers",
                "0",
                "--no-progress",
            ]
        )
        == 0
    )
    assert "added 10 video(s)" in capsys.readouterr().out
    assert msam(["search", str(tmp_path / "index"), "a boat on the lake", "-k", "3", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = VideoIndex.load(tmp_path / "index").search("a boat on the lake", k=3)
    assert [hit["path"] for hit in printed["hits"]] == [hit.path for hit in expected]
    assert all(Path(hit["path"]).parent == videos and hit["timestamps"] for hit in printed["hits"])


def test_update_adds_new_skips_unchanged_follows_moves_and_drops_deleted(
    tmp_path, videos, model_and_processor, monkeypatch
):
    model, processor = model_and_processor
    index = VideoIndex.build(videos, tmp_path / "index", model, processor, **BUILD)
    paths = sorted(videos.glob("*.mp4"))
    new = write_video(videos / "more" / "new.mp4", seconds=3.0, rate=4, size=(48, 48))
    os.utime(paths[0])  # touched, same content
    moved = paths[1].rename(videos / "renamed.mp4")
    paths[2].unlink()
    shutil.copyfile(paths[4], paths[3])  # changed content (now a copy of another video)
    calls = count_encodings(monkeypatch, model)

    report = VideoIndex.build(videos, tmp_path / "index", model, processor, **BUILD).report
    assert sorted(report.added) == sorted([str(new), str(paths[3])]) and sum(calls) == 2
    assert report.unchanged == 7 and report.moved == [[str(paths[1]), str(moved)]]
    assert report.removed == [str(paths[2])] and not report.failed
    index = VideoIndex.load(tmp_path / "index", model, processor)
    assert sorted(index.paths) == sorted(str(path) for path in videos.rglob("*.mp4"))
    features, _ = encode(model, processor, moved)
    assert index.search(features.frame_embeds[0, 0].numpy(), k=1)[0].path == str(moved)

    calls.clear()
    assert VideoIndex.build(videos, tmp_path / "index", model, processor, **BUILD).report.unchanged == 10
    assert not calls
    index.remove([new])
    assert str(new) not in VideoIndex.load(tmp_path / "index").paths
    index.add([new], num_workers=0, progress=False)
    assert str(new) in VideoIndex.load(tmp_path / "index").paths


def test_bad_files_are_reported_and_never_stop_the_run(tmp_path, videos, model_dir, capsys):
    (videos / "empty.mp4").write_bytes(b"")
    (videos / "text.mp4").write_text("not a video")
    whole = (videos / "synth_00000.mp4").read_bytes()
    (videos / "truncated.mkv").write_bytes(whole[: len(whole) // 3])
    assert (
        msam(
            [
                "index",
                str(videos),
                "--model",
                str(model_dir),
                "--out",
                str(tmp_path / "index"),
                "--num-workers",
                "2",
                "--no-progress",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / "index" / "report.json").read_text())
    bad = {videos / name for name in ("empty.mp4", "text.mp4", "truncated.mkv")}
    assert {Path(failure["path"]) for failure in report["failed"]} == bad
    assert all(failure["path"] in failure["reason"] for failure in report["failed"])
    assert all(str(path) in printed for path in bad)
    assert len(report["added"]) == 10 and report["num_videos"] == 10


def test_an_interrupted_run_resumes_without_redoing_finished_shards(
    tmp_path, built, video_dir, model_and_processor, monkeypatch
):
    model, processor = model_and_processor
    original = model.get_video_features
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:  # shards of 4 videos in batches of 3 and 1: the first two shards are written by then
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "get_video_features", interrupted)
    with pytest.raises(KeyboardInterrupt):
        VideoIndex.build(video_dir, tmp_path / "index", model, processor, **BUILD)
    assert len(list((tmp_path / "index" / "shards").glob("*.safetensors"))) == 2
    monkeypatch.setattr(model, "get_video_features", original)

    calls = count_encodings(monkeypatch, model)
    resumed = VideoIndex.build(video_dir, tmp_path / "index", model, processor, **BUILD)
    assert resumed.report.resumed == 8 and len(resumed.report.added) == 2 and sum(calls) == 2
    assert_same_index(resumed, built)


def test_two_processes_index_like_one(tmp_path, built, video_dir, model_dir):
    command = accelerate_launch(
        "-m",
        "msam_hf.cli",
        "index",
        video_dir,
        "--model",
        model_dir,
        "--out",
        tmp_path / "index",
        "--shard-size",
        "4",
        "--encode-batch-size",
        "3",
        "--num-workers",
        "0",
        "--no-progress",
    )
    subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=tmp_path, timeout=300)
    two = VideoIndex.load(tmp_path / "index")
    assert json.loads((tmp_path / "index" / "report.json").read_text())["processes"] == 2
    assert_same_index(two, built)


def assert_same_index(index: VideoIndex, reference: VideoIndex) -> None:
    """Same videos (paths, hashes, rows) and the same stored features."""
    columns = ["path", "sha256", "num_frames", "row_id"]
    assert index._videos.select(columns).to_pylist() == reference._videos.select(columns).to_pylist()
    names = ("frame_embeds", "video_embeds", "video_mask", "timestamps")
    for name, array in index._gather(index._row_ids, names).items():
        np.testing.assert_allclose(array, reference._gather(reference._row_ids, names)[name], atol=1e-3, err_msg=name)


def test_an_index_refuses_another_model_or_sampling(tmp_path, built, video_dir, model_and_processor, model_dir, capsys):
    torch.manual_seed(1)
    other = MsamModel(MsamConfig.tiny(max_frames=3))  # same config, other weights
    with pytest.raises(ModelMismatchError, match="weights_hash"):
        VideoIndex.build(video_dir, built.directory, other, default_processor(other.config), **BUILD)
    with pytest.raises(ModelMismatchError, match="fps"):
        VideoIndex.build(video_dir, built.directory, *model_and_processor, fps=2.0, **BUILD)
    other.save_pretrained(tmp_path / "other")
    assert msam(["search", str(built.directory), "a car", "--model", str(tmp_path / "other")]) == 2
    assert str(built.directory) in capsys.readouterr().err
    assert VideoIndex.load(built.directory).paths == built.paths  # nothing was written


def test_search_without_faiss_ranks_like_faiss_exact(built, model_and_processor, monkeypatch, caplog):
    model, processor = model_and_processor
    assert built.manifest["stage1"]["type"] == "flat"
    queries = ["a red car parks beside the lake", "trees beside a road"]
    queries += [np.random.default_rng(seed).standard_normal(model.config.projection_dim) for seed in range(3)]
    with_faiss = [built.search(query, k=10, candidates=4) for query in queries]
    monkeypatch.setattr("msam_hf.search.index.faiss", None)
    without = VideoIndex.load(built.directory, model, processor)
    for query, expected in zip(queries, with_faiss):
        hits = without.search(query, k=10, candidates=4)
        assert [hit.path for hit in hits] == [hit.path for hit in expected]
        assert [hit.score for hit in hits] == pytest.approx([hit.score for hit in expected], abs=1e-5)
    assert "faiss is not installed" in caplog.text


def test_heads_without_frame_attention_rank_by_the_video_embedding(tmp_path, video_dir):
    torch.manual_seed(0)
    model = MsamModel(MsamConfig.tiny(max_frames=3, similarity_head="mean")).eval()
    processor = default_processor(model.config)
    index = VideoIndex.build(video_dir, tmp_path / "index", model, processor, **BUILD)
    paths = sorted(video_dir.glob("*.mp4"))
    with torch.no_grad():
        frames = [read_frames(path, max_frames=3).frames for path in paths]
        video = model.get_video_features(**processor(videos=frames, return_tensors="pt"))
        inputs = processor(text=["a truck drives on the road"], return_tensors="pt")
        logits = model.similarity(model.get_text_features(inputs["input_ids"], inputs["attention_mask"]), video)
    hits = index.search("a truck drives on the road", k=len(paths))
    assert [hit.path for hit in hits] == [str(paths[column]) for column in logits[0].argsort(descending=True)]
    assert all(hit.timestamps == [] for hit in hits)


def random_features(count: int, frames: int, dim: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Frame features as `add_features` takes them: unit frames drifting around a per-video point, some masked."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((count, 1, dim))
    frame_embeds = centres + 0.7 * rng.standard_normal((count, frames, dim))
    frame_embeds /= np.linalg.norm(frame_embeds, axis=-1, keepdims=True)
    video_mask = (np.arange(frames) < rng.integers(1, frames + 1, count)[:, None]).astype(np.uint8)
    frame_embeds *= video_mask[..., None]
    video_embeds = frame_embeds.sum(1)
    video_embeds /= np.linalg.norm(video_embeds, axis=-1, keepdims=True)
    timestamps = np.broadcast_to(np.arange(frames, dtype=np.float32), (count, frames))
    return {
        "frame_embeds": frame_embeds.astype(np.float16),
        "video_mask": video_mask,
        "video_embeds": video_embeds.astype(np.float16),
        "timestamps": timestamps,
    }


def test_key_vectors_are_unit_centroids_of_each_videos_frame_groups():
    rng = np.random.default_rng(0)
    groups = np.linalg.qr(rng.standard_normal((32, 2)))[0].T  # two orthogonal directions
    frames = np.concatenate([groups[[0, 0, 0]], groups[[1]], np.zeros((1, 32))])[None]  # 3 + 1 frames, 1 padded
    frames = frames + 0.01 * rng.standard_normal(frames.shape) * (np.arange(5) < 4)[None, :, None]
    keys = key_vectors(frames.astype(np.float16), (np.arange(5) < 4)[None].astype(np.uint8), 2)[0]
    np.testing.assert_allclose(np.linalg.norm(keys, axis=-1), 1, atol=1e-5)
    np.testing.assert_allclose(np.abs(keys @ groups.T).max(0), 1, atol=1e-2)  # one centroid on each group
    single = key_vectors(frames[:, :1].astype(np.float16), np.ones((1, 1), np.uint8), 2)[0]  # one frame: one key
    assert np.abs(single @ frames[0, 0]).max() == pytest.approx(1, abs=1e-3)


def test_compressed_stage_one_finds_each_videos_frames_and_survives_save_remove_and_old_indexes(
    tmp_path, model_and_processor, monkeypatch
):
    model, processor = model_and_processor
    monkeypatch.setattr("msam_hf.search.stage1.EXACT_SEARCH_MAX_VIDEOS", 100)
    features = random_features(1000, 3, model.config.projection_dim)
    paths = [f"video_{number:04d}.mp4" for number in range(1000)]
    index = VideoIndex.create(tmp_path / "index", model, processor, shard_size=256)
    index.add_features(paths, **features)
    index.save()
    assert index.manifest["stage1"]["type"] == "pq-fastscan" and index.manifest["stage1"]["key_vectors"] == 2

    def found_from_own_frames(index: VideoIndex) -> float:
        videos = range(0, 1000, 50)
        return np.mean(
            [
                index.search(features["frame_embeds"][video, 0].astype(np.float32), k=1, candidates=20)[0].path
                == paths[video]
                for video in videos
            ]
        )

    assert found_from_own_frames(index) >= 0.95
    loaded = VideoIndex.load(tmp_path / "index", model, processor)
    assert loaded._stage1_saved and found_from_own_frames(loaded) >= 0.95
    loaded.remove(paths[:10])
    assert loaded._stage1.ntotal == 2 * 990
    assert paths[0] not in [hit.path for hit in loaded.search(features["frame_embeds"][0, 0].astype(np.float32))]

    # an index whose stage 1 an older version built over v̄ alone is rebuilt, not misread
    manifest_path = tmp_path / "index" / "index.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["stage1"]["key_vectors"]
    manifest_path.write_text(json.dumps(manifest))
    old = VideoIndex.load(tmp_path / "index", model, processor)
    assert old._stage1 is None and found_from_own_frames(old) >= 0.95
    old.save()
    assert VideoIndex.load(tmp_path / "index").manifest["stage1"]["key_vectors"] == 2
