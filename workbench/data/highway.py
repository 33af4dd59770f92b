"""Traffic scenes: top-down highway-env recordings with vehicle boxes and a lane mask (cached, split by scene).

A scene is one reset of a highway-env scenario (its seed) driven for a while, one frame every few
policy steps. Per frame: the picture (H, W, 3), the pixel box of every visible vehicle other than
the ego, and a lane mask (0 off-road, 1 the ego's lane, 2 other lanes). The default rendering is
blue cars on flat grey, which a colour threshold would solve, so each scene gets a randomized
`Look` (vehicle colours, some as grey as the road, lighting, tint, road texture, noise, blur, a
small rotation and zoom, occluders). Boxes and mask go through the same geometric transform as
the picture. Splits are made of whole scenes: frames of one scene are near duplicates.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workbench.data.highway_look import (  # noqa: F401  (part of this API)
    FRAME_HEIGHT, FRAME_WIDTH, PAD, ROAD_GREY, Look, draw_look)
from workbench.errors import ConfigError

SCENARIOS = ("highway", "merge", "roundabout", "intersection")
LANE_CLASSES = ["off-road", "ego lane", "other lanes"]
RECORDING_VERSION = 1      # part of the cache key: bump when the recorder or the look changes
TEST_FRACTION = 0.2        # of scenes
SCALING = 4.0              # px per metre in every scenario: a car is 20x8 px
EGO_AT = {"highway": (0.3, 0.5), "merge": (0.3, 0.5)}   # ego's place in the frame; others centred
SIMULATION_FREQUENCY = 5   # Hz, as highway-fast-v0: 3x faster than the default 15, same policy steps
LANE_WINDOW, LANE_STEP = 120.0, 1.0   # metres of a long lane rasterized around the ego, sampling step
LANE_BEHIND = 50.0         # metres of lane segments behind the ego counted as its lane (a ring: not all of it)
MIN_VISIBLE, MIN_SIDE, MAX_OCCLUDED = 0.4, 3.0, 0.6   # box keep rules: share in frame, px, share hidden


# ---- environment ----------------------------------------------------------------------------

def make_env(scenario: str, seed: int, vehicles: int = 0):
    """A highway-env scenario rendering H x W (plus the margin) at SCALING, reset with `seed`.

    `vehicles`: highway's vehicles_count or intersection's initial_vehicle_count; 0 keeps the
    scenario's default. merge and roundabout place a fixed set of vehicles.
    """
    import gymnasium as gym
    import highway_env  # noqa: F401  (registers the envs)
    from workbench.home import subdir

    # SDL (under pygame) complains on every window-less start without a private runtime folder
    os.environ.setdefault("XDG_RUNTIME_DIR", str(subdir("runtime")))
    if scenario not in SCENARIOS:
        raise ConfigError("scenario", scenario, ", ".join(SCENARIOS))
    ego_x, ego_y = EGO_AT.get(scenario, (0.5, 0.5))
    width, height = FRAME_WIDTH + 2 * PAD, FRAME_HEIGHT + 2 * PAD
    config = {"screen_width": width, "screen_height": height, "scaling": SCALING, "offscreen_rendering": True,
              "centering_position": [(PAD + ego_x * FRAME_WIDTH) / width, (PAD + ego_y * FRAME_HEIGHT) / height],
              "simulation_frequency": SIMULATION_FREQUENCY}
    if vehicles:
        counts = {"highway": "vehicles_count", "intersection": "initial_vehicle_count"}
        if scenario not in counts:
            raise ConfigError("vehicles", vehicles, f"0 for {scenario} (its vehicles are placed by the scenario)")
        config[counts[scenario]] = vehicles
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "-v0 is out of date": v0 is what we pin
        env = gym.make(f"{scenario}-v0", render_mode="rgb_array", config=config, disable_env_checker=True)
    env.reset(seed=seed)
    return env


def _drive(env, speed_index: int) -> int:
    """Keep lane at the starting speed; slow down while something is (or soon will be) close ahead."""
    ego = env.vehicle
    ahead = np.array([np.cos(ego.heading), np.sin(ego.heading)])
    across = np.array([-ahead[1], ahead[0]])
    actions = env.action_type.actions_indexes
    for other in env.road.vehicles:
        if other is ego:
            continue
        for t in (0.0, 1.0, 2.0):
            gap = other.position + other.velocity * t - (ego.position + ego.velocity * t)
            if 0 < gap @ ahead < 8 + 0.8 * ego.speed and abs(gap @ across) < 3.0:
                return actions["SLOWER"]
    return actions["FASTER"] if getattr(ego, "speed_index", speed_index) < speed_index else actions["IDLE"]


# ---- one frame ----------------------------------------------------------------------------------

def _affine(look: Look) -> np.ndarray:
    """2x3 map from rendered (padded) pixels to frame pixels: rotation and zoom about the centre."""
    a = np.deg2rad(look.angle)
    spin = look.zoom * np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    centre = np.array([FRAME_WIDTH / 2, FRAME_HEIGHT / 2])
    return np.hstack([spin, (centre - spin @ (centre + PAD))[:, None]])


def _warp(image, forward: np.ndarray, resample, fill):
    """`image` (a PIL image of the padded render) seen through `forward`, cropped to the frame."""
    from PIL import Image

    inverse = np.linalg.inv(np.vstack([forward, [0, 0, 1]]))[:2]  # PIL asks where each output pixel comes from
    return image.transform((FRAME_WIDTH, FRAME_HEIGHT), Image.AFFINE, tuple(inverse.ravel()), resample=resample,
                           fillcolor=fill)


def _paint(env, look: Look) -> None:
    for vehicle in env.road.vehicles:
        if vehicle is not env.vehicle and look.vehicle_colors and getattr(vehicle, "color", None) is None:
            vehicle.color = look.vehicle_colors[look.handed_out % len(look.vehicle_colors)]
            look.handed_out += 1


def _vehicle_corners(env, surface) -> np.ndarray:
    """(k, 4, 2) corners of every other vehicle as drawn, in rendered pixels."""
    corners = []
    for vehicle in env.road.vehicles:
        if vehicle is env.vehicle or not surface.is_visible(vehicle.position):
            continue  # highway-env skips drawing vehicles far outside the surface
        heading = vehicle.heading if abs(vehicle.heading) > np.deg2rad(2) else 0.0  # drawn straight below 2 degrees
        half = np.array([surface.pix(vehicle.LENGTH), surface.pix(vehicle.WIDTH)]) / 2
        spin = np.array([[np.cos(heading), -np.sin(heading)], [np.sin(heading), np.cos(heading)]])
        offsets = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]]) * half
        corners.append(np.array(surface.pos2pix(*vehicle.position), float) + offsets @ spin.T)
    return np.array(corners, np.float64).reshape(-1, 4, 2)


def _lane_polygon(lane, around: np.ndarray, to_pixels) -> list | None:
    if lane.length <= 2 * LANE_WINDOW:
        low, high = 0.0, lane.length
    else:  # a long lane: the stretch around the ego is all the frame can show
        s = lane.local_coordinates(around)[0]
        low, high = max(0.0, s - LANE_WINDOW), min(lane.length, s + LANE_WINDOW)
    if high - low < LANE_STEP / 2:
        return None
    stations = np.linspace(low, high, int(np.ceil((high - low) / LANE_STEP)) + 1)
    left = [lane.position(s, -lane.width_at(s) / 2) for s in stations]
    right = [lane.position(s, lane.width_at(s) / 2) for s in stations[::-1]]
    return [tuple(p) for p in to_pixels(np.array(left + right))]


def _joined(first, second) -> bool:
    return np.linalg.norm(first.position(first.length, 0) - second.position(0, 0)) < 0.5


def _ego_path(env) -> list:
    """The ego's lane segment with the segments it continues into (its route) and comes from."""
    network, ego = env.road.network, env.vehicle
    path, route = [ego.lane_index], list(getattr(ego, "route", None) or [])
    ahead = network.get_lane(ego.lane_index).length
    while ahead < LANE_WINDOW and len(path) < 10:
        lane, index = network.get_lane(path[-1]), path[-1]
        route = route[1:] if route and route[0][:2] == index[:2] else route
        route = route if route and route[0][0] == index[1] else []  # off its route: no plan (and no warning)
        following = network.next_lane(index, route=route, position=lane.position(lane.length, 0))
        if following in path or not _joined(lane, network.get_lane(following)):
            break  # the end of the map (intersection: the next "lane" is the opposite one)
        path.append(following)
        ahead += network.get_lane(following).length
    behind = 0.0
    while behind < LANE_BEHIND:  # backwards only while exactly one lane ends where this one starts
        first = network.get_lane(path[0])
        before = [(a, b, i) for a in network.graph for b in network.graph[a] if b == path[0][0]
                  for i, lane in enumerate(network.graph[a][b]) if _joined(lane, first)]
        if len(before) != 1 or before[0] in path:
            break
        path.insert(0, before[0])
        behind += network.get_lane(before[0]).length
    return path


