"""Attribute mining for MCSAN: per-level vocabularies from training captions, and multi-hot labels.

- **entity**: nouns (lemmas), e.g. "car", "lake";
- **action**: verbs (lemmas), e.g. "drive", "park";
- **relationship**: noun–preposition–noun ("car beside lake", multi-word prepositions normalised: "to the left of"
  → "left of") and subject–verb–object ("car approach house") patterns, as "subject predicate object" lemmas.

Part of speech comes from spaCy when an English pipeline (`en_core_web_*`) is installed, else from a lexicon tagger:
lemminflect's lexicon (the NIH SPECIALIST lexicon, shipped inside its PyPI wheel: a word's possible parts of speech
and lemmas) for open-class words, the closed-class words below, and a few context rules that choose among a word's
possible tags ("a red car": an adjective before a noun; "a car parks": an inflected verb after its subject). No
model or data is downloaded at run time. Both taggers yield (word, lemma, tag) sequences and the same surface
patterns extract the attributes from either, so the vocabulary records which tagger mined it and labels are made
with the same one.

Choices the paper leaves open (documented in docs/model.md, MCSAN):

- a vocabulary keeps a level's most frequent attributes by *caption* frequency (ties alphabetical), at least
  `min_count` captions each; sizes per level are configurable (512 / 256 / 256 by default, as design/mcsan.md);
- words that describe the footage rather than its content are not attributes (`STOP_LEMMAS`: "view", "footage",
  "drone", "camera", "see", ...), nor are auxiliaries; "of" is not a relationship predicate (partitive / possessive:
  "a group of people");
- a noun–noun compound counts by its head ("parking lot" → "lot"); the lexicon tagger takes a participle before a
  noun for a modifier, not an action ("a parked car"; spaCy decides by its own model);
- a relationship's subject is the nearest noun before the preposition or verb; its object is the head of the noun
  phrase right after it;
- a caption's labels are the vocabulary's attributes it contains; a video's are the union over its captions.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import re
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import numpy as np

from ..configuration_mcsan import ATTRIBUTE_LEVELS
from ..configuration_mcsan import DEFAULT_ATTRIBUTE_VOCABULARY_SIZES
from ..configuration_msam import attribute_slices

logger = logging.getLogger(__name__)

VOCABULARY_FORMAT = "msam-attribute-vocabulary"
TAGGER_CHOICES = ("auto", "lexicon", "spacy")
SPACY_PIPELINES = ("en_core_web_sm", "en_core_web_md", "en_core_web_lg", "en_core_web_trf")

# Lemmas about the footage, not its content: the medium, directions in the frame, verbs of perceiving it.
STOP_LEMMAS = frozenset(
    {
        "view",
        "footage",
        "shot",
        "video",
        "clip",
        "image",
        "picture",
        "scene",
        "frame",
        "drone",
        "camera",
        "aerial",
        "left",
        "right",
        "top",
        "bottom",
        "up",
        "down",
        "see",
        "show",
        "film",
        "capture",
        "record",
        "look",
        "be",
        "have",
        "do",
    }
)
STOP_PREDICATES = frozenset({"of"})

# Closed-class words (not in lemminflect's open-class lexicon), by Universal Dependencies tag.
CLOSED_CLASS = {
    "DET": "a an the this that these those some any each every another no all both either neither its their his her "
    "our my your such",
    "NUM": "one two three four five six seven eight nine ten eleven twelve dozen",
    "PRON": "i we you he she it they me us him them there something someone anyone everything which who what",
    "ADP": "about above across after against along alongside amid among amongst around at before behind below "
    "beneath beside between beyond by during for from in inside into near of off on onto opposite outside "
    "over past through throughout to toward towards under underneath upon via with within without",
    "CCONJ": "and or but nor",
    "SCONJ": "as while when where because if than whereas",
    "AUX": "am is are was were be been being do does did have has had can could will would shall should may might must",
    "PART": "not",
}
CLOSED_TAGS = {word: tag for tag, words in CLOSED_CLASS.items() for word in words.split()}
MODALS = frozenset("can could will would shall should may might must".split())
# Multi-word prepositions, longest first when matched, and the predicate each one normalises to.
MULTIWORD_PREPOSITIONS = {
    "to the left of": "left of",
    "on the left of": "left of",
    "left of": "left of",
    "to the right of": "right of",
    "on the right of": "right of",
    "right of": "right of",
    "in front of": "in front of",
    "on top of": "on top of",
    "in the middle of": "in the middle of",
    "next to": "next to",
    "close to": "close to",
    "near to": "near",
    "away from": "away from",
    "out of": "out of",
    "on both sides of": "on both sides of",
    "at the edge of": "at the edge of",
}
_PREPOSITION_PATTERNS = sorted(
    ((tuple(key.split()), value) for key, value in MULTIWORD_PREPOSITIONS.items()), key=lambda item: -len(item[0])
)
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+")


@dataclass(frozen=True)
class TaggedWord:
    """One word of a caption: its lower-case text, lemma and Universal Dependencies part-of-speech tag."""

    text: str
    lemma: str
    pos: str


Tagger = Callable[[str], list[TaggedWord]]


class LexiconTagger:
    """Part of speech from lemminflect's lexicon plus closed-class words and context rules (see the module doc)."""

    def __init__(self):
        import lemminflect

        self._lemminflect = lemminflect
        self.name = f"lexicon (lemminflect {importlib.metadata.version('lemminflect')})"

    def __call__(self, caption: str) -> list[TaggedWord]:
        words = _WORD.findall(caption.lower())
        candidates = [self._candidates(word) for word in words]
        tagged: list[TaggedWord] = []
        for index, (word, options) in enumerate(zip(words, candidates)):
            following = candidates[index + 1] if index + 1 < len(words) else {}
            # the next word may be an inflected verb ("stands", "parks"): then this word ends a noun phrase
            verb_follows = "VERB" in following and following["VERB"] != words[index + 1]
            if any(
                tuple(words[index + 1 : index + 1 + len(pattern)]) == pattern for pattern, _ in _PREPOSITION_PATTERNS
            ):
                following = {"ADP": words[index + 1]}  # "house right of car": a preposition follows, not an adjective
            opener = next((earlier.pos for earlier in reversed(tagged) if earlier.pos != "ADJ"), None)
            after_determiner = opener in ("DET", "NUM")  # inside "a white ...", "two red ..."
            tag = self._choose(word, options, tagged[-1] if tagged else None, following, verb_follows, after_determiner)
            tagged.append(TaggedWord(word, options.get(tag, word), tag))
        return tagged

    def _candidates(self, word: str) -> dict[str, str]:
        """Possible tags of a word → the lemma under each tag."""
        if word in CLOSED_TAGS:
            return {CLOSED_TAGS[word]: word}
        if word.isdigit():
            return {"NUM": word}
        lemmas = {tag: list(values) for tag, values in self._lemminflect.getAllLemmas(word).items() if tag != "AUX"}
        lemmas.pop("PROPN", None)
        if not lemmas:  # out of the lexicon: guess from the ending
            tag = (
                "VERB" if word.endswith(("ing", "ed")) else "ADV" if word.endswith(("ly", "ward", "wards")) else "NOUN"
            )
            lemmas = {tag: list(self._lemminflect.getAllLemmasOOV(word, tag).get(tag, (word,)))}
        elif word.endswith("ing") and "VERB" not in lemmas:  # the lexicon lists some gerunds as nouns only ("jogging")
            lemmas["VERB"] = list(self._lemminflect.getAllLemmasOOV(word, "VERB").get("VERB", (word,)))
        if len(lemmas.get("NOUN", ())) > 1:  # "leaves": the noun lemma that is not the verb's ("leaf", not "leave")
            lemmas["NOUN"] = [lemma for lemma in lemmas["NOUN"] if lemma not in lemmas.get("VERB", ())] or lemmas[
                "NOUN"
            ]
        return {tag: values[0] for tag, values in lemmas.items()}

    def _choose(
        self,
        word: str,
        options: dict[str, str],
        previous: TaggedWord | None,
        following: dict[str, str],
        verb_follows: bool = False,
        after_determiner: bool = False,
    ) -> str:
        if len(options) == 1:
            tag = next(iter(options))
            # A participle between a determiner / adjective and a noun modifies it: "the parking lot".
            if (
                tag == "VERB"
                and word.endswith(("ing", "ed"))
                and "NOUN" in following
                and previous is not None
                and previous.pos in ("DET", "NUM", "ADJ", "ADP")
            ):
                return "ADJ"
            return tag
        before = previous.pos if previous is not None else None
        noun_follows = "NOUN" in following or "ADJ" in following  # a noun, or more adjectives before it
        participle = "VERB" in options and word.endswith(("ing", "ed"))
        inflected_verb = "VERB" in options and options["VERB"] != word
        # A gradable adjective ("red": "redder") stays one without a noun after it ("in red", "wearing red"); a
        # noun the lexicon also lists as an adjective ("house") does not.
        gradable = "ADJ" in options and "JJR" in self._lemminflect.getAllInflections(word, upos="ADJ")
        if "NOUN" in options and following.get("ADP") == "of":  # "a drone shot of", "a group of"
            return "NOUN"
        if before in ("AUX", "PART"):  # "is parked", "can see", "is not moving", "is red"
            if "VERB" in options and (participle or previous.text in MODALS):
                return "VERB"
            for tag in ("ADJ", "VERB", "ADV", "NOUN"):
                if tag in options:
                    return tag
        if before in ("NOUN", "PRON") and inflected_verb:  # "a car parks", "people walking"
            return "VERB"
        if before == "VERB":  # "turns left", "standing still", "wearing red", "approaching the house"
            for tag in ("ADV", "ADJ", "NOUN"):
                if tag in options and (tag != "ADJ" or gradable or noun_follows):
                    return tag
        if after_determiner and before in ("DET", "NUM", "ADJ") and "NOUN" in options and not noun_follows:
            return "NOUN"  # "a white building next to", "the crossing": in a noun phrase, not a verb
        if "ADJ" in options and ((noun_follows and (gradable or not verb_follows)) or (before == "ADP" and gradable)):
            return "ADJ"  # "a red car", "in blue"; but "on the left", "the purple home", "beside house", "a house
            # stands"
        if participle and (before not in ("DET", "NUM", "ADJ") or not noun_follows):
            return "VERB"  # "people in blue jogging"; but "the running track"
        for tag in ("NOUN", "ADJ", "VERB", "ADV"):
            if tag in options:
                return tag
        return next(iter(options))


