"""Scenes of the synthetic drone benchmark: what is where, doing what (the ground truth).

A scene is a JSON-ready dict, the same one written to `ground_truth.jsonl` and rendered by
`render`, so every video can be re-rendered from its ground truth line. Geometry is in
*world units*: one unit is the frame width at zoom 1 (objects keep their share of the frame
at any resolution); the world is a WORLD_SIZE × WORLD_SIZE square, x to the right and y
down, as on screen (the camera never rotates, so "left" in the world is left in the frame).
Time τ runs from 0 (first frame) to 1 (last frame), whatever the duration and frame rate.
An entity with a `present` interval [τ0, τ1] (the events benchmark, `events`) exists only
then and travels its whole path over it; without one it is there for the whole video.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

WORLD_SIZE = 2.0
# Texture of each terrain, shared by all videos: a video crops a WORLD_SIZE square of it.
TEXTURE_SIZE = 4.0

LAND, WATER, ROAD = 0, 1, 2

# terrain → the landmarks it can carry (None: plain terrain) and what stands on its land.
TERRAINS: dict[str, dict[str, Any]] = {
    "grass": {"landmarks": (None, "road", "lake", "river"), "land_kinds": ("people", "house", "tree", "car", "truck")},
    "sand": {"landmarks": (None, "road", "shore"), "land_kinds": ("people", "house", "tree", "car")},
    "water": {"landmarks": (None, "bridge"), "land_kinds": ()},
    "road": {"landmarks": ("lanes", "parking_lot"), "land_kinds": ()},
    "forest": {"landmarks": (None, "road", "lake", "river"), "land_kinds": ("house",)},
    "urban": {"landmarks": ("street",), "land_kinds": ()},
    "farmland": {"landmarks": (None, "road", "river"), "land_kinds": ("people", "house", "tree", "car", "truck")},
}
# The noun a caption would use for the land of a terrain / the surface of a landmark.
TERRAIN_SURFACE = {
    "grass": "grass",
    "sand": "sand",
    "water": "water",
    "road": "road",
    "forest": "forest",
    "urban": "rooftops",
    "farmland": "field",
}

VEHICLE_COLOURS = ("red", "blue", "white", "black", "yellow", "orange", "purple")
ROOF_COLOURS = ("red", "blue", "white", "orange", "purple", "black")
TREE_COLOURS = ("green", "yellow", "orange", "red")
SHIRT_COLOURS = ("red", "blue", "white", "yellow", "orange", "purple")

# length × width in world units (a car is ~1 % of the frame, a house ~3 %); `speed` is the
# distance covered over the whole video when moving.
ENTITY_KINDS: dict[str, dict[str, Any]] = {
    "car": {
        "size": (0.15, 0.08),
        "colours": VEHICLE_COLOURS,
        "speed": 0.45,
        "moving_region": ROAD,
        "actions": {"driving": 3.0, "turning left": 1.0, "turning right": 1.0, "parking": 1.0, "parked": 2.0},
    },
    "truck": {
        "size": (0.21, 0.09),
        "colours": VEHICLE_COLOURS,
        "speed": 0.38,
        "moving_region": ROAD,
        "actions": {"driving": 3.0, "parking": 1.0, "parked": 2.0},
    },
    "boat": {
        "size": (0.18, 0.075),
        "colours": VEHICLE_COLOURS,
        "speed": 0.4,
        "moving_region": WATER,
        "actions": {"sailing": 3.0, "turning left": 1.0, "turning right": 1.0, "anchored": 2.0},
    },
    "people": {
        "size": (0.06, 0.04),
        "colours": SHIRT_COLOURS,
        "speed": 0.2,
        "moving_region": LAND,
        "actions": {"walking": 3.0, "running": 1.5, "standing": 2.0},
    },
    "house": {"size": (0.22, 0.16), "colours": ROOF_COLOURS, "speed": 0.0, "moving_region": None, "actions": {}},
    "tree": {"size": (0.13, 0.13), "colours": TREE_COLOURS, "speed": 0.0, "moving_region": None, "actions": {}},
}
KIND_WEIGHTS = {"car": 3.0, "truck": 1.2, "boat": 2.5, "people": 2.0, "house": 1.5, "tree": 1.0}
STILL_ACTIONS = ("parked", "anchored", "standing")
# Actions a twin may swap to (a minimal edit of one object's action).
ACTION_SWAPS = {
    "driving": ("parked", "parking"),
    "parked": ("driving",),
    "parking": ("driving", "parked"),
    "turning left": ("turning right",),
    "turning right": ("turning left",),
    "sailing": ("anchored",),
    "anchored": ("sailing",),
    "walking": ("standing", "running"),
    "running": ("walking",),
    "standing": ("walking",),
}
CAMERA_MOTIONS = {"hover": 1.0, "drift": 2.0, "pan": 2.0, "zoom in": 1.0, "zoom out": 1.0}
DIRECTIONS = {"right": 0.0, "down": 90.0, "left": 180.0, "up": 270.0}  # heading in degrees, y down
OPPOSITE = {
    "right": "left",
    "left": "right",
    "up": "down",
    "down": "up",
    "left of": "right of",
    "right of": "left of",
    "above": "below",
    "below": "above",
}

_TURN_RADIUS = 0.16
_STOP_AT = 0.65  # a parking vehicle has stopped by this time
_MAX_ZOOM = 1.35
_MARGIN = 0.03  # world units kept between an object and the edge of the always-visible area
_CHECK_TIMES = np.linspace(0.0, 1.0, 17)
_PATH_SAMPLES = 256


# ----------------------------------------------------------------------------- geometry


def camera_view(camera: dict, times: np.ndarray, aspect: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Camera centre x, y and zoom at times τ; the view spans 1/zoom × aspect/zoom units."""
    ease = _smoothstep(times)
    (x0, y0), (x1, y1) = camera["start"], camera["end"]
    x, y = x0 + (x1 - x0) * ease, y0 + (y1 - y0) * ease
    if camera["motion"] == "hover":  # a hovering drone still sways a little
        x = x + 0.004 * np.sin(2 * np.pi * 1.3 * times + camera["sway_phase"])
        y = y + 0.004 * np.cos(2 * np.pi * 0.9 * times + camera["sway_phase"])
    zoom0, zoom1 = camera["zoom"]
    zoom = zoom0 * (zoom1 / zoom0) ** ease  # geometric: a steady feel of descent
    return x, y, zoom


