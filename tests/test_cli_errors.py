"""`msam` refuses bad input with one line naming the path or flag (exit 2, no traceback unless --debug)."""

import shutil
from pathlib import Path

import pytest
import torch
from torch._utils import ExceptionWrapper

from msam_hf import MsamConfig
from msam_hf import MsamModel
from msam_hf.cli import _input_error_message
from msam_hf.cli import build_parser
from msam_hf.cli import main as msam
from msam_hf.commands.parsing import dashed_options
from msam_hf.processors import default_processor
from msam_hf.search import VideoIndex
from msam_hf.video_io import VideoDecodeError


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    model = MsamModel(MsamConfig.tiny(max_frames=3))
    model.save_pretrained(folder)
    default_processor(model.config).save_pretrained(folder)
    return folder


def refused(argv: list[str], capsys) -> str:
    """stderr of a command that argparse refuses (exit 2), after checking it shows no traceback."""
    with pytest.raises(SystemExit) as exit_info:
        msam(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "./nope", "{data}"],
        ["evaluate", "{data}", "nope/deeper/data"],  # more than one "/": a path, not a repo id
        ["push", "{tmp}/nope", "someone/model"],
        ["data", "stats", "./nope"],
        ["data", "to-hub", "{tmp}/nope", "{tmp}/out"],
        ["index", "{data}", "--model", "../nope", "--out", "{tmp}/index"],
        ["index", "{tmp}/nope", "--model", "{data}", "--out", "{tmp}/index"],
        ["search", "{tmp}/nope", "a car"],
        ["convert", "{tmp}/nope.bin", "{tmp}/out"],
    ],
)
def test_a_missing_local_path_is_named_not_looked_up_on_the_hub(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    argv = [arg.format(tmp=tmp_path, data=tmp_path / "data") for arg in argv]
    missing = next(arg for arg in argv if "nope" in arg)
    err = refused(argv, capsys)
    assert f"{missing} does not exist" in err
    assert f"msam {argv[0]}" in err.splitlines()[0]  # the sub-command's usage
    assert not (tmp_path / "index").exists() and not (tmp_path / "out").exists()  # nothing half-written


def test_a_repo_id_is_left_to_the_hub(tmp_path):
    args = build_parser().parse_args(["evaluate", "someone/msam-drone", "someone/usrd"])
    assert (args.models, args.data) == (["someone/msam-drone"], "someone/usrd")


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["evaluate", "{tmp}", "{tmp}", "--fps", "0"], "--fps"),
        (["index", "{tmp}", "--model", "{tmp}", "--out", "{tmp}/index", "--fps", "-1"], "--fps"),
        (["evaluate", "{tmp}", "{tmp}", "--encode-batch-size", "0"], "--encode-batch-size"),
        (
            ["index", "{tmp}", "--model", "{tmp}", "--out", "{tmp}/index", "--encode-batch-size", "0"],
            "--encode-batch-size",
        ),
        (["search", "{tmp}", "a car", "-k", "0"], "-k/--top-k"),
        (["search", "{tmp}", "a car", "-k", "-3"], "-k/--top-k"),
        (["search", "{tmp}", "a car", "--top-k", "two"], "-k/--top-k"),
        (["convert", "{tmp}", "{tmp}/out", "--max-frames", "0"], "--max-frames"),
        (["data", "synth", "{tmp}/synth", "--fps", "0"], "--fps"),
    ],
)
def test_bad_numbers_are_refused_naming_the_flag(argv, flag, tmp_path, capsys):
    err = refused([arg.format(tmp=tmp_path) for arg in argv], capsys)
    assert f"argument {flag}: must be" in err
    assert not (tmp_path / "index").exists() and not (tmp_path / "synth").exists()


def test_index_of_a_folder_without_videos_writes_nothing(tmp_path, model_dir, capsys):
    empty = tmp_path / "footage"
    empty.mkdir()
    (empty / "notes.txt").write_text("no videos here")
    assert msam(["index", str(empty), "--model", str(model_dir), "--out", str(tmp_path / "index")]) == 2
    err = capsys.readouterr().err
    assert f"{empty} holds no videos" in err and ".mp4" in err and "Traceback" not in err
    assert not (tmp_path / "index").exists()


def test_search_of_an_empty_index_says_so(tmp_path, model_dir, capsys):
    model = MsamModel.from_pretrained(model_dir)
    VideoIndex.create(tmp_path / "index", model, default_processor(model.config))
    assert msam(["search", str(tmp_path / "index"), "a car"]) == 1
    captured = capsys.readouterr()
    assert "holds no videos" in captured.err and captured.out == ""


