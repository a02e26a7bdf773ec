"""Why the tiny model trained from scratch does not learn the synthetic benchmark's objects: a fast probe.

Generates (or reuses) a synthetic dataset, decodes it once and keeps the processed frames in memory, then trains the
tiny MSAM in-process (no data loading per step) and reports every two epochs the test split's text-to-video R@1,
median rank and **in-site R@1**: the rank of a caption's video among the videos of its own site, where the
background is shared and only the objects decide (chance: 1 / videos per site). Next to chance it prints the in-site
R@1 of a perfect recogniser of the objects the captions name: how much the captions let objects decide at all.
Variants isolate the cause:

  --captions real        the benchmark's captions
  --captions colour      only the captions that name a colour (their phrasing, terrain words and synonyms kept)
  --captions real+listing  the benchmark's captions, the fifth replaced by a listing of every object's colour and kind
  --captions oracle-one  one caption per object, "<colour> <kind>", written from the ground truth
  --captions oracle-all  one caption listing every object's colour and kind, from the ground truth
  --site_batches         batches of whole sites, so in-batch negatives share the background
  --object_scale 1.6     objects 1.6 × larger (`msam data synth --object-scale`)
  --attribute_loss       MCSAN's attribute objective on MSAM, vocabulary mined from the training captions
  --pretrain_data DIR    first train on another synthetic corpus (`msam data synth DIR --seed 1`) with listing
                         captions, then on the benchmark: a backbone pretrained elsewhere, as CLIP is

    python research/learnability.py --num_videos 1000 --captions real
    python research/learnability.py --num_videos 1000 --captions oracle-all
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from datasets import concatenate_datasets

from msam_hf import MsamConfig
from msam_hf import MsamModel
from msam_hf import default_processor
from msam_hf.data import load_video_text_dataset
from msam_hf.data.attributes import mine_attributes
from msam_hf.data.synthetic import SynthConfig
from msam_hf.data.synthetic import generate_synthetic_dataset
from msam_hf.data.synthetic.captions import GROUP_NOUNS
from msam_hf.data.synthetic.captions import NOUNS
from msam_hf.data.synthetic.captions import PERSON_NOUNS
from msam_hf.data.synthetic.scene import ENTITY_KINDS
from msam_hf.evaluation import read_ground_truth
from msam_hf.optimization import build_optimizer_and_scheduler
from msam_hf.video_io import read_frames

CAPTION_VARIANTS = ("real", "colour", "real+listing", "oracle-one", "oracle-all")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data_dir", type=Path, default=None, help="default: a folder under /tmp named by the data options"
    )
    parser.add_argument("--num_videos", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--object_scale", type=float, default=1.0)
    parser.add_argument("--captions", choices=CAPTION_VARIANTS, default="real")
    parser.add_argument("--site_batches", action="store_true")
    parser.add_argument("--attribute_loss", action="store_true")
    parser.add_argument("--similarity_head", default="mean")
    parser.add_argument("--max_frames", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--num_epochs", type=int, default=20)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--pretrain_data",
        type=Path,
        default=None,
        help="first train on all videos of this synthetic folder (another seed: other places and "
        "objects) with captions listing every object, as CLIP is pretrained on other data",
    )
    parser.add_argument("--pretrain_epochs", type=int, default=16)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    data_name = f"{args.num_videos}-{args.duration:g}s-x{args.object_scale:g}"
    data_dir = args.data_dir or Path(tempfile.gettempdir()) / "msam-learnability" / data_name
    if not (data_dir / "synth_config.json").is_file():
        generate_synthetic_dataset(
            data_dir,
            SynthConfig(num_videos=args.num_videos, duration=args.duration, object_scale=args.object_scale),
            overwrite=True,
        )
    truth = read_ground_truth(data_dir)
    dataset = load_video_text_dataset(data_dir)
    vocabulary = None
    if args.attribute_loss:
        vocabulary = mine_attributes([caption for captions in dataset["train"]["captions"] for caption in captions])
    model = MsamModel(
        MsamConfig.tiny(
            similarity_head=args.similarity_head,
            semantic_loss=False,
            max_frames=args.max_frames,
            attribute_vocabulary=vocabulary.levels if vocabulary else None,
        )
    )
    processor = default_processor(model.config)
    started = time.perf_counter()
    train, test = (Split(dataset[name], processor, args, truth) for name in ("train", "test"))
    print(
        f"decoded {len(train.ids)} train and {len(test.ids)} test videos in {time.perf_counter() - started:.0f} s; "
        f"test chance R@1 {100 / len(test.ids):.1f} %, in-site {100 / videos_per_site(truth):.0f} %, in-site with "
        f"a perfect object recogniser {object_name_ceiling(test, truth):.1f} %"
    )

    if args.pretrain_data is not None:
        corpus = load_video_text_dataset(args.pretrain_data)
        pretrain = Split(
            concatenate_datasets([corpus[name] for name in corpus]),
            processor,
            args,
            read_ground_truth(args.pretrain_data),
            variant="oracle-all",
        )
        print(f"pretraining on all {len(pretrain.ids)} videos of {args.pretrain_data} (captions listing every object)")
        train_epochs(model, processor, pretrain, test, args, args.pretrain_epochs, rng)
        print("fine-tuning on the benchmark")
    train_epochs(model, processor, train, test, args, args.num_epochs, rng, vocabulary)


def train_epochs(
    model, processor, train: Split, test: Split, args, num_epochs: int, rng: np.random.Generator, vocabulary=None
) -> None:
    """Train on one split with a fresh warm-up + cosine schedule; report on the test split every two epochs."""
    steps_per_epoch = len(train.ids) // args.batch_size
    optimizer, scheduler = build_optimizer_and_scheduler(
        model,
        steps_per_epoch * num_epochs,
        learning_rate=args.learning_rate,
        backbone_lr_coefficient=1.0,
        weight_decay=0.2,
        betas=(0.9, 0.98),
        eps=1e-6,
        warmup_ratio=0.1,
    )
    started = time.perf_counter()
    for epoch in range(num_epochs):
        losses = []
        for batch in train.batches(args.batch_size, args.site_batches, rng):
            captions = [train.captions[index][rng.integers(len(train.captions[index]))] for index in batch]
            text = processor(text=captions, return_tensors="pt")
            labels = {}
            if vocabulary is not None:  # a video's labels: the union over all its captions
                labels = {
                    "attribute_labels": torch.from_numpy(vocabulary.labels(captions)).float(),
                    "video_attribute_labels": torch.stack(
                        [torch.from_numpy(vocabulary.labels(train.captions[index]).max(0)).float() for index in batch]
                    ),
                }
            output = model(
                input_ids=text["input_ids"],
                attention_mask=text["attention_mask"],
                pixel_values_videos=train.pixels[batch],
                video_mask=train.masks[batch],
                return_loss=True,
                **labels,
            )
            output.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(output.loss.item())
        if epoch % 2 == 1 or epoch == num_epochs - 1:
            r1, median_rank, in_site = test.retrieval(model, processor)
            print(
                f"epoch {epoch + 1}: {time.perf_counter() - started:.0f} s, loss {np.mean(losses):.3f}, test R@1 "
                f"{r1:.1f} %, MdR {median_rank:g}, in-site R@1 {in_site:.1f} %",
                flush=True,
            )


def object_name_ceiling(split: Split, truth: dict) -> float:
    """In-site R@1 (%) of a perfect recogniser of the objects a caption names: its video ranks among the site's videos
    that hold every named kind (with its colour when named), ties broken at random. Actions, relations and counts
    are ignored, so a model that also reads them can exceed it."""
    kinds_of_noun: dict[str, set[str]] = {}
    for kind, nouns in NOUNS.items():
        for noun in nouns:
            kinds_of_noun.setdefault(noun.split()[-1], set()).add(kind)
    for noun in (*PERSON_NOUNS, *GROUP_NOUNS, "group"):
        kinds_of_noun[noun] = {"people"}
    colours = {colour for spec in ENTITY_KINDS.values() for colour in spec["colours"]}

    def named_objects(caption: str) -> list[tuple[str | None, set[str]]]:
        words = re.findall(r"[a-z]+", re.sub(r"\bcar park\b", "parking lot", caption))
        named = [(None, kinds_of_noun[word]) for word in words if word in kinds_of_noun]
        for index, word in enumerate(words):
            if word in colours:  # "a red car"; "people in red"; "a house with a red roof"
                after = [w for w in words[index + 1 : index + 4] if w in kinds_of_noun]
                before = [w for w in reversed(words[max(0, index - 4) : index]) if w in kinds_of_noun]
                clothing = words[index - 1] in ("in", "wearing")
                noun = next(iter(before if clothing else after), None) or next(
                    iter(after if clothing else before), None
                )
                if noun is not None:
                    named.append((word, kinds_of_noun[noun]))
        return named

    def holds(video_id: str, named: list[tuple[str | None, set[str]]]) -> bool:
        return all(
            any(
                entity["kind"] in kinds and colour in (None, entity["colour"]) for entity in truth[video_id]["entities"]
            )
            for colour, kinds in named
        )

    scores = []
    for index, captions in enumerate(split.captions):
        site = np.flatnonzero(split.sites == split.sites[index])
        for caption in captions:
            named = named_objects(caption)
            matching = [other for other in site if holds(split.ids[other], named)]
            scores.append(1 / len(matching) if index in matching else 0.0)
    return 100 * float(np.mean(scores))


def videos_per_site(truth: dict) -> float:
    sites = [record["site_id"] for record in truth.values()]
    return len(sites) / len(set(sites))


class Split:
    """One split's frames (processed once), captions (of the chosen variant) and sites."""

    def __init__(self, rows, processor, args, truth: dict, variant: str | None = None):
        self.ids = list(rows["video_id"])
        clips = [read_frames(row["video"], max_frames=args.max_frames).frames for row in rows]
        inputs = processor(videos=clips, return_tensors="pt")
        self.pixels, self.masks = inputs["pixel_values_videos"], inputs["video_mask"]
        self.sites = np.array([truth[video_id]["site_id"] for video_id in self.ids])
        self.captions = [
            variant_captions(variant or args.captions, captions, truth[video_id]["entities"])
            for video_id, captions in zip(self.ids, rows["captions"])
        ]

    def batches(self, batch_size: int, site_batches: bool, rng: np.random.Generator) -> list[np.ndarray]:
        if site_batches:  # whole sites in random order, then cut into batches
            sites = rng.permutation(np.unique(self.sites))
            order = np.concatenate([rng.permutation(np.flatnonzero(self.sites == site)) for site in sites])
        else:
            order = rng.permutation(len(self.ids))
        return [order[start : start + batch_size] for start in range(0, len(order) - batch_size + 1, batch_size)]

    @torch.no_grad()
    def retrieval(self, model, processor) -> tuple[float, float, float]:
        model.eval()
        captions = [caption for captions in self.captions for caption in captions]
        owners = torch.tensor([index for index, captions in enumerate(self.captions) for _ in captions])
        text = processor(text=captions, return_tensors="pt")
        scores = model.similarity(
            model.get_text_features(text["input_ids"], text["attention_mask"]),
            model.get_video_features(self.pixels, self.masks),
            text_context_size=1,
        )
        model.train()
        return self.rank_metrics(scores, owners)

    def rank_metrics(self, scores: torch.Tensor, owners: torch.Tensor) -> tuple[float, float, float]:
        """Test R@1 (%), median rank and in-site R@1 (%) of captions × videos `scores`; `owners[i]` is caption i's
        video."""
        beaten = scores > scores[torch.arange(len(owners)), owners][:, None]  # ties count for the caption
        same_site = torch.from_numpy(self.sites[owners.numpy()][:, None] == self.sites[None, :])
        ranks, in_site_ranks = beaten.sum(1), (beaten & same_site).sum(1)
        return (
            100 * (ranks == 0).float().mean().item(),
            ranks.float().median().item() + 1,
            100 * (in_site_ranks == 0).float().mean().item(),
        )


def variant_captions(variant: str, captions: list[str], entities: list[dict]) -> list[str]:
    colours = {entity["colour"] for entity in entities}
    if variant == "colour":  # videos without such a caption keep their first one
        return [caption for caption in captions if colours & set(re.findall(r"[a-z]+", caption))] or captions[:1]
    listing = ", ".join(f"{entity['colour']} {entity['kind']}" for entity in entities)
    if variant == "real+listing":
        return list(captions[:-1]) + [listing]
    if variant == "oracle-one":
        return [f"{entity['colour']} {entity['kind']}" for entity in entities]
    if variant == "oracle-all":
        return [listing]
    return list(captions)


if __name__ == "__main__":
    main()
