"""The Gradio Space (`hub_cards/space/`) as a person uses it: a Space folder written by
`prepare_space_folder` for a tiny published model and synthetic drone videos, served on 127.0.0.1 by a process that
cannot import msam_hf (as on the Hub), and driven in headless Debian Chromium: type a query, upload a video, search,
read the ranked list, take a screenshot. Rankings are checked against the `video-text-retrieval` pipeline."""

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import pipeline

from msam_hf import MsamConfig
from msam_hf import MsamModel
from msam_hf import default_processor
from msam_hf.data.synthetic import SynthConfig
from msam_hf.data.synthetic import generate_synthetic_dataset
from msam_hf.hub import prepare_hub_folder
from msam_hf.hub import prepare_space_folder

MODEL_ID = "someone/msam-tiny"
# Runs app.py as the Space does, with msam_hf made unimportable: the model's code must come from its folder.
RUN_WITHOUT_MSAM_HF = (
    "import runpy, sys; sys.modules['msam_hf'] = None; runpy.run_path(sys.argv[1], run_name='__main__')"
)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1400",
]


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    """A tiny model published as `msam push` would, four synthetic videos (three bundled as the Space's samples, one
    to upload) and the Space folder; the query is the first caption of the second sample."""
    root = tmp_path_factory.mktemp("space")
    torch.manual_seed(0)
    model = MsamModel(MsamConfig.tiny(max_frames=4)).eval()
    model.save_pretrained(root / "model")
    default_processor(model.config).save_pretrained(root / "model")
    repo = prepare_hub_folder(root / "model", root / "repo", repo_id=MODEL_ID)
    synth = generate_synthetic_dataset(
        root / "synth",
        SynthConfig(
            num_videos=4,
            width=64,
            height=64,
            duration=4.0,
            fps=4.0,
            videos_per_site=1,
            hard_negative_fraction=0.0,
            split_fractions=(1.0, 0.0, 0.0),
        ),
        num_workers=1,
        progress=False,
    )
    rows = [json.loads(line) for line in (synth / "metadata.jsonl").read_text().splitlines()]
    videos = [synth / row["file_name"] for row in rows]
    folder = prepare_space_folder(root / "space_repo", MODEL_ID, sample_videos=videos[:3])
    samples = sorted((folder / "samples").iterdir())
    return SimpleNamespace(
        model=root / "model", repo=repo, folder=folder, samples=samples, upload=videos[3], query=rows[1]["captions"][0]
    )


