"""CarRacing-v3 for behaviour cloning: the scripted expert, the recorder, the closed-loop driver, GIFs.

The expert is pure pursuit on the track's centre line (`env.unwrapped.track`, a list of
(alpha, beta, x, y) points) from the car hull's position and heading, plus a speed controller
(gas below the target speed, brake well above it). Steering follows the environment's sign:
+1 turns right.

While recording, the executed steering is perturbed now and then (a few steps of a constant
offset every `PERTURB_EVERY` steps) but the recorded label stays the expert's, so the frames
show the car drifting off the centre line together with the steering that brings it back.

The first `WARMUP_STEPS` steps of an episode are a zoom-in animation: the expert drives them,
nothing is recorded, and a model takes over only after them. Gymnasium is imported here only.
"""

from __future__ import annotations

import io
import math
import os
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

ENV_ID = "CarRacing-v3"
WARMUP_STEPS = 50          # 1 s at 50 FPS: the camera zooms in from far away
LAP_STEP_CAP = 1500        # "one lap" ends at the lap or after this many steps (the expert needs 800-1250)
TARGET_SPEED = 45.0        # hull speed (Box2D units/s) the speed controller holds on straights
MIN_SPEED = 30.0           # ... and before sharp bends
BEND_POINTS = 12           # how far ahead (centre-line points, 3.5 units apart) bends slow the car
GAS, BRAKE, BRAKE_MARGIN = 0.5, 0.4, 5.0
LOOKAHEAD = 15.0           # pure pursuit aims this far ahead on the centre line (points are 3.5 apart)
STEERING_GAIN = 2.0        # steering per radian of heading error to the aim point
PERTURB_EVERY = 60         # steps between perturbations while recording
PERTURB_STEPS = 6          # steps each perturbation lasts
PERTURB_OFFSET = (0.15, 0.35)  # size of the steering offset (random sign)

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # pygame greets on import otherwise


def make_env(max_steps: int):
    """CarRacing-v3 without rendering to a window and with the fixed (not randomized) colours."""
    import gymnasium as gym

    return gym.make(ENV_ID, render_mode=None, domain_randomize=False, max_episode_steps=max_steps)


def expert_steering(env) -> float:
    """Pure pursuit: steer towards the centre-line point `LOOKAHEAD` units ahead of the car."""
    car, track = env.unwrapped.car, env.unwrapped.track
    position = np.asarray(car.hull.position, np.float64)
    centre = np.asarray([point[2:4] for point in track])
    aim = _aim_point(centre, position)
    forward = car.hull.GetWorldVector((0, 1))  # the car's local +y is its nose
    right = car.hull.GetWorldVector((1, 0))
    dx, dy = aim - position
    heading_error = math.atan2(dx * right[0] + dy * right[1], dx * forward[0] + dy * forward[1])
    return float(np.clip(STEERING_GAIN * heading_error, -1.0, 1.0))


