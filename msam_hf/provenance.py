"""What a result depends on, recorded next to it: the data's fingerprint and the software and machine it ran on.

Float sums differ between CPUs (Intel and AMD take different MKL kernels) and thread counts, and a weakly trained
model amplifies such differences; a number is only comparable to another with the same data, packages and machine.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import sys
from pathlib import Path
from typing import Any

import datasets
import torch

from .data.torch_dataset import without_video_decoding


def dataset_fingerprint(dataset: datasets.DatasetDict) -> str:
    """SHA-256 (first 16 hex digits) of every split's video ids, captions and video contents (file bytes or embedded
    bytes): two datasets with this fingerprint hold the same examples, wherever their files lie."""
    digest = hashlib.sha256()
    for split in sorted(dataset):
        rows = without_video_decoding(dataset[split].select_columns(["video_id", "video", "captions"]))
        for row in rows:
            digest.update(repr((split, row["video_id"], row["captions"])).encode())
            video = row["video"] or {}
            if video.get("bytes") is not None:
                digest.update(video["bytes"])
            elif video.get("path") and Path(video["path"]).is_file():
                with open(video["path"], "rb") as file:
                    for block in iter(lambda: file.read(1 << 20), b""):
                        digest.update(block)
    return digest.hexdigest()[:16]


def environment() -> dict[str, Any]:
    """The installed packages (as `pip freeze` lists them), Python, the CPU and torch's thread count."""
    packages = sorted(
        {
            f"{distribution.metadata['Name']}=={distribution.version}"
            for distribution in importlib.metadata.distributions()
            if distribution.metadata["Name"]
        },
        key=str.lower,
    )
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "pip_freeze": packages,
    }


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what `platform` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()
