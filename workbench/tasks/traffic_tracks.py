"""Cars remembered across frames: what the closed loop's rule sees is the cars found now plus the
cars found a moment ago and missed since, moved on by their own speed.

A detector with a high mAP over frames still misses a car now and then, and one missed frame is
one second of the rule believing a lane is free. Tracking by detection (match each frame's cars to
the predicted places of the cars seen before, nearest first within a gate) is how a driving stack
bridges such gaps. The true boxes drop a car only under an occluder or at the frame's edge, so
for them memory changes few choices (`closed_loop_true_boxes_choices_unlike_true_boxes` counts them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GATE_M = 6.0        # a car found this close to where a known car should be is that car
SPEED_SPREAD_MPS = 10.0  # a car seen once has a guessed speed: the ego's, give or take this much
KEPT_MISSED = 5     # frames (seconds) a car seen twice is kept after the detector last found it


@dataclass
class Track:
    measured: np.ndarray   # world metres where the detector last found it
    velocity: np.ndarray   # metres per second: measured between two findings, or guessed
    hits: int = 1
    missed: int = 0        # frames since it was last found

    def at(self, frames: int, seconds: float) -> np.ndarray:
        return self.measured + self.velocity * frames * seconds


class Tracks:
    """The cars around the ego, updated once per decision step."""

    def __init__(self, kept_missed: int = KEPT_MISSED, gate_m: float = GATE_M):
        self.kept_missed, self.gate_m = kept_missed, gate_m
        self.tracks: list[Track] = []

    def update(self, centres: np.ndarray, seconds: float, ego_velocity: np.ndarray) -> np.ndarray:
        """Match `centres` (k, 2) found now; return the centres of every car believed present."""
        centres = np.asarray(centres, np.float64).reshape(-1, 2)
        predicted = [t.at(t.missed + 1, seconds) for t in self.tracks]
        # a speed only guessed may be off by the spread of traffic speeds: such cars get a wider gate
        gates = [self.gate_m + (SPEED_SPREAD_MPS * seconds if t.hits == 1 else 0.0) for t in self.tracks]
        pairs = sorted((float(np.linalg.norm(c - p)), i, j)
                       for i, p in enumerate(predicted) for j, c in enumerate(centres))
        matched_tracks, matched_centres = set(), set()
        for distance, i, j in pairs:
            if distance > gates[i] or i in matched_tracks or j in matched_centres:
                continue
            track = self.tracks[i]
            track.velocity = (centres[j] - track.measured) / ((track.missed + 1) * seconds)
            track.measured, track.hits, track.missed = centres[j], track.hits + 1, 0
            matched_tracks.add(i)
            matched_centres.add(j)
        for i, track in enumerate(self.tracks):
            if i not in matched_tracks:
                track.missed += 1
        # only a car found twice (so with a measured speed) is remembered through a miss: a single
        # finding may be a phantom, and its guessed speed would carry it off to where no car is
        self.tracks = [t for t in self.tracks if t.missed == 0 or (t.hits > 1 and t.missed <= self.kept_missed)]
        # a car seen for the first time is taken to move with the traffic, which moves with the ego
        self.tracks += [Track(centres[j], np.asarray(ego_velocity, np.float64).copy())
                        for j in range(len(centres)) if j not in matched_centres]
        return np.array([t.at(t.missed, seconds) for t in self.tracks]).reshape(-1, 2)
