"""Responding to grid events: which jobs to hold, start early, pause or move, and how well
the fleet did.

Responses are tried cheapest first. Curtail: (1) hold starts that were due in the window in
its zones (deferred work that can still meet its deadline after the window; nothing stops);
(2) pause running checkpointing jobs in place, lowest priority first and most slack first;
(3) move checkpointing jobs out of the targets' zones when pausing them is not allowed (no
pauses left, a longest pause shorter than the rest of the window, a deadline that cannot wait
for the window's end but can wait for one move) or not enough: each to the first cluster of
its ranked list (placement's own order, given by the caller) that still has the room, in
resources and in power, after the moves planned before it. Absorb: pull deferred work forward,
the soonest planned first, without overshooting the room the grid offers. A voluntary event
never makes a job miss its deadline: a job is held, paused or moved only if it can wait for
the rest of the window (plus a move's overhead) and still finish in time. A mandatory event
may spend deadlines, never a job that cannot checkpoint.

Pre-curtailment: a Curtail is known before its window opens (OpenADR and utility events are
announced ahead), and pausing takes time (a checkpoint on SIGTERM, pods stopping, the watch
reporting it), at most as fast as the zone's ramp limit allows. ``plan_ahead`` plans the same
holds and pauses against the load that will still run at the window's start and says when
they must begin: the *lead* is the time the ramp limit needs to admit the pauses one after
another (``core.ramp.spread``) plus the reaction time of the last one (the caller's bound on
it: the pods' termination grace period and the controller's rounds). Begun at ``start -
lead``, the last pause takes effect at the window's start; never earlier than that, since
each minute a job is paused early is a minute of delay. Moves out are not made ahead (their
overhead is paid only when pausing is not enough, once the window is open). The deadline rule
is the same as in the window: a job is held or paused ahead only if it can wait from now to
the window's end.

The status figures are exact running means (``Tally``), so they can be checked by hand:
over the window so far, ``achievedKw`` is the time-weighted mean load, ``compliance`` the
share of time with the target met (load <= target for Curtail, >= target for Absorb, with
1 W of tolerance), ``timeToTargetSeconds`` the time from the window start to the first
moment the target was met. The load is piecewise constant between samples: a sample's value
holds until the next one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from gridaware.api.v1alpha1 import Resources, rfc3339
from gridaware.core import ramp
from gridaware.core.power import JobLoad, LoadState

TOLERANCE_KW = 0.001
Kind = Literal["Curtail", "Absorb"]
ActionKind = Literal["HoldStarts", "PullForward", "Pause", "Migrate"]


@dataclass(frozen=True)
class Planned:
    """One response: what, to which job (none for HoldStarts), expected kW change, and for
    a Migrate the cluster it goes to."""

    type: ActionKind
    job: str | None
    cluster: str | None
    delta_kw: float
    reason: str
    target: str | None = None


@dataclass(frozen=True)
class Move:
    """Where a running job may go if it leaves the event's targets: the clusters outside them
    that its placement rules allow, best first; what it needs there; and the progress a move
    costs it (checkpoint and restart, grid seconds)."""

    needs: Resources
    clusters: tuple[str, ...]
    overhead: float = 300.0


@dataclass(frozen=True)
class Room:
    """What a cluster outside the event can still take now: free resources and power-budget
    headroom in kW (inf without a budget)."""

    free: Resources
    kw: float = math.inf


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


def _movable(req: Request, j: JobLoad, now: float, move: Move | None) -> bool:
    return (
        move is not None
        and j.state is LoadState.RUNNING
        and j.checkpoint
        and _can_wait(j, now, now, move.overhead, req.mandatory)
    )


def _less(a: Resources, b: Resources) -> Resources:
    return Resources(
        cpu=max(0.0, a.cpu - b.cpu),
        memory=max(0.0, a.memory - b.memory),
        gpu=max(0.0, a.gpu - b.gpu),
    )


def _destination(j: JobLoad, move: Move, rooms: dict[str, Room]) -> str | None:
    """The first cluster of the job's list with room for it; that room is then taken."""
    for name in move.clusters:
        room = rooms.get(name)
        if room is None or not room.free.fits(move.needs) or room.kw + TOLERANCE_KW < j.kw:
            continue
        rooms[name] = Room(_less(room.free, move.needs), room.kw - j.kw)
        return name
    return None


def _order(now: float) -> Callable[[JobLoad], tuple[int, float, float, str]]:
    def key(j: JobLoad) -> tuple[int, float, float, str]:
        return (j.priority, -min(j.slack(now), 1e12), -j.kw, j.key)

    return key


def plan_curtail(
    req: Request,
    running: list[JobLoad],
    deferred: list[JobLoad],
    now: float,
    moves: Mapping[str, Move] | None = None,
    rooms: Mapping[str, Room] | None = None,
) -> list[Planned]:
    """Responses (cheapest first) that bring the targets' load to ``req.target_kw``.

    ``running`` are the jobs drawing power in the targets now (not already pausing or
    moving); ``deferred`` the ones planned to start; ``moves`` says, per job key, where a job
    may go outside the targets (absent: it may not move) and ``rooms`` what each of those
    clusters can still take."""
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
    if need <= TOLERANCE_KW or not moves:
        return out
    out += _plan_moves(req, [j for j in running if j.key not in taken], now, need, moves, rooms)
    return out


