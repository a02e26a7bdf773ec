"""Search at scale: two-stage search (FAISS over key vectors of each video, then the CIFFP head on R candidates) on
feature-level synthetic collections of N videos × 12 frames × 512 dims, against CIFFP over the whole collection.

    python benchmarks/bench_search.py               # N = 10k and 100k
    python benchmarks/bench_search.py --million     # and N = 1M (about 13 GB of float16 shards on disk)

Per N: build time (shards + stage-1 index, from features), stage-1 + video-table memory, disk, p50 / p95 latency of
`VideoIndex.search` (one query embedding at a time on one thread: stage 1, reading R videos' frames from the
memory-mapped shards, the head), recall@10 of the two stages against the exact top 10 of the same head applied to
every video, and the latency of that exhaustive head for one query (on all threads), for the ratio. Text encoding
is left out: it costs the same in both. Above 50k videos, stage-1 alternatives are compared too (more exact
re-scoring; one vector per video, v̄, as before key vectors, with and without the random rotation).

The head is the real CIFFP head (`MsamModel.similarity` at |J| = 1) of a randomly initialised MsamModel with
projection width 512; random weights do not matter here, because at |J| = 1 CIFFP's score depends only on the
features, τ and γ (msam.md §3), and both sides use the same head.

The collection is clustered like drone footage, not uniform noise: videos come from sites (the same place flown ~20
times, all sharing a common "aerial imagery" direction), each video's frames drift around the video's own point
(camera motion), 10 % of the videos pan from their site to another one, and a quarter are shorter than 12 s (masked
frames). Directions are drawn from an anisotropic Gaussian (variance ∝ 1/i over the 512 axes, effective dimension
about 30, like CLIP embeddings, whose spectrum decays fast). A query is a caption written for one frame of one video:
that frame plus what the caption says beyond it, at the cosine of a matching CLIP caption and frame (≈ 0.35). In
the main column half of that remainder lies along the collection's own directions (other things on screen) and half
is isotropic; the stress column makes it all isotropic, which fills the exact top 10 with videos that match the
query by chance alone, the hardest case for any index. The statistics are printed with the table.
"""

import argparse
import contextlib
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from msam_hf import MsamConfig  # noqa: E402
from msam_hf import MsamModel  # noqa: E402
from msam_hf import default_processor  # noqa: E402
from msam_hf.configuration_msam import TINY_CLIP_CONFIG  # noqa: E402
from msam_hf.modeling_msam import MsamTextOutput  # noqa: E402
from msam_hf.modeling_msam import MsamVideoOutput  # noqa: E402
from msam_hf.search import EXACT_SEARCH_MAX_VIDEOS  # noqa: E402
from msam_hf.search import VideoIndex  # noqa: E402
from msam_hf.search import faiss  # noqa: E402

FRAMES, DIM = 12, 512
VIDEOS_PER_SITE = 20
CHUNK = 16_384  # videos generated, added and scored per step
CAPTION_FRAME_WEIGHT = 0.35  # cosine of a caption with the frame it describes
OTHER_CANDIDATE_COUNTS = (250, 1000, 2000)


def unit(array: np.ndarray) -> np.ndarray:
    return array / np.linalg.norm(array, axis=-1, keepdims=True)


