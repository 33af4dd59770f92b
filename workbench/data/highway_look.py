"""How one traffic scene's pictures are restyled: vehicle colours, lighting, texture, noise, blur,
a small rotation and zoom, occluders; drawn once per scene from its seed."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FRAME_HEIGHT, FRAME_WIDTH = 128, 384
# The env renders a margin around the frame, so that rotating or zooming out never shows an
# unrendered corner (enough for |angle| <= 8 degrees and zoom >= 0.85).
PAD = 44
ROAD_GREY = (100, 100, 100)  # highway-env's background, drawn under and around the lanes
GREY_CAR = 0.2             # share of other vehicles painted in a grey close to the road's


@dataclass
class Look:
    """How one scene's pictures are restyled; the defaults leave highway-env's rendering as it is."""

    seed: int = 0
    vehicle_colors: list = field(default_factory=list)   # RGB handed out to other vehicles in order; [] keeps theirs
    brightness: float = 0.0                  # grey levels added
    contrast: float = 1.0                    # gain around mid-grey
    tint: tuple = (1.0, 1.0, 1.0)            # per-channel gain
    texture: np.ndarray | None = None        # (H + 2 PAD, W + 2 PAD) float32 grey levels added to the road surface
    offroad_color: tuple = ROAD_GREY         # blended into the background outside lanes ...
    offroad_strength: float = 0.0            # ... this much (0: off-road looks like road)
    noise: float = 0.0                       # sensor noise sigma, grey levels
    blur: float = 0.0                        # Gaussian blur radius, px
    angle: float = 0.0                       # rotation about the frame centre, degrees
    zoom: float = 1.0                        # > 1 magnifies
    occluders: list = field(default_factory=list)   # (x0, y0, x1, y1, (r, g, b)) in frame pixels
    handed_out: int = field(default=0, repr=False)  # vehicle colours given so far
    rng: np.random.Generator = field(init=False, repr=False)  # per-frame noise, reproducible per scene

    def __post_init__(self):
        self.rng = np.random.default_rng([self.seed, 1])


def draw_look(seed: int, randomize: bool = True) -> Look:
    """One scene's look from its seed; `randomize=False`: the identity look (plain rendering)."""
    if not randomize:
        return Look(seed=seed)
    from PIL import Image

    rng = np.random.default_rng([seed, 0])  # a stream of its own: the env uses `seed` itself
    rgb = lambda low, high: tuple(int(c) for c in rng.integers(low, high, 3))  # noqa: E731
    colors = [(int(grey),) * 3 if rng.random() < GREY_CAR else rgb(0, 256)
              for grey in ROAD_GREY[0] + rng.integers(-10, 11, 64)]
    coarse = rng.normal(0.0, 1.0, (4, 12)).astype(np.float32)
    size = (FRAME_WIDTH + 2 * PAD, FRAME_HEIGHT + 2 * PAD)
    texture = np.asarray(Image.fromarray(coarse).resize(size, Image.BICUBIC), np.float32) * rng.uniform(0, 20)
    occluders = []
    for _ in range(rng.integers(0, 3)):
        w, h = int(rng.integers(16, 80)), int(rng.integers(12, 48))
        x0, y0 = int(rng.integers(-w // 2, FRAME_WIDTH - w // 2)), int(rng.integers(-h // 2, FRAME_HEIGHT - h // 2))
        occluders.append((x0, y0, x0 + w, y0 + h, rgb(0, 256)))
    return Look(seed=seed, vehicle_colors=colors, brightness=float(rng.uniform(-30, 30)),
                contrast=float(rng.uniform(0.75, 1.25)), tint=tuple(float(t) for t in rng.uniform(0.85, 1.15, 3)),
                texture=texture, offroad_color=rgb(40, 200),
                offroad_strength=0.0 if rng.random() < 0.4 else float(rng.uniform(0.2, 0.7)),
                noise=float(rng.uniform(0, 8)), blur=0.0 if rng.random() < 0.5 else float(rng.uniform(0.3, 1.2)),
                angle=float(rng.uniform(-6, 6)), zoom=float(rng.uniform(0.9, 1.15)), occluders=occluders)
