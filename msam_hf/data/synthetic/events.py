"""The events variant of the synthetic drone benchmark (`msam data synth --events`): objects enter and leave the view.

In a default video every object is in every frame, so a model that picks frames per caption (MSAM's CIFFP head) has
nothing to pick. Here a video (at least 12 s) holds 3-5 *events*, one object each, seen in only part of it:

- a car, truck, boat or group of people crosses the view from one edge to the other (driving, sailing, walking,
  running) or, on open ground (parking lot, sea, open water), turns and leaves by a side;
- a car or truck drives in and parks, and stays;
- on a site flown with a long pan, still objects (houses, trees, parked cars, anchored boats, people standing) come
  into view and leave it as the camera passes over them.

Same terrains, landmarks, textures, sprites, colours and sizes as the default benchmark, and the same structure:
sites share terrain, landmark and camera path; hard-negative twins differ in one event. Scenes are `scene`
scenes (the renderer draws them unchanged): a moving object carries a `present` interval in τ over which it travels
its path, plus the point `through` its path passes at `at` seconds with its `speed` (world units per second; for a
parking vehicle, where and when it comes to rest and its speed when it enters).

Each scene also gets `events` (derived, like `relations`; `events[i]` is about `entities[i]`): per object its kind,
colour, size, action, direction, the `interval` in seconds during which some of it is on screen, the screen edge it
`enters` from and `leaves` by (None when on screen at the first / last frame), `visible_seconds` and `when` it
happens relative to the others. The visible seconds are the whole seconds s = 0, 1, ... a 1-fps sampler reads
(`read_frames(fps=1)`: the first frame at or after s) at which the object is at least partly in the frame. Every
such second is unambiguous: a point of the object painted for sure lies half a pixel inside the frame, or every
part of it (shadow and a boat's wake included) lies a pixel or more outside; timings that would leave the object
on the edge at a sampled second are drawn again.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ...video_io import sample_frame_indices
from .captions import PREFIXES
from .captions import _CaptionWriter
from .captions import _join
from .render import _SHADOW_OFFSET
from .render import SHADOW_HEIGHTS
from .scene import _STOP_AT
from .scene import DIRECTIONS
from .scene import ENTITY_KINDS
from .scene import KIND_WEIGHTS
from .scene import OPPOSITE
from .scene import ROAD
from .scene import STILL_ACTIONS
from .scene import WORLD_SIZE
from .scene import _feasible_kinds
from .scene import _has_region
from .scene import _normalised
from .scene import _open_surface
from .scene import camera_view
from .scene import entity_poses
from .scene import finish_entities
from .scene import landmark_relations
from .scene import new_object
from .scene import on_allowed_ground
from .scene import present_at
from .scene import road_bands
from .scene import sample_site

MIN_DURATION = 12.0  # seconds: a 1-fps sampler then reads 12 frames, as MSAM does
EVENT_COUNTS = (3, 4, 5)
VISIBLE_SECONDS = (2, 8)  # fewest and most sampled seconds an event is seen in
CAMERA_MOTIONS = {"hover": 1.0, "drift": 1.0, "pan": 2.0}
PAN_LENGTH = (0.6, 0.8)  # world units (a view is 1 wide): a pan passes over most of the site
# Speeds in world units per second (a view is 1 unit wide); for parking, the speed at which it enters.
SPEEDS = {
    "driving": (0.2, 0.35),
    "turning left": (0.15, 0.25),
    "turning right": (0.15, 0.25),
    "parking": (0.15, 0.5),
    "sailing": (0.16, 0.28),
    "walking": (0.15, 0.2),
    "running": (0.28, 0.38),
}
ACTION_SWAPS = {
    "walking": ("running",),
    "running": ("walking",),
    "turning left": ("turning right",),
    "turning right": ("turning left",),
}
EDIT_KINDS = {"colour": 1.0, "action": 1.0, "direction": 1.0, "time": 1.0}

TIME_PREFIXES = {
    "first": ("at first", "at the start", "in the beginning", "first"),
    "later": ("then", "later", "after that", "next"),
    "last": ("at the end", "finally", "in the end", "towards the end"),
}
TIME_SUFFIXES = {
    "first": ("at the start of the video", "at the beginning", "early in the video"),
    "later": ("later in the video", "later on", "afterwards"),
    "last": ("at the end of the video", "at the very end", "near the end"),
}
ENTER_VERBS = {
    False: ("enters the view", "comes into view", "appears"),
    True: ("enter the view", "come into view", "appear"),
}
LEAVE_VERBS = {
    False: ("leaves the view", "goes out of view", "disappears"),
    True: ("leave the view", "go out of view", "disappear"),
}
PARK_VERBS = ("parks", "comes to a stop", "pulls over and stops")
EDGE_PHRASES = {
    "left": ("the left", "the left side"),
    "right": ("the right", "the right side"),
    "top": ("the top", "the top of the frame"),
    "bottom": ("the bottom", "the bottom of the frame"),
}
REGION_CAPTION_CHANCE = 0.5  # for a caption slot left once every event has one

_OUT, _IN, _UNCLEAR = 0, 1, 2
_LONG_PATH = 2.5  # world units before and after `through`: far beyond any view, trimmed afterwards
_ATTEMPTS = 20  # objects tried per event
_TRIES_PER_OBJECT = 5  # placements tried per object


@dataclass(frozen=True)
class Timeline:
    """A video's frames and the ones a 1-fps sampler reads; `width` (pixels) sets how far in or out of the frame an
    object must be at a sampled second to be clearly seen or clearly not."""

    num_frames: int
    fps: float
    width: int

    @cached_property
    def taus(self) -> np.ndarray:
        return np.linspace(0.0, 1.0, self.num_frames)  # as render_frames

    @property
    def last_time(self) -> float:
        return (self.num_frames - 1) / self.fps

    @cached_property
    def sampled_frames(self) -> np.ndarray:
        """Frame read at each whole second s = 0, 1, ...: the first at or after s, as `read_frames(fps=1)` picks."""
        return sample_frame_indices(np.arange(self.num_frames) / self.fps, fps=1.0, max_frames=None)

    def tau(self, seconds: float) -> float:
        return seconds / self.last_time

    def seconds(self, tau: float) -> float:
        return tau * self.last_time


# ----------------------------------------------------------------------------- sites and scenes


def sample_events_site(rng: np.random.Generator, aspect: float, timeline: Timeline, object_scale: float = 1.0) -> dict:
    """A site of the default benchmark flown by an events camera (hovering, drifting or panning far), on which events
    were seen to fit: a hovering camera over a forest with a pond sees nothing cross."""
    while True:
        site = sample_site(rng, aspect, object_scale)
        site["camera"] = _sample_camera(rng, aspect)
        if any(_try_events_scene(rng, aspect, site, timeline) is not None for _ in range(3)):
            return site


def _sample_camera(rng: np.random.Generator, aspect: float) -> dict:
    motion = str(rng.choice(list(CAMERA_MOTIONS), p=_normalised(CAMERA_MOTIONS)))
    centre = WORLD_SIZE / 2 + rng.uniform(-0.05, 0.05, 2)
    shift, direction = np.zeros(2), None
    if motion == "drift":
        angle = rng.uniform(0, 2 * np.pi)
        shift = 0.1 * np.array([np.cos(angle), np.sin(angle)])
    elif motion == "pan":
        direction = str(rng.choice(list(DIRECTIONS)))
        heading = math.radians(DIRECTIONS[direction])
        extent = 1.0 if direction in ("left", "right") else aspect
        length = min(float(rng.uniform(*PAN_LENGTH)), WORLD_SIZE - extent - 0.1)  # the view stays on the site
        shift = length * np.array([math.cos(heading), math.sin(heading)])
    start = centre - shift / 2
    return {
        "motion": motion,
        "direction": direction,
        "start": [float(v) for v in start],
        "end": [float(v) for v in start + shift],
        "zoom": [1.0, 1.0],
        "sway_phase": float(rng.uniform(0, 2 * np.pi)),
    }


def sample_events_scene(rng: np.random.Generator, aspect: float, site: dict, timeline: Timeline) -> dict:
    """A scene of 3-5 events on `site`, spread over the video: the k-th of n happens around (k + U) / n of it."""
    for _ in range(20):
        scene = _try_events_scene(rng, aspect, site, timeline)
        if scene is not None:
            return scene
    raise RuntimeError(
        f"fewer than {min(EVENT_COUNTS)} events fit on the site {site['terrain']} / {site['landmark']} "
        "after 20 attempts"
    )


def _try_events_scene(rng: np.random.Generator, aspect: float, site: dict, timeline: Timeline) -> dict | None:
    scene = {**copy.deepcopy(site), "entities": []}
    count = int(rng.choice(EVENT_COUNTS))
    for slot in range(count):
        for _ in range(_ATTEMPTS):
            at = (slot + rng.uniform()) / count * timeline.last_time
            entity = _sample_event(rng, scene, aspect, timeline, at)
            if entity is not None:
                scene["entities"].append(entity)
                break
    if len(scene["entities"]) < min(EVENT_COUNTS):
        return None
    finish_events_scene(scene, aspect, timeline)
    return scene


def _sample_event(rng: np.random.Generator, scene: dict, aspect: float, timeline: Timeline, at: float) -> dict | None:
    """One object and what it does around time `at`, or None when it does not fit. Each object gets a few tries, or
    the objects that fit most easily (cars on a road) would crowd out boats and people."""
    panning = scene["camera"]["motion"] == "pan"  # only a pan takes still objects in and out of view
    kinds = [kind for kind in _feasible_kinds(scene) if panning or ENTITY_KINDS[kind]["actions"]]
    if not kinds:
        return None
    kind = str(rng.choice(kinds, p=_normalised({kind: KIND_WEIGHTS[kind] for kind in kinds})))
    look = new_object(rng, scene, kind)
    actions = dict(ENTITY_KINDS[kind]["actions"])
    if kind in ("car", "truck") and not _has_region(scene, ROAD):
        actions = {"parked": 1.0}
    if not _open_surface(scene):  # a quarter turn needs more room than a road band gives
        actions = {action: weight for action, weight in actions.items() if not action.startswith("turning")}
    if not panning:
        actions = {action: weight for action, weight in actions.items() if action not in STILL_ACTIONS}
        if not actions:
            return None
    for _ in range(_TRIES_PER_OBJECT):
        action = str(rng.choice(list(actions), p=_normalised(actions))) if actions else None
        if action is None or action in STILL_ACTIONS:
            entity = _still_event(rng, scene, look, action, aspect, timeline)
        else:
            heading = _sample_heading(rng, scene, kind)
            if action == "parking":  # it comes to rest near the end and stays: seen from when it enters to the end
                at = float(rng.uniform(timeline.last_time - 2.8, timeline.last_time - 0.7))
            cx, cy, zoom = (float(v[0]) for v in camera_view(scene["camera"], np.array([timeline.tau(at)]), aspect))
            through = [cx + float(rng.uniform(-0.3, 0.3)) / zoom, cy + float(rng.uniform(-0.3, 0.3)) * aspect / zoom]
            speed = float(rng.uniform(*SPEEDS[action]))
            entity = moving_event(scene, look, action, heading, through, at, speed, aspect, timeline)
        if entity is not None:
            return entity
    return None


def _sample_heading(rng: np.random.Generator, scene: dict, kind: str) -> float:
    """Degrees: along the road for a vehicle on one, along the river for a boat on one, any direction otherwise
    (boats and people veer a little)."""
    landmark = scene["landmark"]
    if kind in ("car", "truck") and (road_bands(landmark) or scene["terrain"] == "road"):
        axis = next(iter(road_bands(landmark)), landmark)["axis"]
    elif kind == "boat" and landmark is not None and landmark["kind"] == "river":
        axis = landmark["axis"]
    else:
        axis = None
    directions = {"h": ["left", "right"], "v": ["up", "down"], None: list(DIRECTIONS)}[axis]
    heading = DIRECTIONS[str(rng.choice(directions))]
    return heading + (float(rng.uniform(-10, 10)) if kind in ("boat", "people") else 0.0)


def moving_event(
    scene: dict,
    look: dict,
    action: str,
    heading: float,
    through: list[float],
    at: float,
    speed: float,
    aspect: float,
    timeline: Timeline,
) -> dict | None:
    """`look` doing `action` along `heading` (degrees) at `speed`, passing world point `through` at `at` seconds (a
    turn starts there; a parking vehicle comes to rest there), on screen only part of the video; None if it does
    not fit (off its ground, colliding, on an edge at a sampled second, seen too long or too briefly)."""
    entity = {**look, "action": action, "heading": round(heading % 360.0, 3)}
    entity["through"] = [round(value, 4) for value in _on_lane(scene, entity, through)]
    entity["at"], entity["speed"] = round(at, 3), round(speed, 4)
    entity = _parking(entity, timeline) if action == "parking" else _crossing(scene, entity, aspect, timeline)
    if entity is None or not _fits(scene, entity, aspect, timeline):
        return None
    return entity


def _on_lane(scene: dict, entity: dict, point: list[float]) -> list[float]:
    """`point` moved across the road to the lane of the vehicle's direction (right-hand traffic)."""
    bands = road_bands(scene["landmark"]) if entity["kind"] in ("car", "truck") else []
    if not bands:
        return list(point)
    band = bands[0]
    direction = min(DIRECTIONS, key=lambda name: abs((entity["heading"] - DIRECTIONS[name] + 180) % 360 - 180))
    lane = band["centre"] + band["width"] / 4 * (1 if direction in ("right", "up") else -1)
    across = 1 if band["axis"] == "h" else 0
    return [lane if axis == across else value for axis, value in enumerate(point)]


