"""Whether a running job should move to another cluster, from forecasts of the remaining run.

Moving costs the lost progress plus restart (``overhead``, during which the work is redone in
the target), so the target's cost is taken over ``remaining + overhead``. The job moves only
when staying costs more than moving by a relative margin, after a minimum dwell time and
within a budget of moves: hysteresis that keeps oscillating signals from causing flapping.
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


def consider(
    current: str,
    forecasts: list[Forecast],
    objective: Objective,
    policy: MigrationPolicy,
    now: float,
    remaining: float,
    since_start: float,
    moves_done: int,
) -> Move | None:
    """The cluster to move to now, or None (stay)."""
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
    best: Move | None = None
    for f in forecasts:
        if f.cluster == current:
            continue
        move = _cost(f, objective, now, now + remaining + policy.overhead_seconds)
        if move is None or not planning.should_migrate(stay, move, 0.0, policy.margin):
            continue
        if best is None or move < best.move:
            gain = 100 * (1 - move / stay)
            best = Move(
                f.cluster,
                stay,
                move,
                f"{f.cluster} is forecast {gain:.0f}% better over the remaining "
                f"{remaining / HOUR:.1f} h, including the restart overhead",
            )
    return best
