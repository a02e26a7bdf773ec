"""`msam data synth`: a synthetic drone-video retrieval benchmark with ground truth.

Top-down H.264 videos of large textured terrain (grass, sand, water, road, forest, urban
roofs, farmland) shared by many videos, seen by a hovering / drifting / panning / zooming
camera, with a few small objects (cars, trucks, boats, people, houses, trees; ~1-3 % of the
frame each, high-contrast colours) that drive, turn, park, sail, walk, run or stand still
in relation to each other and to landmarks (a car beside a lake, a boat passing under a
bridge). Videos come in *sites* (`videos_per_site`, default 10): the same place flown the same
way — terrain, landmark, texture and camera path — with different objects, so the background
can tell a site, never a video; a site lies in one split. A configurable fraction of videos
are *minimal-edit twins* of another video of their site: the same scene with one object's
colour, action, direction or relation changed (hard negatives). Every video has five captions
written from its ground truth with varied phrasing, synonyms and partial descriptions, like
USRD's; `caption_style="listing"` writes instead captions that name every object by colour and
kind (a corpus on which to pretrain a tiny CLIP, as CLIP is pretrained on other data).

`events=True` (`--events`, `msam_hf.data.synthetic.events`) makes videos of several events in time instead, for models
that select frames per caption: 12 s or more, 3-5 objects each entering and leaving the view (crossing it, parking,
or passed over by a long pan) and seen in 2-8 of the 12 seconds a 1-fps sampler reads; each caption tells one event
(or the place), twins differ in one event (its colour, action, direction or time), and the ground truth adds every
event's interval and visible seconds and the event each caption describes. Without it, the same seed gives the
same videos, captions and ground truth as before the variant existed.

One output folder holds both layouts, sharing the videos:

- CLIP4Clip / MSVD: `raw-captions.pkl` (id → captions as word lists), `train_list.txt`,
  `val_list.txt`, `test_list.txt`, `Videos/<id>.mp4`;
- videofolder: `metadata.jsonl` rows with `file_name`, `video_id`, `split`, `captions` and
  `attributes` ({"entities", "actions", "relations"});
- `ground_truth.jsonl`: per video its site and the full scene (terrain, landmark, camera motion,
  every object's kind, colour, size, positions, action, direction, relations, the twin edit; with
  events also `events` and `caption_events`) and `synth_config.json`, the generation settings.

Deterministic: a video depends only on the seed and its index (independent of the number of
workers); x264 runs single-threaded with fixed settings, so the same seed gives the same
decoded frames.

Baselines (`msam_hf.data.synthetic.baselines`, run by `benchmarks/bench_synth.py`): a background-only model (on
frames re-rendered without objects), a whole-frame colour histogram and a caption-length-only model; their
numbers, and what they say about this benchmark, are in docs/synthetic-benchmark.md.
"""

from __future__ import annotations

import json
import pickle
import shutil
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from functools import partial
from pathlib import Path

import numpy as np

from ...progress import map_with_progress
from .captions import listing_captions
from .captions import make_captions
from .captions import scene_attributes
from .events import MIN_DURATION as EVENTS_MIN_DURATION
from .events import Timeline
from .events import event_captions
from .events import make_events_twin
from .events import sample_events_scene
from .events import sample_events_site
from .render import render_frames
from .render import write_video
from .scene import make_twin
from .scene import sample_scene
from .scene import sample_site

SPLITS = ("train", "validation", "test")
CAPTION_STYLES = ("drone", "listing")
SPLIT_LIST_FILES = {"train": "train_list.txt", "validation": "val_list.txt", "test": "test_list.txt"}
VIDEO_FOLDER = "Videos"
OUTPUT_FILES = (
    "raw-captions.pkl",
    *SPLIT_LIST_FILES.values(),
    "metadata.jsonl",
    "ground_truth.jsonl",
    "synth_config.json",
)
# Random streams of a video: (seed, purpose, video index) seeds each, so nothing depends on order.
_SCENE, _CAPTIONS, _EDIT, _SPLIT, _SITE = range(5)
DEFAULT_DURATION = 8.0  # seconds, without events
DEFAULT_VIDEOS_PER_SITE = 10  # from 100 videos up; fewer videos take smaller sites


