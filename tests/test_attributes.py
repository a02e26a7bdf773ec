"""Attribute mining for MCSAN: tagging and patterns on known captions, labels, bad captions, the vocabulary file,
the ground-truth comparison on synthetic scenes and `msam data attributes`."""

import json
import pickle
from types import SimpleNamespace

import numpy as np
import pytest

from msam_hf import cli
from msam_hf.configuration_mcsan import McsanConfig
from msam_hf.data.attributes import AttributeVocabulary
from msam_hf.data.attributes import LexiconTagger
from msam_hf.data.attributes import SpacyTagger
from msam_hf.data.attributes import extract_attributes
from msam_hf.data.attributes import installed_spacy_pipelines
from msam_hf.data.attributes import load_tagger
from msam_hf.data.attributes import mine_attributes
from msam_hf.data.synthetic.captions import make_captions
from msam_hf.data.synthetic.ground_truth import compare_with_ground_truth
from msam_hf.data.synthetic.ground_truth import format_comparison
from msam_hf.data.synthetic.ground_truth import synth_synonyms
from msam_hf.data.synthetic.scene import sample_scene
from msam_hf.data.synthetic.scene import sample_site

CAPTIONS = [
    "a red car parks beside the lake",
    "a red car parks beside the lake",
    "there is a black vehicle in the parking lot",
    "a white boat sails under the bridge",
    "a white boat sails under the bridge",
    "a car approaching the house",
    "a car approaching the house",
]


@pytest.fixture(scope="module")
def tagger():
    return LexiconTagger()


@pytest.mark.parametrize(
    "caption, expected",
    [
        (
            "a red car parks beside the lake",
            {"entity": ["car", "lake"], "action": ["park"], "relationship": ["car beside lake"]},
        ),
        (
            "there is a black vehicle in the parking lot",
            {"entity": ["vehicle", "lot"], "action": [], "relationship": ["vehicle in lot"]},
        ),
        (
            "a car approaching the house",
            {"entity": ["car", "house"], "action": ["approach"], "relationship": ["car approach house"]},
        ),
        (
            "a blue car is turning left next to the truck",
            {"entity": ["car", "truck"], "action": ["turn"], "relationship": ["car next to truck"]},
        ),
        (
            "a lorry sits parked to the left of the house by the river",
            {
                "entity": ["lorry", "house", "river"],
                "action": ["sit", "park"],
                "relationship": ["lorry left of house", "lorry by river"],
            },
        ),
        (
            "aerial view of two people in blue walking on the grass",
            {"entity": ["people", "grass"], "action": ["walk"], "relationship": ["people on grass"]},
        ),
        ("trees with yellow leaves", {"entity": ["tree", "leaf"], "action": [], "relationship": ["tree with leaf"]}),
        # a noun the lexicon also lists as an adjective, before an inflected verb; a gerund-noun inside a noun phrase
        ("a white house stands here", {"entity": ["house"], "action": ["stand"], "relationship": []}),
        (
            "there is a white building beside the road",
            {"entity": ["building", "road"], "action": [], "relationship": ["building beside road"]},
        ),
        (
            "two people in blue jogging on the road",
            {"entity": ["people", "road"], "action": ["jog"], "relationship": ["people on road"]},
        ),
    ],
)
def test_known_captions_give_their_entities_actions_and_relationships(tagger, caption, expected):
    assert extract_attributes(tagger(caption)) == expected


def test_labels_of_a_known_caption_and_the_union_for_a_video(tagger):
    vocabulary = mine_attributes(CAPTIONS, tagger=tagger, min_count=2)
    assert vocabulary.levels == {
        "entity": ["car", "boat", "bridge", "house", "lake"],
        "action": ["approach", "park", "sail"],
        "relationship": ["boat under bridge", "car approach house", "car beside lake"],
    }
    assert vocabulary.counts["entity"] == [4, 2, 2, 2, 2]
    labels = vocabulary.labels(["a red car parks beside the lake"])
    assert labels.shape == (1, 11) and labels.dtype == np.uint8
    assert np.flatnonzero(labels[0]).tolist() == [0, 4, 6, 10]  # car, lake | park | car beside lake
    assert vocabulary.decode(labels[0]) == {
        "entity": ["car", "lake"],
        "action": ["park"],
        "relationship": ["car beside lake"],
    }
    video = vocabulary.video_labels(["a red car parks beside the lake", "a white boat sails under the bridge"])
    assert vocabulary.decode(video) == {
        "entity": ["car", "boat", "bridge", "lake"],
        "action": ["park", "sail"],
        "relationship": ["boat under bridge", "car beside lake"],
    }
    # Sizes cap each level, most frequent first.
    small = mine_attributes(CAPTIONS, sizes={"entity": 2, "action": 1, "relationship": 1}, tagger=tagger)
    assert small.levels == {"entity": ["car", "boat"], "action": ["approach"], "relationship": ["boat under bridge"]}


def test_bad_and_empty_captions_are_skipped_and_counted_or_raise(tagger):
    vocabulary = mine_attributes([*CAPTIONS, "", "   ", None, 5, "?!"], tagger=tagger)
    assert vocabulary.num_captions == len(CAPTIONS) + 1 and vocabulary.skipped_captions == 4
    with pytest.raises(ValueError, match=r"caption 7 is empty or not a string \(''\)"):
        mine_attributes([*CAPTIONS, "", None], tagger=tagger, strict=True)
    with pytest.raises(ValueError, match="no usable caption"):
        mine_attributes(["", None], tagger=tagger)
    assert vocabulary.labels(["", "?!", "no known words here"]).sum() == 0
    assert vocabulary.video_labels([]).shape == (vocabulary.num_attributes,)
    with pytest.raises(ValueError, match="a caption must be a string, got list"):
        vocabulary.labels([["a", "car"]])