def world_to_screen(camera: dict, x: np.ndarray, y: np.ndarray, times: np.ndarray, aspect: float):
    """World points at times τ → (u, v) in [0, 1] frame coordinates, and the zoom."""
    cx, cy, zoom = camera_view(camera, times, aspect)
    return 0.5 + (x - cx) * zoom, 0.5 + (y - cy) * zoom / aspect, zoom


def visible_box(camera: dict, aspect: float) -> tuple[float, float, float, float]:
    """World box (x0, y0, x1, y1) seen in every frame."""
    cx, cy, zoom = camera_view(camera, _CHECK_TIMES, aspect)
    half_w, half_h = 0.5 / zoom, 0.5 * aspect / zoom
    return (
        float(np.max(cx - half_w)),
        float(np.max(cy - half_h)),
        float(np.min(cx + half_w)),
        float(np.min(cy + half_h)),
    )


def region_codes(scene: dict, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """LAND / WATER / ROAD at world points (same geometry the renderer paints)."""
    terrain, landmark = scene["terrain"], scene["landmark"]
    x, y = np.broadcast_arrays(x, y)
    base = {"water": WATER, "road": ROAD}.get(terrain, LAND)
    codes = np.full(x.shape, base, dtype=np.int8)
    if landmark is None:
        return codes
    if landmark["kind"] in ("lake", "river", "shore"):
        codes[water_mask(landmark, x, y)] = WATER
    for band in road_bands(landmark):
        codes[band_mask(band, x, y)] = ROAD
    return codes


def surface_name(scene: dict, x: float, y: float) -> str:
    """The noun of the surface under a world point: "road", "bridge", "lake", "grass", ..."""
    terrain, landmark = scene["terrain"], scene["landmark"]
    code = int(region_codes(scene, np.array(x), np.array(y)))
    kind = landmark["kind"] if landmark else None
    if code == ROAD:
        if kind in ("river", "bridge"):
            over_water = kind == "bridge" or bool(water_mask(landmark, np.array(x), np.array(y)))
            return "bridge" if over_water else "road"
        return {"lanes": "highway", "parking_lot": "parking lot", "street": "street"}.get(kind, "road")
    if code == WATER:
        return {"lake": "lake", "river": "river", "shore": "sea"}.get(kind, "water")
    if terrain == "sand" and kind == "shore":
        return "beach"
    return TERRAIN_SURFACE[terrain]


def water_mask(landmark: dict, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Where a lake / river / shore landmark has water."""
    kind = landmark["kind"]
    if kind == "lake":
        cx, cy = landmark["centre"]
        rx, ry = landmark["radii"]
        angle = np.arctan2((y - cy) / ry, (x - cx) / rx)
        wobble = 1 + 0.08 * np.sin(2 * angle + landmark["phase"]) + 0.05 * np.sin(3 * angle + 2 * landmark["phase"])
        return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 < wobble**2
    along, across = (x, y) if landmark["axis"] == "h" else (y, x)
    edge = landmark["position"] + 0.03 * np.sin(2 * np.pi * along / 0.9 + landmark["phase"])
    if kind == "river":
        return np.abs(across - edge) < landmark["width"] / 2
    return (across - edge) * landmark["side"] > 0  # shore: the sea lies on `side` of the wavy line


def road_bands(landmark: dict | None) -> list[dict]:
    """Straight road bands of a landmark: {"axis", "centre", "width"} (a river's crossing road)."""
    if landmark is None:
        return []
    if landmark["kind"] in ("road", "bridge", "street"):
        return [landmark]
    if landmark["kind"] == "river":
        return [landmark["crossing"]]
    return []


def band_mask(band: dict, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    across = y if band["axis"] == "h" else x
    return np.abs(across - band["centre"]) < band["width"] / 2


def entity_poses(entity: dict, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World x, y and heading (radians, 0 = right, y down) of an entity at times τ."""
    if entity["motion"]["kind"] == "still":  # equals the path table's answer, without building the table
        shape = np.shape(times)
        return (
            np.full(shape, float(entity["start"][0])),
            np.full(shape, float(entity["start"][1])),
            np.full(shape, math.radians(entity["heading"])),
        )
    distance = _path_distance(entity, times)
    arc, xs, ys, headings = _path_table(entity)
    return np.interp(distance, arc, xs), np.interp(distance, arc, ys), np.interp(distance, arc, headings)


def present_at(entity: dict, times: np.ndarray) -> np.ndarray:
    """Whether the entity exists at times τ (drawn, if in view)."""
    if "present" not in entity:
        return np.ones(np.shape(times), dtype=bool)
    start, end = entity["present"]
    return (times >= start) & (times <= end)


def _local_times(entity: dict, times: np.ndarray) -> np.ndarray:
    """Video time τ → the entity's own time, 0 → 1 over its `present` interval (the whole video without one)."""
    if "present" not in entity:
        return times
    start, end = entity["present"]
    return np.clip((times - start) / (end - start), 0.0, 1.0)


def _path_distance(entity: dict, times: np.ndarray) -> np.ndarray:
    """Distance along the path travelled by time τ (constant speed; parking eases to a stop)."""
    motion = entity["motion"]
    length = motion["length"]
    times = _local_times(entity, times)
    if motion["kind"] == "stop":
        progress = np.clip(times / _STOP_AT, 0.0, 1.0)
        return length * (1 - (1 - progress) ** 2)  # decelerates to rest at _STOP_AT
    return length * times


def _path_table(entity: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The path as (arc length, x, y, heading) samples, integrated from the heading along it."""
    motion = entity["motion"]
    arc = np.linspace(0.0, max(motion["length"], 1e-9), _PATH_SAMPLES)
    heading0 = math.radians(entity["heading"])
    if motion["kind"] == "turn":
        # straight, then a quarter circle (left = heading decreasing, as y points down), then straight
        sign = -1.0 if motion["turn"] == "left" else 1.0
        on_arc = np.clip((arc - motion["turn_at"]) / _TURN_RADIUS, 0.0, math.pi / 2)
        headings = heading0 + sign * on_arc
    else:
        headings = np.full_like(arc, heading0)
    step = np.diff(arc, prepend=0.0)
    # midpoint headings make the integration exact for the straight parts and accurate on the arc
    mid = np.concatenate([[headings[0]], (headings[1:] + headings[:-1]) / 2])
    xs = entity["start"][0] + np.cumsum(step * np.cos(mid))
    ys = entity["start"][1] + np.cumsum(step * np.sin(mid))
    if motion["kind"] == "stop" and motion.get("pull_over"):
        # pull over: drift sideways towards the right edge of the lane while braking
        shift = motion["pull_over"] * np.clip(arc / arc[-1], 0, 1) ** 2
        xs = xs - shift * np.sin(heading0)
        ys = ys + shift * np.cos(heading0)
    return arc, xs, ys, headings


def _smoothstep(times: np.ndarray) -> np.ndarray:
    times = np.clip(times, 0.0, 1.0)
    return times * times * (3 - 2 * times)


# ----------------------------------------------------------------------------- sampling


def sample_site(rng: np.random.Generator, aspect: float, object_scale: float = 1.0) -> dict:
    """A random site: terrain, landmark, texture crop and camera path, without objects; `object_scale` multiplies
    the size of every object placed on it.

    Several videos share a site (the same place flown the same way); only their objects differ.
    """
    while True:
        terrain = str(rng.choice(list(TERRAINS)))
        landmark_kind = TERRAINS[terrain]["landmarks"][rng.integers(len(TERRAINS[terrain]["landmarks"]))]
        site = {
            "terrain": terrain,
            "texture": {
                "offset": [float(v) for v in rng.uniform(0, TEXTURE_SIZE - WORLD_SIZE, 2)],
                "flip": [bool(v) for v in rng.integers(0, 2, 2)],
            },
            "landmark": _sample_landmark(rng, landmark_kind),
            "camera": _sample_camera(rng, aspect),
            "object_scale": object_scale,
        }
        if _feasible_kinds(site):
            return site


def sample_scene(rng: np.random.Generator, aspect: float, site: dict | None = None) -> dict:
    """A random scene: 1-4 entities with derived relations, on `site` (a new random site when None)."""
    if site is None:
        site = sample_site(rng, aspect)
    for _ in range(100):
        scene = {**copy.deepcopy(site), "entities": []}
        target = int(rng.choice([1, 2, 3, 4], p=[0.2, 0.35, 0.3, 0.15]))
        for index in range(target):
            for _ in range(30):
                entity = _sample_entity(rng, scene, aspect, prefer_moving=index == 0)
                if entity is not None:
                    scene["entities"].append(entity)
                    break
        if scene["entities"]:
            finish_scene(scene, aspect)
            return scene
    raise RuntimeError(f"no object fits on the site {site['terrain']} / {site['landmark']} after 100 attempts")


def finish_scene(scene: dict, aspect: float) -> None:
    """Fill the derived fields: each entity's direction and screen footprint, and the relations."""
    finish_entities(scene, aspect)
    scene["relations"] = derive_relations(scene)


def finish_entities(scene: dict, aspect: float) -> None:
    """Fill each entity's direction, screen positions at the first and last frame, and share of the frame."""
    for entity in scene["entities"]:
        entity["direction"] = _direction_label(entity)
        u, v, zoom = world_to_screen(
            scene["camera"], *entity_poses(entity, np.array([0.0, 1.0]))[:2], np.array([0.0, 1.0]), aspect
        )
        entity["position_start"] = [round(float(u[0]), 4), round(float(v[0]), 4)]
        entity["position_end"] = [round(float(u[1]), 4), round(float(v[1]), 4)]
        entity["area_fraction"] = round(_footprint(entity) * float(np.mean(zoom**2)) / aspect, 5)


def _footprint(entity: dict) -> float:
    length, width = entity["size"]
    if entity["kind"] == "tree":
        return math.pi * (length / 2) ** 2
    if entity["kind"] == "people":
        return entity["count"] * math.pi * length * width / 4
    return length * width


def _sample_landmark(rng: np.random.Generator, kind: str | None) -> dict | None:
    if kind is None:
        return None
    centre = WORLD_SIZE / 2
    axis = str(rng.choice(["h", "v"]))
    phase = float(rng.uniform(0, 2 * np.pi))
    if kind == "road":
        return {"kind": kind, "axis": axis, "centre": centre + float(rng.uniform(-0.2, 0.2)), "width": 0.26}
    if kind == "street":
        return {"kind": kind, "axis": axis, "centre": centre + float(rng.uniform(-0.15, 0.15)), "width": 0.36}
    if kind == "bridge":
        return {"kind": kind, "axis": axis, "centre": centre + float(rng.uniform(-0.2, 0.2)), "width": 0.2}
    if kind == "lake":
        offset = rng.uniform(0.18, 0.3, 2) * rng.choice([-1, 1], 2)  # off-centre: land stays in view
        return {
            "kind": kind,
            "centre": [float(centre + offset[0]), float(centre + offset[1])],
            "radii": [float(v) for v in rng.uniform(0.2, 0.3, 2)],
            "phase": phase,
        }
    if kind == "river":
        crossing_axis = "v" if axis == "h" else "h"
        return {
            "kind": kind,
            "axis": axis,
            "position": centre + float(rng.uniform(-0.2, 0.2)),
            "width": 0.3,
            "phase": phase,
            "crossing": {"axis": crossing_axis, "centre": centre + float(rng.uniform(-0.25, 0.25)), "width": 0.2},
        }
    if kind == "shore":
        return {
            "kind": kind,
            "axis": axis,
            "position": centre + float(rng.uniform(-0.1, 0.1)),
            "side": int(rng.choice([-1, 1])),
            "phase": phase,
        }
    if kind in ("lanes", "parking_lot"):
        return {"kind": kind, "axis": axis, "centre": centre, "spacing": 0.16 if kind == "lanes" else 0.11}
    raise ValueError(f"unknown landmark kind {kind!r}")


def _sample_camera(rng: np.random.Generator, aspect: float) -> dict:
    motion = str(rng.choice(list(CAMERA_MOTIONS), p=_normalised(CAMERA_MOTIONS)))
    start = WORLD_SIZE / 2 + rng.uniform(-0.05, 0.05, 2)
    shift, direction, zoom = np.zeros(2), None, (1.0, 1.0)
    if motion == "drift":
        angle = rng.uniform(0, 2 * np.pi)
        shift = 0.1 * np.array([np.cos(angle), np.sin(angle)])
    elif motion == "pan":
        direction = str(rng.choice(list(DIRECTIONS)))
        heading = math.radians(DIRECTIONS[direction])
        extent = 1.0 if direction in ("left", "right") else aspect  # pan by 30 % of the view along its axis
        shift = 0.3 * extent * np.array([math.cos(heading), math.sin(heading)])
    elif motion == "zoom in":
        zoom = (1.0, _MAX_ZOOM)
    elif motion == "zoom out":
        zoom = (_MAX_ZOOM, 1.0)
    start = start - shift / 2
    return {
        "motion": motion,
        "direction": direction,
        "start": [float(v) for v in start],
        "end": [float(v) for v in start + shift],
        "zoom": [float(zoom[0]), float(zoom[1])],
        "sway_phase": float(rng.uniform(0, 2 * np.pi)),
    }


def _sample_entity(rng: np.random.Generator, scene: dict, aspect: float, prefer_moving: bool) -> dict | None:
    kinds = _feasible_kinds(scene)
    if not kinds:
        return None
    if prefer_moving and rng.random() < 0.85:
        kinds = [kind for kind in kinds if ENTITY_KINDS[kind]["actions"]] or kinds
    kind = str(rng.choice(kinds, p=_normalised({kind: KIND_WEIGHTS[kind] for kind in kinds})))
    entity = new_object(rng, scene, kind)
    actions = dict(ENTITY_KINDS[kind]["actions"])
    if kind in ("car", "truck") and not _has_region(scene, ROAD):
        actions = {"parked": 1.0}
    if not _open_surface(scene):  # a quarter turn needs more room than a road band gives
        actions = {action: weight for action, weight in actions.items() if not action.startswith("turning")}
    entity["action"] = str(rng.choice(list(actions), p=_normalised(actions))) if actions else None
    if not _place(rng, scene, entity, aspect):
        return None
    return entity


def new_object(rng: np.random.Generator, scene: dict, kind: str) -> dict:
    """An object of `kind` as it looks: colour, size and, for people, how many and where in the group."""
    spec = ENTITY_KINDS[kind]
    entity: dict[str, Any] = {"kind": kind, "colour": str(rng.choice(spec["colours"])), "count": 1}
    if kind == "people":
        entity["count"] = int(rng.integers(1, 6))
        entity["members"] = [[0.0, 0.0]] + [
            [float(v) for v in rng.uniform(-0.06, 0.06, 2)] for _ in range(entity["count"] - 1)
        ]
    scale = scene["object_scale"] * (float(rng.uniform(0.85, 1.15)) if kind == "tree" else 1.0)
    entity["size"] = [spec["size"][0] * scale, spec["size"][1] * scale]
    return entity


def _feasible_kinds(scene: dict) -> list[str]:
    kinds = list(TERRAINS[scene["terrain"]]["land_kinds"]) if _has_region(scene, LAND) else []
    if _has_region(scene, ROAD):
        kinds += ["car", "truck"] + (["people"] if _surface_kind(scene) in ("street",) else [])
    if _has_region(scene, WATER):
        kinds.append("boat")
    return sorted(set(kinds), key=list(ENTITY_KINDS).index)


def _has_region(scene: dict, code: int) -> bool:
    grid = np.linspace(0.3, WORLD_SIZE - 0.3, 24)
    return bool(np.any(region_codes(scene, grid[None, :], grid[:, None]) == code))


def _surface_kind(scene: dict) -> str | None:
    return scene["landmark"]["kind"] if scene["landmark"] else None


def _open_surface(scene: dict) -> bool:
    return scene["terrain"] == "water" or _surface_kind(scene) in ("parking_lot", "shore", "lake")


def _place(rng: np.random.Generator, scene: dict, entity: dict, aspect: float) -> bool:
    """Choose a start, heading and path that stay visible, on allowed ground and clear of others."""
    x0, y0, x1, y1 = visible_box(scene["camera"], aspect)
    kind, action = entity["kind"], entity["action"]
    spec = ENTITY_KINDS[kind]
    moving = action is not None and action not in STILL_ACTIONS
    region = spec["moving_region"] if moving else None
    length = spec["speed"] * (0.5 if action == "walking" else 1.0) * (0.8 if action == "parking" else 1.0)
    bands = road_bands(scene["landmark"]) if kind in ("car", "truck") else []
    band = bands[0] if bands and (moving or rng.random() < 0.6) else None
    if band is not None or (kind in ("car", "truck") and scene["terrain"] == "road"):
        axis = band["axis"] if band else scene["landmark"]["axis"]
        direction = str(rng.choice(["left", "right"] if axis == "h" else ["up", "down"]))
    else:
        direction = str(rng.choice(list(DIRECTIONS)))
    heading = DIRECTIONS[direction]
    if kind not in ("car", "truck") or band is None:
        heading += float(rng.uniform(-10, 10)) if kind in ("boat", "people") else 0.0
    if kind == "house":
        heading = float(rng.choice([0.0, 90.0]) + rng.uniform(-8, 8))

    radius = 0.5 * math.hypot(*entity["size"])
    if kind == "people":
        radius += 0.06
    surroundings = _surroundings(scene, entity, aspect)
    for _ in range(40):
        start = rng.uniform(
            [x0 + radius + _MARGIN, y0 + radius + _MARGIN], [x1 - radius - _MARGIN, y1 - radius - _MARGIN]
        )
        if band is not None:
            # right-hand traffic: keep to the lane on the driver's right
            lane = band["centre"] + band["width"] / 4 * (1 if direction in ("right", "up") else -1)
            start[1 if band["axis"] == "h" else 0] = lane
        entity["start"] = [float(start[0]), float(start[1])]
        entity["heading"] = round(heading % 360.0, 3)
        entity["motion"] = _motion(rng, action, length, band)
        if _valid_placement(scene, entity, aspect, region, surroundings):
            return True
    return False


def _motion(rng: np.random.Generator, action: str | None, length: float, band: dict | None) -> dict:
    if action is None or action in STILL_ACTIONS:
        return {"kind": "still", "length": 0.0}
    if action.startswith("turning"):
        return {"kind": "turn", "turn": action.split()[1], "turn_at": float(rng.uniform(0.05, 0.15)), "length": length}
    if action == "parking":
        return {"kind": "stop", "length": length, "pull_over": band["width"] / 8 if band else 0.0}
    return {"kind": "straight", "length": length}


def _surroundings(scene: dict, entity: dict, aspect: float) -> tuple:
    """What a placement of `entity` is checked against: the world box seen in every frame and every other entity's
    (x, y) over time with its clearance radius."""
    others = [
        (*entity_poses(other, _CHECK_TIMES)[:2], _clearance_radius(other))
        for other in scene["entities"]
        if other is not entity
    ]
    return visible_box(scene["camera"], aspect), others


def _clearance_radius(entity: dict) -> float:
    return 0.5 * max(entity["size"]) + (0.06 if entity["kind"] == "people" else 0.0)


def _valid_placement(
    scene: dict, entity: dict, aspect: float, region: int | None, surroundings: tuple | None = None
) -> bool:
    """Whether `entity` stays in view, on allowed ground and clear of the others; `surroundings` (from
    `_surroundings`) saves recomputing them when one entity tries many placements."""
    (x0, y0, x1, y1), others = surroundings or _surroundings(scene, entity, aspect)
    xs, ys, headings = entity_poses(entity, _CHECK_TIMES)
    radius = _clearance_radius(entity)
    if xs.min() - radius < x0 or ys.min() - radius < y0 or xs.max() + radius > x1 or ys.max() + radius > y1:
        return False
    if not on_allowed_ground(scene, entity, xs, ys, headings, region):
        return False
    return all(
        np.min(np.hypot(xs - other_x, ys - other_y)) >= 0.95 * (radius + other_radius)
        for other_x, other_y, other_radius in others
    )


def on_allowed_ground(
    scene: dict, entity: dict, xs: np.ndarray, ys: np.ndarray, headings: np.ndarray, moving_region: int | None
) -> bool:
    """Whether the footprint's centre line (front, back and both sides) lies on ground the entity may use at
    these poses; `moving_region` is the ground it moves on (None for a still entity)."""
    length, width = entity["size"]
    probes_x, probes_y = [xs], [ys]
    for forward, side in ((0.5, 0.0), (-0.5, 0.0), (0.0, 0.5), (0.0, -0.5)):
        probes_x.append(xs + forward * length * np.cos(headings) - side * width * np.sin(headings))
        probes_y.append(ys + forward * length * np.sin(headings) + side * width * np.cos(headings))
    codes = region_codes(scene, np.concatenate(probes_x), np.concatenate(probes_y))
    allowed = np.zeros(3, dtype=bool)  # indexed by LAND, WATER, ROAD
    allowed[list(_allowed_regions(scene, entity, moving_region))] = True
    return bool(allowed[codes].all())


def _allowed_regions(scene: dict, entity: dict, moving_region: int | None) -> set[int]:
    kind = entity["kind"]
    if moving_region is not None:
        if kind == "people" and _surface_kind(scene) == "street":
            return {ROAD}
        return {moving_region}
    if kind == "boat":
        return {WATER}
    if kind in ("car", "truck"):
        land_ok = kind in TERRAINS[scene["terrain"]]["land_kinds"]
        return {ROAD, LAND} if land_ok else {ROAD}
    if kind == "people" and _surface_kind(scene) == "street":
        return {ROAD}
    return {LAND}


def _direction_label(entity: dict) -> str | None:
    """Screen direction of travel ("left", "up", ...) for a moving entity, from its initial heading."""
    if entity["motion"]["kind"] == "still":
        return None
    heading = entity["heading"] % 360.0
    return min(DIRECTIONS, key=lambda name: abs((heading - DIRECTIONS[name] + 180) % 360 - 180))


def _normalised(weights: dict) -> np.ndarray:
    values = np.array(list(weights.values()), dtype=np.float64)
    return values / values.sum()


# ----------------------------------------------------------------------------- relations


def derive_relations(scene: dict) -> list[dict]:
    """Relations that hold in the rendered video, computed from the geometry.

    - every entity is "on" the surface under it (mid-video);
    - "beside" a lake / river / road / sea it is not on but within 0.1 units of;
    - a boat passing "under" the bridge, a vehicle "crossing" it;
    - between two entities: "next to" (close, both still), "left of" / "right of" /
      "above" / "below" (a still subject relative to a still object), "approaching" /
      "moving away from" a still object, "following" another mover.
    """
    relations: list[dict] = []
    entities = scene["entities"]
    for index, entity in enumerate(entities):
        relations += landmark_relations(scene, index, *entity_poses(entity, _CHECK_TIMES)[:2])
    for index, entity in enumerate(entities):
        for other_index, other in enumerate(entities):
            if other_index != index:
                relations += _pair_relations(index, entity, other_index, other)
    return relations


def landmark_relations(scene: dict, index: int, xs: np.ndarray, ys: np.ndarray) -> list[dict]:
    """Relations of entity `index` to the ground and the landmark, from its positions (xs, ys) at the times it
    is seen: the surface under it and what it is beside at the middle one, passing under a bridge over all."""
    entity, landmark = scene["entities"][index], scene["landmark"]
    x, y = float(xs[len(xs) // 2]), float(ys[len(ys) // 2])
    surface = surface_name(scene, x, y)
    relations = [{"subject": index, "predicate": "on", "object": surface}]
    if landmark is not None:
        for name, mask in _landmark_masks(landmark):
            if name == surface:
                continue
            if _near_mask(mask, x, y, 0.1 + 0.5 * max(entity["size"])):
                relations.append({"subject": index, "predicate": "beside", "object": name})
        if landmark["kind"] in ("river", "bridge"):
            band = road_bands(landmark)[0]
            on_band = band_mask(band, xs, ys)
            if entity["kind"] == "boat" and on_band.any() and not on_band.all():
                relations.append({"subject": index, "predicate": "under", "object": "bridge"})
    return relations


def _landmark_masks(landmark: dict):
    """(name, vectorised predicate) of the named parts of a landmark, for "beside"."""
    kind = landmark["kind"]
    if kind == "lake":
        yield "lake", lambda x, y: water_mask(landmark, x, y)
    elif kind == "river":
        yield "river", lambda x, y: water_mask(landmark, x, y)
    elif kind == "shore":
        yield "sea", lambda x, y: water_mask(landmark, x, y)
    if kind in ("road", "street"):
        yield kind, lambda x, y: band_mask(landmark, x, y)


def _near_mask(mask, x: float, y: float, distance: float) -> bool:
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    radii = np.array([distance * 0.5, distance])[:, None]
    return bool(np.any(mask(x + radii * np.cos(angles), y + radii * np.sin(angles))))


def _pair_relations(index: int, entity: dict, other_index: int, other: dict) -> list[dict]:
    relations = []
    xs, ys, headings = entity_poses(entity, _CHECK_TIMES)
    other_x, other_y, other_headings = entity_poses(other, _CHECK_TIMES)
    still = entity["motion"]["kind"] == "still"
    other_still = other["motion"]["kind"] == "still"
    distance = np.hypot(xs - other_x, ys - other_y)
    reach = 0.5 * (max(entity["size"]) + max(other["size"]))
    if still and other_still:
        dx, dy = float(xs[0] - other_x[0]), float(ys[0] - other_y[0])
        if distance[0] < reach + 0.12:
            relations.append({"subject": index, "predicate": "next to", "object": other_index})
        if distance[0] < reach + 0.35:
            if abs(dx) >= abs(dy):
                relations.append(
                    {"subject": index, "predicate": "left of" if dx < 0 else "right of", "object": other_index}
                )
            else:
                relations.append({"subject": index, "predicate": "above" if dy < 0 else "below", "object": other_index})
    elif not still and other_still:
        change = distance[-1] - distance[0]
        if change < -0.15 and distance[-1] < reach + 0.2:
            relations.append({"subject": index, "predicate": "approaching", "object": other_index})
        elif change > 0.15 and distance[0] < reach + 0.2:
            relations.append({"subject": index, "predicate": "moving away from", "object": other_index})
    elif not still and not other_still:
        same_heading = np.all(np.cos(headings - other_headings) > 0.94)
        ahead = (other_x - xs) * np.cos(headings) + (other_y - ys) * np.sin(headings)
        if same_heading and np.all(ahead > 0) and np.all(distance < 0.5):
            relations.append({"subject": index, "predicate": "following", "object": other_index})
    return relations


# ----------------------------------------------------------------------------- hard negatives

EDIT_KINDS = {"colour": 1.0, "action": 1.0, "direction": 0.6, "relation": 1.0}


def make_twin(rng: np.random.Generator, scene: dict, aspect: float) -> tuple[dict, dict] | None:
    """A minimal-edit twin: the same scene with one object's colour, action, direction or relation
    changed. Returns (twin scene, edit) or None when no edit keeps the scene valid."""
    weights = _normalised(EDIT_KINDS)
    for edit_kind in rng.choice(list(EDIT_KINDS), size=len(EDIT_KINDS), replace=False, p=weights):
        for index in rng.permutation(len(scene["entities"])):
            result = _EDITORS[str(edit_kind)](rng, scene, int(index), aspect)
            if result is not None:
                return result
    return None


def _edit_colour(rng, scene, index, aspect):
    twin = copy.deepcopy(scene)
    entity = twin["entities"][index]
    old = entity["colour"]
    entity["colour"] = str(rng.choice([c for c in ENTITY_KINDS[entity["kind"]]["colours"] if c != old]))
    finish_scene(twin, aspect)
    return twin, {"kind": "colour", "entity": index, "from": old, "to": entity["colour"]}


def _edit_action(rng, scene, index, aspect):
    entity = scene["entities"][index]
    if entity["action"] is None:
        return None
    for new_action in rng.permutation(list(ACTION_SWAPS[entity["action"]])):
        twin = copy.deepcopy(scene)
        edited = twin["entities"][index]
        edited["action"] = str(new_action)
        band = next(iter(road_bands(twin["landmark"])), None) if edited["kind"] in ("car", "truck") else None
        length = ENTITY_KINDS[edited["kind"]]["speed"] * (0.5 if new_action == "walking" else 1.0)
        edited["motion"] = _motion(rng, str(new_action), length * (0.8 if new_action == "parking" else 1.0), band)
        moving = str(new_action) not in STILL_ACTIONS
        if new_action.startswith("turning") and not _open_surface(twin):
            continue
        region = ENTITY_KINDS[edited["kind"]]["moving_region"] if moving else None
        if _valid_placement(twin, edited, aspect, region):
            finish_scene(twin, aspect)
            if _others_unchanged(scene, twin, index):
                return twin, {"kind": "action", "entity": index, "from": entity["action"], "to": str(new_action)}
    return None


def _edit_direction(rng, scene, index, aspect):
    entity = scene["entities"][index]
    if entity["motion"]["kind"] not in ("straight", "stop") or entity["direction"] is None:
        return None
    twin = copy.deepcopy(scene)
    edited = twin["entities"][index]
    xs, ys, _ = entity_poses(entity, np.array([1.0]))
    edited["start"] = [float(xs[0]), float(ys[0])]
    edited["heading"] = round((entity["heading"] + 180.0) % 360.0, 3)
    band = next(iter(road_bands(twin["landmark"])), None) if edited["kind"] in ("car", "truck") else None
    if band is not None and band_mask(band, np.array(xs), np.array(ys)).all():
        # reverse on a road: keep right-hand traffic by moving to the other lane
        axis_index = 1 if band["axis"] == "h" else 0
        edited["start"][axis_index] = 2 * band["centre"] - edited["start"][axis_index]
    if edited["motion"].get("pull_over"):
        edited["motion"]["pull_over"] = entity["motion"]["pull_over"]
    region = ENTITY_KINDS[edited["kind"]]["moving_region"]
    if not _valid_placement(twin, edited, aspect, region):
        return None
    finish_scene(twin, aspect)
    if twin["entities"][index]["direction"] == entity["direction"] or not _others_unchanged(scene, twin, index):
        return None
    return twin, {
        "kind": "direction",
        "entity": index,
        "from": entity["direction"],
        "to": twin["entities"][index]["direction"],
    }


def _edit_relation(rng, scene, index, aspect):
    """Move a still object to the other side of the still object it is left of / above / ..."""
    sides = [
        r
        for r in scene["relations"]
        if r["subject"] == index and r["predicate"] in ("left of", "right of", "above", "below")
    ]
    for relation in sides:
        reference = scene["entities"][relation["object"]]
        twin = copy.deepcopy(scene)
        edited = twin["entities"][index]
        axis = 0 if relation["predicate"] in ("left of", "right of") else 1
        edited["start"][axis] = 2 * reference["start"][axis] - edited["start"][axis]
        if not _valid_placement(twin, edited, aspect, None):
            continue
        finish_scene(twin, aspect)
        flipped = {**relation, "predicate": OPPOSITE[relation["predicate"]]}
        if flipped in twin["relations"]:
            return twin, {
                "kind": "relation",
                "entity": index,
                "object": relation["object"],
                "from": relation["predicate"],
                "to": flipped["predicate"],
            }
    return None


def _others_unchanged(scene: dict, twin: dict, index: int) -> bool:
    """The edit must not change any other object's relations (it stays a one-object edit)."""

    def others(relations):
        return [r for r in relations if r["subject"] != index and r["object"] != index]

    return others(scene["relations"]) == others(twin["relations"])


_EDITORS = {"colour": _edit_colour, "action": _edit_action, "direction": _edit_direction, "relation": _edit_relation}
