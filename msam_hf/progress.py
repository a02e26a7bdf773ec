"""Progress of long work. Quiet by default: the commands and the training script show their own progress
(decoding, encoding, training steps) and hide transformers' per-file bars ("Loading weights", "Writing model shards")
unless asked (`--verbose`); work over many items runs in processes with one bar (`map_with_progress`)."""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from functools import partial
from typing import Any


@contextlib.contextmanager
def transformers_progress_bars(enabled: bool) -> Iterator[None]:
    """Within the block, transformers' progress bars are on or off as `enabled` says; outside, as they were."""
    from transformers.utils import logging as transformers_logging

    were_enabled = transformers_logging.is_progress_bar_enabled()
    (transformers_logging.enable_progress_bar if enabled else transformers_logging.disable_progress_bar)()
    try:
        yield
    finally:
        (transformers_logging.enable_progress_bar if were_enabled else transformers_logging.disable_progress_bar)()


def map_with_progress(
    function: Callable[[Any], Any],
    items: Iterable[Any],
    num_workers: int,
    progress: bool = True,
    description: str | None = None,
    unit: str = "it",
    chunksize: int = 1,
) -> list[Any]:
    """`[function(item) for item in items]`, in order, with a progress bar: in `num_workers` processes, or in this
    one for 0 or 1. Workers fork where the platform can, so they inherit the modules already imported (spawning
    would import torch and transformers again in each)."""
    from tqdm.auto import tqdm  # here: the `msam` command imports this module at start-up

    items = list(items)
    bar = partial(tqdm, total=len(items), desc=description, unit=unit, disable=not progress)
    if num_workers <= 1:
        return [function(item) for item in bar(items)]
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with context.Pool(num_workers) as pool:
        return list(bar(pool.imap(function, items, chunksize=chunksize)))