def _crossing(scene: dict, entity: dict, aspect: float, timeline: Timeline) -> dict | None:
    """A path far longer than the view through `through`, trimmed to the frames in which the object is on screen
    (and one clearly off screen on either side, so it never pops in or out)."""
    heading = math.radians(entity["heading"])
    direction = np.array([math.cos(heading), math.sin(heading)])
    long_path = {
        **entity,
        "start": [float(v) for v in np.array(entity["through"]) - _LONG_PATH * direction],
        "present": [
            timeline.tau(entity["at"] - _LONG_PATH / entity["speed"]),
            timeline.tau(entity["at"] + _LONG_PATH / entity["speed"]),
        ],
    }
    if entity["action"].startswith("turning"):
        long_path["motion"] = {
            "kind": "turn",
            "turn": entity["action"].split()[1],
            "turn_at": _LONG_PATH,
            "length": 2 * _LONG_PATH,
        }
    else:
        long_path["motion"] = {"kind": "straight", "length": 2 * _LONG_PATH}
    on_screen = np.flatnonzero(_frame_states(scene, long_path, aspect, timeline) != _OUT)
    if len(on_screen) == 0:
        return None
    taus = timeline.taus
    first = taus[on_screen[0] - 1] if on_screen[0] > 0 else 0.0
    last = taus[on_screen[-1] + 1] if on_screen[-1] < len(taus) - 1 else 1.0
    start, end = long_path["present"]
    walked = [2 * _LONG_PATH * (tau - start) / (end - start) for tau in (first, last)]
    xs, ys, _ = entity_poses(long_path, np.array([first]))
    motion = {**long_path["motion"], "length": walked[1] - walked[0]}
    if motion["kind"] == "turn":
        if walked[0] > motion["turn_at"]:  # it would start mid-turn
            return None
        motion["turn_at"] = motion["turn_at"] - walked[0]
    return {**entity, "start": [float(xs[0]), float(ys[0])], "motion": motion, "present": [float(first), float(last)]}