class SyntheticCollection:
    """Clustered frame features, generated chunk by chunk from a seed (the same chunk every time)."""

    def __init__(self, num_videos: int, seed: int = 0):
        self.num_videos = num_videos
        self.rng = np.random.default_rng(seed)
        spectrum = 1.0 / np.arange(1, DIM + 1, dtype=np.float32)
        self.scale = np.sqrt(spectrum / spectrum.sum() * DIM).astype(np.float32)
        common = self.direction((DIM,))
        num_sites = max(num_videos // VIDEOS_PER_SITE, 1)
        self.sites = unit(0.6 * common + self.direction((num_sites, DIM)))

    def direction(self, shape: tuple, isotropic: bool = False) -> np.ndarray:
        """Unit vectors of the collection's anisotropic Gaussian (or of an isotropic one)."""
        draws = self.rng.standard_normal(shape, dtype=np.float32)
        return unit(draws if isotropic else draws * self.scale)

    def chunk(self, count: int) -> dict[str, np.ndarray]:
        sites = self.sites[self.rng.integers(0, len(self.sites), count)]
        centres = unit(sites + 0.6 * self.direction((count, DIM)))
        drift = np.cumsum(self.direction((count, FRAMES, DIM)), axis=1) / np.sqrt(FRAMES)  # camera motion
        panning = (self.rng.random(count) < 0.1)[:, None, None]
        pans = panning * np.linspace(0, 1, FRAMES, dtype=np.float32)[None, :, None]
        other_sites = self.sites[self.rng.integers(0, len(self.sites), count)][:, None]
        frames = (1 - pans) * centres[:, None] + pans * other_sites + 0.5 * drift
        frames = unit(frames + 0.25 * self.direction((count, FRAMES, DIM)))
        lengths = np.where(self.rng.random(count) < 0.75, FRAMES, self.rng.integers(4, FRAMES, count))
        video_mask = (np.arange(FRAMES)[None] < lengths[:, None]).astype(np.uint8)
        frames = (frames * video_mask[..., None]).astype(np.float16)
        # v̄ as MsamModel.get_video_features computes it for the ciffp head: unit masked mean of the frames
        video_embeds = unit(frames.astype(np.float32).sum(1) / lengths[:, None]).astype(np.float16)
        timestamps = np.broadcast_to(np.arange(FRAMES, dtype=np.float32), (count, FRAMES))
        return {
            "frame_embeds": frames,
            "video_mask": video_mask,
            "video_embeds": video_embeds,
            "timestamps": timestamps,
        }

    def captions(self, frames: np.ndarray, structured_share: float) -> np.ndarray:
        """Caption embeddings for these frames: the frame plus a remainder whose `structured_share` of the energy lies
        along the collection's directions and the rest is isotropic."""
        count = len(frames)
        remainder = np.sqrt(structured_share) * self.direction((count, DIM)) + np.sqrt(
            1 - structured_share
        ) * self.direction((count, DIM), isotropic=True)
        weight = np.sqrt(1 - CAPTION_FRAME_WEIGHT**2)
        return unit(CAPTION_FRAME_WEIGHT * frames.astype(np.float32) + weight * unit(remainder)).astype(np.float32)


def build(collection: SyntheticCollection, directory: Path, model, processor, query_videos: np.ndarray):
    """The index of the collection (timed, generation excluded) and one frame of each query video."""
    seconds, query_frames = 0.0, np.empty((len(query_videos), DIM), np.float16)
    index = VideoIndex.create(directory, model, processor)
    for start in range(0, collection.num_videos, CHUNK):
        chunk = collection.chunk(min(CHUNK, collection.num_videos - start))
        here = (query_videos >= start) & (query_videos < start + CHUNK)
        rows = query_videos[here] - start
        query_frames[here] = chunk["frame_embeds"][rows, collection.rng.integers(0, chunk["video_mask"][rows].sum(1))]
        paths = [f"video_{number:07d}.mp4" for number in range(start, start + len(chunk["video_mask"]))]
        started = time.perf_counter()
        index.add_features(paths, **chunk)
        seconds += time.perf_counter() - started
    started = time.perf_counter()
    index.save()
    return seconds + time.perf_counter() - started, query_frames


def stored_video(index: VideoIndex, row_ids: np.ndarray) -> MsamVideoOutput:
    stored = index._gather(row_ids, ("frame_embeds", "video_mask", "video_embeds"))
    return MsamVideoOutput(
        video_embeds=torch.from_numpy(stored["video_embeds"]).float(),
        frame_embeds=torch.from_numpy(stored["frame_embeds"]).float(),
        video_mask=torch.from_numpy(stored["video_mask"]).long(),
    )


def exhaustive_top10(model: MsamModel, index: VideoIndex, texts: np.ndarray) -> np.ndarray:
    """Row ids of the exact top 10 of the head over every video, for all queries in one pass over the shards."""
    text = MsamTextOutput(text_embeds=torch.from_numpy(texts))
    best_scores = torch.full((len(texts), 10), -torch.inf)
    best_ids = torch.zeros((len(texts), 10), dtype=torch.long)
    for start in range(0, len(index), CHUNK):
        row_ids = index._row_ids[start : start + CHUNK]
        scores = model.similarity(
            text, stored_video(index, row_ids), text_context_size=1, text_chunk_size=len(texts), video_chunk_size=1024
        )
        merged_scores = torch.cat([best_scores, scores], dim=1)
        merged_ids = torch.cat([best_ids, torch.as_tensor(np.array(row_ids)).expand(len(texts), -1)], dim=1)
        best_scores, positions = merged_scores.topk(10, dim=1)
        best_ids = merged_ids.gather(1, positions)
    return best_ids.numpy()


def exhaustive_latency_ms(model: MsamModel, index: VideoIndex, text: np.ndarray) -> float:
    """One query against every video with the head, reading every shard (what search costs without stage 1)."""
    started = time.perf_counter()
    query = MsamTextOutput(text_embeds=torch.from_numpy(text[None]))
    for start in range(0, len(index), CHUNK):
        model.similarity(
            query,
            stored_video(index, index._row_ids[start : start + CHUNK]),
            text_context_size=1,
            video_chunk_size=CHUNK,
        )
    return 1000 * (time.perf_counter() - started)


@contextlib.contextmanager
def one_thread():
    """Queries run on one thread each, as a server runs them (one query per core): a single query's operations are
    too small to split, and two threads spin against each other and anything else on the machine."""
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(torch_threads)


def timed_search(index: VideoIndex, texts: np.ndarray, candidates: int | None = None) -> tuple[list, list[float]]:
    """Row ids of the top 10 of each query, and each query's latency in ms (after a few warm-up queries)."""
    row_of = dict(zip(index.paths, index._row_ids.tolist()))
    found, latencies = [], []
    with one_thread():
        for text in texts[:5]:
            index.search(text, k=10, candidates=candidates)
        for text in texts:
            started = time.perf_counter()
            hits = index.search(text, k=10, candidates=candidates)
            latencies.append(1000 * (time.perf_counter() - started))
            found.append([row_of[hit.path] for hit in hits])
    return found, latencies


def recall_at_10(found: list, truth: np.ndarray) -> float:
    return float(np.mean([len(set(got) & set(true)) / 10 for got, true in zip(found, truth.tolist())]))


def stage1_comparison(index: VideoIndex, texts: np.ndarray, truth: np.ndarray) -> list[str]:
    """Recall and latency with other stage-1 settings, same R and stage 2: the default's key vectors with twice the
    exact re-scoring, and one vector per video (v̄) with and without the random rotation."""
    default_stage1, default_parameters, lines = index._stage1, index.manifest["stage1"], []

    def measure(label: str) -> None:
        found, latencies = timed_search(index, texts)
        lines.append(
            f"{label}: recall@10 {recall_at_10(found, truth):.3f}, p50 {np.percentile(latencies, 50):.1f} ms, "
            f"p95 {np.percentile(latencies, 95):.1f} ms"
        )

    refine = faiss.downcast_index(default_stage1.index)
    refine.k_factor = 2 * default_parameters["k_factor"]
    measure(f"{default_parameters['key_vectors']} key vectors, k_factor {refine.k_factor:.0f}")
    refine.k_factor = default_parameters["k_factor"]
    embeds = index._gather(index._row_ids, ("video_embeds",))["video_embeds"].astype(np.float32)
    training = embeds[np.linspace(0, len(embeds) - 1, min(len(embeds), 65_536)).astype(np.int64)]
    for factory in ("IDMap,PQ128x4fs,Refine(SQfp16)", "IDMap,RR512,PQ128x4fs,Refine(SQfp16)"):
        ann = faiss.index_factory(DIM, factory, faiss.METRIC_INNER_PRODUCT)
        ann.train(training)
        faiss.downcast_index(ann.index).k_factor = 16
        ann.add_with_ids(embeds, index._row_ids)
        index._stage1, index.manifest["stage1"] = ann, {**default_parameters, "key_vectors": 1}
        measure(f"v̄ alone, `{factory}`, k_factor 16")
    index._stage1, index.manifest["stage1"] = default_stage1, default_parameters
    return lines


def statistics_line(index: VideoIndex, texts: np.ndarray, query_videos: np.ndarray) -> str:
    sample = np.arange(min(len(index), 2000))
    stored = index._gather(sample, ("frame_embeds", "video_mask", "video_embeds"))
    frames, mask = stored["frame_embeds"].astype(np.float32), stored["video_mask"].astype(bool)
    pairs = mask[:, :, None] & mask[:, None, :] & ~np.eye(FRAMES, dtype=bool)
    within = np.einsum("vtd,vsd->vts", frames, frames)[pairs]
    embeds = stored["video_embeds"].astype(np.float32)
    between = (embeds[: len(sample) // 2] * embeds[len(sample) // 2 : 2 * (len(sample) // 2)]).sum(1)
    own = index._gather(query_videos[:50], ("frame_embeds",))["frame_embeds"].astype(np.float32)
    best = np.einsum("vtd,vd->vt", own, texts[:50]).max(1)
    return (
        f"cosine of frames within a video {within.mean():.2f}, of two random videos' embeddings "
        f"{between.mean():.2f}, of a caption with its video's best frame {best.mean():.2f}"
    )


@torch.no_grad()
def run(num_videos: int, model: MsamModel, processor, workdir: Path, num_queries: int) -> dict:
    collection = SyntheticCollection(num_videos)
    query_videos = np.sort(collection.rng.choice(num_videos, num_queries, replace=False))
    directory = workdir / f"index-{num_videos}"
    shutil.rmtree(directory, ignore_errors=True)
    build_seconds, query_frames = build(collection, directory, model, processor, query_videos)
    texts = collection.captions(query_frames, structured_share=0.5)
    stress_texts = collection.captions(query_frames, structured_share=0.0)

    index = VideoIndex.load(directory, model, processor)
    result = {
        "N": num_videos,
        "stage1": dict(index.manifest["stage1"]),
        "candidates": index.manifest["candidates"],
        "build_s": build_seconds,
        "memory_mb": (os.path.getsize(directory / index.manifest["stage1_file"]) + index._videos.nbytes) / 1e6,
        "disk_mb": sum(path.stat().st_size for path in directory.rglob("*") if path.is_file()) / 1e6,
    }
    # the exhaustive pass reads every shard first, so the timed queries find the features in the page cache, as a
    # search server that has been running would
    truth, stress_truth = np.split(exhaustive_top10(model, index, np.concatenate([texts, stress_texts])), 2)
    found, latencies = timed_search(index, texts)
    result["p50_ms"], result["p95_ms"] = np.percentile(latencies, 50), np.percentile(latencies, 95)
    result["recall"] = recall_at_10(found, truth)
    result["own_video_found"] = float(np.mean([video in got for video, got in zip(query_videos, found)]))
    result["stress_recall"] = recall_at_10(timed_search(index, stress_texts)[0], stress_truth)
    result["own_video_in_top10"] = float(np.mean([video in true for video, true in zip(query_videos, truth.tolist())]))
    result["by_candidates"] = {}
    for candidates in OTHER_CANDIDATE_COUNTS:
        found, latencies = timed_search(index, texts, candidates)
        result["by_candidates"][candidates] = (recall_at_10(found, truth), *np.percentile(latencies, [50, 95]))
    result["exhaustive_ms"] = statistics.median(exhaustive_latency_ms(model, index, text) for text in texts[:3])
    result["statistics"] = statistics_line(index, texts, query_videos)
    result["comparison"] = stage1_comparison(index, texts, truth) if num_videos > EXACT_SEARCH_MAX_VIDEOS else []
    shutil.rmtree(directory)
    return result


def describe(stage1: dict) -> str:
    if stage1["type"] == "pq-fastscan":
        return f"{stage1['key_vectors']} key vectors: `{stage1['factory']}`, k_factor {stage1['k_factor']}"
    return f"{stage1['key_vectors']} key vectors: exact (`IDMap,Flat`)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="collection sizes N")
    parser.add_argument("--million", action="store_true", help="also N = 1,000,000 (about 13 GB of disk)")
    parser.add_argument("--queries", type=int, default=200, help="queries per collection")
    parser.add_argument("--workdir", type=Path, default=None, help="where the indexes go (default: a temp folder)")
    args = parser.parse_args()
    if faiss is None:
        sys.exit("this benchmark measures the FAISS path: pip install faiss-cpu (or msam-hf[search])")
    sizes = args.sizes + ([1_000_000] if args.million else [])
    torch.manual_seed(0)
    model = MsamModel(MsamConfig(clip_config={**TINY_CLIP_CONFIG, "projection_dim": DIM})).eval()
    processor = default_processor(model.config)
    print(
        f"{os.cpu_count()} CPUs; building and the exhaustive head on {torch.get_num_threads()} threads, queries on "
        f"one thread each; head {model.config.similarity_head} at |J| = 1"
    )

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_search_"))
    results = []
    for num_videos in sizes:
        print(f"N = {num_videos:,} ...", flush=True)
        result = run(num_videos, model, processor, workdir, args.queries)
        results.append(result)
        print(
            f"  {result['statistics']}; the query's own video is in the top 10 for "
            f"{100 * result['own_video_in_top10']:.0f} % of queries with the exhaustive head, "
            f"{100 * result['own_video_found']:.0f} % with the two stages"
        )
        print(
            "  other R: "
            + ", ".join(
                f"R = {count}: recall@10 {recall:.3f}, p50 {p50:.1f} ms, p95 {p95:.1f} ms"
                for count, (recall, p50, p95) in result["by_candidates"].items()
            )
        )
        for line in result["comparison"]:
            print(f"  stage 1 = {line}")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(
        "| N | stage 1 | R | build (s) | memory (MB) | disk (MB) | p50 (ms) | p95 (ms) | recall@10 | "
        "recall@10, stress | exhaustive CIFFP (ms) | × p50 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for result in results:
        print(
            f"| {result['N']:,} | {describe(result['stage1'])} | {result['candidates']} | {result['build_s']:.1f} | "
            f"{result['memory_mb']:,.0f} | {result['disk_mb']:,.0f} | {result['p50_ms']:.1f} | "
            f"{result['p95_ms']:.1f} | {result['recall']:.3f} | {result['stress_recall']:.3f} | "
            f"{result['exhaustive_ms']:,.0f} | {result['exhaustive_ms'] / result['p50_ms']:,.0f} |"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    print(
        f"\n{args.queries} queries per N; recall@10 against the exact top 10 of the same head over every video; "
        f"memory = stage-1 index + video table (shards are memory-mapped); peak RSS of this run {peak:,.0f} MB."
    )


if __name__ == "__main__":
    main()
