"""Rendering of synthetic drone scenes to H.264 video (numpy drawing, PyAV encoding).

Each terrain has one large procedural texture (TEXTURE_SIZE² world units) shared by every
video, so that many videos look structurally alike, as drone footage does; a video crops its
world from it, paints its landmark (road, lake, river and bridge, shore, ...), and then
every frame samples the camera's view of that world (bilinear, for drift / pan / zoom) and
draws the objects on top as small shaded sprites with drop shadows. Everything is
vectorised numpy over the frame or over an object's bounding box.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from .scene import TEXTURE_SIZE
from .scene import WORLD_SIZE
from .scene import camera_view
from .scene import entity_poses
from .scene import present_at
from .scene import road_bands
from .scene import water_mask

COLOURS = {
    "red": (215, 35, 35),
    "blue": (35, 80, 215),
    "white": (242, 242, 238),
    "black": (28, 28, 32),
    "yellow": (245, 212, 30),
    "orange": (245, 130, 20),
    "purple": (145, 50, 180),
    "green": (30, 95, 35),
}
TREE_COLOURS = {"green": (32, 92, 36), "yellow": (220, 195, 45), "orange": (220, 120, 30), "red": (175, 40, 30)}
_SHADOW_OFFSET = (0.018, 0.024)  # world units: the sun is up and to the left
# How far each kind's shadow falls, in multiples of _SHADOW_OFFSET: taller objects cast it further.
SHADOW_HEIGHTS = {"car": 0.6, "truck": 0.9, "boat": 0.4, "people": 1.2, "house": 2.0, "tree": 2.2}
# x264 settings fixed so that the same frames always give the same bitstream: one thread, a fixed preset and quality,
# a keyframe every second, and no lookahead / macroblock tree (with them, repeated encodes of identical frames were
# seen to differ now and then, even single-threaded).
X264_OPTIONS = {"preset": "veryfast", "crf": "18", "x264-params": "rc-lookahead=0:mbtree=0"}


# ----------------------------------------------------------------------------- textures


@functools.lru_cache(maxsize=2)
def texture_bank(seed: int, pixels_per_unit: int) -> dict[str, np.ndarray]:
    """Terrain name → (S, S, 3) uint8 texture, S = TEXTURE_SIZE × pixels_per_unit; built lazily."""
    return _LazyTextures(seed, pixels_per_unit)


class _LazyTextures(dict):
    def __init__(self, seed: int, pixels_per_unit: int):
        super().__init__()
        self.seed, self.pixels_per_unit = seed, pixels_per_unit

    def __missing__(self, terrain: str) -> np.ndarray:
        # one generator per terrain, so a texture never depends on which others were built first
        rng = np.random.default_rng([self.seed, sorted(_TEXTURES).index(terrain)])
        size = int(round(TEXTURE_SIZE * self.pixels_per_unit))
        texture = np.clip(_TEXTURES[terrain](rng, size, self.pixels_per_unit), 0, 255).astype(np.uint8)
        self[terrain] = texture
        return texture


def _noise(rng: np.random.Generator, size: int, cell: float, pixels_per_unit: int) -> np.ndarray:
    """Smooth value noise (size × size, ~unit variance) with features `cell` world units wide."""
    cells = max(2, int(math.ceil(size / (cell * pixels_per_unit))) + 1)
    grid = rng.standard_normal((cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(grid).resize((size, size), Image.BICUBIC))


def _mix(low, high, weight: np.ndarray) -> np.ndarray:
    weight = np.clip(weight, 0, 1)[..., None]
    return np.asarray(low, np.float32) * (1 - weight) + np.asarray(high, np.float32) * weight


def _coordinates(size: int, pixels_per_unit: int) -> tuple[np.ndarray, np.ndarray]:
    line = (np.arange(size, dtype=np.float32) + 0.5) / pixels_per_unit
    return line[None, :], line[:, None]


def _grass(rng, size, ppu):
    patches = _noise(rng, size, 0.35, ppu)
    detail = _noise(rng, size, 0.05, ppu) + 0.6 * _noise(rng, size, 0.015, ppu)
    colour = _mix((62, 112, 44), (104, 148, 62), 0.5 + 0.3 * patches)
    return colour * (1 + 0.07 * detail)[..., None]


def _sand(rng, size, ppu):
    x, y = _coordinates(size, ppu)
    dunes = _noise(rng, size, 0.4, ppu)
    ripples = np.sin(2 * np.pi * (x * 0.8 + y * 0.5) / 0.06 + 3 * _noise(rng, size, 0.3, ppu))
    colour = _mix((196, 170, 120), (222, 200, 152), 0.5 + 0.3 * dunes)
    return colour * (1 + 0.035 * ripples + 0.03 * _noise(rng, size, 0.012, ppu))[..., None]


def _water(rng, size, ppu):
    x, y = _coordinates(size, ppu)
    depth = _noise(rng, size, 0.5, ppu)
    waves = np.sin(2 * np.pi * (x * 0.3 + y) / 0.05 + 4 * _noise(rng, size, 0.25, ppu))
    colour = _mix((22, 66, 104), (38, 100, 136), 0.5 + 0.3 * depth)
    return colour * (1 + 0.06 * waves + 0.03 * _noise(rng, size, 0.02, ppu))[..., None]


def _asphalt(rng, size, ppu):
    grain = _noise(rng, size, 0.012, ppu) + 0.5 * _noise(rng, size, 0.2, ppu)
    return np.full((size, size, 3), (88, 88, 92), np.float32) * (1 + 0.05 * grain)[..., None]


def _forest(rng, size, ppu):
    crowns = _noise(rng, size, 0.045, ppu) + 0.4 * _noise(rng, size, 0.015, ppu)
    hue = _noise(rng, size, 0.5, ppu)
    lit = np.clip(0.5 + 0.45 * crowns, 0, 1)
    colour = _mix(
        _mix((18, 44, 22), (30, 60, 26), 0.5 + 0.3 * hue), _mix((46, 96, 40), (70, 112, 42), 0.5 + 0.3 * hue), lit
    )
    return colour


def _urban(rng, size, ppu):
    x, y = _coordinates(size, ppu)
    block = 0.24  # city blocks separated by streets; each block holds 2 × 2 roofs
    street = 0.04
    bx, by = np.floor(x / block), np.floor(y / block)
    fx, fy = x / block - bx, y / block - by
    roof_x, roof_y = np.floor(fx * 2), np.floor(fy * 2)
    palette = np.array(
        [(150, 80, 68), (128, 128, 132), (172, 162, 150), (96, 96, 104), (112, 74, 60), (160, 150, 120)], np.float32
    )
    cells = int(size / (block * ppu)) + 2
    choice = rng.integers(0, len(palette), (cells, cells, 2, 2))
    colour = palette[choice[by.astype(int) % cells, bx.astype(int) % cells, roof_y.astype(int), roof_x.astype(int)]]
    # a ridge along each roof: one slope lit, one in shade
    slope = np.where((fx * 2 - roof_x) < 0.5, 1.06, 0.82)
    colour = colour * np.broadcast_to(slope, (size, size))[..., None]
    in_street = (np.minimum(fx, 1 - fx) * block < street / 2) | (np.minimum(fy, 1 - fy) * block < street / 2)
    gap = (np.abs(fx * 2 - roof_x - 0.5) > 0.47) | (np.abs(fy * 2 - roof_y - 0.5) > 0.47)
    colour = np.where((in_street | gap)[..., None], np.float32(118), colour)
    return colour * (1 + 0.04 * _noise(rng, size, 0.02, ppu))[..., None]


def _farmland(rng, size, ppu):
    x, y = _coordinates(size, ppu)
    parcel = 0.45
    px, py = np.floor(x / parcel), np.floor(y / parcel)
    crops = np.array([(172, 160, 72), (104, 138, 58), (136, 106, 76), (190, 172, 102), (122, 150, 70)], np.float32)
    cells = int(size / (parcel * ppu)) + 2
    choice = rng.integers(0, len(crops), (cells, cells))
    rows_vertical = rng.integers(0, 2, (cells, cells)).astype(bool)
    ix, iy = px.astype(int) % cells, py.astype(int) % cells
    colour = crops[choice[iy, ix]]
    along = np.where(rows_vertical[iy, ix], x, y)
    rows = np.sin(2 * np.pi * along / 0.03)
    edge = (np.minimum(x / parcel - px, 1 - (x / parcel - px)) < 0.012) | (
        np.minimum(y / parcel - py, 1 - (y / parcel - py)) < 0.012
    )
    colour = colour * (1 + 0.07 * rows + 0.04 * _noise(rng, size, 0.03, ppu))[..., None]
    return np.where(edge[..., None], np.float32(96), colour)


_TEXTURES = {
    "grass": _grass,
    "sand": _sand,
    "water": _water,
    "road": _asphalt,
    "forest": _forest,
    "urban": _urban,
    "farmland": _farmland,
}


# ----------------------------------------------------------------------------- the world of one video


def world_map(scene: dict, seed: int, pixels_per_unit: int) -> np.ndarray:
    """(N, N, 3) float32 RGB of the video's world (N = WORLD_SIZE × pixels_per_unit): terrain + landmark."""
    bank = texture_bank(seed, pixels_per_unit)
    size = int(round(WORLD_SIZE * pixels_per_unit))

    def crop(terrain: str) -> np.ndarray:
        offset_x, offset_y = (int(round(value * pixels_per_unit)) for value in scene["texture"]["offset"])
        patch = bank[terrain][offset_y : offset_y + size, offset_x : offset_x + size]
        flip_x, flip_y = scene["texture"]["flip"]
        return patch[:: -1 if flip_y else 1, :: -1 if flip_x else 1].astype(np.float32)

    world = crop(scene["terrain"])
    landmark = scene["landmark"]
    if landmark is None:
        return world
    x, y = _coordinates(size, pixels_per_unit)
    soft = 1.0 / pixels_per_unit  # one pixel of anti-aliasing
    kind = landmark["kind"]
    if kind in ("lake", "river", "shore"):
        water = _soften(water_mask(landmark, x, y), pixels_per_unit)
        bank_ring = _soften(water_mask(_grown(landmark, 0.025), x, y), pixels_per_unit) * (1 - water)
        world = _blend(world, np.array((150, 132, 96), np.float32), bank_ring * (0.8 if kind != "shore" else 0.5))
        world = _blend(world, crop("water"), water)
        if kind == "shore":  # a line of surf where the waves break
            surf = _soften(water_mask(_grown(landmark, 0.008), x, y), pixels_per_unit) * (1 - water)
            world = _blend(world, np.array((236, 240, 240), np.float32), surf * 0.8)
    if kind in ("lanes", "parking_lot"):
        along, across = (x, y) if landmark["axis"] == "h" else (y, x)
        across, along = np.broadcast_arrays(across, along)
        offset = np.abs(
            (across - landmark["centre"] + landmark["spacing"] / 2) % landmark["spacing"] - landmark["spacing"] / 2
        )
        if kind == "lanes":
            marks = (offset < 0.005) & ((along % 0.14) < 0.07)
        else:  # rows of stalls: divider lines broken by driving aisles
            marks = (offset < 0.004) & ((along % 0.5) < 0.22)
        world = _blend(world, np.array((230, 230, 222), np.float32), marks.astype(np.float32) * 0.85)
    for band in road_bands(landmark):
        world = _paint_road(world, band, landmark, crop("road"), x, y, soft)
    return world