class SpacyTagger:
    """Part of speech and lemmas from an installed spaCy pipeline."""

    def __init__(self, nlp):
        self.nlp = nlp
        self.name = f"spacy ({nlp.meta['lang']}_{nlp.meta['name']} {nlp.meta['version']})"

    def __call__(self, caption: str) -> list[TaggedWord]:
        return [
            TaggedWord(token.lower_, token.lemma_.lower(), "NOUN" if token.pos_ == "PROPN" else token.pos_)
            for token in self.nlp(caption.lower())
            if not (token.is_punct or token.is_space)
        ]


def installed_spacy_pipelines() -> list[str]:
    """English spaCy pipelines installed here (none without spaCy): `SPACY_PIPELINES` first, then any other `en_*`
    package (a re-packaged pipeline keeps the prefix)."""
    try:
        import spacy.util
    except ImportError:
        return []
    installed = spacy.util.get_installed_models()
    known = [name for name in SPACY_PIPELINES if name in installed]
    return known + sorted(name for name in installed if name.startswith("en_") and name not in known)


def load_tagger(name: str = "auto") -> Tagger:
    """A tagger by name: `"auto"` (spaCy when an English pipeline is installed, else the lexicon), `"lexicon"`,
    `"spacy"` (the first installed English pipeline) or `"spacy:PIPELINE"`; a vocabulary's recorded tagger name
    (`"spacy (en_core_web_sm 3.8.0)"`, `"lexicon (...)"`) loads the same kind."""
    kind, _, pipeline = name.partition(":")
    kind = kind.split(" ")[0]
    if name.startswith("spacy ("):
        pipeline = name.split("(")[1].split(" ")[0]
    if kind not in TAGGER_CHOICES:
        raise ValueError(f"unknown tagger {name!r}; choose one of {', '.join(TAGGER_CHOICES)} or spacy:PIPELINE")
    pipelines = installed_spacy_pipelines()
    if kind == "lexicon" or (kind == "auto" and not pipelines):
        return LexiconTagger()
    pipeline = pipeline or (pipelines[0] if pipelines else "")
    try:
        import spacy

        return SpacyTagger(spacy.load(pipeline, exclude=["ner"]))
    except (ImportError, OSError) as error:
        raise ValueError(
            f"tagger {name!r} needs spaCy with an English pipeline installed ({error}); install one "
            "(`pip install spacy` plus an en_core_web_* package) or use --tagger lexicon."
        ) from error


