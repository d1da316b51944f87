"""Ramp limits (anti-herding): at most so many kW of change of gridaware-managed load per
zone in any minute.

Thousands of jobs that react to one signal (a price drop, a curtailment event ending, a
greener hour beginning) become a step load on the grid. A ramp limit spreads the starts,
pauses, resumes and moves over time: every change of load counts with its size (a start and
a pause both move the load), and in any sliding 60 s window the changes of one zone sum to at
most the limit. A single change larger than the limit is admitted only into an otherwise
empty window (it cannot be split; waiting longer would not make the step smaller).

The limiter is plain state (no clock, no I/O): the caller passes the grid time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

WINDOW = 60.0
EPS = 1e-9


def _expired(t0: float, now: float) -> bool:
    """Whether a change at ``t0`` is out of the window ending at ``now`` (a microsecond of
    tolerance, so that ``t0 + 60`` is out whatever the rounding)."""
    return now - t0 >= WINDOW - 1e-6


@dataclass
class ZoneRamp:
    """Changes admitted in one zone: (grid time, |kW|), oldest first."""

    limit_kw: float
    changes: deque[tuple[float, float]] = field(default_factory=deque)

    def _expire(self, now: float) -> None:
        while self.changes and _expired(self.changes[0][0], now):
            self.changes.popleft()

    def used(self, now: float) -> float:
        self._expire(now)
        return sum(kw for _, kw in self.changes)

    def room(self, now: float) -> float:
        """kW of change still allowed in the window ending now."""
        return max(0.0, self.limit_kw - self.used(now))

    def allows(self, delta_kw: float, now: float) -> bool:
        """Whether the change would be admitted now (nothing recorded)."""
        size, used = abs(delta_kw), self.used(now)
        return used + size <= self.limit_kw + EPS or (size > self.limit_kw and used == 0)

    def admit(self, delta_kw: float, now: float) -> bool:
        """Record the change if the limit allows it now; False (nothing recorded) if not."""
        if not self.allows(delta_kw, now):
            return False
        self.changes.append((now, abs(delta_kw)))
        return True

    def next_room(self, delta_kw: float, now: float) -> float:
        """The earliest time at or after ``now`` when ``delta_kw`` would be admitted."""
        self._expire(now)
        size, t = abs(delta_kw), now
        pending = list(self.changes)
        while pending:
            used = sum(kw for _, kw in pending)
            if used + size <= self.limit_kw + EPS:
                return t
            t = pending.pop(0)[0] + WINDOW
        return t


@dataclass
class RampLimiter:
    """Per-zone ramp state; zones without a limit admit everything."""

    limits: dict[str, float] = field(default_factory=dict)
    zones: dict[str, ZoneRamp] = field(default_factory=dict)

    def set_limit(self, zone: str, limit_kw: float | None) -> None:
        if limit_kw is None:
            self.limits.pop(zone, None)
            self.zones.pop(zone, None)
            return
        self.limits[zone] = limit_kw
        ramp = self.zones.setdefault(zone, ZoneRamp(limit_kw))
        ramp.limit_kw = limit_kw

    def admit(self, zone: str, delta_kw: float, now: float) -> bool:
        ramp = self.zones.get(zone)
        return True if ramp is None else ramp.admit(delta_kw, now)

    def allows(self, zone: str, delta_kw: float, now: float) -> bool:
        ramp = self.zones.get(zone)
        return True if ramp is None else ramp.allows(delta_kw, now)

    def room(self, zone: str, now: float) -> float:
        ramp = self.zones.get(zone)
        return float("inf") if ramp is None else ramp.room(now)


def spread(deltas: list[float], limit_kw: float | None, now: float) -> list[float]:
    """When each change (in the given order) may happen under the limit, starting ``now``:
    the schedule that starts, pauses and moves follow (for the simulator and the plan)."""
    if limit_kw is None:
        return [now] * len(deltas)
    ramp, times, t = ZoneRamp(limit_kw), [], now
    for d in deltas:
        t = ramp.next_room(d, t)
        ramp.admit(d, t)
        times.append(t)
    return times


def max_window_change(times: list[float], deltas: list[float]) -> float:
    """The largest sum of |change| in any 60 s window (to check a schedule: the invariant the
    tests hold the limiter to)."""
    pairs = sorted(zip(times, (abs(d) for d in deltas), strict=True))
    best, total, lo = 0.0, 0.0, 0
    for t, kw in pairs:
        total += kw
        while _expired(pairs[lo][0], t):
            total -= pairs[lo][1]
            lo += 1
        best = max(best, total)
    return best