@dataclass
class SynthConfig:
    """Settings of the synthetic benchmark. Every field is also a `msam data synth` option."""

    num_videos: int = field(default=200, metadata={"help": "Number of videos (twins included)."})
    width: int = field(default=128, metadata={"help": "Frame width in pixels (even)."})
    height: int = field(default=128, metadata={"help": "Frame height in pixels (even)."})
    duration: float | None = field(
        default=None,
        metadata={
            "help": f"Seconds per video (default: {DEFAULT_DURATION:g}, or {EVENTS_MIN_DURATION:g} with "
            "--events, the least events allow).",
            "type": float,
        },
    )
    fps: float = field(default=8.0, metadata={"help": "Frames per second (MSAM samples 1 per second)."})
    split_fractions: tuple[float, float, float] = field(
        default=(0.7, 0.1, 0.2), metadata={"help": "Fractions of videos in train, validation and test (sum 1)."}
    )
    videos_per_site: int | None = field(
        default=None,
        metadata={
            "help": "Videos filmed at the same site: same terrain, landmark and camera path, different "
            f"objects. The background then identifies at best a site, never a video. Default: "
            f"{DEFAULT_VIDEOS_PER_SITE}, or a tenth of num_videos (at least 2) when that is fewer, so that every "
            "split gets a site.",
            "type": int,
        },
    )
    hard_negative_fraction: float = field(
        default=0.2,
        metadata={
            "help": "Fraction of videos made as minimal-edit twins of another video of the same site "
            "(one object's colour, action, direction or relation changed); at most 0.5."
        },
    )
    captions_per_video: int = field(default=5, metadata={"help": "Captions written for each video."})
    caption_style: str = field(
        default="drone",
        metadata={
            "help": "'drone': partial, varied captions like USRD's (the benchmark); 'listing': each caption names "
            "every object by colour and kind, in a random order, like image alt text (a corpus to "
            "pretrain a tiny CLIP on before the benchmark)."
        },
    )
    object_scale: float = field(
        default=1.0,
        metadata={
            "help": "Factor on every object's length and width: at 1.0 a car covers about 1 %% of the frame and "
            "a house about 3 %%."
        },
    )
    seed: int = field(default=0, metadata={"help": "Random seed: the same seed gives the same dataset."})
    events: bool = field(
        default=False,
        metadata={
            "help": "Videos of several events in time (msam_hf.data.synthetic.events): 3-5 objects each enter and "
            "leave the view (crossing it, parking, or passed by a panning camera), each seen in 2-8 of "
            "the 12 seconds a 1-fps sampler reads; ground_truth.jsonl records every event's interval "
            "and visible seconds and the event each caption describes."
        },
    )

    def __post_init__(self):
        self.split_fractions = tuple(float(value) for value in self.split_fractions)
        if self.duration is None:
            self.duration = EVENTS_MIN_DURATION if self.events else DEFAULT_DURATION
        if self.events and self.duration < EVENTS_MIN_DURATION:
            raise ValueError(
                f"duration must be at least {EVENTS_MIN_DURATION:g} s with events=True (a 1-fps sampler "
                f"reads 12 frames and each event fills only some of them), got {self.duration}; pass "
                f"--duration {EVENTS_MIN_DURATION:g} or more, or leave it out"
            )
        if self.num_videos < 1:
            raise ValueError(f"num_videos must be at least 1, got {self.num_videos}")
        if self.videos_per_site is None:
            self.videos_per_site = min(DEFAULT_VIDEOS_PER_SITE, max(2, self.num_videos // 10))
        for name in ("width", "height"):
            value = getattr(self, name)
            if value < 16 or value % 2:
                raise ValueError(f"{name} must be an even number of pixels >= 16 (H.264 yuv420p), got {value}")
        if self.duration <= 0 or self.fps <= 0:
            raise ValueError(f"duration and fps must be positive, got duration={self.duration}, fps={self.fps}")
        if len(self.split_fractions) != 3 or min(self.split_fractions) < 0 or abs(sum(self.split_fractions) - 1) > 1e-6:
            raise ValueError(
                f"split_fractions must be three non-negative numbers (train, validation, test) "
                f"summing to 1, got {self.split_fractions}"
            )
        if not 0 <= self.hard_negative_fraction <= 0.5:
            raise ValueError(
                f"hard_negative_fraction must be in [0, 0.5] (each twin needs its own original), "
                f"got {self.hard_negative_fraction}"
            )
        if self.videos_per_site < 1:
            raise ValueError(f"videos_per_site must be at least 1, got {self.videos_per_site}")
        pairs_that_fit = sum(len(site) // 2 for site in _sites(self))
        if round(self.hard_negative_fraction * self.num_videos) > pairs_that_fit:
            raise ValueError(
                f"hard_negative_fraction={self.hard_negative_fraction} asks for "
                f"{round(self.hard_negative_fraction * self.num_videos)} twin pairs but sites of "
                f"videos_per_site={self.videos_per_site} hold only {pairs_that_fit} (a pair shares a "
                "site); lower hard_negative_fraction or raise videos_per_site"
            )
        if self.object_scale <= 0:
            raise ValueError(f"object_scale must be positive, got {self.object_scale}")
        if self.caption_style not in CAPTION_STYLES:
            raise ValueError(f"caption_style must be one of {CAPTION_STYLES}, got {self.caption_style!r}")
        if self.captions_per_video < 1:
            raise ValueError(f"captions_per_video must be at least 1, got {self.captions_per_video}")
        _plan(self)  # raises when whole sites cannot fill every split

    @property
    def num_frames(self) -> int:
        return max(1, round(self.duration * self.fps))


def generate_synthetic_dataset(
    output_dir: str | Path,
    config: SynthConfig | None = None,
    num_workers: int = 2,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write the benchmark (videos, both caption layouts, ground truth) into `output_dir`.

    Args:
        output_dir: folder to create; it must be empty unless `overwrite`.
        config: what to generate (defaults: 200 videos, 8 s, 8 fps, 128 × 128).
        num_workers: processes rendering videos; the output does not depend on it.
        overwrite: replace the files a previous run wrote there (other files are kept).
        progress: show a progress bar.

    Returns:
        `output_dir`, readable by `msam_hf.data.readers.load_video_text_dataset`.
    """
    config = config or SynthConfig()
    output_dir = Path(output_dir)
    _prepare_output(output_dir, overwrite)
    jobs = _plan(config)
    render = partial(_render_job, config=config, video_dir=output_dir / VIDEO_FOLDER)
    records = map_with_progress(render, jobs, num_workers, progress, description="synth videos", unit="video")
    _write_annotations(output_dir, config, records)
    return output_dir


def _prepare_output(output_dir: Path, overwrite: bool) -> None:
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"{output_dir} is a file; pass a folder for the synthetic dataset")
    if output_dir.exists() and any(output_dir.iterdir()):
        if not overwrite:
            raise ValueError(
                f"{output_dir} exists and is not empty; choose a new folder or pass --overwrite "
                "(overwrite=True) to replace a previous synthetic dataset there"
            )
        for name in OUTPUT_FILES:
            (output_dir / name).unlink(missing_ok=True)
        if (output_dir / VIDEO_FOLDER).is_dir():
            shutil.rmtree(output_dir / VIDEO_FOLDER)
    (output_dir / VIDEO_FOLDER).mkdir(parents=True, exist_ok=True)


def _sites(config: SynthConfig) -> list[list[int]]:
    """Video indices of each site: runs of `videos_per_site` consecutive indices (the last may be shorter)."""
    size = config.videos_per_site
    return [list(range(start, min(start + size, config.num_videos))) for start in range(0, config.num_videos, size)]


def _plan(config: SynthConfig) -> list[dict]:
    """One job per video: id, split, site and, for a twin pair, the indices of the original and of the twin.

    A pair is two consecutive videos of one site; pairs are spread over the sites one at a time.
    Whole sites are dealt to splits (a test site is a place never seen in training), so each
    split's size is within a site of its fraction.
    """
    sites = _sites(config)
    pairs_left = int(round(config.hard_negative_fraction * config.num_videos))
    pairs_in_site = [0] * len(sites)
    while pairs_left:
        for index, site in enumerate(sites):
            if pairs_left and 2 * (pairs_in_site[index] + 1) <= len(site):
                pairs_in_site[index] += 1
                pairs_left -= 1
    split_of_site = _deal_sites(sites, config)
    jobs = []
    for site_index, site in enumerate(sites):
        for position, index in enumerate(site):
            in_pair = position < 2 * pairs_in_site[site_index]
            jobs.append(
                {
                    "index": index,
                    "video_id": f"synth_{index:05d}",
                    "split": split_of_site[site_index],
                    "site": site_index,
                    "pair": site[position - position % 2 :][:2] if in_pair else None,
                    "is_twin": in_pair and position % 2 == 1,
                }
            )
    return jobs


def _deal_sites(sites: list[list[int]], config: SynthConfig) -> dict[int, str]:
    """The split of each site. A split with a non-zero fraction wants at least one video. The biggest sites go
    first, each to the split furthest below its target; when that leaves a split that wants videos without any (few
    sites), each such split first takes one of the smallest sites."""
    targets = np.array([round(fraction * config.num_videos) for fraction in config.split_fractions[:2]] + [0])
    targets[2] = config.num_videos - targets[:2].sum()
    needed = [split for split, fraction in enumerate(config.split_fractions) if fraction > 0]
    for split in needed:
        if targets[split] < 1:  # rounded away: taken from the biggest split
            targets[np.argmax(targets)] -= 1 - targets[split]
            targets[split] = 1
    if len(sites) < len(needed):
        size = config.videos_per_site
        raise ValueError(
            f"{len(needed)} splits need {len(needed)} sites (a site lies in one split): with videos_per_site={size}, "
            f"num_videos must be at least {(len(needed) - 1) * size + 1}, got {config.num_videos}; raise num_videos "
            "or lower videos_per_site"
        )
    rng = np.random.default_rng([config.seed, _SPLIT])
    order = sorted(rng.permutation(len(sites)).tolist(), key=lambda index: len(sites[index]), reverse=True)

    def deal(reserved: dict[int, int]) -> dict[int, int]:
        split_of, filled = dict(reserved), np.zeros(3, dtype=int)
        for site_index, split in reserved.items():
            filled[split] += len(sites[site_index])
        for site_index in order:
            if site_index not in split_of:
                split_of[site_index] = int(np.argmax(targets - filled))
                filled[split_of[site_index]] += len(sites[site_index])
        return split_of

    split_of = deal({})
    if any(split not in split_of.values() for split in needed):
        split_of = deal(dict(zip(reversed(order), sorted(needed, key=lambda split: targets[split]))))
    return {site_index: SPLITS[split] for site_index, split in split_of.items()}


def _render_job(job: dict, config: SynthConfig, video_dir: Path) -> dict:
    """Build the scene and captions of one job, write its video, return its ground-truth record."""
    scene_and_captions = _events_scene_and_captions if config.events else _scene_and_captions
    scene, captions, fields_after_captions = scene_and_captions(job, config)
    write_video(
        video_dir / f"{job['video_id']}.mp4",
        render_frames(scene, config.seed, config.width, config.height, config.num_frames),
        config.width,
        config.height,
        config.fps,
    )
    return {
        "video_id": job["video_id"],
        "split": job["split"],
        "site_id": f"site_{job['site']:05d}",
        "captions": captions,
        **fields_after_captions,
        **scene,
    }


def _scene_and_captions(job: dict, config: SynthConfig) -> tuple[dict, list[str], dict]:
    """A video's scene, captions and twin fields. Both videos of a pair compute the pair
    (a few milliseconds) so that each worker needs only its own job."""
    aspect = config.height / config.width
    index = job["index"]
    site = sample_site(np.random.default_rng([config.seed, _SITE, job["site"]]), aspect, config.object_scale)
    if job["pair"] is None:
        scene = sample_scene(np.random.default_rng([config.seed, _SCENE, index]), aspect, site)
        captions = _captions(config, index, scene)
        return scene, captions, {"twin_of": None, "hard_negative": None, "edit": None}
    original_index, twin_index = job["pair"]
    original = sample_scene(np.random.default_rng([config.seed, _SCENE, original_index]), aspect, site)
    result = make_twin(np.random.default_rng([config.seed, _EDIT, twin_index]), original, aspect)
    if result is None:  # no valid edit: the twin slot gets an unrelated scene
        scene = (
            original
            if not job["is_twin"]
            else sample_scene(np.random.default_rng([config.seed, _SCENE, index]), aspect, site)
        )
        captions = _captions(config, index, scene)
        return scene, captions, {"twin_of": None, "hard_negative": None, "edit": None}
    twin, edit = result
    scene = twin if job["is_twin"] else original
    focus = {"entity": edit["entity"], "aspect": edit["kind"]}
    if edit["kind"] == "relation":
        focus["relation"] = {
            "subject": edit["entity"],
            "predicate": edit["to" if job["is_twin"] else "from"],
            "object": edit["object"],
        }
    # Both videos draw captions from the original's stream: parallel phrasings that differ where the scenes do.
    captions = _captions(config, original_index, scene, focus)
    other = f"synth_{(original_index if job['is_twin'] else twin_index):05d}"
    return scene, captions, {"twin_of": other if job["is_twin"] else None, "hard_negative": other, "edit": edit}


def _events_scene_and_captions(job: dict, config: SynthConfig) -> tuple[dict, list[str], dict]:
    """`_scene_and_captions` for the events variant: the scene, captions, and the event each caption describes
    followed by the twin fields."""
    aspect = config.height / config.width
    index = job["index"]
    timeline = Timeline(config.num_frames, config.fps, config.width)
    site = sample_events_site(
        np.random.default_rng([config.seed, _SITE, job["site"]]), aspect, timeline, config.object_scale
    )
    if job["pair"] is None:
        scene = sample_events_scene(np.random.default_rng([config.seed, _SCENE, index]), aspect, site, timeline)
        captions, described = _event_captions(config, index, scene)
        return scene, captions, {"caption_events": described, "twin_of": None, "hard_negative": None, "edit": None}
    original_index, twin_index = job["pair"]
    original = sample_events_scene(np.random.default_rng([config.seed, _SCENE, original_index]), aspect, site, timeline)
    result = make_events_twin(np.random.default_rng([config.seed, _EDIT, twin_index]), original, aspect, timeline)
    if result is None:  # no valid edit: the twin slot gets an unrelated scene
        scene = (
            original
            if not job["is_twin"]
            else sample_events_scene(np.random.default_rng([config.seed, _SCENE, index]), aspect, site, timeline)
        )
        captions, described = _event_captions(config, index, scene)
        return scene, captions, {"caption_events": described, "twin_of": None, "hard_negative": None, "edit": None}
    twin, edit = result
    scene = twin if job["is_twin"] else original
    # Both videos draw captions from the original's stream: parallel phrasings that differ where the scenes do.
    focus = {"entity": edit["entity"], "aspect": edit["kind"]}
    captions, described = _event_captions(config, original_index, scene, focus)
    other = f"synth_{(original_index if job['is_twin'] else twin_index):05d}"
    return (
        scene,
        captions,
        {
            "caption_events": described,
            "twin_of": other if job["is_twin"] else None,
            "hard_negative": other,
            "edit": edit,
        },
    )


def _event_captions(
    config: SynthConfig, index: int, scene: dict, focus: dict | None = None
) -> tuple[list[str], list[int | None]]:
    rng = np.random.default_rng([config.seed, _CAPTIONS, index])
    if config.caption_style == "listing":  # each names every object: no caption is about one event
        return listing_captions(rng, scene, config.captions_per_video), [None] * config.captions_per_video
    return event_captions(rng, scene, config.captions_per_video, focus=focus)


def _captions(config: SynthConfig, index: int, scene: dict, focus: dict | None = None) -> list[str]:
    rng = np.random.default_rng([config.seed, _CAPTIONS, index])
    if config.caption_style == "listing":
        return listing_captions(rng, scene, config.captions_per_video)
    return make_captions(rng, scene, config.captions_per_video, focus=focus)


def _write_annotations(output_dir: Path, config: SynthConfig, records: list[dict]) -> None:
    with (output_dir / "raw-captions.pkl").open("wb") as file:
        pickle.dump(
            {record["video_id"]: [caption.split() for caption in record["captions"]] for record in records}, file
        )
    for split, name in SPLIT_LIST_FILES.items():
        ids = [record["video_id"] for record in records if record["split"] == split]
        if ids:
            (output_dir / name).write_text("".join(f"{video_id}\n" for video_id in ids), encoding="utf-8")
    with (output_dir / "metadata.jsonl").open("w", encoding="utf-8") as file:
        for record in records:
            row = {
                "file_name": f"{VIDEO_FOLDER}/{record['video_id']}.mp4",
                "video_id": record["video_id"],
                "split": record["split"],
                "captions": record["captions"],
                "attributes": scene_attributes(record),
            }
            file.write(json.dumps(row) + "\n")
    with (output_dir / "ground_truth.jsonl").open("w", encoding="utf-8") as file:
        for record in records:
            file.write(json.dumps(record) + "\n")
    settings = {"generator": "msam_hf.data.synthetic", **asdict(config), "num_frames": config.num_frames}
    (output_dir / "synth_config.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