def test_vocabulary_file_round_trip_and_model_config(tmp_path, tagger):
    vocabulary = mine_attributes(CAPTIONS, tagger=tagger)
    loaded = AttributeVocabulary.load(vocabulary.save(tmp_path / "vocab.json"))
    assert loaded == vocabulary and loaded.tagger_name.startswith("lexicon (lemminflect")
    assert (loaded.labels(CAPTIONS) == vocabulary.labels(CAPTIONS)).all()
    config = McsanConfig.tiny(attribute_vocabulary=loaded.levels)
    assert config.attribute_vocabulary_sizes == loaded.sizes and config.num_attributes == loaded.num_attributes
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(ValueError, match="is not an attribute vocabulary"):
        AttributeVocabulary.load(tmp_path / "other.json")


def test_spacy_tokens_become_tagged_words():
    def token(text, lemma, pos, punct=False):
        return SimpleNamespace(lower_=text.lower(), lemma_=lemma, pos_=pos, is_punct=punct, is_space=False)

    def nlp(text):
        return [
            token("Boats", "boat", "PROPN"),
            token("sail", "sail", "VERB"),
            token("under", "under", "ADP"),
            token("the", "the", "DET"),
            token("bridge", "bridge", "NOUN"),
            token(".", ".", "PUNCT", punct=True),
        ]

    nlp.meta = {"lang": "en", "name": "core_web_sm", "version": "3.8.0"}
    tagger = SpacyTagger(nlp)
    assert tagger.name == "spacy (en_core_web_sm 3.8.0)"
    assert extract_attributes(tagger("Boats sail under the bridge.")) == {
        "entity": ["boat", "bridge"],
        "action": ["sail"],
        "relationship": ["boat under bridge"],
    }


def test_tagger_names():
    assert isinstance(load_tagger("lexicon"), LexiconTagger)
    with pytest.raises(ValueError, match="unknown tagger"):
        load_tagger("nltk")
    if not installed_spacy_pipelines():
        assert isinstance(load_tagger("auto"), LexiconTagger)
        with pytest.raises(ValueError, match="needs spaCy with an English pipeline"):
            load_tagger("spacy")


def synthetic_ground_truth(folder, videos=24):
    """ground_truth.jsonl rows as `msam data synth` writes them (scene + captions), without rendering videos."""
    records = []
    for index in range(videos):
        site = sample_site(np.random.default_rng([7, index // 4]), 1.0)
        scene = sample_scene(np.random.default_rng([8, index]), 1.0, site)
        captions = make_captions(np.random.default_rng([9, index]), scene, 5)
        records.append(
            {
                "video_id": f"synth_{index:05d}",
                "split": "train" if index < 16 else "test",
                "captions": captions,
                **scene,
            }
        )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ground_truth.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    return records


def test_mined_attributes_against_the_synthetic_ground_truth(tmp_path, tagger):
    records = synthetic_ground_truth(tmp_path / "synth")
    train_captions = [caption for record in records if record["split"] == "train" for caption in record["captions"]]
    vocabulary = mine_attributes(train_captions, tagger=tagger, min_count=1)
    exact = compare_with_ground_truth(vocabulary, tmp_path / "synth")
    with_synonyms = compare_with_ground_truth(vocabulary, tmp_path / "synth", synonyms=synth_synonyms(tagger))
    for level in ("entity", "action", "relationship"):
        for name in ("vocabulary_precision", "vocabulary_recall", "label_precision", "label_recall"):
            assert 0 <= exact[level][name] <= with_synonyms[level][name] <= 1
    # Captions name the scene's objects with the generator's nouns and verbs: most are found, few are spurious.
    assert with_synonyms["entity"]["label_recall"] > 0.6 and with_synonyms["entity"]["label_precision"] > 0.4
    assert with_synonyms["action"]["label_precision"] > 0.4 and with_synonyms["action"]["label_recall"] > 0.6
    # The synonym tables map the writer's words onto the ground truth's.
    synonyms = synth_synonyms(tagger)
    assert "car" in synonyms["entity"]["sedan"] and "truck" in synonyms["entity"]["lorry"]
    assert synonyms["action"]["cruise"] == {"sail"} and "beside" in synonyms["predicate"]["by"]
    table = format_comparison({"exact": exact, "synonyms": with_synonyms})
    assert table.count("\n") == 7 and "| synonyms | relationship |" in table


def test_msam_data_attributes_writes_the_vocabulary(tmp_path, capsys):
    data = tmp_path / "captions_only"
    data.mkdir()
    captions = {f"clip_{index}": [caption.split()] for index, caption in enumerate(CAPTIONS)}
    (data / "raw-captions.pkl").write_bytes(pickle.dumps(captions))
    (data / "train_list.txt").write_text("".join(f"{video_id}\n" for video_id in captions))
    assert (
        cli.main(
            [
                "data",
                "attributes",
                str(data),
                "--out",
                str(tmp_path / "vocab.json"),
                "--tagger",
                "lexicon",
                "--entities",
                "3",
            ]
        )
        == 0
    )
    written = json.loads((tmp_path / "vocab.json").read_text())
    assert written["levels"]["entity"] == ["car", "boat", "bridge"] and written["num_captions"] == len(CAPTIONS)
    assert "entity: 3 attributes; most frequent: car (4)" in capsys.readouterr().out
