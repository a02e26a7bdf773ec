"""The synthetic drone-video retrieval benchmark (`msam data synth`): scenes with ground truth (`scene`, `events`),
their rendering to H.264 (`render`), captions written from the ground truth (`captions`), the dataset writer
(`generator`), the baselines that check the benchmark cannot be solved without the objects (`baselines`), and the
ground truth in the attribute miner's terms (`ground_truth`). The readers, the models and training never import it."""

from .generator import SynthConfig
from .generator import generate_synthetic_dataset

__all__ = ["SynthConfig", "generate_synthetic_dataset"]
