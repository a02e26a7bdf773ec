"""Readers for video-caption datasets, all returning the same `datasets.DatasetDict`.

Layouts (`load_video_text_dataset(path, layout="auto")` detects which):

- `clip4clip`: the CLIP4Clip / MSVD layout that USRD ships (msam.md §9): `raw-captions.pkl`
  (video id → captions, each a list of words), `train_list.txt` / `val_list.txt` /
  `test_list.txt` (one id a line; trailing spaces belong to the id) and `Videos/<id>.<ext>`.
- `videofolder`: the Hub's convention: video files plus `metadata.jsonl` or `metadata.csv`
  with `file_name` and `captions` (a list) or one `caption` per row, optional `video_id`,
  `split` and `attributes` columns; or `train/`, `val/`, `test/` sub-folders.
- `msrvtt`: MSR-VTT's annotation json (`videos: [{video_id, split}]`,
  `sentences: [{video_id, caption}]`) with the videos in `videos/`, `Videos/`, `TrainValVideo/` +
  `TestVideo/`, or beside the json.
- `hub`: a dataset repo written by `msam data to-hub` (a local folder or a Hub repo id).

Every row has `video_id` (str), `video` (`datasets.Video(decode=False)`: `{"path", "bytes"}`, None when
the file is missing), `captions` (list of str) and, when the source has them, `attributes`
(`entities` / `actions` / `relations` lists). Nothing is decoded here; `msam_hf.video_io.read_frames`
decodes a row's `video` value. Problems (empty captions, ids without captions or without a video
file) are counted in a `LoadReport` and logged; `strict=True` turns them into errors.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import pickle
import re
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import datasets

from ..video_io import VIDEO_EXTENSIONS
from ..video_io import video_files_under

logger = logging.getLogger(__name__)

LAYOUTS = ("auto", "clip4clip", "videofolder", "msrvtt", "hub")
SPLIT_ORDER = ("train", "validation", "test")
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "validation",
    "valid": "validation",
    "validate": "validation",
    "validation": "validation",
    "dev": "validation",
    "test": "test",
    "testing": "test",
}
ATTRIBUTE_KINDS = ("entities", "actions", "relations")
CLIP4CLIP_CAPTIONS = "raw-captions.pkl"
CLIP4CLIP_SPLIT_FILES = {"train": "train_list.txt", "validation": "val_list.txt", "test": "test_list.txt"}
METADATA_FILES = ("metadata.jsonl", "metadata.csv")
VIDEO_FOLDER_NAMES = ("Videos", "videos", "TrainValVideo", "TestVideo")  # where MSR-VTT videos may be
_SPLIT_NAME = re.compile(r"^\w+(\.\w+)*$")  # what datasets accepts as a split name
_SHOWN_IDS = 5  # ids quoted in a problem line before "..."


def video_text_features(with_attributes: bool = False) -> datasets.Features:
    """The features of every split: `video_id`, `video` (not decoded), `captions` and optionally `attributes`."""
    features = {
        "video_id": datasets.Value("string"),
        # datasets decodes videos only through torchcodec, which does not work with CPU torch; read_frames does.
        "video": datasets.Video(decode=False),
        "captions": datasets.List(datasets.Value("string")),
    }
    if with_attributes:
        features["attributes"] = {kind: datasets.List(datasets.Value("string")) for kind in ATTRIBUTE_KINDS}
    return datasets.Features(features)


@dataclass
class VideoTextRecord:
    """One video with its captions, as read from a source folder."""

    video_id: str
    video_path: Path | None
    captions: list[str]
    attributes: dict[str, list[str]] | None = None


@dataclass
class LoadReport:
    """Everything a reader skipped or could not find; nothing is dropped without being counted here."""

    source: str
    layout: str
    empty_captions: int = 0  # blank captions dropped
    ids_without_captions: dict[str, list[str]] = field(default_factory=dict)  # split → ids; their rows are dropped
    missing_videos: dict[str, list[str]] = field(default_factory=dict)  # split → ids; rows kept with video None
    unassigned_ids: list[str] = field(default_factory=list)  # captioned ids in no split; not loaded
    duplicate_ids: list[str] = field(default_factory=list)  # listed more than once; the first listing is kept
    unreferenced_videos: list[str] = field(default_factory=list)  # video files no metadata row names
    video_folder: str | None = None  # where videos were looked for (None: no video folder exists)

    def problems(self) -> list[str]:
        """One human-readable line per kind of problem; empty when the source is clean."""
        lines = []
        if self.empty_captions:
            lines.append(f"{self.empty_captions} empty caption(s) dropped")
        for split, ids in self.ids_without_captions.items():
            lines.append(f"{split}: {len(ids):,} listed video(s) have no caption and were left out: {_quote(ids)}")
        if self.missing_videos and self.video_folder is None:
            count = sum(len(ids) for ids in self.missing_videos.values())
            lines.append(f"no video folder: all {count:,} rows are kept without video (captions only)")
        else:
            for split, ids in self.missing_videos.items():
                lines.append(
                    f"{split}: {len(ids):,} video(s) have no file in {self.video_folder}; "
                    f"rows kept without video: {_quote(ids)}"
                )
        if self.unassigned_ids:
            lines.append(
                f"{len(self.unassigned_ids):,} captioned video(s) are in no split and were left out: "
                f"{_quote(self.unassigned_ids)}"
            )
        if self.duplicate_ids:
            lines.append(
                f"{len(self.duplicate_ids):,} video id(s) are listed more than once (first kept): "
                f"{_quote(self.duplicate_ids)}"
            )
        if self.unreferenced_videos:
            lines.append(
                f"{len(self.unreferenced_videos):,} video file(s) are not named in the metadata: "
                f"{_quote(self.unreferenced_videos)}"
            )
        return lines

    def summary(self) -> str:
        """The problems in one line, prefixed with the source ("" when clean)."""
        problems = self.problems()
        return f"{self.source} ({self.layout} layout): " + "; ".join(problems) if problems else ""

    def raise_if_problems(self) -> None:
        """Raise the problems as one ValueError (what `strict=True` does)."""
        if self.problems():
            raise ValueError(self.summary() + ". Fix the source, or load with strict=False to skip and count these.")


@dataclass
class VideoTextSource:
    """The splits of a source folder as records, with the report of what was skipped."""

    layout: str
    splits: dict[str, list[VideoTextRecord]]
    report: LoadReport

    def to_dataset_dict(self) -> datasets.DatasetDict:
        with_attributes = any(record.attributes is not None for records in self.splits.values() for record in records)
        features = video_text_features(with_attributes)
        splits = {}
        for split, records in self.splits.items():
            columns = {
                "video_id": [record.video_id for record in records],
                "video": [
                    {"path": str(record.video_path), "bytes": None} if record.video_path else None for record in records
                ],
                "captions": [record.captions for record in records],
            }
            if with_attributes:
                columns["attributes"] = [_complete_attributes(record.attributes) for record in records]
            splits[split] = datasets.Dataset.from_dict(columns, features=features, split=datasets.NamedSplit(split))
        return datasets.DatasetDict(splits)


def load_video_text_dataset(
    path: str | os.PathLike, layout: str = "auto", strict: bool = False
) -> datasets.DatasetDict:
    """Load a video-caption dataset from a folder (any supported layout) or a Hub dataset repo id.

    Args:
        path: a source folder, a folder written by `msam data to-hub`, or a Hub dataset repo id.
        layout: one of `auto`, `clip4clip`, `videofolder`, `msrvtt`, `hub`.
        strict: raise on empty captions, ids without captions and missing video files instead of
            skipping (and counting) them.

    Returns:
        A `DatasetDict` (`train` / `validation` / `test` where the source has them) whose rows are
        `video_id`, `video` (`{"path", "bytes"}` or None), `captions` and optionally `attributes`.
    """
    layout = detect_layout(path) if layout == "auto" else layout
    if layout == "hub":
        return _load_hub_dataset(path)
    source = read_video_text_source(path, layout=layout, strict=strict)
    if source.report.problems():
        logger.warning(source.report.summary())
    return source.to_dataset_dict()


def read_video_text_source(path: str | os.PathLike, layout: str = "auto", strict: bool = False) -> VideoTextSource:
    """Read a source folder into records plus a `LoadReport` of what was skipped (raised instead with `strict`)."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    layout = detect_layout(root) if layout == "auto" else layout
    readers = {"clip4clip": _read_clip4clip, "videofolder": _read_videofolder, "msrvtt": _read_msrvtt}
    if layout not in readers:
        hint = " (a Hub dataset folder: use load_video_text_dataset)" if layout == "hub" else ""
        raise ValueError(f"layout {layout!r} cannot be read as a source folder{hint}; choose one of {sorted(readers)}")
    source = readers[layout](root)
    if strict:
        source.report.raise_if_problems()
    if not any(source.splits.values()):
        raise ValueError(f"{root} ({layout} layout) holds no video with a caption")
    return source