def _lane_mask(env, surface):
    from PIL import Image, ImageDraw

    to_pixels = lambda xy: (xy - surface.origin) * surface.scaling  # noqa: E731
    mask = Image.new("L", surface.get_size(), 0)
    draw = ImageDraw.Draw(mask)
    network, around = env.road.network, env.vehicle.position
    ego = [network.get_lane(index) for index in _ego_path(env)]
    others = [lane for lane in network.lanes_list() if not any(lane is mine for mine in ego)]
    for value, lane in [(2, lane) for lane in others] + [(1, lane) for lane in ego]:  # the ego's lane wins overlaps
        polygon = _lane_polygon(lane, around, to_pixels)
        if polygon:
            draw.polygon(polygon, fill=value)
    return mask


def _keep_boxes(corners: np.ndarray, occluded: np.ndarray) -> np.ndarray:
    """Axis-aligned hulls of frame-pixel corners that are enough in the frame and not hidden."""
    kept = []
    for quad in corners:
        (x0, y0), (x1, y1) = quad.min(axis=0), quad.max(axis=0)
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, FRAME_WIDTH), min(y1, FRAME_HEIGHT)
        hidden = occluded[int(cy0):int(np.ceil(cy1)), int(cx0):int(np.ceil(cx1))]
        if (cx1 - cx0 >= MIN_SIDE and cy1 - cy0 >= MIN_SIDE and not (hidden.size and hidden.mean() > MAX_OCCLUDED)
                and (cx1 - cx0) * (cy1 - cy0) >= MIN_VISIBLE * (x1 - x0) * (y1 - y0)):
            kept.append((cx0, cy0, cx1, cy1))
    return np.array(kept, np.float32).reshape(-1, 4)


