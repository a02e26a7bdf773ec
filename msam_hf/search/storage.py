"""The files of a video index: float16 feature shards in safetensors (written atomically, read through memory
maps), the Parquet video table's schema, and the hashes that tell files and models apart."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from safetensors.numpy import save_file

FORMAT_VERSION = 1
# What a new index records in index.json unless told otherwise: videos per feature shard, and R, the candidates
# stage 2 re-ranks (benchmarks/bench_search.py measures recall@10 against it).
DEFAULT_SHARD_SIZE = 1024
DEFAULT_CANDIDATES = 500
# Config and processor keys that record provenance or the loading dtype, not what the model computes.
_PROVENANCE_KEYS = {
    "transformers_version",
    "architectures",
    "_name_or_path",
    "_commit_hash",
    "auto_map",
    "dtype",
    "torch_dtype",
    "custom_pipelines",
    "processor_class",
}
VIDEO_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("size", pa.int64()),
        ("mtime_ns", pa.int64()),
        ("sha256", pa.string()),
        ("duration", pa.float64()),
        ("num_frames", pa.int32()),
        ("row_id", pa.int64()),
    ]
)
FEATURE_NAMES = ("frame_embeds", "video_embeds", "video_mask", "timestamps")
_SAFETENSORS_DTYPES = {"F16": np.float16, "F32": np.float32, "U8": np.uint8}


def write_shard(path: Path, videos: list[dict], features: dict[str, np.ndarray], failed=()) -> None:
    """Write a shard's features, with its video list and the files that failed in its safetensors metadata."""
    temporary = path.with_suffix(".tmp")
    save_file(features, str(temporary), metadata={"videos": json.dumps(videos), "failed": json.dumps(list(failed))})
    os.replace(temporary, path)  # a shard file that exists is complete: what resuming relies on


def read_shard_videos(path: Path) -> tuple[list[dict], list[dict[str, str]]]:
    """The videos a shard holds, in row order, and the files that failed, from its metadata."""
    metadata = read_header(path)[0].get("__metadata__", {})
    return json.loads(metadata["videos"]), json.loads(metadata["failed"])


def allow_open_files(count: int) -> None:
    """Each memory-mapped shard holds a file descriptor (CPython's mmap keeps a duplicate): raise the soft limit
    towards the hard one when a large index needs more than the common default of 1024."""
    try:
        import resource
    except ImportError:  # not on Unix
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count + 256:
        wanted = count + 4096  # headroom, so this runs once per few thousand shards
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def read_header(path: Path) -> tuple[dict[str, Any], int]:
    """A safetensors file's JSON header and the offset where its tensor data starts."""
    with open(path, "rb") as file:
        length = int.from_bytes(file.read(8), "little")
        return json.loads(file.read(length)), 8 + length


def memory_map(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file as read-only numpy views of one memory map: rows are read from disk only
    when indexed (safetensors' own loaders copy whole tensors)."""
    header, data_start = read_header(path)
    data = np.memmap(path, dtype=np.uint8, mode="r").view(np.ndarray)  # plain views: indexing stays in C
    arrays = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = _SAFETENSORS_DTYPES[info["dtype"]]
        arrays[name] = data[data_start + begin : data_start + end].view(dtype).reshape(info["shape"])
    return arrays


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's content: what tells a moved or touched video from a changed one."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def json_hash(settings: dict[str, Any]) -> str:
    """The SHA-256 of a config or processor dict, leaving out the keys that only record provenance."""

    def without_provenance(value):
        if isinstance(value, dict):
            return {key: without_provenance(item) for key, item in value.items() if key not in _PROVENANCE_KEYS}
        return value

    return hashlib.sha256(json.dumps(without_provenance(settings), sort_keys=True, default=str).encode()).hexdigest()


def write_atomically(path: Path, text: str) -> None:
    """Write `text` under a temporary name, then rename it: a reader sees the old file or the new one."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