def _parking(entity: dict, timeline: Timeline) -> dict | None:
    """Enter at full speed, brake and stop at `through` at time `at`, stay to the end: a `stop` motion eases to rest
    at _STOP_AT of its present interval, which therefore starts at (at - _STOP_AT T) / (1 - _STOP_AT)."""
    total = timeline.last_time
    enters = (entity["at"] - _STOP_AT * total) / (1 - _STOP_AT)
    if enters < 0:
        return None
    length = entity["speed"] * (entity["at"] - enters) / 2  # braking evenly from `speed` to rest
    heading = math.radians(entity["heading"])
    start = np.array(entity["through"]) - length * np.array([math.cos(heading), math.sin(heading)])
    return {
        **entity,
        "start": [float(v) for v in start],
        "motion": {"kind": "stop", "length": length},
        "present": [timeline.tau(enters), 1.0],
    }


def _still_event(
    rng: np.random.Generator, scene: dict, look: dict, action: str | None, aspect: float, timeline: Timeline
) -> dict | None:
    """A still object somewhere along the camera's path, so that the pan brings it into view and out of it."""
    kind = look["kind"]
    camera = scene["camera"]
    start, end = np.array(camera["start"]), np.array(camera["end"])
    sweep = float(np.linalg.norm(end - start))
    along = (end - start) / sweep
    across = np.array([-along[1], along[0]])
    half_view = np.array([0.5, 0.5 * aspect])  # the view along and across the pan
    half_along, half_across = float(np.abs(along) @ half_view), float(np.abs(across) @ half_view)
    # anywhere the view passes over: near either end of the sweep it is in view for part of the pan
    point = start + along * rng.uniform(-half_along, sweep + half_along) + across * rng.uniform(-0.9, 0.9) * half_across
    point = [float(value) for value in point]
    if kind == "house":
        heading = float(rng.choice([0.0, 90.0]) + rng.uniform(-8, 8))
    else:
        heading = _sample_heading(rng, scene, kind) if kind != "tree" else 0.0
    entity = {**look, "action": action, "heading": round(heading % 360.0, 3)}
    if kind in ("car", "truck") and rng.random() < 0.6:  # parked in its lane, when there is a road
        point = _on_lane(scene, entity, point)
    entity["start"], entity["motion"] = point, {"kind": "still", "length": 0.0}
    return entity if _fits(scene, entity, aspect, timeline) else None


