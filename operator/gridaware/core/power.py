"""The fleet's power model: what gridaware-managed work draws now, per cluster and zone, and
what it is planned to draw hour by hour over the next two days.

A grid operator can only ask a flexible load for something if it knows that load; the same
figures are the fleet's own load forecast that a utility asks for. Every job draws the power
of its ``spec.energy`` model (``accounting.power_kw``, the same model its account uses) times
its cluster's PUE, from its start until its expected end; a deferred job draws from its
planned start. Paused jobs draw nothing until they resume.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from gridaware.api.v1alpha1 import GridAwareJobSpec
from gridaware.core import accounting, quantity

HOUR = 3600.0
F64 = npt.NDArray[np.float64]


class LoadState(StrEnum):
    RUNNING = "Running"
    DEFERRED = "Deferred"
    PAUSED = "Paused"


@dataclass(frozen=True)
class JobLoad:
    """One job's power, as the response planner and the forecast see it (grid time)."""

    key: str
    cluster: str
    zone: str
    kw: float  # facility kW (IT power x PUE)
    state: LoadState
    start: float  # running: segment start; deferred: planned start; paused: planned resume
    remaining: float | None  # seconds of work left from now (None: unknown)
    deadline: float | None = None
    pausable: bool = False
    checkpoint: bool = False  # migration.policy Checkpoint: may also move out
    priority: int = 0
    max_pause: float | None = None  # longest single pause in seconds
    pauses_left: int = 0

    def end(self, now: float) -> float | None:
        """When it is expected to finish (None: not known)."""
        if self.remaining is None:
            return None
        if self.state is LoadState.RUNNING:
            return now + self.remaining  # remaining counts from now
        return max(self.start, now) + self.remaining

    def slack(self, now: float) -> float:
        """Seconds the job may still wait and meet its deadline (inf without a deadline)."""
        if self.deadline is None:
            return float("inf")
        left = self.remaining if self.remaining is not None else 0.0
        return self.deadline - now - left


def job_kw(spec: GridAwareJobSpec, pue: float) -> float:
    """Facility kW of a job: its energy model (or 10 W per CPU, 300 W per GPU) times PUE."""
    return it_kw(spec) * pue


def it_kw(spec: GridAwareJobSpec) -> float:
    """IT kW of a job (no PUE): its energy model, or 10 W per CPU and 300 W per GPU."""
    total, replicas = quantity.workload_requests(spec)
    e = spec.energy
    return accounting.power_kw(
        e.watts_per_replica, e.watts_per_cpu, e.watts_per_gpu, total.cpu, total.gpu, replicas
    )


def now_kw(loads: Iterable[JobLoad]) -> float:
    """What running jobs draw now."""
    return float(sum(j.kw for j in loads if j.state is LoadState.RUNNING))


def profile(loads: Iterable[JobLoad], hour0: float, hours: int, now: float) -> F64:
    """Mean kW per hour over ``hours`` hours from ``hour0``: running jobs from now to their
    expected end (to the horizon when unknown), deferred and paused ones from their planned
    start or resume for their remaining work."""
    edges = hour0 + HOUR * np.arange(hours + 1)
    horizon = float(edges[-1])
    spans: list[tuple[float, float, float]] = []
    for j in loads:
        begin = now if j.state is LoadState.RUNNING else max(now, j.start)
        end = j.end(now) if j.state is LoadState.RUNNING else _end_from(j, begin)
        end = horizon if end is None else min(end, horizon)
        if end > begin:
            spans.append((begin, end, j.kw))
    if not spans:
        return np.zeros(hours)
    b, e, kw = (np.asarray(c, dtype=np.float64)[:, None] for c in zip(*spans, strict=True))
    overlap = np.clip(np.minimum(edges[1:], e) - np.maximum(edges[:-1], b), 0, HOUR)
    return np.asarray((kw * overlap).sum(axis=0) / HOUR, dtype=np.float64)


def _end_from(j: JobLoad, begin: float) -> float | None:
    return None if j.remaining is None else begin + j.remaining


@dataclass(frozen=True)
class GroupPower:
    """The power of one cluster or zone: now and planned hourly from ``hour0``."""

    name: str
    now_kw: float
    hour0: float
    planned_kw: F64
    paused: int


def by(loads: list[JobLoad], field: str, now: float, hours: int = 48) -> dict[str, GroupPower]:
    """Power per cluster (``field="cluster"``) or per zone (``field="zone"``)."""
    hour0 = now // HOUR * HOUR
    groups: dict[str, list[JobLoad]] = {}
    for j in loads:
        groups.setdefault(getattr(j, field), []).append(j)
    return {
        name: GroupPower(
            name,
            now_kw(members),
            hour0,
            profile(members, hour0, hours, now),
            sum(1 for j in members if j.state is LoadState.PAUSED),
        )
        for name, members in sorted(groups.items())
    }


def forecast_error(planned: F64, actual: F64) -> tuple[float, float]:
    """Mean absolute error (kW) and the error as a share of the mean actual load (the fleet's
    load forecast, measured in the simulator)."""
    n = min(planned.size, actual.size)
    if n == 0:
        return 0.0, 0.0
    mae = float(np.mean(np.abs(planned[:n] - actual[:n])))
    mean = float(np.mean(actual[:n]))
    return mae, (mae / mean if mean > 0 else 0.0)
