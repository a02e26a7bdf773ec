"""Captions of the synthetic drone benchmark, written from a scene's ground truth.

Like USRD's captions (lower case, no punctuation, "there is ...", "we can see ...", "aerial
view of ..."), each caption tells only part of the scene: one object (with or without its
colour, action, direction, a relation), two objects, a count, or just the terrain and the
camera. Synonyms ("car" / "vehicle" / "sedan", "lake" / "pond") and dropped details make
captions ambiguous the way real ones are. Everything a caption says is true of the video.
"""

from __future__ import annotations

import numpy as np

NOUNS = {
    "car": ("car", "car", "car", "vehicle", "sedan"),
    "truck": ("truck", "truck", "lorry", "large truck", "vehicle"),
    "boat": ("boat", "boat", "ship", "motorboat", "vessel"),
    "house": ("house", "house", "building", "cottage", "home"),
    "tree": ("tree",),
}
PERSON_NOUNS = ("person", "man", "pedestrian", "person")
GROUP_NOUNS = ("people", "people", "pedestrians", "persons")
COUNT_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}
CANONICAL_NOUN = {"car": "car", "truck": "truck", "boat": "boat", "people": "people", "house": "house", "tree": "tree"}
PLURAL = {"car": "cars", "truck": "trucks", "boat": "boats", "house": "houses", "tree": "trees", "people": "people"}