def observe(env, look: Look) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The current state as (frame (H, W, 3) uint8, boxes (k, 4) float32 x0 y0 x1 y1, lanes (H, W) uint8)."""
    from PIL import Image, ImageFilter

    env = env.unwrapped
    _paint(env, look)
    rendered = env.render()
    env.enable_auto_render = False  # else the next step renders every simulation step, for nothing
    surface = env.viewer.sim_surface
    lanes = _lane_mask(env, surface)
    corners = _vehicle_corners(env, surface)

    # restyle the road surface (the background grey) before the geometry, in world-fixed pixels
    pixels = rendered.astype(np.float32)
    road = (rendered == ROAD_GREY).all(axis=-1)
    if look.offroad_strength:
        offroad = road & (np.asarray(lanes) == 0)
        pixels[offroad] += look.offroad_strength * (np.array(look.offroad_color, np.float32) - pixels[offroad])
    if look.texture is not None:
        pixels[road] += look.texture[road][:, None]
    picture = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))

    forward = _affine(look)
    frame = np.array(_warp(picture, forward, Image.BILINEAR, ROAD_GREY))
    lanes = np.array(_warp(lanes, forward, Image.NEAREST, 0))
    corners = corners @ forward[:, :2].T + forward[:, 2]

    occluded = np.zeros((FRAME_HEIGHT, FRAME_WIDTH), bool)
    for x0, y0, x1, y1, color in look.occluders:
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, FRAME_WIDTH), min(y1, FRAME_HEIGHT)
        frame[y0:y1, x0:x1] = color
        occluded[y0:y1, x0:x1] = True
    boxes = _keep_boxes(corners, occluded)

    if (look.brightness, look.contrast, tuple(look.tint)) != (0.0, 1.0, (1.0, 1.0, 1.0)):
        shaded = ((frame.astype(np.float32) - 128) * look.contrast + 128 + look.brightness) * np.array(look.tint)
        frame = np.clip(shaded, 0, 255).astype(np.uint8)
    if look.blur:
        frame = np.array(Image.fromarray(frame).filter(ImageFilter.GaussianBlur(look.blur)))
    if look.noise:
        frame = np.clip(frame + look.rng.normal(0, look.noise, frame.shape), 0, 255).astype(np.uint8)
    return frame, boxes, lanes


def pixels_to_world(env, look: Look, points) -> np.ndarray:
    """Frame pixels (k, 2) back to world metres, through the camera of the latest `observe`."""
    surface = env.unwrapped.viewer.sim_surface
    inverse = np.linalg.inv(np.vstack([_affine(look), [0, 0, 1]]))[:2]
    rendered = np.asarray(points, np.float64).reshape(-1, 2) @ inverse[:, :2].T + inverse[:, 2]
    return surface.origin + rendered / surface.scaling


# ---- scenes, cache, splits ----------------------------------------------------------------------

@dataclass
class Scene:
    seed: int
    scenario: str
    frames: np.ndarray            # (n, H, W, 3) uint8
    boxes: list[np.ndarray]       # n arrays (k_i, 4) float32, x0 y0 x1 y1 in pixels
    lanes: np.ndarray             # (n, H, W) uint8, LANE_CLASSES

    def __len__(self) -> int:
        return len(self.frames)


@dataclass
class SceneSplits:
    train: list[Scene]
    val: list[Scene]
    test: list[Scene]
    source: str
    notes: list[str] = field(default_factory=list)


def scene_seeds(scenes: int, seed: int) -> list[int]:
    """The reset seeds of the scenes a run records: a block of 1000 per run seed."""
    return [seed * 1000 + i for i in range(scenes)]


def scene_path(seed: int, scenario: str, frames: int, randomize: bool, every: int = 3) -> Path:
    from workbench.home import data_cache

    spacing = "" if every == 3 else f"-every{every}"
    look = "random" if randomize else "plain"
    return data_cache() / "highway" / f"v{RECORDING_VERSION}-{scenario}-{seed}-{frames}-{look}{spacing}.npz"


def record_scene(seed: int, scenario: str, frames: int, randomize: bool, every: int = 3) -> Scene:
    """`frames` frames of one scene, one every `every` policy steps; recorded once, then read from the cache."""
    path = scene_path(seed, scenario, frames, randomize, every)
    if not path.exists():
        env, look = make_env(scenario, seed), draw_look(seed, randomize)
        shots = []
        try:
            speed_index = getattr(env.unwrapped.vehicle, "speed_index", 0)
            for _ in range(frames):
                for _ in range(every):  # a crash ends nothing: the traffic keeps moving around the ego
                    env.unwrapped.step(_drive(env.unwrapped, speed_index))
                shots.append(observe(env, look))
        finally:
            env.close()
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        np.savez_compressed(partial, frames=np.stack([s[0] for s in shots]), lanes=np.stack([s[2] for s in shots]),
                            boxes=np.concatenate([s[1] for s in shots]).reshape(-1, 4),
                            counts=np.array([len(s[1]) for s in shots], np.int32))
        os.replace(partial, path)  # other processes see a whole file or none
    with np.load(path) as stored:
        boxes = np.split(stored["boxes"].astype(np.float32), np.cumsum(stored["counts"])[:-1])
        return Scene(seed, scenario, stored["frames"], boxes, stored["lanes"])


def _record_in_parallel(scenes: list[tuple]) -> None:
    """One process per core: the simulator is single-threaded Python."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    workers = min(len(scenes), os.cpu_count() or 1)
    if workers == 1:
        for scene in scenes:
            record_scene(*scene)
        return
    # spawn, not fork: the caller may already run TensorFlow's threads
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_record_only, scenes))