def _aim_point(centre: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Where the circle of radius LOOKAHEAD around the car leaves the centre line ahead of the car.

    Interpolated between centre-line points, so the aim moves smoothly instead of jumping from
    one point to the next (which would make the expert's steering jitter)."""
    count = len(centre)
    nearest = int(np.argmin(np.hypot(*(centre - position).T)))
    previous = centre[nearest]
    for ahead in range(1, count):
        point = centre[(nearest + ahead) % count]
        if np.hypot(*(point - position)) >= LOOKAHEAD:
            # solve |previous + t (point - previous) - position| = LOOKAHEAD for t in [0, 1]
            d, f = point - previous, previous - position
            a, b, c = d @ d, 2 * (f @ d), f @ f - LOOKAHEAD ** 2
            t = (-b + math.sqrt(max(b * b - 4 * a * c, 0.0))) / (2 * a)
            return previous + min(max(t, 0.0), 1.0) * d
        previous = point
    return previous


def car_speed(env) -> float:
    vx, vy = env.unwrapped.car.hull.linearVelocity
    return math.hypot(vx, vy)


def target_speed(env) -> float:
    """TARGET_SPEED on straights, down to MIN_SPEED before a bend of 90 degrees or more."""
    car, track = env.unwrapped.car, env.unwrapped.track
    centre = np.asarray([point[2:4] for point in track])
    nearest = int(np.argmin(np.hypot(*(centre - np.asarray(car.hull.position)).T)))
    ahead = centre[(nearest + np.arange(BEND_POINTS + 2)) % len(centre)]
    headings = np.unwrap(np.arctan2(*np.diff(ahead, axis=0)[:, ::-1].T))
    bend = float(np.max(np.abs(headings - headings[0])))
    return TARGET_SPEED - (TARGET_SPEED - MIN_SPEED) * min(1.0, bend / (math.pi / 2))


def speed_control(env) -> tuple[float, float]:
    """(gas, brake) holding target_speed(): the same for the expert and for a model driving."""
    speed, target = car_speed(env), target_speed(env)
    if speed < target:
        return GAS, 0.0
    return 0.0, (BRAKE if speed > target + BRAKE_MARGIN else 0.0)


def coverage(env) -> float:
    """Fraction of the track's tiles the car has driven over."""
    return env.unwrapped.tile_visited_count / len(env.unwrapped.track)


def _act(env, steering: float):
    gas, brake = speed_control(env)
    return env.step(np.array([steering, gas, brake], dtype=np.float64))


@dataclass
class Recording:
    """One track driven by the expert: frames with the expert's steering and the car's speed."""

    track_seed: int
    frames: np.ndarray      # (n, 96, 96, 3) uint8 observations
    steering: np.ndarray    # (n,) float32, the expert's label for each frame
    speed: np.ndarray       # (n,) float32
    coverage: float         # tiles visited at the end / tiles on the track
    reward: float
    steps: int              # steps driven after the warm-up


def record_track(track_seed: int, steps: int = 0, perturb: bool = True) -> Recording:
    """Drive track `track_seed` with the expert; `steps` after the warm-up, 0 = one lap."""
    limit = steps or LAP_STEP_CAP
    env = make_env(WARMUP_STEPS + limit + 1)
    rng = np.random.default_rng(track_seed)
    try:
        observation, _ = env.reset(seed=track_seed)
        total = 0.0
        for _ in range(WARMUP_STEPS):
            observation, reward, *_ = _act(env, expert_steering(env))
            total += reward
        frames, labels, speeds = [], [], []
        offset = 0.0
        for step in range(limit):
            label = expert_steering(env)
            frames.append(observation)
            labels.append(label)
            speeds.append(car_speed(env))
            if perturb and step % PERTURB_EVERY == PERTURB_EVERY - PERTURB_STEPS:
                offset = rng.choice([-1.0, 1.0]) * rng.uniform(*PERTURB_OFFSET)
            elif step % PERTURB_EVERY == 0:
                offset = 0.0
            observation, reward, terminated, truncated, _ = _act(env, float(np.clip(label + offset, -1, 1)))
            total += reward
            if terminated or truncated:
                break
        return Recording(track_seed, np.asarray(frames, np.uint8), np.asarray(labels, np.float32),
                         np.asarray(speeds, np.float32), coverage(env), total, len(frames))
    finally:
        env.close()


@dataclass
class Drive:
    """One closed-loop drive of a track."""

    track_seed: int
    coverage: float
    reward: float
    steps: int
    lap_finished: bool
    path: np.ndarray                          # (steps, 2) hull positions
    centre_line: np.ndarray                   # (points, 2)
    frames: list[np.ndarray] = field(default_factory=list)  # kept for the GIF when asked


# A steering policy for closed-loop driving: a batch of observations (one per track, each the last
# `frame_stack` frames when stacking) -> one steering value per track.
Policy = Callable[[np.ndarray], np.ndarray]


def drive(track_seeds: list[int], steps: int = 0, policy: Policy | None = None, frame_stack: int = 0,
          keep_frames: int = 0) -> list[Drive]:
    """Drive each track for `steps` after the warm-up (0 = one lap) with `policy`, or the expert.

    Tracks run side by side so the policy predicts one batch per step. `frame_stack` > 0 hands the
    policy the last that many frames of each track (oldest first); `keep_frames` keeps every
    observation of the first that many drives (for a GIF).
    """
    limit = steps or LAP_STEP_CAP
    envs = [make_env(WARMUP_STEPS + limit + 1) for _ in track_seeds]
    try:
        observations, totals = [], [0.0] * len(envs)
        for i, (env, seed) in enumerate(zip(envs, track_seeds)):
            observation, _ = env.reset(seed=seed)
            for _ in range(WARMUP_STEPS):  # the zoom-in: the same expert start for everyone
                observation, reward, *_ = _act(env, expert_steering(env))
                totals[i] += reward
            observations.append(observation)
        history = [deque([obs] * max(1, frame_stack), maxlen=max(1, frame_stack)) for obs in observations]
        frames = [[obs] if i < keep_frames else [] for i, obs in enumerate(observations)]
        paths = [[tuple(env.unwrapped.car.hull.position)] for env in envs]
        active = [True] * len(envs)
        finished = [False] * len(envs)
        done_steps = [0] * len(envs)
        for _ in range(limit):
            live = [i for i, on in enumerate(active) if on]
            if not live:
                break
            if policy is None:
                steering = {i: expert_steering(envs[i]) for i in live}
            else:
                batch = np.stack([np.stack(history[i]) if frame_stack else history[i][-1] for i in live])
                steering = dict(zip(live, np.clip(np.asarray(policy(batch), np.float64).reshape(-1), -1, 1)))
            for i in live:
                observation, reward, terminated, truncated, info = _act(envs[i], float(steering[i]))
                totals[i] += reward
                done_steps[i] += 1
                history[i].append(observation)
                paths[i].append(tuple(envs[i].unwrapped.car.hull.position))
                if i < keep_frames:
                    frames[i].append(observation)
                if terminated or truncated:
                    active[i] = False
                    finished[i] = bool(info.get("lap_finished", False))
        return [Drive(seed, coverage(env), totals[i], done_steps[i], finished[i], np.asarray(paths[i]),
                      np.asarray([p[2:4] for p in env.unwrapped.track]), frames[i])
                for i, (env, seed) in enumerate(zip(envs, track_seeds))]
    finally:
        for env in envs:
            env.close()


def gif(frames: list[np.ndarray], every: int = 2, scale: int = 2, fps: int = 25) -> bytes:
    """An animated GIF of observations (every `every`-th frame, enlarged `scale` times)."""
    from PIL import Image

    picked = frames[::every] or frames[:1]
    images = [Image.fromarray(np.asarray(f, np.uint8)).resize((f.shape[1] * scale, f.shape[0] * scale),
                                                            Image.NEAREST) for f in picked]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps),
                   loop=0, optimize=False)
    return buffer.getvalue()