def detect_layout(path: str | os.PathLike) -> str:
    """The layout of `path`: `clip4clip`, `videofolder`, `msrvtt` or `hub` (a repo id is `hub`)."""
    root = Path(path)
    if not root.exists():
        if re.fullmatch(r"[\w.-]+/[\w.-]+", str(path)):
            return "hub"
        raise FileNotFoundError(f"dataset folder not found: {root} (nor is it a Hub repo id like 'user/name')")
    if not root.is_dir():
        raise ValueError(f"{root} is a file; pass the dataset folder")
    # videofolder first: a folder with both layouts (as `msam data synth` writes) has more in its metadata.
    if _metadata_files(root):
        return "videofolder"
    if (root / CLIP4CLIP_CAPTIONS).is_file():
        return "clip4clip"
    if (root / "README.md").is_file() and any(root.glob("data/*.parquet")):
        return "hub"
    if _msrvtt_annotation_file(root) is not None:
        return "msrvtt"
    raise ValueError(
        f"cannot tell the layout of {root}: expected {CLIP4CLIP_CAPTIONS} (CLIP4Clip/MSVD), "
        f"{' or '.join(METADATA_FILES)} (videofolder), an MSR-VTT annotation json, or a README.md with data/*.parquet"
    )


class _CaptionUnpickler(pickle.Unpickler):
    """Builds only plain containers (dict, list, tuple, str, numbers): any class or function reference is refused.

    The opcodes that call something (REDUCE, NEWOBJ, INST, OBJ, BUILD) need a callable, and a pickle
    names one through GLOBAL / STACK_GLOBAL, which ask `find_class`, or through EXT codes, which
    resolve only via the copyreg extension registry (empty unless a program fills it). Refusing
    `find_class` therefore blocks code execution.
    """

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"it references {module}.{name}; only plain dict/list/str data is allowed")