# participles after "is" / "are"
ACTION_PARTICIPLES = {
    "driving": ("driving", "moving", "travelling"),
    "parking": ("parking", "pulling over", "coming to a stop", "slowing down to park"),
    "parked": ("parked", "stationary", "standing still", "stopped"),
    "turning left": ("turning left", "making a left turn", "taking a left turn"),
    "turning right": ("turning right", "making a right turn", "taking a right turn"),
    "sailing": ("sailing", "cruising", "moving", "travelling"),
    "anchored": ("anchored", "moored", "floating still", "not moving"),
    "walking": ("walking", "strolling", "walking slowly"),
    "running": ("running", "jogging", "running fast"),
    "standing": ("standing", "standing still", "waiting", "gathered"),
}
# present tense, third person singular
ACTION_PRESENT = {
    "driving": ("drives", "moves", "travels"),
    "parking": ("parks", "pulls over", "comes to a stop"),
    "parked": ("sits parked", "stands still"),
    "turning left": ("turns left", "makes a left turn"),
    "turning right": ("turns right", "makes a right turn"),
    "sailing": ("sails", "cruises", "moves"),
    "anchored": ("lies at anchor", "floats still"),
    "walking": ("walks", "strolls"),
    "running": ("runs", "jogs"),
    "standing": ("stands", "stands still"),
}
STATIC_VERBS = {"house": ("stands", "is"), "tree": ("stands", "grows")}
DIRECTION_PHRASES = {
    "left": ("to the left", "towards the left", "from right to left", "leftward"),
    "right": ("to the right", "towards the right", "from left to right", "rightward"),
    "up": ("upward", "towards the top", "up the frame", "from bottom to top"),
    "down": ("downward", "towards the bottom", "down the frame", "from top to bottom"),
}
SURFACE_PHRASES = {
    "road": ("on the road", "along the road", "on the asphalt road"),
    "street": ("on the street", "in the street", "on the city street"),
    "highway": ("on the highway", "on the multi lane road", "on the motorway"),
    "parking lot": ("in the parking lot", "in the car park", "on the parking area"),
    "bridge": ("on the bridge", "across the bridge", "over the bridge"),
    "lake": ("on the lake", "in the lake", "on the pond"),
    "river": ("on the river", "in the river"),
    "sea": ("on the sea", "in the sea", "off the beach"),
    "water": ("on the water", "in the water", "on the open water"),
    "grass": ("on the grass", "on the lawn", "on the meadow", "on the grassland"),
    "sand": ("on the sand", "in the desert", "on the sand dunes"),
    "beach": ("on the beach", "on the sand", "on the shore"),
    "field": ("in the field", "on the farmland", "among the crops"),
    "forest": ("in the forest", "in the woods", "among the trees"),
    "rooftops": ("among the rooftops",),
}
BESIDE_PHRASES = ("beside the {}", "next to the {}", "by the {}", "near the {}")
SEA_BESIDE = ("by the sea", "near the water", "along the shore", "next to the sea")
RELATION_PHRASES = {
    "next to": ("next to {}", "beside {}", "near {}", "close to {}"),
    "left of": ("to the left of {}", "on the left of {}", "left of {}"),
    "right of": ("to the right of {}", "on the right of {}", "right of {}"),
    "above": ("above {}", "just above {}"),
    "below": ("below {}", "just below {}"),
    "approaching": ("approaching {}", "heading towards {}", "moving towards {}"),
    "moving away from": ("moving away from {}", "leaving {} behind", "going away from {}"),
    "following": ("following {}", "behind {}", "trailing {}"),
    # after a verb of motion ("a car driving towards the house")
    "approaching after verb": ("towards {}", "closer to {}"),
    "moving away from after verb": ("away from {}",),
    "following after verb": ("behind {}",),
    "under": ("under the bridge", "passing under the bridge", "beneath the bridge"),
}
TERRAIN_PHRASES = {
    "grass": ("a green meadow", "a grassland", "a large lawn", "a grassy field", "green grass", "a park"),
    "sand": ("a sandy area", "a desert", "sand dunes", "a sandy plain"),
    "beach": ("a sandy beach", "a beach", "the coastline"),
    "water": ("open water", "the sea", "a wide lake", "calm water"),
    "highway": ("a wide highway", "a multi lane road", "a motorway"),
    "parking lot": ("a parking lot", "a large car park", "a parking area"),
    "forest": ("a dense forest", "a forest", "green woods", "the treetops"),
    "urban": ("a city", "a town", "dense urban rooftops", "a neighbourhood"),
    "farmland": ("farmland", "crop fields", "agricultural land", "farm fields"),
}
LANDMARK_PHRASES = {
    "road": ("with a road", "crossed by a road", "with a road running through it"),
    "lake": ("with a lake", "with a small lake", "around a pond"),
    "river": ("with a river and a bridge", "crossed by a river", "with a bridge over a river"),
    "shore": ("next to the sea", "along the sea", "where the sand meets the water"),
    "bridge": ("with a bridge across it", "crossed by a bridge", "with a long bridge"),
    "street": ("with a wide street", "along a street", "around a main street"),
}
CAMERA_PHRASES = {
    "hover": ("the drone hovers over {t}", "a still aerial shot of {t}", "the camera stays still above {t}"),
    "drift": ("the drone slowly drifts over {t}", "the camera drifts slowly above {t}", "a slow aerial shot of {t}"),
    "pan": ("the camera pans {d} over {t}", "the drone flies {d} over {t}", "the view moves {d} across {t}"),
    "zoom in": ("the camera zooms in on {t}", "the drone descends towards {t}", "zooming in on {t}"),
    "zoom out": ("the camera zooms out over {t}", "the drone rises above {t}", "zooming out from {t}"),
}
PAN_WORDS = {
    "left": ("left", "to the left"),
    "right": ("right", "to the right"),
    "up": ("forward", "upward"),
    "down": ("backward", "downward"),
}
PREFIXES = ("aerial view of", "we can see", "drone footage of", "top down view of", "a drone shot of", "here is")
TREE_COLOUR_PHRASES = {"green": ("green", "leafy green"), "yellow": ("yellow",), "orange": ("orange",), "red": ("red",)}

CAPTION_KINDS = {"entity": 0.55, "pair": 0.12, "count": 0.05, "landscape": 0.14, "camera": 0.14}


def make_captions(rng: np.random.Generator, scene: dict, count: int = 5, focus: dict | None = None) -> list[str]:
    """`count` distinct captions of `scene`.

    `focus` ({"entity": i, "aspect": "colour" | "action" | "direction" | "relation", "relation": {...}})
    makes the first two captions describe that aspect of entity i, so that a hard-negative twin's
    captions state what differs.
    """
    writer = _CaptionWriter(rng, scene)
    captions: list[str] = []
    for slot in range(count):
        for _ in range(25):
            if focus is not None and slot < 2:
                caption = writer.entity(focus["entity"], focus=focus)
            elif slot == 0:
                caption = writer.entity(0, rich=True)
            else:
                caption = writer.any()
            if caption not in captions:
                break
        captions.append(caption)
    return captions