def _grown(landmark: dict, margin: float) -> dict:
    """The landmark's water grown by `margin` world units (for banks and surf)."""
    grown = dict(landmark)
    if landmark["kind"] == "lake":
        grown["radii"] = [radius + margin for radius in landmark["radii"]]
    elif landmark["kind"] == "river":
        grown["width"] = landmark["width"] + 2 * margin
    else:
        grown["position"] = landmark["position"] - margin * landmark["side"]
    return grown


def _paint_road(world, band, landmark, asphalt, x, y, soft) -> np.ndarray:
    along, across = (x, y) if band["axis"] == "h" else (y, x)
    along, across = np.broadcast_arrays(along, across)
    distance = np.abs(across - band["centre"])
    half = band["width"] / 2
    road = np.clip((half - distance) / soft + 0.5, 0, 1)
    bridge = landmark["kind"] in ("bridge", "river")
    if bridge:
        over_water = (
            np.ones_like(road, dtype=bool)
            if landmark["kind"] == "bridge"
            else water_mask(_grown(landmark, 0.03), x, y) & np.ones_like(road, dtype=bool)
        )
        # the deck's shadow falls on the water beside it
        shadow = np.clip((half + 0.03 - np.abs(across - band["centre"] - 0.02)) / soft, 0, 1) * over_water
        world = _blend(world, np.zeros(3, np.float32), shadow * 0.35)
        asphalt = np.where(over_water[..., None], asphalt * 1.25 + 12, asphalt)  # concrete deck
    world = _blend(world, asphalt, road)
    kerb = ((distance > half - 0.016) & (distance < half - 0.006)).astype(np.float32)
    if landmark["kind"] == "street":
        kerb = ((distance > half - 0.05) & (distance < half)).astype(np.float32)  # pavements
        world = _blend(world, np.array((168, 166, 160), np.float32), kerb)
    else:
        world = _blend(world, np.array((222, 222, 214), np.float32), kerb * 0.8)
    centre_line = ((distance < 0.005) & ((along % 0.12) < 0.06)).astype(np.float32)
    return _blend(world, np.array((240, 240, 232), np.float32), centre_line * 0.9)