def test_debug_shows_the_traceback(tmp_path, model_dir, capsys):
    argv = ["index", str(tmp_path), "--model", str(model_dir), "--out", str(tmp_path / "index")]
    assert msam(argv) == 2
    assert "Traceback" not in capsys.readouterr().err
    with pytest.raises(ValueError, match="holds no videos"):
        msam(["--debug", *argv])


def test_a_decode_error_from_a_dataloader_worker_is_one_line():
    try:
        raise VideoDecodeError("clips/broken.mp4", "the file is empty (0 bytes)")
    except VideoDecodeError:
        wrapper = ExceptionWrapper(where="in DataLoader worker process 0")
    with pytest.raises(RuntimeError) as wrapped:  # torch cannot rebuild VideoDecodeError from a message
        wrapper.reraise()
    assert "Traceback" in str(wrapped.value)
    assert _input_error_message(wrapped.value) == "cannot decode video clips/broken.mp4: the file is empty (0 bytes)"
    assert _input_error_message(RuntimeError("CUDA out of memory")) is None  # not bad input: the traceback shows


@pytest.mark.parametrize("workers", ["0", "1"])
def test_evaluate_names_an_undecodable_video_in_one_line(workers, tmp_path, model_dir, make_videofolder, capsys):
    data = make_videofolder({"good": ["a car"], "broken": ["a boat"]}, splits={"good": "test", "broken": "test"})
    (data / "broken.mp4").write_bytes(b"not a video")
    argv = ["evaluate", str(model_dir), str(data), "--num-workers", workers, "--output-dir", str(tmp_path / "eval")]
    assert msam(argv) == 2
    err = capsys.readouterr().err
    assert f"error: cannot decode video {data / 'broken.mp4'}" in err and "Traceback" not in err


def test_options_take_underscores_as_well_as_dashes(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    # an underscore spelling reaches the option (refused for its value, not as an unknown argument)
    err = refused(["evaluate", str(tmp_path / "data"), str(tmp_path / "data"), "--encode_batch_size=0"], capsys)
    assert "argument --encode-batch-size: must be at least 1" in err
    assert dashed_options(["--num_videos", "20", "--out=a_b", "--", "--keep_me"]) == [
        "--num-videos",
        "20",
        "--out=a_b",
        "--",
        "--keep_me",
    ]


def test_msam_train_hands_its_arguments_to_the_training_script(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        msam(["train", "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert help_text.startswith("usage: msam train") and "--gradient_accumulation_steps" in help_text
    (tmp_path / "data").mkdir()
    argv = ["train", "--data_dir", str(tmp_path / "data"), "--output_dir", str(tmp_path / "run"), "--fps", "0"]
    assert msam(argv) == 2
    assert capsys.readouterr().err == "msam train: error: --fps must be positive, got 0.0\n"
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="--fps must be positive"):  # msam's own --debug reaches the script
        msam(["--debug", *argv])


@pytest.mark.parametrize("verbose", [False, True])
def test_weight_loading_bars_show_only_with_verbose(verbose, tmp_path, model_dir, make_videofolder, capsys):
    data = make_videofolder({"clip": ["a car"]}, splits={"clip": "test"})
    argv = ["evaluate", str(model_dir), str(data), "--num-workers", "0", "--output-dir", str(tmp_path / "eval")]
    assert msam(["--verbose", *argv] if verbose else argv) == 0
    assert ("Loading weights" in capsys.readouterr().err) == verbose


def test_search_names_a_model_folder_that_moved_after_indexing(tmp_path, model_dir, make_videofolder, capsys):
    videos = make_videofolder({"clip": ["a car"]})
    model = shutil.copytree(model_dir, tmp_path / "model")
    index = tmp_path / "index"
    assert msam(["index", str(videos), "--model", str(model), "--out", str(index), "--num-workers", "0"]) == 0
    model.rename(tmp_path / "moved")
    capsys.readouterr()
    assert msam(["search", str(index), "a car"]) == 2
    err = capsys.readouterr().err
    assert f"built with the model folder {model}, which no longer exists" in err and "--model NEW_PATH" in err
    assert msam(["search", str(index), "a car", "--model", str(tmp_path / "moved")]) == 0
    assert "clip.mp4" in capsys.readouterr().out
