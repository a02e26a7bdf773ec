"""Stage 1 of search: a few key vectors per video (k-means centroids of its frames) in a FAISS index; the videos
with the best key vectors for a caption are the candidates that stage 2 scores with the model's similarity head."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

try:
    import faiss
except ImportError:  # the `search` extra; exact numpy search without it
    faiss = None

# Up to this many videos stage 1 is exact (FAISS flat, about 7 ms a query on one core); beyond, compressed scanning.
EXACT_SEARCH_MAX_VIDEOS = 50_000
# Compressed scanning re-scores this many times R · key vectors candidates from 8-bit copies: at 1M, 16 measured
# recall@10 0.997 at p95 35 ms, 8 gave 0.994 (bench_search.py).
STAGE1_K_FACTOR = 16
# Stage 1 indexes this many key vectors per video (k-means centroids of its frames; benchmarks/bench_search.py).
KEY_VECTORS_PER_VIDEO = 2
# Videos whose key vectors are computed (and added to FAISS) at a time: bounds the float32 frames in memory.
KEY_VECTOR_BATCH = 16_384
KMEANS_STEPS = 5
STAGE1_FACTORY = "IDMap,RR{dim},PQ{codes}x4fs,Refine(SQ8)"
# Product quantisers are trained on this many key vectors, spread over the collection.
STAGE1_TRAINING_VECTORS = 65_536


def stage1_parameters(num_videos: int, dim: int = 512) -> dict[str, Any]:
    """Stage-1 settings for a collection size: `key_vectors` vectors per video (see `key_vectors`), searched by
    exact inner product up to `EXACT_SEARCH_MAX_VIDEOS` videos; beyond, a scan of every key vector's 4-bit
    product-quantised code (SIMD "fast scan", 16× less to read than float32, after a random rotation that spreads
    the embeddings' variance evenly over the sub-quantisers: without it the first few, which hold most of the
    variance of CLIP-like embeddings, are quantised coarsely) whose best R · key_vectors · `k_factor` are re-scored
    from 8-bit scalar-quantised copies. benchmarks/bench_search.py compares this with one vector per video (v̄), with
    and without the rotation; IVF lost recall at any nprobe that was faster (docs/search.md)."""
    if num_videos <= EXACT_SEARCH_MAX_VIDEOS:
        return {"type": "flat", "factory": "IDMap,Flat", "key_vectors": KEY_VECTORS_PER_VIDEO}
    return {
        "type": "pq-fastscan",
        "factory": STAGE1_FACTORY.format(dim=dim, codes=dim // 4),
        "k_factor": STAGE1_K_FACTOR,
        "key_vectors": KEY_VECTORS_PER_VIDEO,
    }


def key_vectors(frame_embeds: np.ndarray, video_mask: np.ndarray, count: int) -> np.ndarray:
    """`count` unit vectors per video that stand for its frames in stage 1: the k-means centroids of its (unmasked)
    frames, seeded by the frame nearest the mean and then farthest-point, after a few Lloyd steps, normalised.
    CIFFP at |J| = 1 is close to the best frame's cosine with the caption; the best centroid tracks it much closer
    than the mean of all frames does, at a fraction of the cost of indexing every frame. (videos, count, dim)."""
    frames = torch.from_numpy(np.asarray(frame_embeds, dtype=np.float32))
    mask = torch.from_numpy(np.asarray(video_mask)).bool()
    videos = torch.arange(len(frames))
    mean = F.normalize((frames * mask[..., None]).sum(1), dim=-1)
    closest_to = torch.einsum("vtd,vd->vt", frames, mean).masked_fill(~mask, -torch.inf)
    seeds = [frames[videos, closest_to.argmax(1)]]
    for _ in range(count - 1):
        nearest_seed = torch.stack([torch.einsum("vtd,vd->vt", frames, seed) for seed in seeds]).amax(0)
        seeds.append(frames[videos, nearest_seed.masked_fill(~mask, torch.inf).argmin(1)])
    centroids = torch.stack(seeds, 1)
    for _ in range(KMEANS_STEPS):
        assignment = torch.einsum("vtd,vkd->vtk", frames, centroids).argmax(-1)
        members = F.one_hot(assignment, count).float() * mask[..., None]
        # a cluster left empty (identical frames) gives a zero vector: the video's other centroids still count
        centroids = F.normalize(torch.einsum("vtk,vtd->vkd", members, frames), dim=-1)
    return centroids.numpy()


def describe_stage1(parameters: dict[str, Any]) -> str:
    """Stage-1 settings (`stage1_parameters`, as recorded in an index) in words, for the indexing report."""
    if parameters.get("type") == "pq-fastscan":
        return (
            f"FAISS {parameters['factory']}, k_factor {parameters['k_factor']}, "
            f"{parameters['key_vectors']} key vectors per video"
        )
    if parameters.get("type") == "flat":
        return f"FAISS exact, {parameters['key_vectors']} key vectors per video"
    return parameters.get("type", "not built yet")


@contextlib.contextmanager
def faiss_threads(count: int):
    """FAISS's OpenMP threads for the calling thread. Single queries and product-quantiser training are many tiny
    parallel steps: on a busy 2-core machine two threads spin against each other (PQ training measured 78 s with two
    threads, 0.9 s with one)."""
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)