def _plan_moves(
    req: Request,
    running: list[JobLoad],
    now: float,
    need: float,
    moves: Mapping[str, Move],
    rooms: Mapping[str, Room] | None,
) -> list[Planned]:
    """Moves out of the targets, in pause order, until ``need`` kW are shed."""
    left = dict(rooms or {})
    out: list[Planned] = []
    for j in sorted(
        (j for j in running if _movable(req, j, now, moves.get(j.key))), key=_order(now)
    ):
        if need <= TOLERANCE_KW:
            break
        target = _destination(j, moves[j.key], left)
        if target is None:
            continue
        reason = f"moved out to {target} for {req.name} (pausing cannot shed enough)"
        out.append(Planned("Migrate", j.key, j.cluster, -j.kw, reason, target))
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


PRE = "pre-curtailment"


@dataclass(frozen=True)
class Ahead:
    """The pre-curtailment decision for a Curtail that has not opened yet: the lead (seconds
    before the window start at which to begin), and the holds and pauses to take now (none
    before ``start - lead`` unless pre-curtailment has begun already)."""

    lead: float
    steps: tuple[Planned, ...]

    def begins(self, req: Request) -> float:
        return req.start - self.lead


def runs_at(j: JobLoad, now: float, t: float) -> bool:
    """Whether a job (as known ``now``) is still expected to run at ``t``. One running or
    paused past its expected duration (no work left by the estimate, yet not finished) may
    run on for any time: it counts."""
    overran = j.remaining is not None and j.remaining <= 0
    if overran and j.state in (LoadState.RUNNING, LoadState.PAUSED):
        return True
    end = j.end(now)
    return end is None or end > t


def back_by(t: float, resuming: list[JobLoad], now: float) -> list[JobLoad]:
    """Jobs paused by someone else (a run plan, another event) whose planned resume (their
    ``start``) comes by ``t`` and that still run then: load that returns by itself."""
    return [j for j in resuming if j.start <= t and runs_at(j, now, t)]


def load_at_start(
    req: Request, running: list[JobLoad], now: float, resuming: list[JobLoad] | None = None
) -> float:
    """The load expected at the window start: running jobs known to end before it left out,
    paused ones planned to be back by then counted (the baseline a pre-curtailment fixes its
    target from)."""
    back = back_by(req.start, resuming or [], now)
    return sum(j.kw for j in running if runs_at(j, now, req.start)) + sum(j.kw for j in back)


def lead_time(deltas: list[float], ramp_kw_per_minute: float | None, reaction: float) -> float:
    """Seconds before the window start at which pauses of ``deltas`` kW in one zone must
    begin for the last to have taken effect at the start: the ramp's spread of the changes
    plus the reaction time of one pause (0: nothing to pause, nothing to begin early)."""
    if not deltas:
        return 0.0
    return ramp.spread(deltas, ramp_kw_per_minute, 0.0)[-1] + reaction


def zone_lead(
    steps: list[Planned],
    zones: Mapping[str, str],
    limits: Mapping[str, float],
    reaction: float,
) -> float:
    """The lead of planned pauses over several zones: each zone's ramp admits its own pauses
    (``zones``: job key -> zone; ``limits``: zone -> kW per minute, absent: no limit), so
    the slowest zone sets it."""
    by_zone: dict[str, list[float]] = {}
    for s in steps:
        if s.type == "Pause" and s.job is not None:
            by_zone.setdefault(zones.get(s.job, ""), []).append(s.delta_kw)
    return max(
        (lead_time(d, limits.get(z), reaction) for z, d in by_zone.items()),
        default=0.0,
    )


def plan_ahead(
    req: Request,
    running: list[JobLoad],
    deferred: list[JobLoad],
    now: float,
    reaction: float,
    limits: Mapping[str, float] | None = None,
    begun: bool = False,
    resuming: list[JobLoad] | None = None,
) -> Ahead:
    """Pre-curtailment of a Curtail whose window opens at ``req.start`` (> ``now``): a hold
    of starts (new ones too) and the pauses (``plan_curtail``'s, cheapest first, no moves)
    that bring the load at
    the start to ``req.target_kw``, and the lead they need (``reaction``: seconds from a
    pause decision to its load being gone; ``limits``: ramp limits by zone); the steps are
    given only from ``start - lead`` on, or at once when pre-curtailment has ``begun``.
    ``resuming`` are jobs paused by others with a planned resume: those back by the start,
    or within a reaction of now, count in the load (never paused here)."""
    at_start = [j for j in running if runs_at(j, now, req.start)]
    at_start += back_by(max(req.start, now + reaction), resuming or [], now)
    overlapping = [j for j in deferred if runs_at(j, now, req.start)]
    steps = plan_curtail(req, at_start, overlapping, now)
    if not any(s.type == "HoldStarts" for s in steps):  # new starts would add to the load
        steps.insert(0, Planned("HoldStarts", None, None, 0.0, "new starts wait for the end"))
    steps = [_ahead(s, req) for s in steps]
    lead = zone_lead(steps, {j.key: j.zone for j in at_start}, limits or {}, reaction)
    if not begun and now < req.start - lead:
        return Ahead(lead, ())
    return Ahead(lead, tuple(steps))


def _ahead(s: Planned, req: Request) -> Planned:
    opens = rfc3339(req.start)
    if s.type == "Pause":
        why = f"{PRE}: paused ahead of {req.name} (opens at {opens}) until it ends"
    else:
        why = f"{PRE}: {s.reason} (from before {req.name} opens at {opens})"
    return replace(s, reason=why)


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