def extract_attributes(
    tagged: Sequence[TaggedWord],
    stop_lemmas: frozenset[str] = STOP_LEMMAS,
    stop_predicates: frozenset[str] = STOP_PREDICATES,
) -> dict[str, list[str]]:
    """Entities, actions and relationships of one tagged caption, each in order of appearance, without repeats."""
    words = [word.text for word in tagged]
    tags = [word.pos for word in tagged]
    entities, actions, relationships = [], [], []
    subject: str | None = None  # the nearest noun so far (head lemma), or the clause's subject once a verb follows it
    anchored = False  # a verb followed `subject`: later phrases of the clause attach to it ("a car parked by the
    # lake near the house" → car by lake, car near house)
    pending_verb: str | None = None  # a verb after `subject`, waiting for a direct object
    index = 0
    while index < len(tagged):
        match = _preposition_at(words, tags, index)
        if match is not None:
            length, predicate = match
            head = _noun_phrase_head(tagged, index + length)
            if subject and head and head[0] not in stop_lemmas and predicate not in stop_predicates:
                relationships.append(f"{subject} {predicate} {head[0]}")
            pending_verb = None
            index += length
            continue
        word = tagged[index]
        if word.pos == "NOUN":
            end = index
            while end + 1 < len(tagged) and tags[end + 1] == "NOUN" and _preposition_at(words, tags, end + 1) is None:
                end += 1  # a compound counts by its head, the last noun
            head = tagged[end].lemma
            if head not in stop_lemmas:
                entities.append(head)
                if pending_verb and subject:
                    relationships.append(f"{subject} {pending_verb} {head}")
                if not anchored:
                    subject = head
            pending_verb = None
            index = end + 1
            continue
        if word.pos == "VERB" and word.lemma not in stop_lemmas:
            actions.append(word.lemma)
            pending_verb = word.lemma if subject else None
            anchored = subject is not None
        elif word.pos in ("CCONJ", "SCONJ", "PRON", "PUNCT"):  # a new clause or conjunct
            pending_verb, anchored = None, False
        index += 1
    return {"entity": _unique(entities), "action": _unique(actions), "relationship": _unique(relationships)}


