"""Grid time: the one clock that planning uses, received as a value (``core`` never reads the
wall clock itself).

In production grid time is wall time. For the lab, demos and tests a replay clock maps a
recorded period onto the present: grid time starts at ``grid_start`` when the operator
starts and runs ``speedup`` times faster than wall time, so a real day replays in minutes.
Kubernetes timestamps stay wall time and are converted at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GridClock:
    wall_start: float
    grid_start: float
    speedup: float = 1.0

    @staticmethod
    def realtime(wall_now: float) -> GridClock:
        return GridClock(wall_now, wall_now, 1.0)

    def grid(self, wall: float) -> float:
        """Grid time (epoch seconds) at wall time ``wall``."""
        return self.grid_start + (wall - self.wall_start) * self.speedup

    def wall(self, grid: float) -> float:
        """Wall time at grid time ``grid``."""
        return self.wall_start + (grid - self.grid_start) / self.speedup

    def wall_seconds(self, grid_seconds: float) -> float:
        """A grid duration in wall seconds."""
        return grid_seconds / self.speedup