# ----------------------------------------------------------------------------- what is on screen when


@dataclass(frozen=True)
class _Shape:
    """A box or an ellipse around a centre, half extents along and across the heading (world units)."""

    along: float
    across: float
    rounded: bool

    def bounds(self, headings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Half width and half height of its axis-aligned bounding box at these headings."""
        cos, sin = np.abs(np.cos(headings)), np.abs(np.sin(headings))
        if self.rounded:
            return np.hypot(self.along * cos, self.across * sin), np.hypot(self.along * sin, self.across * cos)
        return self.along * cos + self.across * sin, self.along * sin + self.across * cos

    def points(self, inset: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """(along, across) offsets of points `inset` inside its outline, where it first enters a frame: the corners,
        edge middles and centre of a box; the centre and eight points of the outline of an ellipse."""
        along, across = np.maximum(self.along - inset, 0.0), np.maximum(self.across - inset, 0.0)
        if self.rounded:
            return [(along * math.cos(angle), across * math.sin(angle)) for angle in np.arange(8) * math.pi / 4] + [
                (0.0, 0.0)
            ]
        return [(along * u, across * v) for u in (-1, 0, 1) for v in (-1, 0, 1)]


def _parts(entity: dict, xs: np.ndarray, ys: np.ndarray, headings: np.ndarray) -> list[tuple]:
    """(x, y, outline, painted) of the shapes an entity's sprite is drawn with, at its poses (as `render` draws
    them): nothing is painted outside an outline; `painted`, inside it, is painted for sure (None for a shadow,
    which alone does not show the object)."""
    length, width = entity["size"]
    kind = entity["kind"]
    shadow_x, shadow_y = (SHADOW_HEIGHTS[kind] * offset for offset in _SHADOW_OFFSET)
    if kind == "people":  # each member sways sideways by up to a quarter of its half width
        sway = 0.125 * width
        outline = _Shape(width / 2 + sway, length / 2 + sway, True)
        painted = _Shape(width / 2 - sway, length / 2 - sway, True)
        members = [(xs + dx, ys + dy) for dx, dy in entity["members"]]
        return [
            part for x, y in members for part in ((x, y, outline, painted), (x + shadow_x, y + shadow_y, outline, None))
        ]
    if kind == "tree":
        outline = painted = _Shape(length / 2, length / 2, True)
    elif kind == "boat":  # a square stern, a pointed bow
        outline, painted = _Shape(length / 2, width / 2, False), _Shape(length / 2, 0.46 * width, True)
    elif kind == "truck":  # cargo and cab, a little narrower
        outline, painted = _Shape(length / 2, width / 2, False), _Shape(0.49 * length, 0.46 * width, False)
    else:
        outline = painted = _Shape(length / 2, width / 2, False)
    parts = [(xs, ys, outline, painted), (xs + shadow_x, ys + shadow_y, outline, None)]
    if kind == "boat" and entity["motion"]["kind"] != "still":  # the wake trailing behind
        back = 1.6 * length / 2
        wake = _Shape(1.1 * length / 2, 1.1 * width / 2, True)
        parts.append((xs - back * np.cos(headings), ys - back * np.sin(headings), wake, wake))
    return parts


def _frame_states(scene: dict, entity: dict, aspect: float, timeline: Timeline) -> np.ndarray:
    """Per frame: _IN (a point painted for sure lies half a pixel inside the frame, so a pixel of it shows),
    _OUT (every outline lies a pixel or more outside: no pixel shows) or _UNCLEAR (on the edge)."""
    taus = timeline.taus
    xs, ys, headings = entity_poses(entity, taus)
    cx, cy, zoom = camera_view(scene["camera"], taus, aspect)
    half_width, half_height = 0.5 / zoom, 0.5 * aspect / zoom
    pixel = 1.0 / (timeline.width * zoom)
    inside = np.zeros(len(taus), dtype=bool)
    near = np.zeros(len(taus), dtype=bool)
    cos, sin = np.cos(headings), np.sin(headings)
    for x, y, outline, painted in _parts(entity, xs, ys, headings):
        bound_x, bound_y = outline.bounds(headings)
        gap = np.maximum(np.abs(x - cx) - bound_x - half_width, np.abs(y - cy) - bound_y - half_height)
        near |= gap < pixel
        if painted is not None:
            for along, across in painted.points(pixel / 2):
                px, py = x + along * cos - across * sin, y + along * sin + across * cos
                inside |= (np.abs(px - cx) <= half_width - pixel / 2) & (np.abs(py - cy) <= half_height - pixel / 2)
    states = np.where(inside, _IN, np.where(near, _UNCLEAR, _OUT))
    return np.where(present_at(entity, taus), states, _OUT)


def _fits(scene: dict, entity: dict, aspect: float, timeline: Timeline) -> bool:
    """On screen in one stretch, never on an edge at a sampled second, seen for VISIBLE_SECONDS, on its ground,
    moving forward on screen, and clear of the scene's entities whenever both are there."""
    states = _frame_states(scene, entity, aspect, timeline)
    on_screen = np.flatnonzero(states != _OUT)
    if len(on_screen) == 0 or on_screen[-1] - on_screen[0] + 1 != len(on_screen):
        return False
    sampled = states[timeline.sampled_frames]
    if np.any(sampled == _UNCLEAR) or not VISIBLE_SECONDS[0] <= np.sum(sampled == _IN) <= VISIBLE_SECONDS[1]:
        return False
    taus = timeline.taus
    present = present_at(entity, taus)
    drawn = np.flatnonzero(present)
    if (drawn[0] > 0 and states[drawn[0]] != _OUT) or (drawn[-1] < len(taus) - 1 and states[drawn[-1]] != _OUT):
        return False  # it would pop into or out of view
    xs, ys, headings = entity_poses(entity, taus)
    moving = entity["motion"]["kind"] != "still"
    region = ENTITY_KINDS[entity["kind"]]["moving_region"] if moving else None
    if not on_allowed_ground(scene, entity, xs[present], ys[present], headings[present], region):
        return False
    if moving:  # a pan in the same direction must not make it drift backwards across the frame
        cx, cy, _ = camera_view(scene["camera"], taus, aspect)
        first, last = on_screen[0], on_screen[-1]
        heading = math.radians(entity["heading"])
        forward = ((xs[last] - cx[last]) - (xs[first] - cx[first])) * math.cos(heading) + (
            (ys[last] - cy[last]) - (ys[first] - cy[first])
        ) * math.sin(heading)
        if forward <= 0:
            return False
    radius = _radius(entity)
    for other in scene["entities"]:
        both = present & present_at(other, taus)
        if not both.any():
            continue
        other_x, other_y, _ = entity_poses(other, taus[both])
        if np.min(np.hypot(xs[both] - other_x, ys[both] - other_y)) < 0.95 * (radius + _radius(other)):
            return False
    return True