def _record_only(scene: tuple) -> None:
    record_scene(*scene)


def _split_sizes(scenes: int, validation_split: float) -> tuple[int, int]:
    """(test, validation) scene counts: a fifth for test, `validation_split` of the rest, one at least."""
    n_test = max(1, round(TEST_FRACTION * scenes))
    return n_test, max(1, round(validation_split * (scenes - n_test)))


def load_highway(scenes: int, frames_per_scene: int, seed: int, validation_split: float, randomize: bool = True,
                 scenarios: tuple[str, ...] = ("highway",), progress=print) -> SceneSplits:
    """Scenes i = 0.. (scenario i mod len(scenarios)), recorded or read from the cache, split by whole scenes."""
    unknown = [name for name in scenarios if name not in SCENARIOS]
    if unknown or not scenarios:
        raise ConfigError("scenarios", tuple(scenarios), f"one or more of {', '.join(SCENARIOS)}")
    if frames_per_scene < 1:
        raise ConfigError("frames_per_scene", frames_per_scene, "1 or more")
    n_test, n_val = _split_sizes(scenes, validation_split)
    if scenes - n_test - n_val < 1:  # checked before hours of recording, not after
        least = next(n for n in range(3, 10_000) if n - sum(_split_sizes(n, validation_split)) >= 1)
        raise ConfigError("scenes", scenes, f"at least {least}: scenes are split whole into train, validation "
                                            f"and test (validation_split {validation_split}), one scene each at least")
    wanted = [(scene_seed, scenarios[i % len(scenarios)], frames_per_scene, randomize)
              for i, scene_seed in enumerate(scene_seeds(scenes, seed))]
    missing = [w for w in wanted if not scene_path(*w).exists()]
    if missing:
        progress(f"recording {len(missing)} of {scenes} {'/'.join(scenarios)} scenes, {frames_per_scene} frames each")
        _record_in_parallel(missing)
    recorded = [record_scene(*w) for w in wanted]
    # scenes cycle through the scenarios, so contiguous blocks keep each split's mix of scenarios
    test, val, train = recorded[:n_test], recorded[n_test:n_test + n_val], recorded[n_test + n_val:]
    counts = np.concatenate([[len(b) for b in scene.boxes] for scene in recorded])
    notes = [f"{counts.mean():.1f} vehicles per frame on average; {int((counts == 0).sum())} of {len(counts)} "
             f"frames show none"]
    seeds = scene_seeds(scenes, seed)
    look = "randomized pictures" if randomize else "plain rendering"
    return SceneSplits(train, val, test, notes=notes,
                       source=f"highway-env {', '.join(scenarios)} scenes {seeds[0]}-{seeds[-1]}, {look} "
                              f"({scene_path(seeds[0], scenarios[0], frames_per_scene, randomize).parent})")