def read_caption_pickle(path: str | os.PathLike) -> dict[str, list[str]]:
    """Read a CLIP4Clip `raw-captions.pkl` safely: video id → captions (word lists joined with spaces).

    Raises ValueError naming the file if the pickle references any class or function (it could run
    code) or does not hold `{str: [caption, ...]}`.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            data = _CaptionUnpickler(file).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError) as error:
        raise ValueError(
            f"refusing to load {path}: {error}. Captions must be a pickled dict of lists of words or strings."
        ) from error
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a dict video id → captions, found {type(data).__name__}")
    captions = {}
    for video_id, values in data.items():
        if not isinstance(video_id, str):
            raise ValueError(f"{path}: video ids must be strings, found {video_id!r}")
        if not isinstance(values, (list, tuple)):
            raise ValueError(f"{path}: captions of {video_id!r} must be a list, found {type(values).__name__}")
        captions[video_id] = [_caption_text(value, f"{path}: a caption of {video_id!r}") for value in values]
    return captions


def _caption_text(value, where: str) -> str:
    """A caption given as a string or as a list of words."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (list, tuple)) and all(isinstance(word, str) for word in value):
        return " ".join(word.strip() for word in value if word.strip())
    raise ValueError(f"{where} must be a string or a list of words, found {value!r}")