def _soften(mask: np.ndarray, pixels_per_unit: int) -> np.ndarray:
    """A hard mask with a one-pixel ramp at its edges (a 3 × 3 box blur)."""
    padded = np.pad(mask.astype(np.float32), 1, mode="edge")
    rows = padded[:-2] + padded[1:-1] + padded[2:]
    return (rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]) / 9.0


def _blend(image: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    alpha = np.asarray(alpha, np.float32)[..., None]
    return image + alpha * (colour - image)


# ----------------------------------------------------------------------------- frames


def render_frames(
    scene: dict, seed: int, width: int, height: int, num_frames: int, frame_indices: Sequence[int] | None = None
) -> Iterator[np.ndarray]:
    """The video's frames, (height, width, 3) uint8 RGB each; with `frame_indices`, only those of the `num_frames`
    (the same pixels as in the whole video)."""
    world = world_map(scene, seed, width)
    aspect = height / width
    times = np.linspace(0.0, 1.0, num_frames) if num_frames > 1 else np.zeros(1)
    if frame_indices is not None:
        times = times[np.asarray(frame_indices, dtype=np.intp)]
    centre_x, centre_y, zoom = camera_view(scene["camera"], times, aspect)
    poses = [entity_poses(entity, times) for entity in scene["entities"]]
    present = [present_at(entity, times) for entity in scene["entities"]]
    order = sorted(range(len(scene["entities"])), key=lambda i: _LAYERS[scene["entities"][i]["kind"]])
    columns = np.arange(width, dtype=np.float64) + 0.5 - width / 2
    rows = np.arange(height, dtype=np.float64) + 0.5 - height / 2
    for frame_index, time in enumerate(times):
        scale = zoom[frame_index] * width  # pixels per world unit in this frame
        frame = _sample(
            world,
            centre_x[frame_index] * width + columns / zoom[frame_index] - 0.5,
            centre_y[frame_index] * width + rows / zoom[frame_index] - 0.5,
        )
        for index in order:
            if not present[index][frame_index]:
                continue
            entity = scene["entities"][index]
            xs, ys, headings = poses[index]
            screen_x = (xs[frame_index] - centre_x[frame_index]) * scale + width / 2
            screen_y = (ys[frame_index] - centre_y[frame_index]) * scale + height / 2
            _SPRITES[entity["kind"]](
                frame, entity, screen_x, screen_y, float(headings[frame_index]), scale, float(time)
            )
        yield np.clip(frame + 0.5, 0, 255).astype(np.uint8)


def _sample(world: np.ndarray, columns: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Bilinear samples world[rows, columns] (pixel-index coordinates; the camera never rotates)."""
    limit_y, limit_x = world.shape[0] - 1, world.shape[1] - 1
    rows, columns = np.clip(rows, 0, limit_y - 1e-6), np.clip(columns, 0, limit_x - 1e-6)
    row0, column0 = np.floor(rows).astype(np.intp), np.floor(columns).astype(np.intp)
    weight_y = (rows - row0).astype(np.float32)[:, None, None]
    weight_x = (columns - column0).astype(np.float32)[None, :, None]
    first, last = column0.min(), column0.max() + 2  # only the columns in view
    top, bottom = world[row0, first:last], world[row0 + 1, first:last]
    lines = top + weight_y * (bottom - top)  # (rows, columns in view, 3)
    column0 = column0 - first
    return lines[:, column0] + weight_x * (lines[:, column0 + 1] - lines[:, column0])


def _stamp(frame, centre_x, centre_y, heading, reach, shape, colour, opacity=1.0, shading=0.0):
    """Alpha-blend one shape into `frame` around a centre (pixels).

    `shape(u, v)` gives coverage in [0, 1] from coordinates along / across `heading` (pixels);
    `shading` darkens the side away from the light (bottom right) for a rounded look.
    """
    height, width = frame.shape[:2]
    x0, x1 = max(int(centre_x - reach), 0), min(int(centre_x + reach) + 2, width)
    y0, y1 = max(int(centre_y - reach), 0), min(int(centre_y + reach) + 2, height)
    if x0 >= x1 or y0 >= y1:
        return
    dx = (np.arange(x0, x1, dtype=np.float32) + 0.5 - centre_x)[None, :]
    dy = (np.arange(y0, y1, dtype=np.float32) + 0.5 - centre_y)[:, None]
    cos, sin = math.cos(heading), math.sin(heading)
    u, v = dx * cos + dy * sin, -dx * sin + dy * cos
    alpha = shape(u, v) * opacity
    paint = np.asarray(colour, np.float32)
    if shading:
        paint = paint * (1 - shading * np.clip((dx + dy) / (2 * reach) + 0.5, 0, 1))[..., None]
    region = frame[y0:y1, x0:x1]
    region += alpha[..., None] * (paint - region)


def _box(half_length, half_width):
    return lambda u, v: np.clip(half_length - np.abs(u) + 0.5, 0, 1) * np.clip(half_width - np.abs(v) + 0.5, 0, 1)


def _ellipse(half_length, half_width):
    def shape(u, v):
        radius = np.sqrt((u / half_length) ** 2 + (v / half_width) ** 2)
        return np.clip((1 - radius) * min(half_length, half_width) + 0.5, 0, 1)

    return shape


def _hull(half_length, half_width):
    """A boat seen from above: a square stern and a bow that narrows to a point."""

    def shape(u, v):
        profile = half_width * np.where(u > 0, np.sqrt(np.clip(1 - (u / half_length) ** 2, 0, 1)), 0.92)
        return np.clip(profile - np.abs(v) + 0.5, 0, 1) * np.clip(half_length - np.abs(u) + 0.5, 0, 1)

    return shape


def _offset(x, y, heading, forward, side=0.0):
    return x + forward * math.cos(heading) - side * math.sin(heading), y + forward * math.sin(
        heading
    ) + side * math.cos(heading)


def _shadow(frame, x, y, heading, reach, shape, scale, height=1.0):
    dx, dy = (height * offset * scale for offset in _SHADOW_OFFSET)
    _stamp(frame, x + dx, y + dy, heading, reach, shape, (0, 0, 0), opacity=0.4)


def _draw_car(frame, entity, x, y, heading, scale, time):
    half_length, half_width = entity["size"][0] * scale / 2, entity["size"][1] * scale / 2
    reach = half_length + 2
    colour = COLOURS[entity["colour"]]
    body = _box(half_length, half_width)
    _shadow(frame, x, y, heading, reach + 4, body, scale, SHADOW_HEIGHTS["car"])
    _stamp(frame, x, y, heading, reach, body, colour, shading=0.3)
    glass = (40, 48, 60)
    for forward, length in ((0.2, 0.09), (-0.3, 0.05)):  # windscreen, rear window
        gx, gy = _offset(x, y, heading, forward * 2 * half_length)
        _stamp(frame, gx, gy, heading, reach, _box(length * 2 * half_length, 0.78 * half_width), glass)
    rx, ry = _offset(x, y, heading, -0.05 * 2 * half_length)
    _stamp(frame, rx, ry, heading, reach, _box(0.16 * 2 * half_length, 0.72 * half_width), colour, shading=0.15)


def _draw_truck(frame, entity, x, y, heading, scale, time):
    half_length, half_width = entity["size"][0] * scale / 2, entity["size"][1] * scale / 2
    reach = half_length + 2
    colour = np.asarray(COLOURS[entity["colour"]], np.float32)
    _shadow(frame, x, y, heading, reach + 5, _box(half_length, half_width), scale, SHADOW_HEIGHTS["truck"])
    cargo_x, cargo_y = _offset(x, y, heading, -0.13 * 2 * half_length)
    _stamp(frame, cargo_x, cargo_y, heading, reach, _box(0.36 * 2 * half_length, half_width), colour, shading=0.25)
    cab_x, cab_y = _offset(x, y, heading, 0.38 * 2 * half_length)
    _stamp(frame, cab_x, cab_y, heading, reach, _box(0.11 * 2 * half_length, 0.92 * half_width), colour * 0.8)
    glass_x, glass_y = _offset(x, y, heading, 0.45 * 2 * half_length)
    _stamp(frame, glass_x, glass_y, heading, reach, _box(0.035 * 2 * half_length, 0.8 * half_width), (40, 48, 60))


def _draw_boat(frame, entity, x, y, heading, scale, time):
    half_length, half_width = entity["size"][0] * scale / 2, entity["size"][1] * scale / 2
    reach = half_length + 2
    if entity["motion"]["kind"] != "still":  # foam trailing behind a moving boat
        wake_x, wake_y = _offset(x, y, heading, -1.6 * half_length)
        _stamp(
            frame,
            wake_x,
            wake_y,
            heading,
            2.2 * half_length,
            _ellipse(1.1 * half_length, 1.1 * half_width),
            (225, 235, 238),
            opacity=0.55,
        )
    hull = _hull(half_length, half_width)
    _shadow(frame, x, y, heading, reach + 3, hull, scale, SHADOW_HEIGHTS["boat"])
    colour = COLOURS[entity["colour"]]
    _stamp(frame, x, y, heading, reach, hull, colour, shading=0.25)
    cabin = (90, 96, 104) if entity["colour"] == "white" else (236, 236, 232)
    cabin_x, cabin_y = _offset(x, y, heading, -0.12 * 2 * half_length)
    _stamp(frame, cabin_x, cabin_y, heading, reach, _box(0.15 * 2 * half_length, 0.5 * half_width), cabin)


def _draw_people(frame, entity, x, y, heading, scale, time):
    half_length, half_width = entity["size"][0] * scale / 2, entity["size"][1] * scale / 2
    moving = entity["motion"]["kind"] != "still"
    steps = 14.0 if entity["action"] == "running" else 8.0
    colour = COLOURS[entity["colour"]]
    for member, (dx, dy) in enumerate(entity["members"]):
        sway = 0.25 * half_width * math.sin(2 * math.pi * steps * time + member) if moving else 0.0
        px, py = _offset(x + dx * scale, y + dy * scale, heading, 0.0, sway)
        # a person from above: shoulders across the walking direction, a dark head in the middle
        shoulders = _ellipse(half_width, half_length)
        _shadow(frame, px, py, heading, half_length + 4, shoulders, scale, SHADOW_HEIGHTS["people"])
        _stamp(frame, px, py, heading, half_length + 2, shoulders, colour, shading=0.2)
        _stamp(frame, px, py, heading, half_length + 2, _ellipse(0.55 * half_width, 0.55 * half_width), (52, 38, 30))


def _draw_house(frame, entity, x, y, heading, scale, time):
    half_length, half_width = entity["size"][0] * scale / 2, entity["size"][1] * scale / 2
    reach = math.hypot(half_length, half_width) + 2
    footprint = _box(half_length, half_width)
    _shadow(frame, x, y, heading, reach + 8, footprint, scale, SHADOW_HEIGHTS["house"])
    colour = np.asarray(COLOURS[entity["colour"]], np.float32)
    for side, brightness in ((-0.5, 1.0), (0.5, 0.72)):  # two roof slopes meeting at the ridge
        slope_x, slope_y = _offset(x, y, heading, 0.0, side * half_width)
        _stamp(frame, slope_x, slope_y, heading, reach, _box(half_length, half_width / 2), colour * brightness)
    _stamp(frame, x, y, heading, reach, _box(half_length, 0.6), colour * 0.55)


def _draw_tree(frame, entity, x, y, heading, scale, time):
    radius = entity["size"][0] * scale / 2
    crown = _ellipse(radius, radius)
    _shadow(frame, x, y, 0.0, radius + 8, crown, scale, SHADOW_HEIGHTS["tree"])
    colour = np.asarray(TREE_COLOURS[entity["colour"]], np.float32)
    _stamp(frame, x, y, 0.0, radius + 2, crown, colour, shading=0.45)
    _stamp(
        frame,
        x - 0.3 * radius,
        y - 0.3 * radius,
        0.0,
        radius,
        _ellipse(0.45 * radius, 0.45 * radius),
        np.minimum(colour * 1.25 + 15, 255),
        opacity=0.6,
    )


_SPRITES = {
    "car": _draw_car,
    "truck": _draw_truck,
    "boat": _draw_boat,
    "people": _draw_people,
    "house": _draw_house,
    "tree": _draw_tree,
}
_LAYERS = {"house": 0, "boat": 1, "truck": 2, "car": 3, "people": 4, "tree": 5}


# ----------------------------------------------------------------------------- encoding


def write_video(path: Path, frames: Iterator[np.ndarray], width: int, height: int, fps: float) -> None:
    """Encode RGB frames to an H.264 (yuv420p) MP4, deterministically."""
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        stream.codec_context.gop_size = max(1, round(fps))
        stream.options = dict(X264_OPTIONS)
        for index, frame in enumerate(frames):
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts, video_frame.time_base = index, 1 / rate  # explicit: nothing left to guess
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode(None))
