"""Traffic scenes from highway-env: boxes cover exactly the other vehicles, lane mask, splits by scene, cache."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.data import highway
from workbench.errors import ConfigError

H, W = highway.FRAME_HEIGHT, highway.FRAME_WIDTH
RED = (255, 0, 0)
IDLE = 1   # DiscreteMetaAction in every scenario


def observations(scenario: str, seed: int, look: highway.Look, frames: int = 3, every: int = 2) -> list:
    env = highway.make_env(scenario, seed)
    try:
        shots = []
        for _ in range(frames):
            for _ in range(every):
                env.unwrapped.step(IDLE)
            shots.append(highway.observe(env, look))
        return shots
    finally:
        env.close()


def red_pixels(frame: np.ndarray) -> np.ndarray:
    """Pixels of the pure red vehicles, blends with the road included; not the ego (green, or
    highway-env's crash red (255, 100, 100))."""
    r, g, b = frame.astype(int).transpose(2, 0, 1)
    return (r > 150) & (g < 60) & (b < 60)


def assert_boxes_match_red(frame: np.ndarray, boxes: np.ndarray, slack: float = 2.0, edge: int = 12) -> None:
    red = red_pixels(frame)
    ys, xs = np.nonzero(red)
    boxed = np.zeros(len(xs), bool)
    for x0, y0, x1, y1 in boxes:
        boxed |= (xs + 0.5 > x0 - slack) & (xs + 0.5 < x1 + slack) & (ys + 0.5 > y0 - slack) & (ys + 0.5 < y1 + slack)
    # a vehicle mostly outside the frame has no box, but may show a few pixels at the border
    near_edge = (xs < edge) | (xs >= W - edge) | (ys < edge) | (ys >= H - edge)
    assert (boxed | near_edge).all(), f"red pixels outside every box, e.g. x={xs[~boxed][:5]}, y={ys[~boxed][:5]}"
    for x0, y0, x1, y1 in boxes:
        name = f"box {x0:.0f},{y0:.0f},{x1:.0f},{y1:.0f}"
        inside = red[int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))]
        # a car at 45 degrees fills about a quarter of its axis-aligned box
        assert inside.mean() > 0.2, f"{name} is mostly empty ({inside.mean():.2f} red)"
        if x0 > 1 and y0 > 1 and x1 < W - 1 and y1 < H - 1:
            # a whole car spans its box, less the dark outline and a pixel of pygame's rounding
            rows, columns = np.nonzero(inside)
            assert columns.max() - columns.min() + 1 >= 0.75 * (x1 - x0), f"{name} is wider than its car"
            assert rows.max() - rows.min() + 1 >= 0.6 * (y1 - y0), f"{name} is taller than its car"


def test_plain_boxes_cover_exactly_the_red_vehicles():
    shots = observations("highway", 11, highway.Look(vehicle_colors=[RED]))
    assert sum(len(boxes) for _, boxes, _ in shots) >= 6   # highway's default traffic is dense
    for frame, boxes, _ in shots:
        assert frame.shape == (H, W, 3) and frame.dtype == np.uint8
        assert boxes.dtype == np.float32 and boxes.shape[1] == 4
        assert_boxes_match_red(frame, boxes)


@pytest.mark.parametrize("angle, zoom", [(5.5, 1.12), (-6.0, 0.9)])
def test_boxes_follow_the_rotation_and_zoom_of_the_frame(angle, zoom):
    look = highway.Look(vehicle_colors=[RED], angle=angle, zoom=zoom, brightness=10, contrast=1.1)
    shots = observations("highway", 11, look)
    assert sum(len(boxes) for _, boxes, _ in shots) >= 6
    for frame, boxes, _ in shots:
        assert_boxes_match_red(frame, boxes)
    plain = observations("highway", 11, highway.Look(vehicle_colors=[RED]))
    # zooming changes the box size the same way as the cars
    widths = lambda shots: np.median([b[2] - b[0] for _, boxes, _ in shots for b in boxes])  # noqa: E731
    assert widths(shots) == pytest.approx(widths(plain) * zoom, rel=0.1)


@pytest.mark.parametrize("scenario", ["roundabout", "intersection"])
def test_turning_vehicles_get_boxes_in_the_other_scenarios(scenario):
    shots = observations(scenario, 5, highway.Look(vehicle_colors=[RED], angle=3.0), frames=4, every=1)
    assert sum(len(boxes) for _, boxes, _ in shots) >= 2
    for frame, boxes, _ in shots:
        assert_boxes_match_red(frame, boxes)


def test_an_occluded_vehicle_loses_its_box():
    env = highway.make_env("highway", 11)
    try:
        env.unwrapped.step(IDLE)
        _, boxes, _ = highway.observe(env, highway.Look(vehicle_colors=[RED]))
        x0, y0, x1, y1 = (int(v) for v in boxes[0])
        cover = highway.Look(occluders=[(x0 - 1, y0 - 1, x1 + 1, y1 + 1, (0, 0, 255))])
        frame, hidden, _ = highway.observe(env, cover)
    finally:
        env.close()
    assert len(hidden) == len(boxes) - 1
    assert not any(np.allclose(box, boxes[0]) for box in hidden)
    assert (frame[y0:y1, x0:x1] == (0, 0, 255)).all()