def _read_id_list(path: Path) -> list[str]:
    """Video ids one a line; only the line ending is removed (trailing spaces are part of an id)."""
    text = path.read_text(encoding="utf-8")
    return [line.removesuffix("\r") for line in text.split("\n") if line.removesuffix("\r")]


def _read_clip4clip(root: Path) -> VideoTextSource:
    report = LoadReport(source=str(root), layout="clip4clip")
    captions = read_caption_pickle(root / CLIP4CLIP_CAPTIONS)
    split_ids = {
        split: _read_id_list(root / name) for split, name in CLIP4CLIP_SPLIT_FILES.items() if (root / name).is_file()
    }
    if not split_ids:
        raise ValueError(f"{root} has {CLIP4CLIP_CAPTIONS} but none of {sorted(CLIP4CLIP_SPLIT_FILES.values())}")
    video_folders = _existing_folders(root, ("Videos", "videos"))[:1]
    report.video_folder = str(video_folders[0]) if video_folders else None
    splits = _records_for_splits(split_ids, captions, video_folders, report, CLIP4CLIP_SPLIT_FILES)
    listed = {video_id for ids in split_ids.values() for video_id in ids}
    report.unassigned_ids = [video_id for video_id in captions if video_id not in listed]
    return VideoTextSource("clip4clip", splits, report)


def _read_msrvtt(root: Path) -> VideoTextSource:
    annotation_file = _msrvtt_annotation_file(root)
    if annotation_file is None:
        raise ValueError(f"{root} has no MSR-VTT annotation json (with 'videos' and 'sentences')")
    report = LoadReport(source=str(root), layout="msrvtt")
    annotation = json.loads(annotation_file.read_text(encoding="utf-8"))
    split_ids: dict[str, list[str]] = {}
    for entry in annotation["videos"]:
        split = _split_name(entry.get("split", "train"), f"{annotation_file}: video {entry.get('video_id')!r}")
        split_ids.setdefault(split, []).append(_require_str(entry, "video_id", annotation_file))
    captions: dict[str, list[str]] = {}
    for sentence in annotation["sentences"]:
        video_id = _require_str(sentence, "video_id", annotation_file)
        caption = _caption_text(sentence.get("caption"), f"{annotation_file}: a caption of {video_id!r}")
        captions.setdefault(video_id, []).append(caption)
    # MSR-VTT ships train/val and test videos in separate folders (TrainValVideo/, TestVideo/).
    video_folders = _existing_folders(root, VIDEO_FOLDER_NAMES) or [root]
    report.video_folder = ", ".join(str(folder) for folder in video_folders)
    splits = _records_for_splits(split_ids, captions, video_folders, report, {})
    listed = {video_id for ids in split_ids.values() for video_id in ids}
    report.unassigned_ids = [video_id for video_id in captions if video_id not in listed]
    return VideoTextSource("msrvtt", splits, report)


def _records_for_splits(
    split_ids: dict[str, list[str]],
    captions: dict[str, list[str]],
    video_folders: list[Path],
    report: LoadReport,
    list_files: dict[str, str],
) -> dict[str, list[VideoTextRecord]]:
    """Records for the ids of each split, in order; problems go to `report`."""
    splits: dict[str, list[VideoTextRecord]] = {}
    seen: set[str] = set()
    for split in _ordered(split_ids):
        records = splits.setdefault(split, [])
        for video_id in split_ids[split]:
            where = list_files.get(split, f"split {split!r}")
            _check_relative_name(video_id, f"video id {video_id!r} in {where}")
            if video_id in seen:
                report.duplicate_ids.append(video_id)
                continue
            seen.add(video_id)
            texts = [text for text in captions.get(video_id, []) if text]
            report.empty_captions += sum(1 for text in captions.get(video_id, []) if not text)
            if not texts:
                report.ids_without_captions.setdefault(split, []).append(video_id)
                continue
            video_path = _find_video(video_folders, video_id)
            if video_path is None:
                report.missing_videos.setdefault(split, []).append(video_id)
            records.append(VideoTextRecord(video_id, video_path, texts))
    # A split whose every id was left out is gone (the report lists those ids).
    return {split: records for split, records in splits.items() if records}