def _radius(entity: dict) -> float:
    return 0.5 * max(entity["size"]) + (0.06 if entity["kind"] == "people" else 0.0)


def finish_events_scene(scene: dict, aspect: float, timeline: Timeline) -> None:
    """Fill the derived fields: each entity's direction and footprint, its relations to the ground and landmark
    where it is seen, and the `events`."""
    finish_entities(scene, aspect)
    taus = timeline.taus
    relations, events = [], []
    for index, entity in enumerate(scene["entities"]):
        states = _frame_states(scene, entity, aspect, timeline)
        on_screen = np.flatnonzero(states != _OUT)
        seen = [second for second, frame in enumerate(timeline.sampled_frames) if states[frame] == _IN]
        xs, ys, _ = entity_poses(entity, taus[timeline.sampled_frames[seen]])
        relations += landmark_relations(scene, index, xs, ys)
        events.append(
            {
                "kind": entity["kind"],
                "colour": entity["colour"],
                "count": entity["count"],
                "size": entity["size"],
                "action": entity["action"],
                "direction": entity["direction"],
                "interval": [round(timeline.seconds(taus[frame]), 3) for frame in (on_screen[0], on_screen[-1])],
                "enters": _edge_beyond(scene, entity, on_screen[0] - 1, aspect, timeline) if on_screen[0] > 0 else None,
                "leaves": (
                    _edge_beyond(scene, entity, on_screen[-1] + 1, aspect, timeline)
                    if on_screen[-1] < len(taus) - 1
                    else None
                ),
                "visible_seconds": seen,
            }
        )
    for event in events:
        event["when"] = _when(event, events)
    scene["relations"] = relations
    scene["events"] = events


