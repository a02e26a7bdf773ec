"""The synthetic benchmark's ground truth in the attribute miner's terms: how well mined vocabularies and caption
labels match what the generator put in each scene (`msam data attributes` on a synthetic folder), and the ground-truth
attributes that `msam evaluate` scores attribute predictions against on a synthetic dataset."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from ...configuration_mcsan import ATTRIBUTE_LEVELS
from ..attributes import AttributeVocabulary
from ..attributes import Tagger
from ..attributes import extract_attributes
from . import captions as tables
from .captions import scene_attributes


def compare_with_ground_truth(
    vocabulary: AttributeVocabulary,
    data_dir: str | Path,
    vocabulary_split: str = "train",
    label_split: str = "test",
    synonyms: dict[str, dict[str, set[str]]] | None = None,
) -> dict[str, dict[str, float]]:
    """Precision and recall of mined attributes against the synthetic benchmark's ground truth, per level.

    The generator's attributes (`captions.scene_attributes`: "car", "turning left", "car left of house") are
    normalised by the vocabulary's own tagger and patterns ("turn", "car left of house"), so both sides use the same
    forms. Two views:

    - vocabulary: the mined vocabulary against every ground-truth attribute of the `vocabulary_split` videos;
    - labels: per video of `label_split`, the labels of its captions against its ground truth, micro-averaged.
      Captions describe part of a scene, so label recall is bounded well below 1 by what they mention.

    `synonyms` ({level: {mined form: canonical forms}}, e.g. `synth_synonyms(tagger)`) counts a mined "vehicle" as
    the ground truth's "car" or "truck"; relationships map their subject, predicate and object (with the entity map
    for the nouns).
    """
    records = [
        json.loads(line)
        for line in (Path(data_dir) / "ground_truth.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    if not records:
        raise ValueError(f"{Path(data_dir) / 'ground_truth.jsonl'} has no video")
    synonyms = synonyms or {}
    tagger = vocabulary.tagger
    truth = {record["video_id"]: normalise_ground_truth(record, tagger) for record in records}

    def canonical(level: str, name: str) -> set[str]:
        if level != "relationship":
            return synonyms.get(level, {}).get(name, set()) | {name}
        return {" ".join(parts) for parts in _relationship_forms(name, synonyms)}

    results = {}
    vocabulary_truth = {level: set() for level in ATTRIBUTE_LEVELS}
    for record in records:
        if record["split"] == vocabulary_split:
            for level in ATTRIBUTE_LEVELS:
                vocabulary_truth[level] |= truth[record["video_id"]][level]
    label_videos = [record for record in records if record["split"] == label_split]
    for level in ATTRIBUTE_LEVELS:
        mined = {name: canonical(level, name) for name in vocabulary.levels[level]}
        reference = vocabulary_truth[level]
        correct = sum(bool(forms & reference) for forms in mined.values())
        recalled = sum(any(name in forms for forms in mined.values()) for name in reference)
        true_positives = predicted = recalled_labels = relevant = 0
        for record in label_videos:
            expected = truth[record["video_id"]][level]
            found = {name for caption in record["captions"] for name in vocabulary.caption_attributes(caption)[level]}
            found_forms = [mined[name] for name in found]
            predicted += len(found)
            true_positives += sum(bool(forms & expected) for forms in found_forms)
            relevant += len(expected)
            recalled_labels += sum(any(name in forms for forms in found_forms) for name in expected)
        results[level] = {
            "vocabulary_size": len(mined),
            "vocabulary_precision": correct / max(len(mined), 1),
            "vocabulary_recall": recalled / max(len(reference), 1),
            "label_precision": true_positives / max(predicted, 1),
            "label_recall": recalled_labels / max(relevant, 1),
        }
    return results


def normalise_ground_truth(record: dict, tagger: Tagger) -> dict[str, set[str]]:
    """A ground-truth record's attributes in mined form, by the same tagger and patterns."""
    attributes = scene_attributes(record)
    entities = {
        found
        for name in attributes["entities"]
        for found in extract_attributes(tagger(name), frozenset())["entity"][-1:]
    }
    actions = {
        found for name in attributes["actions"] for found in extract_attributes(tagger(name), frozenset())["action"][:1]
    }
    relationships = {
        found
        for name in attributes["relations"]
        for found in extract_attributes(tagger(name), frozenset())["relationship"][:1]
    }
    return {"entity": entities, "action": actions, "relationship": relationships}