def _read_videofolder(root: Path) -> VideoTextSource:
    report = LoadReport(source=str(root), layout="videofolder", video_folder=str(root))
    # (split, video_id) → record, in order of first appearance.
    grouped: dict[tuple[str, str], VideoTextRecord] = {}
    referenced: set[Path] = set()
    for metadata_file, folder_split in _metadata_files(root):
        for line_number, row in _metadata_rows(metadata_file):
            where = f"{metadata_file}, row {line_number}"
            file_name = row.get("file_name")
            if not isinstance(file_name, str) or not file_name:
                raise ValueError(f"{where}: 'file_name' (the video's path relative to the metadata file) is missing")
            _check_relative_name(file_name, f"file_name {file_name!r} in {where}")
            video_path = metadata_file.parent / file_name
            parts = Path(file_name).parts
            # The split: the row's, else its metadata file's folder, else the file's first folder, else train.
            path_split = parts[0] if len(parts) > 1 and parts[0].lower() in SPLIT_ALIASES else None
            split = _split_name(row.get("split") or folder_split or path_split or "train", where)
            video_id = row.get("video_id")
            if video_id is None:
                video_id = str(video_path.relative_to(root).with_suffix("").as_posix())
            elif not isinstance(video_id, str):
                raise ValueError(f"{where}: 'video_id' must be a string, found {video_id!r}")
            texts = _row_captions(row, where)
            report.empty_captions += sum(1 for text in texts if not text)
            record = grouped.get((split, video_id))
            if record is None:
                exists = video_path.is_file()
                record = VideoTextRecord(video_id, video_path if exists else None, [], None)
                grouped[(split, video_id)] = record
                if exists:
                    referenced.add(video_path.resolve())
                else:
                    report.missing_videos.setdefault(split, []).append(video_id)
            record.captions.extend(text for text in texts if text)
            if row.get("attributes") is not None:
                record.attributes = _merge_attributes(record.attributes, row["attributes"], where)

    splits: dict[str, list[VideoTextRecord]] = {}
    seen_ids: set[str] = set()
    for (split, video_id), record in grouped.items():
        if video_id in seen_ids:
            report.duplicate_ids.append(video_id)
            continue
        seen_ids.add(video_id)
        if not record.captions:
            report.ids_without_captions.setdefault(split, []).append(video_id)
            continue
        splits.setdefault(split, []).append(record)
    report.unreferenced_videos = sorted(
        str(path.relative_to(root)) for path in video_files_under(root) if path.resolve() not in referenced
    )
    return VideoTextSource("videofolder", {split: splits[split] for split in _ordered(splits)}, report)


def _metadata_files(root: Path) -> list[tuple[Path, str | None]]:
    """metadata.jsonl / metadata.csv at the root and in split sub-folders, with the folder's split."""
    found = []
    split_folders = [
        (path, path.name) for path in sorted(root.iterdir()) if path.is_dir() and path.name.lower() in SPLIT_ALIASES
    ]
    for folder, split in [(root, None)] + split_folders:
        files = [folder / name for name in METADATA_FILES if (folder / name).is_file()]
        if len(files) > 1:
            raise ValueError(f"{folder} has both {' and '.join(METADATA_FILES)}; keep one")
        found += [(file, split) for file in files]
    return found


def _metadata_rows(path: Path) -> Iterable[tuple[int, dict]]:
    """(line number, row) of a metadata.jsonl / metadata.csv file."""
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as file:
            for line_number, line in enumerate(file, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}, line {line_number}: not valid JSON ({error})") from error
                if not isinstance(row, dict):
                    raise ValueError(f"{path}, line {line_number}: each line must be a JSON object")
                yield line_number, row
    else:
        with path.open(encoding="utf-8", newline="") as file:
            for line_number, row in enumerate(csv.DictReader(file), start=2):
                captions = row.get("captions")
                if captions and captions.lstrip().startswith("["):  # a JSON list in one CSV cell
                    try:
                        row["captions"] = json.loads(captions)
                    except json.JSONDecodeError as error:
                        raise ValueError(
                            f"{path}, row {line_number}: 'captions' is not a JSON list ({error})"
                        ) from error
                yield line_number, row