@pytest.fixture(scope="module")
def app(space):
    """The Space's app.py, imported from the prepared folder."""
    spec = importlib.util.spec_from_file_location("space_app", space.folder / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pipeline_ranking(repo, videos, query):
    """What the model repo's own pipeline says: every video scored in one batch, best first."""
    search = pipeline(model=str(repo), trust_remote_code=True)
    return search(videos=[str(video) for video in videos], texts=query)


def test_the_space_folder_holds_the_app_and_links_the_model(space, app, monkeypatch):
    files = {path.name for path in space.folder.iterdir()} - {"__pycache__"}  # importing app.py may write one
    assert files == {"app.py", "requirements.txt", "README.md", "samples"}
    assert [path.name for path in space.samples] == ["synth_00000.mp4", "synth_00001.mp4", "synth_00002.mp4"]
    card = (space.folder / "README.md").read_text()
    assert re.search(r"^sdk: gradio$", card, re.M) and re.search(r"^app_file: app.py$", card, re.M)
    assert re.search(rf"^models:\n- {MODEL_ID}$", card, re.M)
    monkeypatch.delenv("MSAM_MODEL", raising=False)
    assert app.default_model() == MODEL_ID
    monkeypatch.setenv("MSAM_MODEL", str(space.repo))
    assert app.default_model() == str(space.repo)
    with pytest.raises(ValueError, match="not empty"):
        prepare_space_folder(space.folder, MODEL_ID)


def test_the_ranking_matches_the_pipeline_and_the_list_shows_every_frame(space, app):
    videos = [*space.samples, space.upload]
    expected = pipeline_ranking(space.repo, videos, space.query)
    search = app.VideoSearch(str(space.repo))
    hits = search.rank(space.query, [str(video) for video in videos])

    assert [hit.name for hit in hits] == [Path(entry["video"]).name for entry in expected]
    assert [hit.score for hit in hits] == pytest.approx([entry["score"] for entry in expected], abs=1e-5)
    for hit, entry in zip(hits, expected):
        assert len(hit.attention) == len(hit.timestamps) == len(hit.thumbnails) == 4  # 4 s at 1 fps
        assert sum(hit.attention) == pytest.approx(1.0, abs=1e-5)
        assert hit.timestamps[hit.best_frame] == entry["timestamp"]
    assert search.rank(space.query, [str(videos[2])])[0].score == pytest.approx(
        next(hit.score for hit in hits if hit.name == videos[2].name), abs=1e-6
    )  # other videos change nothing

    # Where msam_hf is installed, a plain save_pretrained folder (no `custom_pipelines`) serves the same ranking.
    plain = app.VideoSearch(str(space.model)).rank(space.query, [str(video) for video in videos])
    assert [hit.name for hit in plain] == [hit.name for hit in hits]
    assert [hit.score for hit in plain] == pytest.approx([hit.score for hit in hits], abs=1e-6)

    page = app.render_hits(space.query, hits)
    assert re.findall(r'data-video="([^"]+)"', page) == [hit.name for hit in hits]
    assert page.count('class="msam-frame"') == 4 * len(hits)


@pytest.fixture
def served_space(space, tmp_path):
    """The Space started as on the Hub (`python app.py`, no msam_hf) on a free port of 127.0.0.1; yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "MSAM_MODEL": str(space.repo),
        "HF_HUB_OFFLINE": "1",
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "GRADIO_SSR_MODE": "False",
        "GRADIO_TEMP_DIR": str(tmp_path / "gradio"),
    }
    log = (tmp_path / "app.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-c", RUN_WITHOUT_MSAM_HF, str(space.folder / "app.py")],
        cwd=space.folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(f"the Space exited with {process.returncode}:\n{(tmp_path / 'app.log').read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the Space did not answer on {url}:\n{(tmp_path / 'app.log').read_text()}")
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def browser(tmp_path):
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed (apt-get install -y chromium "
            "chromium-driver; .ci/run installs them); the Space's browser test needs them"
        )
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=chromedriver))
    try:
        yield driver
    finally:
        driver.quit()


def test_a_person_searches_the_space_in_headless_chromium(browser, space, served_space, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30)
    browser.get(served_space)
    query = wait.until(lambda driver: driver.find_element(By.CSS_SELECTOR, "#query textarea"))
    query.send_keys(space.query)
    browser.find_element(By.CSS_SELECTOR, "#uploads input[type=file]").send_keys(str(space.upload))
    # The file's download link appears once the upload has reached the server.
    wait.until(lambda driver: driver.find_elements(By.CSS_SELECTOR, f'#uploads a[download="{space.upload.name}"]'))
    browser.find_element(By.ID, "search").click()

    results = wait.until(lambda driver: driver.find_elements(By.CSS_SELECTOR, "#results .msam-result") or None)
    expected = pipeline_ranking(space.repo, [*space.samples, space.upload], space.query)
    assert [result.get_attribute("data-video") for result in results] == [
        Path(entry["video"]).name for entry in expected
    ]
    scores = [float(result.get_attribute("data-score")) for result in results]
    assert scores == sorted(scores, reverse=True)
    assert scores == pytest.approx([entry["score"] for entry in expected], abs=1e-5)
    for result in results:
        weights = [
            float(frame.get_attribute("data-attention"))
            for frame in result.find_elements(By.CSS_SELECTOR, ".msam-frame")
        ]
        assert len(weights) == 4 and sum(weights) == pytest.approx(1.0, abs=1e-4)
    loaded = browser.execute_script(
        "return [...document.querySelectorAll('#results img')].map(image => image.complete && image.naturalWidth)"
    )
    assert len(loaded) == 5 * len(results) and all(width > 0 for width in loaded)  # thumbnail + 4 strip frames
    assert f"{len(expected)} videos ranked" in browser.find_element(By.CSS_SELECTOR, "#results .msam-summary").text

    screenshot = tmp_path / "space.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(screenshot) as image:
        assert image.width >= 800 and image.height >= 600
        assert np.unique(np.asarray(image.convert("L"))).size > 16  # a rendered page, not a blank canvas
