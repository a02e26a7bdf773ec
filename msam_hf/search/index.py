"""`VideoIndex`: build, update and search an index folder (its layout and the two search stages are described in
`msam_hf.search`)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from accelerate import PartialState
from accelerate.utils import broadcast_object_list
from tqdm.auto import tqdm

from ..loss_msam import zero_pad
from ..modeling_msam import MsamModel
from ..modeling_msam import MsamTextOutput
from ..modeling_msam import MsamVideoOutput
from ..video_io import VIDEO_EXTENSIONS
from ..video_io import read_frames
from ..video_io import video_files_under
from .stage1 import EXACT_SEARCH_MAX_VIDEOS
from .stage1 import KEY_VECTOR_BATCH
from .stage1 import STAGE1_TRAINING_VECTORS
from .stage1 import describe_stage1
from .stage1 import faiss
from .stage1 import faiss_threads
from .stage1 import key_vectors
from .stage1 import stage1_parameters
from .storage import DEFAULT_CANDIDATES
from .storage import DEFAULT_SHARD_SIZE
from .storage import FEATURE_NAMES
from .storage import FORMAT_VERSION
from .storage import VIDEO_SCHEMA
from .storage import allow_open_files
from .storage import file_sha256
from .storage import json_hash
from .storage import memory_map
from .storage import read_shard_videos
from .storage import write_atomically
from .storage import write_shard

logger = logging.getLogger(__name__)

# A hit lists the frames holding at least this share of the head's attention (the best frame always).
TIMESTAMP_MIN_ATTENTION = 0.1
# Fields of a model fingerprint that must match for features to mix; the others only say where the model came from.
IDENTITY_FIELDS = ("config_hash", "weights_hash", "processor_hash", "fps", "max_frames")


class ModelMismatchError(ValueError):
    """The index was built with another model (or other frame sampling) than the one given."""


@dataclass
class SearchHit:
    """One search result. `score` is the model's scaled similarity logit at |J| = 1; `timestamps` are the seconds of
    the frames the similarity head attended to, best first, with their `attention` weights (empty for the `mean` and
    `seq_transformer` heads, which have no frame attention)."""

    path: str
    score: float
    timestamps: list[float]
    attention: list[float]
    duration: float | None = None


@dataclass
class IndexReport:
    """What an indexing run did. `failed` lists `{"path", "reason"}` for files that could not be read or decoded;
    `resumed` counts videos taken from the finished shards of an interrupted run; `processes` is how many processes
    encoded the new files."""

    added: list[str] = field(default_factory=list)
    unchanged: int = 0
    resumed: int = 0
    moved: list[list[str]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    num_videos: int = 0
    stage1: dict[str, Any] = field(default_factory=dict)
    processes: int = 1

    def summary(self) -> str:
        lines = [
            f"added {len(self.added)} video(s), unchanged {self.unchanged}, resumed {self.resumed}, moved "
            f"{len(self.moved)}, removed {len(self.removed)}, failed {len(self.failed)} ({self.processes} "
            f"process(es)); the index holds {self.num_videos} video(s), stage 1: {describe_stage1(self.stage1)}"
        ]
        lines += [f"  failed: {failure['path']}: {failure['reason']}" for failure in self.failed]
        return "\n".join(lines)


def model_fingerprint(model: MsamModel, processor: Any, fps: float = 1.0) -> dict[str, Any]:
    """What stored features depend on: the model's config and weights, the frame processor and the sampling.

    Hashing the weights reads every parameter once (about a second for ViT-B/32 on a CPU): two checkpoints of one
    config must not share an index.
    """
    weights = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        weights.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        weights.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    video_processor = processor.image_processor
    name = model.name_or_path or None
    if name and Path(name).exists():
        name = str(Path(name).resolve())
    return {
        "name_or_path": name,
        "revision": getattr(model.config, "_commit_hash", None),
        "similarity_head": model.config.similarity_head,
        "projection_dim": model.config.projection_dim,
        "config_hash": json_hash(model.config.to_dict()),
        "weights_hash": weights.hexdigest(),
        "processor_hash": json_hash(video_processor.to_dict()),
        "fps": float(fps),
        "max_frames": min(model.config.max_frames, video_processor.num_frames),
    }


def list_video_files(video_dir: str | Path) -> list[Path]:
    """Every file under `video_dir` (recursively) with a video extension, sorted, as absolute paths."""
    root = Path(video_dir).absolute()
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; pass the folder that holds the videos to index.")
    return video_files_under(root)


class VideoIndex:
    r"""
    A folder of per-video frame features, searchable by text with an MSAM model (see `msam_hf.search`).

    ```python
    >>> from msam_hf.evaluation import load_model_and_processor
    >>> model, processor = load_model_and_processor("runs/msam/best")
    >>> index = VideoIndex.build("footage/", "footage-index", model, processor)   # re-run: only what changed
    >>> print(index.report.summary())
    >>> index.search("a white boat passes under a bridge", k=5)
    [SearchHit(path='/data/footage/harbour.mp4', score=31.2, timestamps=[3.0], attention=[0.97], duration=12.0), ...]
    >>> VideoIndex.load("footage-index").search("two cars on a bridge")      # loads the model the index records
    ```
    """

    def __init__(self, directory: Path, manifest: dict[str, Any], model: MsamModel | None, processor: Any):
        self.directory = directory
        self.manifest = manifest
        self.model = model.eval() if model is not None else None
        self.processor = processor
        self.report: IndexReport | None = None
        self._videos = VIDEO_SCHEMA.empty_table()
        self._row_ids = np.zeros(0, dtype=np.int64)
        self._shards: dict[int, dict[str, np.ndarray]] = {}
        self._stage1 = None  # the FAISS index, or (row ids, float32 embeddings) for exact numpy search
        self._stage1_saved = False
        self._table_saved = True
        self._resumed = 0

    # ------------------------------------------------------------------ creating, loading, saving

    @classmethod
    def create(
        cls,
        directory: str | Path,
        model: MsamModel,
        processor: Any,
        fps: float = 1.0,
        shard_size: int = DEFAULT_SHARD_SIZE,
        candidates: int = DEFAULT_CANDIDATES,
    ) -> VideoIndex:
        """A new empty index in `directory` for `model` (frames sampled at `fps`, decoded with `processor`)."""
        directory = Path(directory)
        if (directory / "index.json").exists():
            raise FileExistsError(f"{directory} already holds an index; open it with VideoIndex.load (or build).")
        fingerprint = model_fingerprint(model, processor, fps)
        manifest = {
            "format_version": FORMAT_VERSION,
            "model": fingerprint,
            "shard_size": shard_size,
            "frames": fingerprint["max_frames"],
            "dim": fingerprint["projection_dim"],
            "candidates": candidates,
            "shards": [],
            "generation": 0,
            "videos_file": None,
            "stage1": {},
            "stage1_file": None,
        }
        (directory / "shards").mkdir(parents=True, exist_ok=True)
        index = cls(directory, manifest, model, processor)
        index.save()
        return index

    @classmethod
    def load(cls, directory: str | Path, model: MsamModel | None = None, processor: Any = None) -> VideoIndex:
        """Open an index. Without `model`, the model it records is loaded when a text query needs it; a model given
        (or loaded) must be the one the index was built with (`ModelMismatchError` otherwise)."""
        directory = Path(directory)
        manifest_path = directory / "index.json"
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{directory} holds no video index (no index.json); build one with `msam index`.")
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{manifest_path} has index format {manifest.get('format_version')}, this version of "
                f"msam_hf reads format {FORMAT_VERSION}; rebuild the index with `msam index`."
            )
        index = cls(directory, manifest, None, None)
        if model is not None:
            index.set_model(model, processor)
        if manifest["videos_file"]:
            index._videos = pq.read_table(directory / manifest["videos_file"], schema=VIDEO_SCHEMA).combine_chunks()
            index._row_ids = index._videos["row_id"].to_numpy()
        if "key_vectors" not in manifest["stage1"]:  # built over v̄ alone by an older version: rebuilt when needed
            manifest["stage1"] = {}
        elif faiss is not None and manifest["stage1_file"]:
            saved = faiss.read_index(str(directory / manifest["stage1_file"]))
            if saved.ntotal == len(index) * manifest["stage1"]["key_vectors"]:  # else saved without FAISS since
                index._stage1, index._stage1_saved = saved, True
        index._resumed = len(index._merge_new_shards()[0])
        return index

    @classmethod
    def build(
        cls,
        video_dir: str | Path,
        directory: str | Path,
        model: MsamModel,
        processor: Any,
        fps: float = 1.0,
        shard_size: int = DEFAULT_SHARD_SIZE,
        batch_size: int = 16,
        num_workers: int = 2,
        progress: bool = True,
    ) -> VideoIndex:
        """Index every video under `video_dir` into `directory`, creating the index or bringing it up to date
        (`update`). Under `accelerate launch` every process calls this and encodes its share of the new files.
        The run's `IndexReport` is `index.report`. A `video_dir` without videos raises `ValueError` before anything
        is written: it is most likely the wrong folder, and would empty an existing index."""
        # every process lists (and checks) the files, so that none waits below for one that failed
        files = list_video_files(video_dir)
        if not files:
            raise ValueError(
                f"{Path(video_dir).absolute()} holds no videos (searched recursively for "
                f"{', '.join(VIDEO_EXTENSIONS)}); nothing was indexed"
            )
        state = process_state()
        directory = Path(directory)
        if state.is_main_process and not (directory / "index.json").exists():
            cls.create(directory, model, processor, fps=fps, shard_size=shard_size)
        state.wait_for_everyone()
        index = cls.load(directory)
        index.set_model(model, processor, fps=fps)
        index._index_files(files, Path(video_dir).absolute(), batch_size, num_workers, progress)  # what update does
        return index

    def set_model(self, model: MsamModel, processor: Any = None, fps: float | None = None) -> None:
        """Use `model` (and its processor) for encoding and scoring, after checking it is the index's model."""
        if processor is None:
            from ..processors import default_processor

            processor = default_processor(model.config)
        recorded = self.manifest["model"]
        given = model_fingerprint(model, processor, recorded["fps"] if fps is None else fps)
        differing = [name for name in IDENTITY_FIELDS if given[name] != recorded[name]]
        if differing:
            details = ", ".join(
                f"{name} {recorded[name]!s:.16} here vs {given[name]!s:.16} given" for name in differing
            )
            raise ModelMismatchError(
                f"the index in {self.directory} was built with model {recorded['name_or_path']} and this model differs "
                f"({details}). Features of different models cannot be mixed: index into a new folder, or use the "
                "model (and --fps) the index was built with."
            )
        self.model, self.processor = model.eval(), processor

    def save(self) -> None:
        """Write what changed: the video table, the stage-1 index, then the manifest that points at them (so an
        interruption leaves the previous state readable); then delete what no live video uses any more."""
        directory, manifest = self.directory, self.manifest
        generation = manifest["generation"] + 1
        old_files = []
        if not self._table_saved or manifest["videos_file"] is None:
            old_files.append(manifest["videos_file"])
            manifest["videos_file"] = f"videos-{generation:06d}.parquet"
            pq.write_table(self._videos, directory / manifest["videos_file"])
        if faiss is not None and not self._stage1_saved:
            old_files.append(manifest["stage1_file"])
            manifest["stage1_file"] = f"ann-{generation:06d}.faiss" if len(self) else None
            if len(self):
                faiss.write_index(self._ready_stage1(), str(directory / manifest["stage1_file"]))
        live_shards = set(np.unique(self._row_ids // manifest["shard_size"]).tolist())
        dead_shards = [shard for shard in manifest["shards"] if shard not in live_shards]
        manifest["shards"] = sorted(live_shards)
        manifest["generation"] = generation
        write_atomically(directory / "index.json", json.dumps(manifest, indent=1) + "\n")
        for name in filter(None, old_files):
            (directory / name).unlink(missing_ok=True)
        for shard in dead_shards:
            self._shards.pop(shard, None)
            self._shard_path(shard).unlink(missing_ok=True)
        self._table_saved = self._stage1_saved = True

    def __len__(self) -> int:
        return len(self._row_ids)

    def __repr__(self) -> str:
        model = self.manifest["model"]["name_or_path"]
        return f"VideoIndex({str(self.directory)!r}, videos={len(self)}, model={model!r})"

    @property
    def paths(self) -> list[str]:
        """The indexed videos, in row order."""
        return self._videos["path"].to_pylist()

    # ------------------------------------------------------------------ adding and removing videos

    def update(
        self, video_dir: str | Path, batch_size: int = 16, num_workers: int = 2, progress: bool = True
    ) -> IndexReport:
        """Bring the index up to date with the videos under `video_dir`: encode new and changed files, keep unchanged
        and moved ones, drop the ones that are gone. Saves the index and writes report.json."""
        files = list_video_files(video_dir)
        return self._index_files(files, Path(video_dir).absolute(), batch_size, num_workers, progress)

    def add(
        self, paths: list[str | Path], batch_size: int = 16, num_workers: int = 2, progress: bool = True
    ) -> IndexReport:
        """Index these video files (unchanged ones are skipped, changed ones re-encoded). Saves the index."""
        files = list(dict.fromkeys(Path(path).absolute() for path in paths))
        return self._index_files(files, None, batch_size, num_workers, progress)

    def remove(self, paths: list[str | Path]) -> None:
        """Drop these videos from the index (as indexed, or as paths that resolve to them) and save it."""
        known = set(self._videos["path"].to_pylist())
        keys = {str(path) if str(path) in known else str(Path(path).absolute()) for path in paths}
        missing = sorted(keys - known)
        if missing:
            raise ValueError(f"not in the index {self.directory}: {', '.join(missing)}")
        self._set_rows(remove_paths=keys)
        self.save()

    def add_features(
        self,
        paths: list[str],
        frame_embeds: np.ndarray,
        video_mask: np.ndarray,
        video_embeds: np.ndarray,
        timestamps: np.ndarray,
    ) -> None:
        """Add videos from features already computed with the index's model (what `get_video_features` returns:
        `frame_embeds` (videos, frames, dim), `video_mask` (videos, frames), `video_embeds` (videos, dim)) and the
        seconds of their frames. Writes shards; `save()` persists the rest (the next `load` would merge them too)."""
        frames, dim, shard_size = self.manifest["frames"], self.manifest["dim"], self.manifest["shard_size"]
        count = len(paths)
        if frame_embeds.shape != (count, frames, dim) or video_embeds.shape != (count, dim):
            raise ValueError(
                f"expected frame_embeds ({count}, {frames}, {dim}) and video_embeds ({count}, {dim}) for "
                f"{count} paths, got {frame_embeds.shape} and {video_embeds.shape}."
            )
        first_shard = self._next_shard()
        for number, start in enumerate(range(0, count, shard_size)):
            rows = slice(start, start + shard_size)
            videos = [
                {"path": path, "num_frames": int(mask.sum())} for path, mask in zip(paths[rows], video_mask[rows])
            ]
            write_shard(
                self._shard_path(first_shard + number),
                videos,
                {
                    "frame_embeds": frame_embeds[rows].astype(np.float16),
                    "video_embeds": video_embeds[rows].astype(np.float16),
                    "video_mask": video_mask[rows].astype(np.uint8),
                    "timestamps": timestamps[rows].astype(np.float32),
                },
            )
        self._merge_new_shards()

    def _index_files(
        self, files: list[Path], prune_under: Path | None, batch_size: int, num_workers: int, progress: bool
    ) -> IndexReport:
        if self.model is None:
            raise ValueError("indexing videos needs the model: pass it to VideoIndex.build / load, or call set_model.")
        state = process_state()
        plan = [None]
        if state.is_main_process:
            for temporary in (self.directory / "shards").glob("*.tmp"):  # a shard write that was interrupted
                temporary.unlink()
            plan[0] = self._plan(files, prune_under, progress)
        if state.num_processes > 1:
            broadcast_object_list(plan)
        plan = plan[0]
        self._encode_chunks(
            plan["chunks"][state.process_index :: state.num_processes],
            batch_size,
            num_workers,
            progress and state.is_main_process,
            state.process_index,
        )
        state.wait_for_everyone()
        report_path = self.directory / "report.json"
        if state.is_main_process:
            added, failed = self._merge_new_shards()
            moved_from = {old for old, _ in plan["moved"]}
            self._set_rows(
                remove_paths=set(plan["removed"]) | moved_from | {row["path"] for row in plan["refreshed"]},
                new_rows=plan["refreshed"] + plan["moved_rows"],
            )
            self.save()
            self.report = IndexReport(
                added=added,
                unchanged=plan["unchanged"],
                resumed=self._resumed,
                moved=plan["moved"],
                removed=plan["removed"],
                failed=plan["failed"] + failed,
                num_videos=len(self),
                stage1=self.manifest["stage1"] if faiss is not None else {"type": "exact (numpy)"},
                processes=state.num_processes,
            )
            self._resumed = 0
            write_atomically(report_path, json.dumps(asdict(self.report), indent=1) + "\n")
        state.wait_for_everyone()
        if not state.is_main_process:  # every process ends with the index the main process saved
            fresh = VideoIndex.load(self.directory)
            fresh.model, fresh.processor = self.model, self.processor
            fresh.report = IndexReport(**json.loads(report_path.read_text(encoding="utf-8")))
            self.__dict__.update(fresh.__dict__)
        return self.report

    def _plan(self, files: list[Path], prune_under: Path | None, progress: bool) -> dict[str, Any]:
        """Sort `files` into unchanged, touched (same content: metadata refreshed), moved (content of a video that
        is gone from `prune_under`) and to encode; cut the last into shard-sized chunks with their shard numbers."""
        known = {path: position for position, path in enumerate(self._videos["path"].to_pylist())}
        sizes = self._videos["size"].fill_null(-1).to_numpy()
        mtimes = self._videos["mtime_ns"].fill_null(-1).to_numpy()

        def row(position: int) -> dict[str, Any]:
            return self._videos.slice(position, 1).to_pylist()[0]

        seen, to_encode, refreshed, failed, unchanged = set(), [], [], [], 0
        for path in tqdm(files, desc="checking files", unit="file", disable=not progress):
            key = str(path)
            seen.add(key)
            try:
                stat = path.stat()
                position = known.get(key)
                if position is not None and (sizes[position], mtimes[position]) == (stat.st_size, stat.st_mtime_ns):
                    unchanged += 1
                    continue
                digest = file_sha256(path)
            except OSError as error:
                failed.append({"path": key, "reason": f"cannot read the file: {error}"})
                continue
            file = {"path": key, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
            if position is not None and row(position)["sha256"] == digest:
                refreshed.append({**row(position), **file})
                unchanged += 1
            else:
                to_encode.append(file)

        gone = []
        if prune_under is not None:
            prefix = str(prune_under).rstrip(os.sep) + os.sep
            gone = [path for path in known if path.startswith(prefix) and path not in seen]
        gone_rows = {path: row(known[path]) for path in gone}
        gone_by_hash = {entry["sha256"]: path for path, entry in gone_rows.items() if entry["sha256"]}
        moved, moved_rows, encode = [], [], []
        for file in to_encode:
            old = gone_by_hash.pop(file["sha256"], None)
            if old is None or file["path"] in known:
                encode.append(file)
                continue
            moved.append([old, file["path"]])
            moved_rows.append({**gone_rows[old], **file})
        moved_from = {old for old, _ in moved}
        shard_size, first_shard = self.manifest["shard_size"], self._next_shard()
        chunks = [
            {"shard": first_shard + number, "files": encode[start : start + shard_size]}
            for number, start in enumerate(range(0, len(encode), shard_size))
        ]
        return {
            "chunks": chunks,
            "unchanged": unchanged,
            "refreshed": refreshed,
            "moved": moved,
            "moved_rows": moved_rows,
            "removed": [path for path in gone if path not in moved_from],
            "failed": failed,
        }

    @torch.no_grad()
    def _encode_chunks(self, chunks, batch_size: int, num_workers: int, progress: bool, process_index: int) -> None:
        """Decode (in DataLoader workers), encode and write one shard per chunk."""
        files = [file for chunk in chunks for file in chunk["files"]]
        if not files:
            return
        fingerprint = self.manifest["model"]
        decoded = iter(
            torch.utils.data.DataLoader(
                _DecodedVideos(
                    [file["path"] for file in files],
                    self.processor.image_processor,
                    fingerprint["fps"],
                    fingerprint["max_frames"],
                ),
                batch_size=None,
                num_workers=num_workers,
                collate_fn=_as_is,
            )
        )
        bar = tqdm(
            total=len(files), desc=f"encoding videos (process {process_index})", unit="video", disable=not progress
        )
        for chunk in chunks:
            videos, failed, pending, parts = [], [], [], []
            for number, file in enumerate(chunk["files"]):
                item = next(decoded)
                bar.update()
                if "error" in item:
                    failed.append({"path": file["path"], "reason": item["error"]})
                else:
                    videos.append({**file, "duration": item["duration"], "num_frames": len(item["timestamps"])})
                    pending.append(item)
                if pending and (len(pending) == batch_size or number == len(chunk["files"]) - 1):
                    parts.append(self._encode(pending))
                    pending = []
            features = {
                name: np.concatenate([part[name] for part in parts]) if parts else self._empty(name)
                for name in FEATURE_NAMES
            }
            write_shard(self._shard_path(chunk["shard"]), videos, features, failed)
        bar.close()

    def _encode(self, items: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        """Frame features of decoded videos, padded to the index's frame count, as stored (float16)."""
        frames = self.manifest["frames"]
        longest = max(len(item["timestamps"]) for item in items)
        pixels = torch.stack([zero_pad(item["pixel_values"], longest, dim=0) for item in items])
        video_mask = torch.stack([(torch.arange(longest) < len(item["timestamps"])).long() for item in items])
        device = self.model.device
        output = self.model.get_video_features(pixels.to(device), video_mask.to(device))
        return {
            "frame_embeds": zero_pad(output.frame_embeds, frames).half().cpu().numpy(),
            "video_embeds": output.video_embeds.half().cpu().numpy(),
            "video_mask": zero_pad(video_mask, frames).to(torch.uint8).numpy(),
            "timestamps": np.stack(
                [np.pad(item["timestamps"], (0, frames - len(item["timestamps"]))) for item in items]
            ).astype(np.float32),
        }

    def _empty(self, name: str) -> np.ndarray:
        frames, dim = self.manifest["frames"], self.manifest["dim"]
        shapes = {
            "frame_embeds": (0, frames, dim),
            "video_embeds": (0, dim),
            "video_mask": (0, frames),
            "timestamps": (0, frames),
        }
        dtypes = {
            "frame_embeds": np.float16,
            "video_embeds": np.float16,
            "video_mask": np.uint8,
            "timestamps": np.float32,
        }
        return np.zeros(shapes[name], dtypes[name])

    # ------------------------------------------------------------------ shards and the video table

    def _shard_path(self, shard: int) -> Path:
        return self.directory / "shards" / f"shard-{shard:06d}.safetensors"

    def _next_shard(self) -> int:
        on_disk = [int(path.stem.split("-")[1]) for path in (self.directory / "shards").glob("shard-*.safetensors")]
        return max(self.manifest["shards"] + on_disk, default=-1) + 1

    def _shard_arrays(self, shard: int) -> dict[str, np.ndarray]:
        if shard not in self._shards:
            allow_open_files(len(self._shards) + 1)
            self._shards[shard] = memory_map(self._shard_path(shard))
        return self._shards[shard]

    def _merge_new_shards(self) -> tuple[list[str], list[dict[str, str]]]:
        """Add the videos of finished shard files the manifest does not list yet (this run's, or an interrupted
        run's); a path already indexed is replaced. Returns the added paths and the failures the shards record."""
        listed, shard_size = set(self.manifest["shards"]), self.manifest["shard_size"]
        rows, failed = [], []
        for path in sorted((self.directory / "shards").glob("shard-*.safetensors")):
            shard = int(path.stem.split("-")[1])
            if shard in listed:
                continue
            videos, shard_failed = read_shard_videos(path)
            rows += [{**video, "row_id": shard * shard_size + row} for row, video in enumerate(videos)]
            failed += shard_failed
            self.manifest["shards"].append(shard)
        if rows:
            self._set_rows(remove_paths={row["path"] for row in rows}, new_rows=rows)
        return [row["path"] for row in rows], failed

    def _set_rows(self, remove_paths: set[str] = frozenset(), new_rows: list[dict] = ()) -> None:
        """Drop the rows of `remove_paths`, add `new_rows`, and bring stage 1 along."""
        table = self._videos
        if remove_paths:
            removed = pc.is_in(table["path"], value_set=pa.array(sorted(remove_paths), pa.string()))
            table = table.filter(pc.invert(removed))
        if new_rows:
            columns = {name: [row.get(name) for row in new_rows] for name in VIDEO_SCHEMA.names}
            table = pa.concat_tables([table, pa.table(columns, schema=VIDEO_SCHEMA)])
        before = self._row_ids
        self._videos = table.sort_by("row_id").combine_chunks()  # one chunk: `take` on many is slow
        self._row_ids = self._videos["row_id"].to_numpy()
        self._table_saved = False
        self._update_stage1(np.setdiff1d(self._row_ids, before), np.setdiff1d(before, self._row_ids))

    def _gather(self, row_ids: np.ndarray, names: tuple[str, ...], dtype=None) -> dict[str, np.ndarray]:
        """The stored arrays `names` of these rows (any order; ascending is fastest), read from the memory-mapped
        shards, converted to `dtype` (if given) as they are copied."""
        shard_size = self.manifest["shard_size"]
        order = np.argsort(row_ids, kind="stable")
        shards = row_ids[order] // shard_size
        starts = np.flatnonzero(np.diff(shards, prepend=-1)).tolist()
        gathered = {
            name: np.empty((len(row_ids), *self._empty(name).shape[1:]), dtype or self._empty(name).dtype)
            for name in names
        }
        # one slice per shard: at search time the R candidates touch hundreds of shards
        for start, end in zip(starts, starts[1:] + [len(order)]):
            arrays = self._shard_arrays(int(shards[start]))
            rows = row_ids[order[start:end]] % shard_size
            for name in names:
                gathered[name][start:end] = arrays[name][rows]
        if np.any(np.diff(order) != 1):
            inverse = np.argsort(order)
            gathered = {name: array[inverse] for name, array in gathered.items()}
        return gathered

    # ------------------------------------------------------------------ stage 1

    def _update_stage1(self, added: np.ndarray, removed: np.ndarray) -> None:
        """Bring the FAISS index along with added and removed videos, or drop it (rebuilt when next needed) when the
        collection crossed `EXACT_SEARCH_MAX_VIDEOS`."""
        if not len(added) and not len(removed):
            return
        self._stage1_saved = False
        kind = stage1_parameters(len(self))["type"]
        if faiss is None or self._stage1 is None or kind != self.manifest["stage1"].get("type"):
            self._stage1 = None
            return
        if len(removed):
            # Refinement indexes cannot remove vectors: re-add the rest, keeping the trained codebooks.
            self._stage1.reset()
            added = self._row_ids
        self._add_key_vectors(self._stage1, added)

    def _key_vectors(self, row_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stage-1 vectors of these videos (`key_vectors`) as float32 rows, with the row id of each."""
        count = self.manifest["stage1"]["key_vectors"]
        stored = self._gather(row_ids, ("frame_embeds", "video_mask"))
        vectors = key_vectors(stored["frame_embeds"], stored["video_mask"], count)
        return vectors.reshape(-1, vectors.shape[-1]), np.repeat(row_ids, count)

    def _add_key_vectors(self, ann, row_ids: np.ndarray) -> None:
        for start in range(0, len(row_ids), KEY_VECTOR_BATCH):
            ann.add_with_ids(*self._key_vectors(row_ids[start : start + KEY_VECTOR_BATCH]))

    def _ready_stage1(self):
        """The FAISS index (built for the collection's size if there is none), or the exact-search table."""
        if self._stage1 is not None:
            return self._stage1
        parameters = stage1_parameters(len(self), self.manifest["dim"])
        self.manifest["stage1"] = parameters
        if faiss is None:
            logger.warning(
                "faiss is not installed: stage 1 scans all %d videos' key vectors with numpy, in time linear in the "
                "collection (about 30 ms per query per 100k videos on one CPU core). pip install faiss-cpu (or "
                "msam-hf[search]) for FAISS, with compressed scanning beyond %d videos.",
                len(self),
                EXACT_SEARCH_MAX_VIDEOS,
            )
            batches = [
                self._key_vectors(self._row_ids[start : start + KEY_VECTOR_BATCH])
                for start in range(0, len(self), KEY_VECTOR_BATCH)
            ]
            self._stage1 = tuple(np.concatenate(parts) for parts in zip(*batches))  # (vectors, row ids)
            return self._stage1
        ann = faiss.index_factory(self.manifest["dim"], parameters["factory"], faiss.METRIC_INNER_PRODUCT)
        if parameters["type"] == "pq-fastscan":
            # evenly spaced videos: a folder-ordered collection would bias a prefix
            videos = min(STAGE1_TRAINING_VECTORS // parameters["key_vectors"], len(self))
            sample = self._row_ids[np.linspace(0, len(self) - 1, videos).astype(np.int64)]
            training = np.concatenate(
                [
                    self._key_vectors(sample[start : start + KEY_VECTOR_BATCH])[0]
                    for start in range(0, len(sample), KEY_VECTOR_BATCH)
                ]
            )
            with faiss_threads(1):
                ann.train(training)
            faiss.downcast_index(ann.index).k_factor = parameters["k_factor"]
        self._add_key_vectors(ann, self._row_ids)
        self._stage1, self._stage1_saved = ann, False
        return ann

    def _candidates(self, text_embed: np.ndarray, count: int) -> np.ndarray:
        """Row ids of the `count` videos whose best key vector has the largest inner product with the caption, best
        first."""
        stage1 = self._ready_stage1()
        vectors_wanted = count * self.manifest["stage1"]["key_vectors"]  # enough for `count` distinct videos
        if faiss is None:
            vectors, row_ids = stage1
            scores = vectors @ text_embed
            vectors_wanted = min(vectors_wanted, len(scores))
            top = np.argpartition(-scores, vectors_wanted - 1)[:vectors_wanted]
            found = row_ids[top[np.argsort(-scores[top], kind="stable")]]
        else:
            with faiss_threads(1):  # one query is too small to split across threads
                _, found = stage1.search(text_embed[None], vectors_wanted)
            found = found[0][found[0] >= 0]
        _, first = np.unique(found, return_index=True)  # a video's best key vector comes first
        return found[np.sort(first)][:count]

    # ------------------------------------------------------------------ search

    @torch.no_grad()
    def search(
        self, query: str | np.ndarray | torch.Tensor, k: int = 10, candidates: int | None = None
    ) -> list[SearchHit]:
        """The `k` best videos for a caption (a string, or its unit-norm text embedding ŝ), best first.

        Stage 1 takes `candidates` videos (R, default the index's) by their key vectors; stage 2 scores them with
        the model's similarity head at |J| = 1 from their frame features.
        """
        model = self._ready_model()
        text_embeds = self._text_embeds(query)
        if not len(self):
            return []
        # ascending row ids read the shards in order; stage 2 scores them all anyway
        row_ids = np.sort(self._candidates(text_embeds[0].numpy(), max(k, candidates or self.manifest["candidates"])))
        device = model.device
        if model.config.similarity_head in ("mean", "seq_transformer"):  # these heads score v̄ alone
            stored = self._gather(row_ids, ("video_embeds",))
            video = MsamVideoOutput(video_embeds=torch.from_numpy(stored["video_embeds"]).to(device).float())
        else:
            num_frames = self._videos["num_frames"].take(np.searchsorted(self._row_ids, row_ids)).to_numpy()
            frames = max(int(num_frames.max()), 1)
            stored = self._gather(row_ids, ("frame_embeds",), dtype=np.float32)
            frame_embeds = torch.from_numpy(stored["frame_embeds"][:, :frames]).to(device)
            video_mask = torch.from_numpy(np.arange(frames) < num_frames[:, None]).long().to(device)
            video = MsamVideoOutput(frame_embeds=frame_embeds, video_mask=video_mask)
        # one caption at |J| = 1: CIFFP takes its lone-caption path (MsamCiffpHead.single_caption_scores)
        logits, attention = model.similarity(
            MsamTextOutput(text_embeds=text_embeds.to(device)),
            video,
            text_context_size=1,
            video_chunk_size=len(row_ids),
            return_frame_attention=True,
        )
        scores = logits[0].float().cpu()
        order = torch.argsort(scores, descending=True, stable=True)[:k].tolist()
        best = row_ids[order]
        table = self._videos.take(np.searchsorted(self._row_ids, best))
        moments = self._gather(best, ("timestamps", "video_mask")) if attention is not None else None
        paths, durations, hits = table["path"].to_pylist(), table["duration"].to_pylist(), []
        for rank, position in enumerate(order):
            times, weights = [], []
            if moments is not None:
                times, weights = _best_frames(
                    attention[0, position].float().cpu().numpy(),
                    moments["timestamps"][rank],
                    moments["video_mask"][rank],
                )
            hits.append(
                SearchHit(
                    path=paths[rank],
                    score=float(scores[position]),
                    timestamps=times,
                    attention=weights,
                    duration=durations[rank],
                )
            )
        return hits

    def _ready_model(self) -> MsamModel:
        if self.model is None:
            from ..evaluation import load_model_and_processor

            name = self.manifest["model"]["name_or_path"]
            if name is None:
                raise ValueError(
                    f"the index in {self.directory} does not record where its model is; pass the model "
                    "to VideoIndex.load (or --model)."
                )
            if Path(name).is_absolute() and not Path(name).exists():  # `model_fingerprint` records folders absolute
                raise FileNotFoundError(
                    f"the index in {self.directory} was built with the model folder {name}, which no longer exists; "
                    "if it moved, pass it to VideoIndex.load (or --model NEW_PATH): its fingerprint is checked."
                )
            self.set_model(*load_model_and_processor(name))
        return self.model

    def _text_embeds(self, query: str | np.ndarray | torch.Tensor) -> torch.Tensor:
        """ŝ as a (1, dim) float32 CPU tensor: encoded with the model for a string, normalised otherwise."""
        if isinstance(query, str):
            inputs = self.processor(text=[query], return_tensors="pt")
            device = self.model.device
            text = self.model.get_text_features(inputs["input_ids"].to(device), inputs["attention_mask"].to(device))
            return text.text_embeds.float().cpu()
        embeds = torch.as_tensor(np.asarray(query, dtype=np.float32)).reshape(1, -1)
        if embeds.shape[1] != self.manifest["dim"]:
            raise ValueError(f"a query embedding must have {self.manifest['dim']} values, got {embeds.shape[1]}.")
        return F.normalize(embeds, dim=-1)


class _DecodedVideos(torch.utils.data.Dataset):
    """One video file per item, decoded and preprocessed (in DataLoader workers); a file that fails gives its reason."""

    def __init__(self, paths: list[str], video_processor: Any, fps: float, max_frames: int):
        self.paths, self.video_processor, self.fps, self.max_frames = paths, video_processor, fps, max_frames

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        try:
            decoded = read_frames(path, fps=self.fps, max_frames=self.max_frames)
        except (ValueError, OSError) as error:  # VideoDecodeError is a ValueError; OSError: unreadable or gone
            return {"path": path, "error": str(error)}
        pixels = self.video_processor(videos=[decoded.frames], return_tensors="pt")["pixel_values_videos"][0]
        return {"path": path, "pixel_values": pixels, "timestamps": decoded.timestamps, "duration": decoded.duration}


def _best_frames(attention: np.ndarray, timestamps: np.ndarray, video_mask: np.ndarray) -> tuple[list, list]:
    """Seconds and attention weights of a hit's best frame and of the others holding at least
    `TIMESTAMP_MIN_ATTENTION` of the head's attention, best first."""
    frames = [frame for frame in np.argsort(-attention, kind="stable") if video_mask[frame]]
    kept = frames[:1] + [frame for frame in frames[1:] if attention[frame] >= TIMESTAMP_MIN_ATTENTION]
    return [float(timestamps[frame]) for frame in kept], [float(attention[frame]) for frame in kept]


def _as_is(item):
    return item


def process_state() -> PartialState:
    """This process's place in an `accelerate launch` run (a single process without one)."""
    # `accelerate launch --multi_gpu` on a CPU-only machine joins the processes only with cpu=True (pitfalls.md).
    return PartialState(cpu=not torch.cuda.is_available())