def listing_captions(rng: np.random.Generator, scene: dict, count: int = 5, varied: bool = False) -> list[str]:
    """`count` captions that each name every object by colour and kind, in a random order ("a red car, a white house
    and two people in blue"): complete and plain like image alt text, unlike the benchmark's captions. `varied` names
    each object as the drone writer would, with its synonyms ("a red sedan, a house with a white roof and two
    pedestrians in blue"), drawn anew for each caption."""
    writer = _CaptionWriter(rng, scene)
    captions = []
    for _ in range(count):
        phrases = [
            writer.noun_phrase(index, colour=True) if varied else _listing_phrase(entity)
            for index, entity in enumerate(scene["entities"])
        ]
        ordered = [phrases[i] for i in rng.permutation(len(phrases))]
        captions.append(ordered[0] if len(ordered) == 1 else ", ".join(ordered[:-1]) + " and " + ordered[-1])
    return captions


def _listing_phrase(entity: dict) -> str:
    if entity["kind"] == "people":
        group = "a person" if entity["count"] == 1 else f"{COUNT_WORDS[entity['count']]} people"
        return f"{group} in {entity['colour']}"
    return _with_article("a", f"{entity['colour']} {entity['kind']}")


def scene_attributes(scene: dict) -> dict[str, list[str]]:
    """Canonical entity nouns, actions and relations ("car left of house") of a scene."""
    entities, actions, relations = [], [], []
    landmark = scene["landmark"]
    names = [_canonical(entity) for entity in scene["entities"]]
    for entity, name in zip(scene["entities"], names):
        entities.append(name)
        if entity["action"] is not None:
            actions.append(entity["action"])
    if landmark is not None and landmark["kind"] in ("road", "lake", "river", "bridge", "street"):
        entities.append(landmark["kind"])
    if landmark is not None and landmark["kind"] == "river":
        entities.append("bridge")
    for relation in scene["relations"]:
        target = relation["object"]
        target_name = names[target] if isinstance(target, int) else target
        relations.append(f"{names[relation['subject']]} {relation['predicate']} {target_name}")
    return {
        "entities": list(dict.fromkeys(entities)),
        "actions": list(dict.fromkeys(actions)),
        "relations": list(dict.fromkeys(relations)),
    }


def _canonical(entity: dict) -> str:
    if entity["kind"] == "people" and entity["count"] == 1:
        return "person"
    return CANONICAL_NOUN[entity["kind"]]