def synth_synonyms(tagger: Tagger) -> dict[str, dict[str, set[str]]]:
    """{level: {mined form: canonical forms}} from the synthetic caption writer's own phrase tables: the words it
    uses for each ground-truth noun, action and relation, tagged like any caption."""

    def entities_of(text: str) -> list[str]:
        return extract_attributes(tagger(text), frozenset())["entity"]

    def verbs_of(text: str) -> list[str]:
        return extract_attributes(tagger(f"it {text}"), frozenset())["action"]

    def add(mapping: dict[str, set[str]], forms: Iterable[str], canonical_forms: Iterable[str]) -> None:
        for form in forms:
            mapping.setdefault(form, set()).update(canonical_forms)

    nouns: dict[str, set[str]] = {}
    for kind, phrases in tables.NOUNS.items():
        add(nouns, [entity for phrase in phrases for entity in entities_of(phrase)[-1:]], entities_of(kind))
    add(nouns, [entity for phrase in tables.PERSON_NOUNS for entity in entities_of(phrase)], ["person"])
    add(nouns, [entity for phrase in tables.GROUP_NOUNS for entity in entities_of(phrase)], ["people"])
    predicates: dict[str, set[str]] = {}
    for surface, phrases in tables.SURFACE_PHRASES.items():
        canonical_object = entities_of(surface)[-1:]
        for phrase in phrases:
            found = extract_attributes(tagger(f"car {phrase}"), frozenset())["relationship"][:1]
            for relationship in found:
                _, predicate, target = _split_relationship(relationship)
                add(predicates, [predicate], ["on"])
                add(nouns, [target], canonical_object)
    relation_tables = {
        **{name: phrases for name, phrases in tables.RELATION_PHRASES.items() if "after verb" not in name},
        "beside": tables.BESIDE_PHRASES,
    }
    for name, phrases in relation_tables.items():
        truth = extract_attributes(tagger(f"car {name} house"), frozenset())["relationship"][:1]
        for relationship in truth:
            canonical_predicate = _split_relationship(relationship)[1]
            for phrase in phrases:
                text = "car " + (phrase.format("the house") if "{}" in phrase else phrase.replace("bridge", "house"))
                add(
                    predicates,
                    [
                        _split_relationship(found)[1]
                        for found in extract_attributes(tagger(text), frozenset())["relationship"][:1]
                    ],
                    [canonical_predicate],
                )
    actions: dict[str, set[str]] = {}
    for canonical, phrase_table in (
        (name, [*tables.ACTION_PARTICIPLES[name], *tables.ACTION_PRESENT[name]]) for name in tables.ACTION_PARTICIPLES
    ):
        canonical_verb = extract_attributes(tagger(canonical), frozenset())["action"][:1]
        add(actions, [verb for phrase in phrase_table for verb in verbs_of(phrase)], canonical_verb)
    return {"entity": nouns, "action": actions, "predicate": predicates}


def _split_relationship(relationship: str) -> tuple[str, str, str]:
    """(subject, predicate, object) of a "subject predicate object" string; subject and object are one word."""
    subject, rest = relationship.split(" ", 1)
    predicate, target = rest.rsplit(" ", 1)
    return subject, predicate, target


def _relationship_forms(relationship: str, synonyms: dict[str, dict[str, set[str]]]) -> list[tuple[str, str, str]]:
    subject, predicate, target = _split_relationship(relationship)
    nouns, predicates = synonyms.get("entity", {}), synonyms.get("predicate", {})
    return [
        (s, p, o)
        for s in nouns.get(subject, set()) | {subject}
        for p in predicates.get(predicate, set()) | {predicate}
        for o in nouns.get(target, set()) | {target}
    ]


def format_comparison(results_by_view: dict[str, dict[str, dict[str, float]]]) -> str:
    """A markdown table: one row per (matching, level)."""
    lines = [
        "| matching | level | vocabulary size | vocabulary P | vocabulary R | label P | label R |",
        "|---|---|---|---|---|---|---|",
    ]
    for view, results in results_by_view.items():
        for level, scores in results.items():
            lines.append(
                f"| {view} | {level} | {scores['vocabulary_size']} | {scores['vocabulary_precision']:.2f} | "
                f"{scores['vocabulary_recall']:.2f} | {scores['label_precision']:.2f} | {scores['label_recall']:.2f} |"
            )
    return "\n".join(lines)