def _row_captions(row: dict, where: str) -> list[str]:
    if "captions" in row and row["captions"] is not None:
        values = row["captions"]
        values = [values] if isinstance(values, str) else values
        if not isinstance(values, list):
            raise ValueError(f"{where}: 'captions' must be a list of strings, found {values!r}")
        return [_caption_text(value, f"{where}: a caption") for value in values]
    if "caption" in row and row["caption"] is not None:
        return [_caption_text(row["caption"], f"{where}: 'caption'")]
    raise ValueError(f"{where}: no 'captions' (a list) or 'caption' (one per row) column")


def _merge_attributes(current: dict[str, list[str]] | None, new, where: str) -> dict[str, list[str]]:
    if not isinstance(new, dict):
        raise ValueError(f"{where}: 'attributes' must be an object of lists ({', '.join(ATTRIBUTE_KINDS)})")
    unknown = sorted(set(new) - set(ATTRIBUTE_KINDS))
    if unknown:
        raise ValueError(f"{where}: unknown attribute kind(s) {unknown}; expected {list(ATTRIBUTE_KINDS)}")
    merged = {kind: list(values) for kind, values in (current or {}).items()}
    for kind, values in new.items():
        if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
            raise ValueError(f"{where}: attributes[{kind!r}] must be a list of strings, found {values!r}")
        merged.setdefault(kind, [])
        merged[kind] += [value for value in values if value not in merged[kind]]
    return merged


def _complete_attributes(attributes: dict[str, list[str]] | None) -> dict[str, list[str]]:
    return {kind: list((attributes or {}).get(kind, [])) for kind in ATTRIBUTE_KINDS}


def _msrvtt_annotation_file(root: Path) -> Path | None:
    for path in sorted(root.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(data, dict) and isinstance(data.get("videos"), list) and isinstance(data.get("sentences"), list):
            return path
    return None


def _load_hub_dataset(path: str | os.PathLike) -> datasets.DatasetDict:
    dataset = datasets.load_dataset(str(path))
    for split, split_dataset in dataset.items():
        missing = {"video_id", "video", "captions"} - set(split_dataset.column_names)
        if missing:
            raise ValueError(
                f"{path} split {split!r} lacks column(s) {sorted(missing)}; "
                "expected a dataset written by `msam data to-hub`"
            )
    # A repo written elsewhere may declare Video() with decoding, which needs torchcodec.
    return dataset.cast_column("video", datasets.Video(decode=False))


def _check_relative_name(name: str, what: str) -> None:
    """Reject names that would leave their folder: absolute paths, '..' parts, NUL bytes, empty names."""
    if not name or "\0" in name:
        raise ValueError(f"{what} is empty or contains a NUL byte")
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts:
        raise ValueError(f"{what} would point outside its folder; ids and file names must be relative and without '..'")


def _find_video(folders: list[Path], video_id: str) -> Path | None:
    """`<folder>/<video_id><extension>` for the first folder and common extension that exist."""
    for folder in folders:
        for extension in VIDEO_EXTENSIONS:
            candidate = folder / f"{video_id}{extension}"
            if candidate.is_file():
                return candidate
    return None


def _existing_folders(root: Path, names: Iterable[str]) -> list[Path]:
    return [root / name for name in names if (root / name).is_dir()]


def _split_name(value, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: split must be a non-empty string, found {value!r}")
    name = SPLIT_ALIASES.get(value.lower(), value)
    if not _SPLIT_NAME.match(name):
        raise ValueError(f"{where}: split {value!r} is not a valid split name (letters, digits, '_')")
    return name


def _require_str(entry: dict, key: str, path: Path) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{path}: an entry lacks a string {key!r}: {entry!r}")
    return value


def _ordered(splits: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(splits))
    return [name for name in SPLIT_ORDER if name in names] + [name for name in names if name not in SPLIT_ORDER]


def _quote(ids: list[str]) -> str:
    shown = ", ".join(repr(video_id) for video_id in ids[:_SHOWN_IDS])
    return shown + (", ..." if len(ids) > _SHOWN_IDS else "")