def _edge_beyond(scene: dict, entity: dict, frame: int, aspect: float, timeline: Timeline) -> str:
    """The edge of the frame ("left", "right", "top", "bottom") the entity's centre is beyond at `frame`."""
    tau = timeline.taus[frame : frame + 1]
    (x,), (y,), _ = entity_poses(entity, tau)
    (cx,), (cy,), _ = camera_view(scene["camera"], tau, aspect)
    if abs(x - cx) >= abs(y - cy) / aspect:
        return "left" if x < cx else "right"
    return "top" if y < cy else "bottom"


def _when(event: dict, events: list[dict]) -> str | None:
    """ "first": the only one seen first; "last": the only one seen last (and not first); "later": seen after
    another started; None: first together with another."""
    starts = [other["visible_seconds"][0] for other in events]
    ends = [other["visible_seconds"][-1] for other in events]
    start, end = event["visible_seconds"][0], event["visible_seconds"][-1]
    if start == min(starts) and starts.count(start) == 1:
        return "first"
    if end == max(ends) and ends.count(end) == 1:
        return "last"
    return "later" if start > min(starts) else None


# ----------------------------------------------------------------------------- hard negatives


def make_events_twin(
    rng: np.random.Generator, scene: dict, aspect: float, timeline: Timeline
) -> tuple[dict, dict] | None:
    """A minimal-edit twin: the same scene with one event changed — its object's colour, its action, its direction
    or its time (the first event moved to the end or the last to the start). Returns (twin scene, edit) or None
    when no edit keeps the scene valid."""
    for edit_kind in rng.choice(list(EDIT_KINDS), size=len(EDIT_KINDS), replace=False, p=_normalised(EDIT_KINDS)):
        for index in rng.permutation(len(scene["entities"])):
            result = _EDITORS[str(edit_kind)](rng, scene, int(index), aspect, timeline)
            if result is not None:
                return result
    return None


