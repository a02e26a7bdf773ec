"""Quiet by default: the commands and the training script show their own progress (decoding, encoding, training
steps) and hide transformers' per-file bars ("Loading weights", "Writing model shards") unless asked (`--verbose`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


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
