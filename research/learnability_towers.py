"""Which tower stalls when the tiny CLIP learns the synthetic benchmark from scratch: swap one for an easy one.

The same data, loss (CLIP's symmetric InfoNCE on frame embeddings averaged over a video's frames), optimiser and
budget as `research/learnability.py`, with either tower replaced:

  --vision vit     the tiny CLIP's vision tower (MSAM's)     --text clip   the tiny CLIP's text tower (MSAM's)
  --vision cnn     a 4-layer CNN, max-pooled over the image  --text bow    a bag of words: mean token embedding
  --vision hist    an MLP on the frame's colour histogram (8 × 8 × 8 bins): sees colours, not shapes or places

and reports test R@1, median rank and in-site R@1 (chance 1 / videos per site) every `--eval_every` epochs.

    python research/learnability_towers.py --vision vit --text clip     # the tiny CLIP
    python research/learnability_towers.py --vision hist --text clip    # the text tower alone has to learn
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from learnability import Split
from learnability import object_name_ceiling
from learnability import videos_per_site
from torch import nn
from transformers import CLIPTextConfig
from transformers import CLIPTextModelWithProjection
from transformers import CLIPVisionConfig
from transformers import CLIPVisionModelWithProjection

from msam_hf import MsamConfig
from msam_hf import default_processor
from msam_hf.configuration_msam import TINY_CLIP_CONFIG
from msam_hf.data import load_video_text_dataset
from msam_hf.data.synthetic import SynthConfig
from msam_hf.data.synthetic import generate_synthetic_dataset
from msam_hf.evaluation import read_ground_truth

EMBEDDING = 128
CLIP_MEAN, CLIP_STD = (0.4815, 0.4578, 0.4082), (0.2686, 0.2613, 0.2758)


class ColourHistogram(nn.Module):
    def __init__(self, bins: int = 8):
        super().__init__()
        self.bins = bins
        self.mlp = nn.Sequential(nn.Linear(bins**3, 256), nn.GELU(), nn.Linear(256, EMBEDDING))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        mean, std = (torch.tensor(values).view(1, 3, 1, 1) for values in (CLIP_MEAN, CLIP_STD))
        levels = ((pixels * std + mean).clamp(0, 1) * (self.bins - 1e-3)).long()  # undo CLIP's normalisation
        cells = (levels[:, 0] * self.bins + levels[:, 1]) * self.bins + levels[:, 2]
        counts = torch.stack([torch.bincount(image.flatten(), minlength=self.bins**3) for image in cells])
        return self.mlp(torch.sqrt(counts.float() / cells[0].numel()))


class SmallCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(3, 64, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(64, 128, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(128, 128, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(128, 256, 3, padding=1),
            nn.GELU(),
        )
        self.projection = nn.Linear(256, EMBEDDING)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.projection(self.layers(pixels).amax(dim=(2, 3)))  # max-pool: a small object is a local peak


class TinyClipVision(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = CLIPVisionModelWithProjection(
            CLIPVisionConfig(**TINY_CLIP_CONFIG["vision_config"], projection_dim=EMBEDDING)
        )

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixels).image_embeds


class BagOfWords(nn.Module):
    def __init__(self, vocabulary_size: int):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary_size, EMBEDDING)
        self.projection = nn.Linear(EMBEDDING, EMBEDDING)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        weights = attention_mask.float().unsqueeze(-1)
        return self.projection((self.embedding(input_ids) * weights).sum(1) / weights.sum(1))


class TinyClipText(nn.Module):
    def __init__(self, processor):
        super().__init__()
        tokenizer = processor.tokenizer
        self.model = CLIPTextModelWithProjection(
            CLIPTextConfig(
                **TINY_CLIP_CONFIG["text_config"],
                projection_dim=EMBEDDING,
                eos_token_id=tokenizer.eos_token_id,
                bos_token_id=tokenizer.bos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).text_embeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, default=None, help="default: learnability.py's 1000-video folder")
    parser.add_argument("--vision", choices=("vit", "cnn", "hist"), default="vit")
    parser.add_argument("--text", choices=("clip", "bow"), default="clip")
    parser.add_argument("--max_frames", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--num_epochs", type=int, default=24)
    parser.add_argument("--eval_every", type=int, default=4)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.captions = "real"  # what learnability.Split reads
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    data_dir = args.data_dir or Path(tempfile.gettempdir()) / "msam-learnability" / "1000-4s-x1"
    if not (data_dir / "synth_config.json").is_file():
        generate_synthetic_dataset(data_dir, SynthConfig(num_videos=1000, duration=4.0), overwrite=True)
    truth, dataset = read_ground_truth(data_dir), load_video_text_dataset(data_dir)
    processor = default_processor(MsamConfig.tiny(max_frames=args.max_frames))
    train, test = (Split(dataset[name], processor, args, truth) for name in ("train", "test"))
    print(
        f"{args.vision} + {args.text}: {len(train.ids)} train / {len(test.ids)} test videos; in-site chance "
        f"{100 / videos_per_site(truth):.0f} %, with a perfect object recogniser {object_name_ceiling(test, truth):.1f} %"
    )

    vision = {"vit": TinyClipVision, "cnn": SmallCnn, "hist": ColourHistogram}[args.vision]()
    text = TinyClipText(processor) if args.text == "clip" else BagOfWords(len(processor.tokenizer))
    log_scale = nn.Parameter(torch.tensor(np.log(1 / 0.07), dtype=torch.float32))  # CLIP's initial temperature
    parameters = [*vision.parameters(), *text.parameters(), log_scale]
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p in parameters if p.dim() > 1], "weight_decay": 0.2},
            {"params": [p for p in parameters if p.dim() <= 1], "weight_decay": 0.0},
        ],
        lr=args.learning_rate,
        betas=(0.9, 0.98),
        eps=1e-6,
    )
    total = args.num_epochs * (len(train.ids) // args.batch_size)
    warmup = max(1, total // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: step / warmup if step < warmup else 0.5 * (1 + np.cos(np.pi * (step - warmup) / (total - warmup))),
    )

    def encode_videos(pixels, masks):
        frames = F.normalize(vision(pixels.flatten(0, 1)), dim=-1).view(*masks.shape, -1)
        return F.normalize((frames * masks[..., None]).sum(1) / masks.sum(1, keepdim=True), dim=-1)

    def encode_texts(captions):
        tokens = processor(text=captions, return_tensors="pt")
        return F.normalize(text(tokens["input_ids"], tokens["attention_mask"]), dim=-1)

    @torch.no_grad()
    def in_site_retrieval(split: Split) -> tuple[float, float, float]:
        vision.eval(), text.eval()
        captions = [caption for captions in split.captions for caption in captions]
        owners = torch.tensor([index for index, captions in enumerate(split.captions) for _ in captions])
        videos = torch.cat(
            [
                encode_videos(split.pixels[start : start + 100], split.masks[start : start + 100])
                for start in range(0, len(split.ids), 100)
            ]
        )
        scores = encode_texts(captions) @ videos.T
        vision.train(), text.train()
        return split.rank_metrics(scores, owners)

    started = time.perf_counter()
    for epoch in range(args.num_epochs):
        losses = []
        for batch in train.batches(args.batch_size, False, rng):
            captions = [train.captions[index][rng.integers(len(train.captions[index]))] for index in batch]
            logits = (
                log_scale.exp().clamp(max=100)
                * encode_texts(captions)
                @ encode_videos(train.pixels[batch], train.masks[batch]).T
            )
            targets = torch.arange(len(batch))
            loss = (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step(), scheduler.step(), optimizer.zero_grad()
            losses.append(loss.item())
        if (epoch + 1) % args.eval_every == 0 or epoch == args.num_epochs - 1:
            r1, median_rank, in_site = in_site_retrieval(test)
            print(
                f"epoch {epoch + 1}: {time.perf_counter() - started:.0f} s, loss {np.mean(losses):.3f}, test R@1 "
                f"{r1:.1f} %, MdR {median_rank:g}, in-site R@1 {in_site:.1f} %, train in-site "
                f"{in_site_retrieval(train)[2]:.1f} %",
                flush=True,
            )


if __name__ == "__main__":
    main()