def test_box_centres_map_back_to_the_vehicles_on_the_road():
    env = highway.make_env("highway", 11)
    try:
        look = highway.Look(angle=-4.0, zoom=1.1)
        for _ in range(2):
            env.unwrapped.step(IDLE)
        _, boxes, _ = highway.observe(env, look)
        centres = np.column_stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2])
        world = highway.pixels_to_world(env, look, centres)
        others = np.array([v.position for v in env.unwrapped.road.vehicles if v is not env.unwrapped.vehicle])
    finally:
        env.close()
    inside = (boxes[:, 0] > 0) & (boxes[:, 2] < W) & (boxes[:, 1] > 0) & (boxes[:, 3] < H)   # not cut by the edge
    assert inside.sum() >= 2
    nearest = np.linalg.norm(world[inside][:, None] - others[None], axis=-1).min(axis=1)
    assert (nearest < 0.6).all(), nearest   # metres; a car is 5 m long


def test_lane_mask_marks_the_ego_lane_and_the_road():
    for frame, _, lanes in observations("highway", 4, highway.draw_look(4, randomize=False), frames=2):
        assert lanes.shape == (H, W) and lanes.dtype == np.uint8
        assert set(np.unique(lanes)) == {0, 1, 2}
        ego_x, ego_y = highway.EGO_AT["highway"]
        assert lanes[int(ego_y * H), int(ego_x * W)] == 1
        assert (lanes == 0).all(axis=1).any()            # rows beyond the outer lanes are off-road
        assert (lanes == 2).all(axis=1).any()            # highway-v0 has 4 lanes: 3 are other lanes
        ego_rows = np.nonzero((lanes == 1).all(axis=1))[0]
        assert 12 <= len(ego_rows) <= 18                 # one 4 m lane at 4 px/m
        # the ego (green) is drawn where its lane is
        green = (frame[..., 1] > 150) & (frame[..., 0] < 100)
        assert green.any() and (lanes[green] == 1).all()


def test_randomized_looks_differ_by_seed_and_repeat():
    one, again, other = highway.draw_look(1), highway.draw_look(1), highway.draw_look(2)
    assert one.vehicle_colors == again.vehicle_colors and one.angle == again.angle
    assert one.vehicle_colors != other.vehicle_colors
    looks = [highway.draw_look(seed) for seed in range(40)]
    assert all(abs(look.angle) <= 6 and 0.9 <= look.zoom <= 1.15 and len(look.occluders) <= 2 for look in looks)
    greys = [c for look in looks for c in look.vehicle_colors if c[0] == c[1] == c[2] and abs(c[0] - 100) <= 10]
    assert 0.1 < len(greys) / sum(len(look.vehicle_colors) for look in looks) < 0.3
    plain = highway.draw_look(1, randomize=False)
    assert (plain.angle, plain.zoom, plain.noise, plain.vehicle_colors, plain.occluders) == (0, 1, 0, [], [])


def test_merge_scene_records_reproducibly_with_boxes_in_the_frame(home):
    scene = highway.record_scene(21, "merge", 4, randomize=True)
    assert len(scene) == 4 and scene.frames.shape == (4, H, W, 3) and scene.lanes.shape == (4, H, W)
    boxes = np.concatenate(scene.boxes)
    assert len(boxes) >= 4
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= W).all() and (boxes[:, 3] <= H).all()
    assert ((boxes[:, 2] - boxes[:, 0] >= 3) & (boxes[:, 3] - boxes[:, 1] >= 3)).all()
    assert {1, 2} <= set(np.unique(scene.lanes))
    path = highway.scene_path(21, "merge", 4, True)
    assert path.exists() and not list(path.parent.glob("*.tmp.npz"))
    path.unlink()
    again = highway.record_scene(21, "merge", 4, randomize=True)
    assert np.array_equal(again.frames, scene.frames) and np.array_equal(again.lanes, scene.lanes)
    assert all(np.array_equal(a, b) for a, b in zip(again.boxes, scene.boxes))


def test_splits_are_whole_scenes_and_come_from_the_cache_the_second_time(home, monkeypatch):
    first = highway.load_highway(5, 2, seed=3, validation_split=0.25, progress=lambda message: None)
    seeds = [[scene.seed for scene in part] for part in (first.train, first.val, first.test)]
    assert [len(part) for part in seeds] == [3, 1, 1]
    assert sorted(sum(seeds, [])) == highway.scene_seeds(5, 3)
    assert all(len(scene) == 2 and len(scene.boxes) == 2 for scene in first.train + first.val + first.test)
    assert "vehicles per frame" in first.notes[0]

    def no_rendering(*args, **kwargs):
        raise AssertionError("a cached scene was recorded again")

    monkeypatch.setattr(highway, "make_env", no_rendering)
    messages = []
    second = highway.load_highway(5, 2, seed=3, validation_split=0.25, progress=messages.append)
    assert messages == []
    assert [[scene.seed for scene in part] for part in (second.train, second.val, second.test)] == seeds
    for a, b in zip(first.train + first.val + first.test, second.train + second.val + second.test):
        assert np.array_equal(a.frames, b.frames) and np.array_equal(a.lanes, b.lanes)


def test_too_few_scenes_is_refused_before_recording(home, monkeypatch):
    monkeypatch.setattr(highway, "make_env", lambda *args, **kwargs: pytest.fail("recorded anyway"))
    with pytest.raises(ConfigError) as error:
        highway.load_highway(2, 2, seed=0, validation_split=0.2)
    assert error.value.field == "scenes" and "at least 3" in str(error.value)
    with pytest.raises(ConfigError) as error:
        highway.load_highway(5, 2, seed=0, validation_split=0.2, scenarios=("parking",))
    assert error.value.field == "scenarios"