def _with_entity(scene: dict, index: int, entity: dict, aspect: float, timeline: Timeline) -> dict:
    twin = copy.deepcopy(scene)
    twin["entities"][index] = entity
    finish_events_scene(twin, aspect, timeline)
    return twin


def _rebuilt(scene: dict, index: int, aspect: float, timeline: Timeline, **changes) -> dict | None:
    """Entity `index` moving again with some of action, heading, through, at and speed changed; None if it no
    longer fits among the others."""
    entity = scene["entities"][index]
    others = {**scene, "entities": [other for position, other in enumerate(scene["entities"]) if position != index]}
    settings = {name: entity[name] for name in ("action", "heading", "through", "at", "speed")} | changes
    look = {name: entity[name] for name in ("kind", "colour", "count", "members", "size") if name in entity}
    return moving_event(
        others,
        look,
        settings["action"],
        settings["heading"],
        settings["through"],
        settings["at"],
        settings["speed"],
        aspect,
        timeline,
    )


def _edit_colour(rng, scene, index, aspect, timeline):
    entity = copy.deepcopy(scene["entities"][index])
    old = entity["colour"]
    entity["colour"] = str(rng.choice([colour for colour in ENTITY_KINDS[entity["kind"]]["colours"] if colour != old]))
    twin = _with_entity(scene, index, entity, aspect, timeline)
    return twin, {"kind": "colour", "entity": index, "from": old, "to": entity["colour"]}


def _edit_action(rng, scene, index, aspect, timeline):
    action = scene["entities"][index]["action"]
    for new_action in ACTION_SWAPS.get(action, ()):
        for _ in range(5):
            speed = float(rng.uniform(*SPEEDS[new_action]))
            entity = _rebuilt(scene, index, aspect, timeline, action=new_action, speed=speed)
            if entity is not None:
                twin = _with_entity(scene, index, entity, aspect, timeline)
                return twin, {"kind": "action", "entity": index, "from": action, "to": new_action}
    return None


def _edit_direction(rng, scene, index, aspect, timeline):
    entity = scene["entities"][index]
    if entity["motion"]["kind"] not in ("straight", "stop"):
        return None
    reversed_entity = _rebuilt(scene, index, aspect, timeline, heading=(entity["heading"] + 180.0) % 360.0)
    if reversed_entity is None:
        return None
    twin = _with_entity(scene, index, reversed_entity, aspect, timeline)
    if twin["entities"][index]["direction"] != OPPOSITE[entity["direction"]]:
        return None
    return twin, {
        "kind": "direction",
        "entity": index,
        "from": entity["direction"],
        "to": twin["entities"][index]["direction"],
    }


