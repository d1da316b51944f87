"""Whether a running job should move to another cluster, from forecasts of the remaining run.

What the target must run depends on the policy: a ``Checkpoint`` job resumes, so the target
runs the remaining time plus the overhead (lost progress since the last checkpoint and
restart); a ``Restart`` job starts over, so the target runs the WHOLE job again plus the
overhead. A move whose run in the target would end after the deadline is never proposed.
The job moves only when staying costs more than moving by a relative margin (sign-safe, see
``planning.should_migrate``), after a minimum dwell time and within a budget of moves:
hysteresis that keeps oscillating signals from causing flapping.
"""

from __future__ import annotations

from dataclasses import dataclass

from gridaware.api.v1alpha1 import MigrationPolicy, Objective
from gridaware.core import planning
from gridaware.core.shifting import HOUR, Forecast


@dataclass(frozen=True)
class Move:
    target: str
    stay: float
    move: float
    reason: str


def _cost(f: Forecast, objective: Objective, start: float, end: float) -> float | None:
    cost = planning.cost_series(
        f.carbon, f.price_usd, objective.carbon_weight, objective.price_weight, f.pue
    )
    x0, x1 = (start - f.hour0) / HOUR, (end - f.hour0) / HOUR
    if x0 < 0 or x1 > cost.size + 1e-9:
        return None
    return float(planning.integrate(planning.prefix(cost), cost, x0, x1))


def redo_seconds(
    policy: MigrationPolicy, remaining: float, duration: float | None, since_start: float
) -> float:
    """Run time the target needs after a move: the remaining time for a checkpointing job,
    the whole run (``duration``, else what ran so far plus what remains) for a restarting
    one; the overhead comes on top."""
    if policy.policy == "Restart":
        whole = duration if duration is not None else since_start + remaining
        return max(whole, remaining) + policy.overhead_seconds
    return remaining + policy.overhead_seconds


def consider(
    current: str,
    forecasts: list[Forecast],
    objective: Objective,
    policy: MigrationPolicy,
    now: float,
    remaining: float,
    since_start: float,
    moves_done: int,
    duration: float | None = None,
    deadline: float | None = None,
) -> Move | None:
    """The cluster to move to now, or None (stay).

    ``duration`` is the whole expected run (costed again by a ``Restart`` move) and
    ``deadline`` the time the job must have finished by (epoch seconds; None: no deadline).
    """
    if policy.policy == "Never" or moves_done >= policy.max_migrations:
        return None
    if since_start < policy.min_dwell_seconds or remaining <= policy.overhead_seconds:
        return None
    here = next((f for f in forecasts if f.cluster == current), None)
    if here is None:
        return None
    stay = _cost(here, objective, now, now + remaining)
    if stay is None:
        return None
    redo = redo_seconds(policy, remaining, duration, since_start)
    # a move may not end the run after the deadline, nor later than staying would when the
    # job is already late (it started after its latest start)
    if deadline is not None and now + redo > max(deadline, now + remaining):
        return None
    best: Move | None = None
    for f in forecasts:
        if f.cluster == current:
            continue
        move = _cost(f, objective, now, now + redo)
        if move is None or not planning.should_migrate(stay, move, 0.0, policy.margin):
            continue
        if best is None or move < best.move:
            gain = 100 * planning.relative_saving(stay, move)
            what = "the whole run again" if policy.policy == "Restart" else "the remaining run"
            best = Move(
                f.cluster,
                stay,
                move,
                f"{f.cluster} is forecast {gain:.0f}% better for {what} "
                f"({redo / HOUR:.1f} h including the restart overhead) than staying for the "
                f"remaining {remaining / HOUR:.1f} h",
            )
    return best
