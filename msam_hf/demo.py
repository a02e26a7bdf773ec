"""`make demo`: build a tiny MSAM, save it, reload it in a fresh process through `AutoModel` with
`trust_remote_code=True`, and score a few videos against a few captions.

The model has random weights until training lands in this demo; the point here is the path a user's model takes
from `save_pretrained` to the Hub loader and back.
"""

import argparse
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from . import MsamConfig, MsamModel, default_processor

CAPTIONS = [
    "a white boat passes under a bridge",
    "a red car drives along a road beside the lake",
    "people walk across a green park",
    "aerial view of roofs in a dense town",
]

SCORE_IN_FRESH_PROCESS = textwrap.dedent(
    """
    import sys
    import numpy as np
    import torch
    from transformers import AutoModel, AutoProcessor

    model_dir, captions = sys.argv[1], sys.argv[2:]
    model = AutoModel.from_pretrained(model_dir, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(model_dir, trust_remote_code=True)
    rng = np.random.default_rng(0)
    videos = [rng.integers(0, 256, (frames, 90, 160, 3), dtype=np.uint8) for frames in (12, 8, 5, 10)]
    inputs = processor(text=captions, videos=videos, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs, text_context_size=1).logits_per_text
    print(f"loaded {type(model).__name__} from {type(model).__module__} (msam_hf imported: "
          f"{any(name.startswith('msam_hf') for name in sys.modules)})\\n")
    print("| caption | " + " | ".join(f"video {index}" for index in range(len(videos))) + " |")
    print("|---|" + "---|" * len(videos))
    for caption, row in zip(captions, logits.tolist()):
        print(f"| {caption} | " + " | ".join(f"{score:.2f}" for score in row) + " |")
    """
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output_dir", type=Path, default=Path("demo_output"))
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    config = MsamConfig.tiny()
    model = MsamModel(config)
    model_dir = args.output_dir / "msam-tiny"
    model.save_pretrained(model_dir)
    default_processor(config).save_pretrained(model_dir)
    files = sorted(path.name for path in model_dir.iterdir())
    print(f"saved a tiny MSAM ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters, "
          f"head {config.similarity_head}) to {model_dir}: {', '.join(files)}")
    print("scoring 4 random videos against 4 captions in a fresh process, |J| = 1 (independent queries):\n")
    subprocess.run([sys.executable, "-c", SCORE_IN_FRESH_PROCESS, str(model_dir), *CAPTIONS], check=True)


if __name__ == "__main__":
    main()
