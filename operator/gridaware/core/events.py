"""Responding to grid events: which jobs to hold, start early, pause or move, and how well
the fleet did.

Responses are tried cheapest first. Curtail: (1) hold starts that were due in the window in
its zones (deferred work that can still meet its deadline after the window; nothing stops);
(2) pause running checkpointing jobs in place, lowest priority first and most slack first;
(3) move checkpointing jobs out of the targets' zones. Absorb: pull deferred work forward,
the soonest planned first, without overshooting the room the grid offers. A voluntary event
never makes a job miss its deadline: a job is held, paused or moved only if it can wait for
the rest of the window (plus a move's overhead) and still finish in time. A mandatory event
may spend deadlines, never a job that cannot checkpoint.

The status figures are exact running means (``Tally``), so they can be checked by hand:
over the window so far, ``achievedKw`` is the time-weighted mean load, ``compliance`` the
share of time with the target met (load <= target for Curtail, >= target for Absorb, with
1 W of tolerance), ``timeToTargetSeconds`` the time from the window start to the first
moment the target was met. The load is piecewise constant between samples: a sample's value
holds until the next one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from gridaware.core.power import JobLoad, LoadState

TOLERANCE_KW = 0.001
Kind = Literal["Curtail", "Absorb"]
ActionKind = Literal["HoldStarts", "PullForward", "Pause", "Migrate"]


@dataclass(frozen=True)
class Planned:
    """One response: what, to which job (none for HoldStarts), expected kW change."""

    type: ActionKind
    job: str | None
    cluster: str | None
    delta_kw: float
    reason: str


@dataclass(frozen=True)
class Request:
    """An active event as the planner sees it (grid time)."""

    name: str
    kind: Kind
    target_kw: float
    start: float
    end: float
    mandatory: bool = False


def _can_wait(job: JobLoad, now: float, until: float, overhead: float, mandatory: bool) -> bool:
    return mandatory or job.slack(now) >= max(0.0, until - now) + overhead


def held_starts(req: Request, deferred: list[JobLoad], now: float) -> list[JobLoad]:
    """Deferred jobs planned to start before the window ends that can wait for its end."""
    return [
        j
        for j in deferred
        if j.state is LoadState.DEFERRED
        and j.start < req.end
        and _can_wait(j, now, req.end, 0.0, req.mandatory)
    ]


def _pausable(req: Request, j: JobLoad, now: float) -> bool:
    if j.state is not LoadState.RUNNING or not j.pausable or j.pauses_left <= 0:
        return False
    long_enough = j.max_pause is None or j.max_pause >= req.end - now
    return long_enough and _can_wait(j, now, req.end, 0.0, req.mandatory)


def _movable(req: Request, j: JobLoad, now: float, overhead: float) -> bool:
    return (
        j.state is LoadState.RUNNING
        and j.checkpoint
        and _can_wait(j, now, now, overhead, req.mandatory)
    )


def _order(now: float) -> Callable[[JobLoad], tuple[int, float, float, str]]:
    def key(j: JobLoad) -> tuple[int, float, float, str]:
        return (j.priority, -min(j.slack(now), 1e12), -j.kw, j.key)

    return key


def plan_curtail(
    req: Request,
    running: list[JobLoad],
    deferred: list[JobLoad],
    now: float,
    can_move: dict[str, float] | None = None,
    move_overhead: float = 300.0,
) -> list[Planned]:
    """Responses (cheapest first) that bring the targets' load to ``req.target_kw``.

    ``running`` are the jobs drawing power in the targets now (not already pausing or
    moving); ``deferred`` the ones planned to start; ``can_move`` maps job keys to the kW
    that other zones can take for a move (absent: no move possible)."""
    out: list[Planned] = []
    held = held_starts(req, deferred, now)
    if held:
        kw = sum(j.kw for j in held)
        out.append(
            Planned("HoldStarts", None, None, -kw, f"{len(held)} planned starts wait for the end")
        )
    need = sum(j.kw for j in running) - req.target_kw
    key = _order(now)
    candidates = sorted((j for j in running if _pausable(req, j, now)), key=key)
    taken: set[str] = set()
    for j in candidates:
        if need <= TOLERANCE_KW:
            break
        out.append(Planned("Pause", j.key, j.cluster, -j.kw, f"paused until {req.name} ends"))
        taken.add(j.key)
        need -= j.kw
    movable = sorted(
        (j for j in running if j.key not in taken and _movable(req, j, now, move_overhead)),
        key=key,
    )
    for j in movable:
        if need <= TOLERANCE_KW:
            break
        if can_move is None or can_move.get(j.key, 0.0) < j.kw:
            continue
        out.append(Planned("Migrate", j.key, j.cluster, -j.kw, f"moved out for {req.name}"))
        need -= j.kw
    return out


def plan_absorb(
    req: Request, current_kw: float, deferred: list[JobLoad], now: float
) -> list[Planned]:
    """Deferred work to start now (soonest planned first) that fits in the room the grid
    offers without going over the target."""
    room = req.target_kw - current_kw
    out: list[Planned] = []
    for j in sorted(deferred, key=lambda j: (j.start, j.key)):
        if j.state is not LoadState.DEFERRED or j.start <= now:
            continue
        if j.kw > room + TOLERANCE_KW:
            continue
        out.append(Planned("PullForward", j.key, j.cluster, j.kw, f"started early for {req.name}"))
        room -= j.kw
    return out


def met(kind: Kind, kw: float, target: float) -> bool:
    """Whether a load meets the target."""
    if kind == "Curtail":
        return kw <= target + TOLERANCE_KW
    return kw >= target - TOLERANCE_KW


@dataclass(frozen=True)
class Tally:
    """Running figures of the window so far (exact means, carried across restarts)."""

    since: float  # window start
    until: float  # sampled up to here
    achieved_kw: float  # mean load over [since, until)
    compliance: float  # share of [since, until) with the target met
    last_kw: float  # load of the last sample (holds until the next)
    time_to_target: float | None

    @staticmethod
    def start(window_start: float, kw: float, kind: Kind, target: float) -> Tally:
        ttt = 0.0 if met(kind, kw, target) else None
        return Tally(window_start, window_start, kw, 1.0 if ttt == 0.0 else 0.0, kw, ttt)

    def add(self, t: float, kw: float, kind: Kind, target: float) -> Tally:
        """The load was ``last_kw`` from ``until`` to ``t`` and is ``kw`` from ``t`` on."""
        if t <= self.until:
            return replace(self, last_kw=kw, time_to_target=self._ttt(t, kw, kind, target))
        span, elapsed = t - self.until, t - self.since
        old = self.until - self.since
        achieved = (self.achieved_kw * old + self.last_kw * span) / elapsed
        ok = 1.0 if met(kind, self.last_kw, target) else 0.0
        compliance = (self.compliance * old + ok * span) / elapsed
        return Tally(self.since, t, achieved, compliance, kw, self._ttt(t, kw, kind, target))

    def _ttt(self, t: float, kw: float, kind: Kind, target: float) -> float | None:
        if self.time_to_target is not None or not met(kind, kw, target):
            return self.time_to_target
        return max(0.0, t - self.since)


def resumable(paused: list[JobLoad], room_kw: float) -> list[JobLoad]:
    """Paused jobs to resume under ``room_kw`` (budget headroom), least slack first so the
    tightest deadline goes first."""
    out: list[JobLoad] = []
    for j in sorted(paused, key=lambda j: (j.deadline or float("inf"), -j.priority, j.key)):
        if j.kw <= room_kw + TOLERANCE_KW:
            out.append(j)
            room_kw -= j.kw
    return out


def must_resume(j: JobLoad, now: float, slack_margin: float) -> bool:
    """A paused job whose deadline cannot wait any longer (voluntary pauses end here)."""
    return j.slack(now) <= slack_margin
