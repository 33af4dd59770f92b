"""Closed loop: a rule controller drives held-out highway scenes from boxes, once from the trained
detector's and once from the true boxes, and the two are compared in collisions per kilometre and
mean speed.

The rule reads the road as a driver would: the boxes' centres are mapped back to the road (the
camera's placement is known), placed on the ego's lane or a neighbouring one, and then: a car
ahead closer than a safe headway → change to a free neighbouring lane, or brake when none is free;
a clear road → speed up. Only the boxes differ between the two drives, so the gap between them is
what the detector's mistakes cost. Both drives remember the cars found in the last frames
(`traffic_tracks.py`), so one frame's miss does not read as a free lane.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_STEPS = 40       # highway-env's episode: 40 s
HEADWAY_S = 1.5          # seconds of travel kept to the car ahead
MIN_GAP_M = 12.0         # metres, bumper to bumper at low speed (centres: + one car length)
OWN_CAR_M = 2.5          # centres closer than this to the ego's are its own car
BEHIND_M = 8.0           # a car this close behind on a side lane blocks changing into it
LANE_CHANGE_SCENARIOS = ("highway", "merge")
# The rule sees boxes down to this score: a missed car costs a collision, a phantom one a brake.
# 0.3 (what the logged model returns) collided ~4x as often as the true boxes (BENCHMARKS.md).
CONTROLLER_MIN_SCORE = 0.1


@dataclass
class Drive:
    scenario: str
    seed: int
    steps: int
    seconds: float
    distance_m: float
    collided: bool
    # steps where the rule chose otherwise than it would have from this frame's true boxes (without
    # memory), and the last step's (choice taken, choice from those true boxes): where a drive that
    # collided went wrong
    disagreed: int = 0
    last_choices: tuple[str, str] = ("", "")


def rule_action(env, centres: np.ndarray) -> str:
    """The meta-action (LANE_LEFT, LANE_RIGHT, FASTER, SLOWER, IDLE) for vehicles at `centres`
    (world metres): keep a headway, pass when a neighbouring lane is free."""
    ego = env.unwrapped.vehicle
    network = env.unwrapped.road.network
    safe = max(MIN_GAP_M, HEADWAY_S * ego.speed) + ego.LENGTH

    def gaps(lane_index) -> np.ndarray:
        lane = network.get_lane(lane_index)
        ego_s = lane.local_coordinates(ego.position)[0]
        found = [lane.local_coordinates(c) for c in centres]
        return np.array([s - ego_s for s, lateral in found if abs(lateral) < lane.width_at(s) / 2], float)

    ahead = gaps(ego.lane_index)
    ahead = ahead[ahead > OWN_CAR_M]  # a box on the ego itself is not a car ahead
    nearest = ahead.min() if len(ahead) else np.inf
    if nearest >= safe:
        return "FASTER" if nearest > 2 * safe else "IDLE"
    for side in network.side_lanes(ego.lane_index):
        around = gaps(side)
        if not np.any((around > -BEHIND_M) & (around < safe + 5)):
            return "LANE_LEFT" if side[2] < ego.lane_index[2] else "LANE_RIGHT"
    return "SLOWER"


def drive(scenario: str, seed: int, steps: int, randomize: bool, detect=None, remember: bool = True) -> Drive:
    """Drive one scene: `detect(frame) -> boxes` or, without it, the true boxes; `remember`: the rule
    sees the tracked cars, not only this frame's."""
    from workbench.data import highway
    from workbench.tasks.traffic_tracks import Tracks

    env = highway.make_env(scenario, seed)
    env.unwrapped.config["duration"] = steps + 1  # the drive ends by its steps or a collision
    look = highway.draw_look(seed, randomize)
    actions = env.unwrapped.action_type.actions_indexes
    step_seconds = 1 / env.unwrapped.config["policy_frequency"]
    tracks = Tracks() if remember else None
    distance, taken, collided, disagreed, choices = 0.0, 0, False, 0, ("", "")
    try:
        for taken in range(1, steps + 1):
            frame, true_boxes, _ = highway.observe(env, look)
            truth = highway.pixels_to_world(env, look, _box_centres(true_boxes))
            centres = truth if detect is None else others_than_ego(
                env, highway.pixels_to_world(env, look, _box_centres(detect(frame))))
            if tracks is not None:
                centres = tracks.update(centres, step_seconds, env.unwrapped.vehicle.velocity)
            action = rule_action(env, centres)
            choices = (action, rule_action(env, truth))
            disagreed += choices[0] != choices[1]
            _, _, terminated, truncated, _ = env.step(actions[action])
            distance += float(env.unwrapped.vehicle.speed) * step_seconds
            collided = bool(env.unwrapped.vehicle.crashed)
            if terminated or truncated or collided:
                break
    finally:
        env.close()
    return Drive(scenario, seed, taken, taken * step_seconds, distance, collided, disagreed, choices)


def others_than_ego(env, centres: np.ndarray) -> np.ndarray:
    """`centres` without a box on the ego car itself (the detector finds it, the true boxes leave it
    out): tracked, it would be remembered beside the ego and block a lane change."""
    centres = np.asarray(centres, np.float64).reshape(-1, 2)
    ego = np.asarray(env.unwrapped.vehicle.position, np.float64)
    return centres[np.linalg.norm(centres - ego, axis=1) >= OWN_CAR_M]


def _box_centres(boxes: np.ndarray) -> np.ndarray:
    if not len(boxes):
        return np.zeros((0, 2))
    return np.column_stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2])


def summary(drives: list[Drive]) -> dict[str, float]:
    kilometres = sum(d.distance_m for d in drives) / 1000
    return {"collisions_per_km": sum(d.collided for d in drives) / max(kilometres, 1e-9),
            "collisions": float(sum(d.collided for d in drives)), "km": kilometres,
            "choices_unlike_true_boxes": sum(d.disagreed for d in drives) / max(sum(d.steps for d in drives), 1),
            "mean_speed_kmh": 3.6 * sum(d.distance_m for d in drives) / max(sum(d.seconds for d in drives), 1e-9)}


def closed_loop(model, data, config, result) -> None:
    """Both drives over the test scenes that have lanes to change into; metrics and a table."""
    from workbench.models.detection import decode

    scenes = [(s, seed) for s, seed in data.extras["test_scenes"] if s in LANE_CHANGE_SCENARIOS]
    if not scenes:
        return
    steps = config.closed_loop_steps or DEFAULT_STEPS

    def detect(frame):
        boxes, _, _ = decode(model.predict_on_batch(frame[None]), data.num_classes,
                                  min_score=CONTROLLER_MIN_SCORE)[0]
        return boxes

    learned = [drive(s, seed, steps, config.randomize, detect) for s, seed in scenes]
    truth = [drive(s, seed, steps, config.randomize) for s, seed in scenes]
    ours, theirs = summary(learned), summary(truth)
    result.metrics.update({f"closed_loop_{k}": v for k, v in ours.items()})
    result.metrics.update({f"closed_loop_true_boxes_{k}": v for k, v in theirs.items()})
    result.tables["closed_loop"] = {
        "scenario": [d.scenario for d in learned], "seed": [d.seed for d in learned],
        "detector_steps": [d.steps for d in learned], "detector_distance_m": [d.distance_m for d in learned],
        "detector_collided": [d.collided for d in learned],
        "detector_steps_unlike_true_boxes": [d.disagreed for d in learned],
        "detector_last_choice": [d.last_choices[0] for d in learned], "true_boxes_steps": [d.steps for d in truth],
        "true_boxes_distance_m": [d.distance_m for d in truth], "true_boxes_collided": [d.collided for d in truth]}
