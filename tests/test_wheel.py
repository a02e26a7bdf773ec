"""The wheel built from the repository holds what a pip-installed user needs: every module of the package, the Hub
files `msam push` publishes (`hub_cards/` at the top level, installed as `msam_hf.hub_cards`), the licences, the
`msam` command and the training script with its recipes (`training/`, installed as `msam_hf.training`).

The wheel is built offline with the setuptools already installed (`--no-build-isolation`)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE_FOLDERS = {
    "msam_hf": REPO / "msam_hf",
    "msam_hf/hub_cards": REPO / "hub_cards",
    "msam_hf/training": REPO / "training",
}
# What setup.cfg builds the wheel from.
BUILD_INPUTS = ("pyproject.toml", "setup.cfg", "README.md", "LICENSE", "msam_hf", "hub_cards", "training")


def source_files(suffixes: tuple[str, ...]) -> set[str]:
    """Paths in the wheel of the tree's files with these suffixes (caches and untracked build output left out)."""
    names = set()
    for installed, folder in PACKAGE_FOLDERS.items():
        for path in folder.rglob("*"):
            if path.is_file() and path.suffix in suffixes and "__pycache__" not in path.parts:
                relative = path.relative_to(folder)
                if installed == "msam_hf" and relative.parts[0] in {"hub_cards", "training"}:
                    continue
                names.add(f"{installed}/{relative.as_posix()}")
    return names


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of what the build reads, so that no build/ or egg-info lands in the checkout and no stale
    build/lib from an earlier build slips into the wheel."""
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("building the wheel needs setuptools in this environment (pip install setuptools)")
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in BUILD_INPUTS:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(REPO / name, source / name)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(out)]
    result = subprocess.run([*command, str(source)], capture_output=True, text=True, timeout=600, cwd=out)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (path,) = out.glob("msam_hf-*.whl")
    return path


@pytest.fixture(scope="module")
def names(wheel) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_the_wheel_holds_the_hub_files_and_the_licences(names):
    for name in (
        "msam_hf/hub_cards/model_card_template.md",
        "msam_hf/hub_cards/handler.py",
        "msam_hf/hub_cards/space/app.py",
        "msam_hf/hub_cards/space/README.md",
        "msam_hf/hub_cards/space/requirements.txt",
        "msam_hf/clip_vocab/vocab.json",
        "msam_hf/clip_vocab/merges.txt",
        "msam_hf/evaluate_metrics/video_text_retrieval/video_text_retrieval.py",
    ):
        assert name in names, name
    licences = {Path(name).name for name in names if ".dist-info/licenses/" in name}
    assert "LICENSE" in licences
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)  # the top-level Apache-2.0 text
    assert any(name.endswith(".dist-info/licenses/msam_hf/clip_vocab/LICENSE") for name in names)  # CLIP's vocabulary
    assert "Apache License" in (REPO / "LICENSE").read_text(encoding="utf-8")[:200]


def test_the_wheel_holds_every_module_the_command_and_the_training_entry_point(wheel, names):
    missing = source_files((".py", ".yaml")) - names
    assert not missing, f"setup.cfg's packages / package_data leave out {sorted(missing)}"
    assert "msam_hf/training/train.py" in names
    assert "msam_hf/training/recipes/tiny-synthetic.yaml" in names
    with zipfile.ZipFile(wheel) as archive:
        (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
        assert "msam = msam_hf.cli:main" in archive.read(entry_points).decode()


def test_the_installed_wheel_finds_its_hub_files_and_training_script(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    code = (
        "import importlib.resources, importlib.util\n"
        "print(importlib.resources.files('msam_hf.hub_cards'))\n"
        "print(importlib.util.find_spec('msam_hf.training.train').origin)\n"
    )
    # The target folder comes first on sys.path, ahead of this checkout's (editable) install; cwd holds no msam_hf.
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(target)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    hub_cards, train = map(Path, result.stdout.split())
    assert hub_cards == target / "msam_hf" / "hub_cards"
    assert (hub_cards / "model_card_template.md").is_file() and (hub_cards / "space" / "app.py").is_file()
    assert train == target / "msam_hf" / "training" / "train.py"
    # Training needs no checkout: the script runs as a module, and as `msam train`.
    for module in (["msam_hf.training.train"], ["msam_hf.cli", "train"]):
        result = subprocess.run(
            [sys.executable, "-m", *module, "--help"],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(target)},
        )
        assert result.returncode == 0 and "--gradient_accumulation_steps" in result.stdout, result.stderr[-3000:]


def test_a_checkout_finds_the_top_level_hub_cards():
    from msam_hf.hub import ENDPOINT_HANDLER
    from msam_hf.hub import MODEL_CARD_TEMPLATE
    from msam_hf.hub import SPACE_DIR

    assert MODEL_CARD_TEMPLATE.resolve() == REPO / "hub_cards" / "model_card_template.md"
    assert ENDPOINT_HANDLER.is_file() and (SPACE_DIR / "app.py").is_file()
