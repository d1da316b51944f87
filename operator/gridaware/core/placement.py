"""Choosing a member cluster for a job from a snapshot of every cluster.

Hard constraints first (allowed names and labels, excluded zones, health, capacity, carbon
ceiling), then a weighted score of the effective carbon intensity and price (both multiplied
by the data centre's PUE, so a greener grid behind a wasteful data centre is not preferred),
normalised by fixed references so that scores are comparable across decisions. Every
candidate is returned with its score or the reason it was excluded, which is what users see in
``status.placements``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from gridaware.api.v1alpha1 import CandidateScore, Objective, Placement, Resources

CARBON_REF = 400.0  # gCO2e/kWh: about the world average grid
PRICE_REF = 100.0  # USD/MWh


class Wait(StrEnum):
    """Why no cluster was chosen; the condition reason users see."""

    NO_ELIGIBLE = "NoEligibleCluster"  # constraints exclude every cluster: fix the spec
    CAPACITY = "InsufficientCapacity"  # would fit once capacity frees up
    CEILING = "AboveCarbonCeiling"  # every fitting cluster is above the ceiling right now
    UNREACHABLE = "ClusterUnreachable"  # the fitting clusters are unreachable
    NO_SIGNAL = "SignalsUnavailable"  # no carbon/price value for the fitting clusters


@dataclass(frozen=True)
class ClusterSnapshot:
    name: str
    region: str
    zone: str
    labels: dict[str, str] = field(default_factory=dict)
    reachable: bool = True
    allocatable: Resources = field(default_factory=Resources)
    free: Resources = field(default_factory=Resources)
    carbon: float | None = None
    price_usd: float | None = None
    pue: float = 1.0
    stale: bool = False
    carbon_kind: str | None = None  # "average" or "marginal": never compared with each other
    blocked: str | None = None  # why this job cannot go there at all (e.g. a name conflict)
    note: str = ""  # how its carbon and price were valued (e.g. contracted supply), for users


@dataclass(frozen=True)
class JobRequest:
    requests: Resources
    placement: Placement
    objective: Objective


@dataclass(frozen=True)
class Decision:
    cluster: ClusterSnapshot | None
    reason: str
    candidates: list[CandidateScore]
    wait: Wait | None = None


def score(
    objective: Objective, carbon: float | None, price_usd: float | None, pue: float
) -> float | None:
    """Weighted, PUE-adjusted, normalised cost of running here; lower is better."""
    wc, wp = objective.carbon_weight, objective.price_weight
    if (wc > 0 and carbon is None) or (wp > 0 and price_usd is None) or wc + wp <= 0:
        return None
    total = 0.0
    if wc > 0 and carbon is not None:
        total += wc * carbon * pue / CARBON_REF
    if wp > 0 and price_usd is not None:
        total += wp * price_usd * pue / PRICE_REF
    return total / (wc + wp)


def _exclusion(job: JobRequest, c: ClusterSnapshot) -> tuple[str, Wait] | None:
    p = job.placement
    if p.clusters and c.name not in p.clusters:
        return "not in placement.clusters", Wait.NO_ELIGIBLE
    if p.cluster_selector is not None and not p.cluster_selector.matches(c.labels):
        return "labels do not match placement.clusterSelector", Wait.NO_ELIGIBLE
    if c.zone in p.excluded_zones:
        return f"zone {c.zone} is in placement.excludedZones", Wait.NO_ELIGIBLE
    if c.blocked is not None:
        return c.blocked, Wait.NO_ELIGIBLE
    if not c.reachable and c.allocatable == Resources():
        return "cluster not probed yet (capacity unknown)", Wait.UNREACHABLE
    if not c.allocatable.fits(job.requests):
        return "the job needs more than the cluster has in total", Wait.NO_ELIGIBLE
    if not c.reachable:
        return "cluster unreachable", Wait.UNREACHABLE
    if not c.free.fits(job.requests):
        return "not enough free capacity now", Wait.CAPACITY
    if score(job.objective, c.carbon, c.price_usd, c.pue) is None:
        return "no carbon or price signal", Wait.NO_SIGNAL
    ceiling = job.objective.carbon_ceiling
    if ceiling is not None and c.carbon is None:
        return "no carbon signal to check the carbon ceiling against", Wait.NO_SIGNAL
    if ceiling is not None and c.carbon is not None and c.carbon > ceiling:
        return f"{c.carbon:.0f} gCO2e/kWh is above the ceiling of {ceiling:.0f}", Wait.CEILING
    return None


def could_run_later(job: JobRequest, c: ClusterSnapshot) -> bool:
    """Whether the cluster is allowed and big enough, so that it may take the job at a later
    time (capacity, signals and the ceiling may change; names, zones and sizes do not)."""
    excluded = _exclusion(job, c)
    return excluded is None or excluded[1] not in (Wait.NO_ELIGIBLE, Wait.UNREACHABLE)


_WAIT_ORDER = [Wait.CEILING, Wait.CAPACITY, Wait.NO_SIGNAL, Wait.UNREACHABLE, Wait.NO_ELIGIBLE]


def _comparable_kind(clusters: list[ClusterSnapshot]) -> str | None:
    """The carbon kind decisions compare: average when any cluster has it (marginal and
    average intensities measure different things and are never ranked against each other)."""
    kinds = {c.carbon_kind for c in clusters if c.carbon is not None and c.carbon_kind}
    if len(kinds) <= 1:
        return None
    return "average"


# Signals and the ceiling are what a deadline overrides: at the latest start the job runs in
# any cluster that is allowed, reachable and has room, even without a signal.
_DEADLINE_OVERRIDES = (Wait.NO_SIGNAL, Wait.CEILING)


def decide(job: JobRequest, clusters: list[ClusterSnapshot], must_start: bool = False) -> Decision:
    """The best eligible cluster, or None with the most actionable reason to wait. With
    ``must_start`` (the deadline leaves no more slack) missing signals and the carbon ceiling
    no longer hold the job back."""
    candidates: list[CandidateScore] = []
    eligible: list[tuple[float, str, ClusterSnapshot]] = []
    waits: list[Wait] = []
    kind = _comparable_kind(clusters)
    for c in sorted(clusters, key=lambda c: c.name):
        if kind is not None and c.carbon_kind not in (None, kind):
            c = replace(c, carbon=None)  # noqa: PLW2901 - a marginal value is not comparable
        s = score(job.objective, c.carbon, c.price_usd, c.pue)
        excluded = _exclusion(job, c)
        if must_start and excluded is not None and excluded[1] in _DEADLINE_OVERRIDES:
            excluded = None
            s = float("inf") if s is None else s
        candidates.append(
            CandidateScore(
                cluster=c.name,
                zone=c.zone,
                eligible=excluded is None,
                reason=_note(c, excluded[0] if excluded else ""),
                carbon=None if c.carbon is None else round(c.carbon, 1),
                price=None if c.price_usd is None else round(c.price_usd, 2),
                score=None if s is None or s == float("inf") else round(s, 4),
            )
        )
        if excluded is None and s is not None:
            eligible.append((s, c.name, c))
        elif excluded is not None:
            waits.append(excluded[1])
    if not eligible:
        if not clusters:
            return Decision(None, "no GridCluster is registered", candidates, Wait.NO_ELIGIBLE)
        wait = next((w for w in _WAIT_ORDER if w in waits), Wait.NO_ELIGIBLE)
        detail = "; ".join(f"{c.cluster}: {c.reason}" for c in candidates)
        return Decision(None, f"no cluster can take the job now ({detail})", candidates, wait)
    eligible.sort(key=lambda e: (e[0], e[1]))
    return Decision(eligible[0][2], _reason(job, eligible), candidates)


def _note(c: ClusterSnapshot, excluded: str) -> str:
    """A candidate's note in ``status.placements``: why it was excluded, stale signals, and
    how its score was valued."""
    stale = "signals are stale" if c.stale and not excluded else ""
    return "; ".join(part for part in (excluded, stale, c.note) if part)


def _reason(job: JobRequest, eligible: list[tuple[float, str, ClusterSnapshot]]) -> str:
    best_score, _, best = eligible[0]
    what = []
    if best.carbon is not None:
        what.append(f"{best.carbon:.0f} gCO2e/kWh")
    if best.price_usd is not None and job.objective.price_weight > 0:
        what.append(f"{best.price_usd:.0f} USD/MWh")
    if best_score == float("inf"):
        reason = "the deadline leaves no more slack: started without a usable signal"
    else:
        reason = f"lowest score {best_score:.3f} ({', '.join(what)}, PUE {best.pue:g})"
    if len(eligible) > 1:
        return reason + f"; next {eligible[1][1]} at {eligible[1][0]:.3f}"
    return reason + "; the only eligible cluster"
