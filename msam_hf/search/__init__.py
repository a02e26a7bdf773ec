"""Search a video collection by text: the `VideoIndex` behind `msam index` and `msam search`.

An index is a folder:

    INDEX/
      index.json                       the model's fingerprint, the shard list, search settings (FAISS kind, R)
      videos-000002.parquet            one row per video: path, size, mtime, sha256, duration, frames, row id
      shards/shard-000000.safetensors  float16 frame features, video embeddings, masks and frame timestamps of up
                                       to `shard_size` videos (memory-mapped at search time); the shard's video
                                       list and failed files are in its safetensors metadata
      ann-000002.faiss                 FAISS index over the videos' key vectors (derived data: rebuilt if missing
                                       or built by an older version, see `stage1_parameters`)
      report.json                      the last indexing run: added, unchanged, moved, removed, failed files

Indexing is incremental: a file whose path, size and mtime match the index is skipped; otherwise its sha256 decides
whether it changed (re-encoded), was touched (kept) or moved (its features follow it). Files gone from the folder are
dropped; files that cannot be decoded are listed in the report and never stop the run. A shard is written under a
temporary name and renamed when complete, so a shard file that exists is finished: the next run after an interruption
merges the finished shards instead of re-encoding them. Under `accelerate launch` the shards of a run are spread over
the processes and the main process merges them; the result does not depend on the number of processes.

Search has two stages. CIFFP scores a caption against a video's frames (msam.md §3), so it cannot be precomputed per
video; at |J| = 1 its score is γ·cos(frame-attention pooling, caption), close to the best frame's cosine. A single
vector per video (the mean v̄) misses videos with one matching frame among others, so stage 1 indexes
`KEY_VECTORS_PER_VIDEO` key vectors per video, the normalised k-means centroids of its frames, and takes the R videos
with the best key vector for the caption (FAISS: exact up to `EXACT_SEARCH_MAX_VIDEOS` videos, compressed scanning
with re-scoring from 8-bit copies beyond; exact numpy without FAISS); stage 2 scores them with the model's similarity head at
|J| = 1, reading only their frame features, and returns the best k with the timestamps of the frames the head
attended to. benchmarks/bench_search.py measures how often the two stages return the top 10 of the head applied to
the whole collection.

The code: `storage` (shard files, memory maps, hashes), `stage1` (key vectors, FAISS settings), `index`
(`VideoIndex`: indexing, stage 2, timestamps); the commands are in `msam_hf.commands.search`. The names below are
imported from them on first use, so that `msam index --help` imports neither torch nor FAISS.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

# submodule -> the public names it defines
_IMPORT_STRUCTURE = {
    "index": [
        "IDENTITY_FIELDS",
        "TIMESTAMP_MIN_ATTENTION",
        "IndexReport",
        "ModelMismatchError",
        "SearchHit",
        "VideoIndex",
        "list_video_files",
        "model_fingerprint",
    ],
    "stage1": [
        "EXACT_SEARCH_MAX_VIDEOS",
        "KEY_VECTOR_BATCH",
        "KEY_VECTORS_PER_VIDEO",
        "KMEANS_STEPS",
        "STAGE1_FACTORY",
        "STAGE1_K_FACTOR",
        "STAGE1_TRAINING_VECTORS",
        "faiss",  # None without the `search` extra
        "key_vectors",
        "stage1_parameters",
    ],
    "storage": ["DEFAULT_CANDIDATES", "DEFAULT_SHARD_SIZE", "FEATURE_NAMES", "FORMAT_VERSION", "VIDEO_SCHEMA"],
}
# every name of _IMPORT_STRUCTURE (tests/test_import.py checks)
__all__ = [
    "DEFAULT_CANDIDATES",
    "DEFAULT_SHARD_SIZE",
    "EXACT_SEARCH_MAX_VIDEOS",
    "FEATURE_NAMES",
    "FORMAT_VERSION",
    "IDENTITY_FIELDS",
    "IndexReport",
    "KEY_VECTORS_PER_VIDEO",
    "KEY_VECTOR_BATCH",
    "KMEANS_STEPS",
    "ModelMismatchError",
    "STAGE1_FACTORY",
    "STAGE1_K_FACTOR",
    "STAGE1_TRAINING_VECTORS",
    "SearchHit",
    "TIMESTAMP_MIN_ATTENTION",
    "VIDEO_SCHEMA",
    "VideoIndex",
    "faiss",
    "key_vectors",
    "list_video_files",
    "model_fingerprint",
    "stage1_parameters",
]
__getattr__, __dir__ = lazy_exports(__name__, _IMPORT_STRUCTURE)

if TYPE_CHECKING:  # what static analysers and IDEs see
    from .index import IDENTITY_FIELDS
    from .index import TIMESTAMP_MIN_ATTENTION
    from .index import IndexReport
    from .index import ModelMismatchError
    from .index import SearchHit
    from .index import VideoIndex
    from .index import list_video_files
    from .index import model_fingerprint
    from .stage1 import EXACT_SEARCH_MAX_VIDEOS
    from .stage1 import KEY_VECTOR_BATCH
    from .stage1 import KEY_VECTORS_PER_VIDEO
    from .stage1 import KMEANS_STEPS
    from .stage1 import STAGE1_FACTORY
    from .stage1 import STAGE1_K_FACTOR
    from .stage1 import STAGE1_TRAINING_VECTORS
    from .stage1 import faiss
    from .stage1 import key_vectors
    from .stage1 import stage1_parameters
    from .storage import DEFAULT_CANDIDATES
    from .storage import DEFAULT_SHARD_SIZE
    from .storage import FEATURE_NAMES
    from .storage import FORMAT_VERSION
    from .storage import VIDEO_SCHEMA
