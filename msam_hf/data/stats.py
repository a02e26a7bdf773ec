"""Dataset statistics: videos and captions per split, captions per video, caption lengths in CLIP tokens."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from dataclasses import field

import datasets

# msam.md §1: captions are cut to 32 CLIP tokens, start and end tokens included.
MAX_TEXT_TOKENS = 32
# Histogram bins of caption length in tokens (inclusive upper bounds); CLIP's context is 77.
TOKEN_BINS = (8, 16, 24, 32, 48, 77)


@dataclass
class SplitStatistics:
    name: str
    videos: int
    videos_with_file: int
    captions: int
    captions_per_video: Counter = field(default_factory=Counter)  # captions per video → number of videos
    token_lengths: list[int] = field(default_factory=list)  # one per caption, start/end tokens included

    @property
    def over_limit(self) -> int:
        return sum(1 for length in self.token_lengths if length > MAX_TEXT_TOKENS)


def dataset_statistics(dataset: datasets.DatasetDict, tokenizer=None) -> list[SplitStatistics]:
    """Counts for each split; caption lengths with CLIP's tokenizer (the shipped vocabulary by default)."""
    if tokenizer is None:
        from ..processors import default_tokenizer

        tokenizer = default_tokenizer()
    statistics = []
    for name, split in dataset.items():
        # Read the columns through Arrow: `split["video"]` would copy embedded video bytes into Python.
        table = split.with_format("arrow")
        captions = table["captions"].to_pylist()
        flat = [caption for video_captions in captions for caption in video_captions]
        lengths = [len(ids) for ids in tokenizer(flat, add_special_tokens=True)["input_ids"]] if flat else []
        statistics.append(
            SplitStatistics(
                name=name,
                videos=len(split),
                videos_with_file=len(split) - table["video"].null_count,
                captions=len(flat),
                captions_per_video=Counter(len(video_captions) for video_captions in captions),
                token_lengths=lengths,
            )
        )
    return statistics


def format_statistics(statistics: list[SplitStatistics]) -> str:
    """A plain-text report: a table of splits, captions per video, and a token-length histogram."""
    total = SplitStatistics(
        name="total",
        videos=sum(split.videos for split in statistics),
        videos_with_file=sum(split.videos_with_file for split in statistics),
        captions=sum(split.captions for split in statistics),
        captions_per_video=sum((split.captions_per_video for split in statistics), Counter()),
        token_lengths=[length for split in statistics for length in split.token_lengths],
    )
    rows = statistics + [total]
    over_header = f"> {MAX_TEXT_TOKENS} tokens"
    lines = [f"{'split':<12} {'videos':>8} {'with file':>10} {'captions':>9} {'per video':>10} {over_header:>12}"]
    for split in rows:
        per_video = split.captions / split.videos if split.videos else 0.0
        lines.append(
            f"{split.name:<12} {split.videos:>8,} {split.videos_with_file:>10,} {split.captions:>9,} "
            f"{per_video:>10.2f} {split.over_limit:>12,}"
        )
    lines.append("")
    lines.append(
        "captions per video: "
        + ", ".join(
            f"{count} captions: {videos:,} videos" for count, videos in sorted(total.captions_per_video.items())
        )
    )
    lines.append("")
    lengths = total.token_lengths
    if lengths:
        lines.append(
            f"caption length in CLIP tokens (start/end included): min {min(lengths)}, "
            f"mean {sum(lengths) / len(lengths):.1f}, max {max(lengths)}"
        )
        lines.extend(_histogram(lengths))
        over = total.over_limit
        lines.append(
            f"{over:,} of {len(lengths):,} captions ({100 * over / len(lengths):.2f}%) exceed "
            f"{MAX_TEXT_TOKENS} tokens and are truncated by the processor"
        )
    return "\n".join(lines)


def _histogram(lengths: list[int], width: int = 40) -> list[str]:
    bounds = [(1, TOKEN_BINS[0])] + [(low + 1, high) for low, high in zip(TOKEN_BINS, TOKEN_BINS[1:])]
    bounds.append((TOKEN_BINS[-1] + 1, None))
    counts = [
        sum(1 for length in lengths if low <= length and (high is None or length <= high)) for low, high in bounds
    ]
    largest = max(counts) or 1
    lines = []
    for (low, high), count in zip(bounds, counts):
        label = f"{low}-{high}" if high is not None else f"{low}+"
        bar = "#" * round(width * count / largest)
        lines.append(f"  {label:>7} | {count:>7,} {bar}")
    return lines