def _edit_time(rng, scene, index, aspect, timeline):
    """Move the first event to the end or the last one to the start, at the same place on screen."""
    entity, event = scene["entities"][index], scene["events"][index]
    if entity["motion"]["kind"] not in ("straight", "turn") or event["when"] not in ("first", "last"):
        return None
    target = "last" if event["when"] == "first" else "first"
    total = timeline.last_time
    old_view = camera_view(scene["camera"], np.array([timeline.tau(entity["at"])]), aspect)
    for _ in range(10):
        at = float(rng.uniform(0.7 * total, total) if target == "last" else rng.uniform(0.0, 0.3 * total))
        new_view = camera_view(scene["camera"], np.array([timeline.tau(at)]), aspect)
        through = [entity["through"][axis] + float(new_view[axis][0] - old_view[axis][0]) for axis in (0, 1)]
        moved = _rebuilt(scene, index, aspect, timeline, at=at, through=through)
        if moved is None:
            continue
        twin = _with_entity(scene, index, moved, aspect, timeline)
        if twin["events"][index]["when"] == target:
            return twin, {
                "kind": "time",
                "entity": index,
                "from": event["when"],
                "to": target,
                "interval_from": event["interval"],
                "interval_to": twin["events"][index]["interval"],
            }
    return None


_EDITORS = {"colour": _edit_colour, "action": _edit_action, "direction": _edit_direction, "time": _edit_time}


# ----------------------------------------------------------------------------- captions


def event_captions(
    rng: np.random.Generator, scene: dict, count: int = 5, focus: dict | None = None
) -> tuple[list[str], list[int | None]]:
    """`count` distinct captions, each about one event (its object, what it does, maybe where and when) or about
    the place (None), and the event each describes. Every event gets a caption before any gets two.

    `focus` ({"entity": i, "aspect": "colour" | "action" | "direction" | "time"}) makes the first two captions tell
    that aspect of event i, so that a hard-negative twin's captions state what differs.
    """
    writer = _EventCaptionWriter(rng, scene)
    order = [int(index) for index in rng.permutation(len(scene["events"]))]
    if focus is not None:
        order = [focus["entity"]] * 2 + [index for index in order if index != focus["entity"]]
    captions: list[str] = []
    described: list[int | None] = []
    for slot in range(count):
        if slot < len(order):
            subject = order[slot]
        else:
            subject = None if writer.chance(REGION_CAPTION_CHANCE) else order[int(rng.integers(len(order)))]
        for _ in range(25):
            if subject is None:
                caption = writer.landscape() if writer.chance(0.5) else writer.camera()
            else:
                caption = writer.event(subject, focus if focus is not None and slot < 2 else None)
            if caption not in captions:
                break
        captions.append(caption)
        described.append(subject)
    return captions, described


class _EventCaptionWriter(_CaptionWriter):
    """The default writer's phrases, plus an object's coming into and going out of view and when it happens."""

    def event(self, index: int, focus: dict | None = None) -> str:
        event = self.scene["events"][index]
        aspect = focus["aspect"] if focus else None
        if aspect in (None, "colour", "time") and self.chance(0.35):
            caption = self.passage(index, colour=aspect == "colour" or self.chance(0.7))
        else:
            caption = self.entity(index, focus=focus if aspect in ("colour", "action", "direction") else None)
        if event["when"] is not None and (aspect == "time" or self.chance(0.5)):
            caption = self.timed(caption, event["when"])
        return caption

    def passage(self, index: int, colour: bool) -> str:
        """ "a red car comes into view from the left and leaves the view on the right"."""
        event = self.scene["events"][index]
        subject, plural = self._noun_phrase(index, colour)
        enters, leaves = event["enters"], event["leaves"]
        parts = [subject]
        if enters:
            parts += [self.pick(ENTER_VERBS[plural]), "from", self.pick(EDGE_PHRASES[enters])]
        if event["action"] == "parking":
            parts += ["and" if enters else "", self.pick(PARK_VERBS)]
        elif leaves:
            parts += [
                "and" if enters else "",
                self.pick(LEAVE_VERBS[plural]),
                self.pick(("on", "at")),
                self.pick(EDGE_PHRASES[leaves]),
            ]
        return _join(*parts)

    def timed(self, caption: str, when: str) -> str:
        """The caption with a word of when ("at first", "then", "at the end") in front or behind."""
        if caption.startswith(PREFIXES) or self.chance(0.4):
            return _join(caption, self.pick(TIME_SUFFIXES[when]))
        return _join(self.pick(TIME_PREFIXES[when]), caption)