def _preposition_at(words: list[str], tags: list[str], index: int) -> tuple[int, str] | None:
    """(length, normalised predicate) of the preposition starting at `index`, or None."""
    for pattern, predicate in _PREPOSITION_PATTERNS:
        if tuple(words[index : index + len(pattern)]) == pattern:
            return len(pattern), predicate
    if tags[index] == "ADP" and not (words[index] == "to" and index + 1 < len(tags) and tags[index + 1] == "VERB"):
        return 1, words[index]
    return None


def _noun_phrase_head(tagged: Sequence[TaggedWord], start: int) -> tuple[str, int] | None:
    """(head lemma, index) of the noun phrase starting at `start` (determiners, numbers, adjectives, adverbs and
    compounds before the head), or None when no noun follows."""
    index = start
    while index < len(tagged) and tagged[index].pos in ("DET", "NUM", "ADJ", "ADV"):
        index += 1
    if index >= len(tagged) or tagged[index].pos != "NOUN":
        return None
    while index + 1 < len(tagged) and tagged[index + 1].pos == "NOUN":
        index += 1
    return tagged[index].lemma, index


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


@dataclass
class AttributeVocabulary:
    """Per-level attribute vocabularies mined from captions, and the labels they give.

    A label vector concatenates the entity, action and relationship vocabularies (`McsanConfig.attribute_slices`
    layout); `McsanConfig(attribute_vocabulary=vocabulary.levels)` stores the vocabulary with a model.
    """

    levels: dict[str, list[str]]
    counts: dict[str, list[int]]
    tagger_name: str
    num_captions: int = 0
    skipped_captions: int = 0
    min_count: int = 1
    _tagger: Tagger | None = field(default=None, repr=False, compare=False)
    _index: dict[str, dict[str, int]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        self._index = {
            level: {name: position for position, name in enumerate(self.levels[level])} for level in ATTRIBUTE_LEVELS
        }

    @property
    def sizes(self) -> dict[str, int]:
        return {level: len(self.levels[level]) for level in ATTRIBUTE_LEVELS}

    @property
    def num_attributes(self) -> int:
        return sum(self.sizes.values())

    @property
    def tagger(self) -> Tagger:
        """The tagger the vocabulary was mined with (labels must come from the same one)."""
        if self._tagger is None:
            self._tagger = load_tagger(self.tagger_name)
            if self._tagger.name != self.tagger_name:
                logger.warning(
                    "vocabulary mined with %s, labelling with %s: labels may differ from the mined vocabulary's",
                    self.tagger_name,
                    self._tagger.name,
                )
        return self._tagger

    def caption_attributes(self, caption: str) -> dict[str, list[str]]:
        """The vocabulary's attributes found in one caption, per level (empty for a blank caption)."""
        if not isinstance(caption, str):
            raise ValueError(f"a caption must be a string, got {type(caption).__name__}: {caption!r}")
        found = (
            extract_attributes(self.tagger(caption)) if caption.strip() else {level: [] for level in ATTRIBUTE_LEVELS}
        )
        return {level: [name for name in found[level] if name in self._index[level]] for level in ATTRIBUTE_LEVELS}

    def labels(self, captions: Sequence[str]) -> np.ndarray:
        """Multi-hot labels `(captions, num_attributes)` (uint8), one row per caption."""
        labels = np.zeros((len(captions), self.num_attributes), dtype=np.uint8)
        slices = attribute_slices(self.sizes)
        for row, caption in enumerate(captions):
            for level in ATTRIBUTE_LEVELS:
                for name in self.caption_attributes(caption)[level]:
                    labels[row, slices[level].start + self._index[level][name]] = 1
        return labels

    def video_labels(self, captions: Sequence[str]) -> np.ndarray:
        """A video's multi-hot labels `(num_attributes,)`: the union over its captions."""
        return self.labels(captions).max(axis=0) if len(captions) else np.zeros(self.num_attributes, dtype=np.uint8)

    def decode(self, labels: np.ndarray) -> dict[str, list[str]]:
        """The attribute names of one multi-hot row, per level."""
        offsets = np.cumsum([0] + [self.sizes[level] for level in ATTRIBUTE_LEVELS])
        return {
            level: [self.levels[level][int(position)] for position in np.flatnonzero(labels[start:end])]
            for level, start, end in zip(ATTRIBUTE_LEVELS, offsets[:-1], offsets[1:])
        }

    def to_dict(self) -> dict:
        return {
            "format": VOCABULARY_FORMAT,
            "version": 1,
            "tagger": self.tagger_name,
            "num_captions": self.num_captions,
            "skipped_captions": self.skipped_captions,
            "min_count": self.min_count,
            "levels": self.levels,
            "counts": self.counts,
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> AttributeVocabulary:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("format") != VOCABULARY_FORMAT:
            raise ValueError(
                f'{path} is not an attribute vocabulary (no "format": "{VOCABULARY_FORMAT}"); '
                "write one with `msam data attributes DATA --out vocab.json`."
            )
        return cls(
            levels=data["levels"],
            counts=data["counts"],
            tagger_name=data["tagger"],
            num_captions=data["num_captions"],
            skipped_captions=data["skipped_captions"],
            min_count=data["min_count"],
        )


def mine_attributes(
    captions: Iterable[str],
    sizes: dict[str, int] | None = None,
    min_count: int = 2,
    tagger: Tagger | str = "auto",
    strict: bool = False,
) -> AttributeVocabulary:
    """Build the per-level vocabularies from captions (e.g. every caption of the training split).

    Args:
        captions: caption strings. Empty, blank and non-string captions are skipped and counted
            (`skipped_captions`), or raise with `strict=True`.
        sizes: attributes kept per level (defaults: entity 512, action 256, relationship 256); a level keeps fewer
            when fewer attributes reach `min_count`.
        min_count: captions an attribute must occur in.
        tagger: a tagger or a `load_tagger` name.
    """
    sizes = {**DEFAULT_ATTRIBUTE_VOCABULARY_SIZES, **(sizes or {})}
    tagger = load_tagger(tagger) if isinstance(tagger, str) else tagger
    counters = {level: Counter() for level in ATTRIBUTE_LEVELS}
    used = skipped = 0
    for position, caption in enumerate(captions):
        if not isinstance(caption, str) or not caption.strip():
            if strict:
                raise ValueError(
                    f"caption {position} is empty or not a string ({caption!r}); fix the data or mine "
                    "with strict=False to skip and count such captions."
                )
            skipped += 1
            continue
        used += 1
        for level, names in extract_attributes(tagger(caption)).items():
            counters[level].update(names)
    if skipped:
        logger.warning("%d empty or non-string caption(s) skipped", skipped)
    if not used:
        raise ValueError("no usable caption to mine attributes from")
    levels, counts = {}, {}
    for level in ATTRIBUTE_LEVELS:
        ranked = sorted(
            (item for item in counters[level].items() if item[1] >= min_count), key=lambda item: (-item[1], item[0])
        )
        ranked = ranked[: sizes[level]]
        levels[level] = [name for name, _ in ranked]
        counts[level] = [count for _, count in ranked]
    vocabulary = AttributeVocabulary(levels, counts, tagger.name, used, skipped, min_count)
    vocabulary._tagger = tagger
    return vocabulary


def mine_dataset_attributes(
    path: str | Path,
    split: str = "train",
    layout: str = "auto",
    sizes: dict[str, int] | None = None,
    min_count: int = 2,
    tagger: Tagger | str = "auto",
) -> AttributeVocabulary:
    """Mine the vocabulary from every caption of one split of a dataset folder (any layout) or Hub dataset."""
    from .readers import load_video_text_dataset

    dataset = load_video_text_dataset(path, layout=layout)
    if split not in dataset:
        raise ValueError(f"{path} has no {split!r} split (it has {', '.join(dataset)}); choose one with --split.")
    captions = [caption for video_captions in dataset[split]["captions"] for caption in video_captions]
    return mine_attributes(captions, sizes=sizes, min_count=min_count, tagger=tagger)
