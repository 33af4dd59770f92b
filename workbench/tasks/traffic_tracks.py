"""Cars remembered across frames: what the closed loop's rule sees is the cars found now plus the
cars found a moment ago and missed since, moved on by their own speed.

A detector with a high mAP over frames still misses a car now and then, and one missed frame is
one second of the rule believing a lane is free. Tracking by detection (match each frame's cars to
the predicted places of the cars seen before, nearest first within a gate) is how a driving stack
bridges such gaps. With the true boxes it changes little: they only drop a car under an occluder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GATE_M = 6.0        # a car found this close to where a known car should be is that car
KEPT_MISSED = 5     # frames (seconds) a car is kept after the detector last found it


@dataclass
class Track:
    position: np.ndarray   # world metres
    velocity: np.ndarray   # metres per second
    missed: int = 0


class Tracks:
    """The cars around the ego, updated once per decision step."""

    def __init__(self, kept_missed: int = KEPT_MISSED, gate_m: float = GATE_M):
        self.kept_missed, self.gate_m = kept_missed, gate_m
        self.tracks: list[Track] = []

    def update(self, centres: np.ndarray, seconds: float, ego_velocity: np.ndarray) -> np.ndarray:
        """Match `centres` (k, 2) found now; return the centres of every car believed present."""
        centres = np.asarray(centres, np.float64).reshape(-1, 2)
        predicted = [t.position + t.velocity * seconds for t in self.tracks]
        pairs = sorted((float(np.linalg.norm(c - p)), i, j)
                       for i, p in enumerate(predicted) for j, c in enumerate(centres))
        matched_tracks, matched_centres = set(), set()
        for distance, i, j in pairs:
            if distance > self.gate_m or i in matched_tracks or j in matched_centres:
                continue
            track = self.tracks[i]
            track.velocity = (centres[j] - track.position) / seconds
            track.position, track.missed = centres[j], 0
            matched_tracks.add(i)
            matched_centres.add(j)
        for i, track in enumerate(self.tracks):
            if i not in matched_tracks:
                track.position, track.missed = predicted[i], track.missed + 1
        self.tracks = [t for t in self.tracks if t.missed <= self.kept_missed]
        # a car seen for the first time is taken to move with the traffic, which moves with the ego
        self.tracks += [Track(centres[j], np.asarray(ego_velocity, np.float64).copy())
                        for j in range(len(centres)) if j not in matched_centres]
        return np.array([t.position for t in self.tracks]).reshape(-1, 2)