class _CaptionWriter:
    def __init__(self, rng: np.random.Generator, scene: dict):
        self.rng = rng
        self.scene = scene
        self.entities = scene["entities"]

    def pick(self, options):
        return options[int(self.rng.integers(len(options)))]

    def chance(self, probability: float) -> bool:
        return bool(self.rng.random() < probability)

    def any(self) -> str:
        kinds = dict(CAPTION_KINDS)
        if len(self.entities) < 2:
            kinds.pop("pair")
        if not self._repeated_kinds():
            kinds.pop("count")
        names = list(kinds)
        weights = np.array([kinds[name] for name in names])
        kind = names[int(self.rng.choice(len(names), p=weights / weights.sum()))]
        if kind == "entity":
            weights = np.array([self._salience(entity) for entity in self.entities])
            return self.entity(int(self.rng.choice(len(self.entities), p=weights / weights.sum())))
        return getattr(self, kind)()

    # ------------------------------------------------------------------ noun phrases

    def noun_phrase(self, index: int, colour: bool, definite: bool = False, short: bool = False) -> str:
        """ "a red car", "two people in blue", "a house with a white roof", "the red car"."""
        return self._noun_phrase(index, colour, definite, short)[0]

    def _noun_phrase(self, index: int, colour: bool, definite: bool = False, short: bool = False) -> tuple[str, bool]:
        """The noun phrase and whether it takes a plural verb."""
        entity = self.entities[index]
        kind, shade = entity["kind"], entity["colour"]
        article = "the" if definite else "a"
        if kind == "people":
            if entity["count"] == 1:
                head = f"{article} {self.pick(PERSON_NOUNS)}"
            elif definite:
                head = "the " + self.pick(("people", "group of people", "pedestrians"))
            else:
                head = self.pick(
                    (
                        f"{COUNT_WORDS[entity['count']]} {self.pick(GROUP_NOUNS)}",
                        "a group of people",
                        "some people",
                        "a few people",
                    )
                )
            plural = entity["count"] > 1 and not head.startswith(("a group", "the group"))
            if colour:
                head += self.pick((f" in {shade}", f" wearing {shade}", f" dressed in {shade}"))
            return head, plural
        noun = self.pick(NOUNS[kind])
        if kind == "house" and colour and not short and self.chance(0.5):
            return _with_article(article, f"{noun} with a {shade} roof"), False
        if kind == "tree" and colour and not short and self.chance(0.4):
            return _with_article(article, f"tree with {shade} leaves"), False
        adjective = self.pick(TREE_COLOUR_PHRASES[shade]) if kind == "tree" else shade
        return _with_article(article, f"{adjective} {noun}" if colour else noun), False

    def _object_phrase(self, target) -> str:
        if isinstance(target, int):
            return self.noun_phrase(target, colour=self.chance(0.5), definite=True, short=True)
        return f"the {target}"

    # ------------------------------------------------------------------ caption kinds

    def entity(self, index: int, rich: bool = False, focus: dict | None = None) -> str:
        """One object: its noun, and some of colour, action, direction, a relation, the surface."""
        entity = self.entities[index]
        aspect = focus["aspect"] if focus else None
        colour = aspect == "colour" or self.chance(0.85 if rich else 0.7)
        action = entity["action"]
        say_action = action is not None and (aspect in ("action", "direction") or self.chance(0.9 if rich else 0.75))
        relations = [r for r in self.scene["relations"] if r["subject"] == index]
        if aspect == "relation":
            chosen = focus["relation"]
        else:
            others = [r for r in relations if r["predicate"] != "on"]
            chosen = self.pick(others) if others and self.chance(0.55) else None
        moving_relation = chosen is not None and chosen["predicate"] in ("approaching", "moving away from", "following")
        extras = []
        if (
            say_action
            and entity["direction"]
            and entity["motion"]["kind"] in ("straight", "stop")
            and (aspect == "direction" or (not moving_relation and self.chance(0.55 if rich else 0.4)))
        ):
            extras.append(self.pick(DIRECTION_PHRASES[entity["direction"]]))
        if chosen is not None:
            extras.append(self.relation_phrase(chosen, after_verb=say_action))
        surface = next((r["object"] for r in relations if r["predicate"] == "on"), None)
        if surface and (not extras or self.chance(0.3)) and self.chance(0.75):
            if chosen is None or chosen["predicate"] not in ("under",):
                extras.append(self.pick(SURFACE_PHRASES[surface]))
        subject, plural = self._noun_phrase(index, colour)
        tail = " ".join(extras)
        be = "are" if plural else "is"
        if not say_action:
            if action is None and self.chance(0.5):  # a house / tree
                return _join(subject, self.pick(STATIC_VERBS[entity["kind"]]), tail or self.pick(("here", "alone")))
            forms = [lambda: _join(f"there {be}", subject, tail), lambda: _join(self.pick(PREFIXES), subject, tail)]
            if tail:
                forms.append(lambda: _join(subject, tail))
            return self.pick(forms)()
        participle = self.pick(ACTION_PARTICIPLES[action])
        forms = [
            lambda: _join(subject, be, participle, tail),
            lambda: _join(f"there {be}", subject, participle, tail),
            lambda: _join(self.pick(PREFIXES), subject, participle, tail),
        ]
        if not plural:
            forms.append(lambda: _join(subject, self.pick(ACTION_PRESENT[action]), tail))
        caption = self.pick(forms)()
        if self.chance(0.08):
            caption = _join(
                caption,
                "as the drone flies over" if self.scene["camera"]["motion"] in ("pan", "drift") else "seen from above",
            )
        return caption

    def relation_phrase(self, relation: dict, after_verb: bool = False) -> str:
        predicate, target = relation["predicate"], relation["object"]
        if predicate == "beside":
            return self.pick(SEA_BESIDE) if target == "sea" else self.pick(BESIDE_PHRASES).format(target)
        if predicate == "under":
            return self.pick(RELATION_PHRASES["under"])
        if after_verb and f"{predicate} after verb" in RELATION_PHRASES:
            predicate = f"{predicate} after verb"
        return self.pick(RELATION_PHRASES[predicate]).format(self._object_phrase(target))

    def pair(self) -> str:
        first, second = (int(i) for i in self.rng.choice(len(self.entities), size=2, replace=False))
        both = f"{self.noun_phrase(first, self.chance(0.7))} and {self.noun_phrase(second, self.chance(0.7))}"
        where = (
            self.pick(SURFACE_PHRASES[self._surface(first)]) if self._surface(first) == self._surface(second) else ""
        )
        return self.pick(
            (
                lambda: _join(self.pick(PREFIXES), both, where),
                lambda: _join("there are", both, where),
                lambda: _join(both, "seen from above"),
            )
        )()

    def count(self) -> str:
        kind, number = self.pick(self._repeated_kinds())
        noun = PLURAL[kind]
        where = self.pick(
            SURFACE_PHRASES[self._surface(next(i for i, entity in enumerate(self.entities) if entity["kind"] == kind))]
        )
        return self.pick(
            (
                lambda: _join("there are", COUNT_WORDS[number], noun, where),
                lambda: _join("we can see", COUNT_WORDS[number], noun),
                lambda: _join(COUNT_WORDS[number], noun, where),
            )
        )()

    def scene_phrase(self) -> str:
        terrain, landmark = self.scene["terrain"], self.scene["landmark"]
        kind = landmark["kind"] if landmark else None
        key = {
            "road": {"lanes": "highway", "parking_lot": "parking lot"}.get(kind, "highway"),
            "sand": "beach" if kind == "shore" else "sand",
        }.get(terrain, terrain)
        phrase = self.pick(TERRAIN_PHRASES[key])
        if kind in LANDMARK_PHRASES and self.chance(0.7):
            phrase = _join(phrase, self.pick(LANDMARK_PHRASES[kind]))
        return phrase

    def landscape(self) -> str:
        return self.pick(
            (
                lambda: _join(
                    self.pick(("aerial view of", "top down view of", "drone footage of", "we can see")),
                    self.scene_phrase(),
                ),
                lambda: _join("the drone flies over", self.scene_phrase()),
                lambda: _join(self.scene_phrase(), "seen from above"),
            )
        )()

    def camera(self) -> str:
        camera = self.scene["camera"]
        template = self.pick(CAMERA_PHRASES[camera["motion"]])
        direction = self.pick(PAN_WORDS[camera["direction"]]) if camera["direction"] else ""
        return template.format(t=self.scene_phrase(), d=direction)

    # ------------------------------------------------------------------ helpers

    def _surface(self, index: int) -> str:
        return next(r["object"] for r in self.scene["relations"] if r["subject"] == index and r["predicate"] == "on")

    def _repeated_kinds(self) -> list[tuple[str, int]]:
        counts: dict[str, int] = {}
        for entity in self.entities:
            if entity["kind"] != "people":
                counts[entity["kind"]] = counts.get(entity["kind"], 0) + 1
        return [(kind, number) for kind, number in counts.items() if number > 1]

    @staticmethod
    def _salience(entity: dict) -> float:
        if entity["action"] is None:
            return 0.7
        return 1.0 if entity["motion"]["kind"] == "still" else 2.0


def _with_article(article: str, phrase: str) -> str:
    if article == "a" and phrase[0] in "aeiou":
        return f"an {phrase}"
    return f"{article} {phrase}"


def _join(*parts: str) -> str:
    return " ".join(part for part in parts if part)
