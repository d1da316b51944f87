"""Choosing a start time (and cluster) within a job's window from forecasts.

Every eligible cluster's forecast is turned into the placement score per hour (carbon and
price weighted, times PUE); each candidate start from now to the latest start that still
meets the deadline is costed over the expected run with the planning primitives the
simulator uses, and the cheapest wins. A caller may ask for a least gain over starting now
(``min_gain``) before a job is deferred; by default any forecast gain within the deadline the
user gave is taken: a relative threshold on the absolute score is badly scaled where the
whole daily swing is small (ZA 2023: a 2 % threshold kept 75 % of the oracle's saving against
83 % without it, the swing there being under 3 %).

A deferred job is re-planned with every fresher forecast, and it holds a plan (its
``committed`` cluster and start): a re-plan moves it only when the new best beats the held
plan, costed on the same new forecast, by ``REPLAN_MARGIN``. Without that, every re-plan takes the
minimum of a forecast whose far hours are the least certain, so the job keeps chasing a
trough that recedes as it comes closer (each forecast's far dips are partly noise), and
re-planning did worse than deciding once at arrival (issue 12: 76 % of the oracle's saving
against 79 % for deciding once, DE-LU 2023). The held plan is already a deferral worth
making, so the start-now threshold is not applied to it again.

Starting now is one of the starts a re-plan costs, and it too replaces the held plan only
when it is ``REPLAN_MARGIN`` cheaper: the current hours are forecast at the shortest lead,
but the held start's cost is the far forecast that moves from one issue to the next, so
starting as soon as a fresh forecast puts the held start a little above now starts on that
noise. A long job's choice hangs on its run's far end (a 58-hour run with 6 h of slack
compares its first six hours with hours 58 to 64 ahead), and that rule started such jobs on
whichever forecast first tipped the comparison (issue 12, 2023, every 10th job, jobs after
the forecaster's warm-up, share of the oracle's saving against lowest-window's: US-CAL-CISO
6 h 93.3 against 93.7 %, ZA 84.0 against 84.5 %, GB second half 69.0 against 71.3 %; with
the margin for starting now too 93.7, 84.5 and 71.7 %).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gridaware.api.v1alpha1 import Objective
from gridaware.core import planning

F64 = npt.NDArray[np.float64]

HOUR = 3600.0
STARTUP_SECONDS = 120.0  # default time a started Job needs before it runs (pull, schedule)
# a held plan is dropped only for one that is this much cheaper on the new forecast: the
# built-in forecaster's own error at the leads re-plans act on (MAPE 2.5 % at 1 h, 7.8 % at
# 6 h ahead, bench/forecast.py on all 16 zones), so a smaller gain is mostly forecast noise
REPLAN_MARGIN = 0.05
NO_GAIN = 1e-9  # a relative gain no larger is a tie: the job starts now


def latest_start(
    deadline: float, duration: float, startup_seconds: float = STARTUP_SECONDS
) -> float:
    """The last start (epoch seconds) that still meets ``deadline``: the run and a start-up
    margin (image pull, scheduling, a wake-up that comes a little late) must fit before it, so
    a job woken at its latest start still finishes in time."""
    return deadline - duration - startup_seconds


@dataclass(frozen=True)
class Forecast:
    cluster: str
    pue: float
    hour0: float  # epoch seconds of the first value
    carbon: npt.NDArray[np.float64]  # hourly gCO2e/kWh from hour0
    price_usd: npt.NDArray[np.float64] | None = None


@dataclass(frozen=True)
class Plan:
    cluster: str
    start: float
    expected_carbon: float  # mean over the run
    start_now_cluster: str | None
    start_now_carbon: float | None
    gain: float  # relative score gain over the best start now

    def defers(self, now: float, tolerance: float) -> bool:
        return self.start > now + tolerance


def candidate_starts(first: float, last: float, duration: float, step: float) -> F64:
    """Start times worth costing in [first, last]: the ends of the window, every step
    boundary, and every start whose run ENDS on a boundary. Signals are step functions, so
    the cost of a run is linear between these points and the cheapest start is one of them."""
    aligned = np.arange(np.ceil(first / step) * step, last + duration + step, step)
    cand = np.concatenate([[first, last], aligned, aligned - duration])
    return np.unique(cand[(cand >= first) & (cand <= last)])


def _window_means(
    forecasts: list[Forecast],
    objective: Objective,
    starts: npt.NDArray[np.float64],
    dur_h: float,
) -> list[
    tuple[Forecast, npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]
]:
    """Per forecast: mean score and mean carbon over the run for each start it covers, and
    those starts. Forecasts on one time grid are costed together (one pass for all)."""
    out: list[
        tuple[Forecast, npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]
    ] = []
    if not forecasts:
        return out
    f0 = forecasts[0]
    aligned = all(
        f.hour0 == f0.hour0
        and f.carbon.size == f0.carbon.size
        and (f.price_usd is None) == (f0.price_usd is None)
        for f in forecasts
    )
    groups = [forecasts] if aligned else [[f] for f in forecasts]
    for group in groups:
        g0 = group[0]
        carbon = np.stack([f.carbon for f in group])
        price = (
            None
            if g0.price_usd is None
            else np.stack([f.price_usd for f in group if f.price_usd is not None])
        )
        pue = np.array([[f.pue] for f in group])
        cost = planning.cost_series(
            carbon, price, objective.carbon_weight, objective.price_weight, pue
        )
        x0 = (starts - g0.hour0) / HOUR
        ok = (x0 >= 0) & (x0 + dur_h <= g0.carbon.size + 1e-9)
        if not ok.any():
            continue
        n, rows_n = int(ok.sum()), len(group)
        rows = np.repeat(np.arange(rows_n), n)
        t = np.tile(x0[ok], rows_n)
        c = planning.integrate(planning.prefix(cost), cost, t, t + dur_h, rows=rows)
        g = planning.integrate(planning.prefix(carbon), carbon, t, t + dur_h, rows=rows)
        c, g = c.reshape(rows_n, n) / dur_h, g.reshape(rows_n, n) / dur_h
        out += [(f, c[i], g[i], starts[ok]) for i, f in enumerate(group)]
    return out


def plan(
    forecasts: list[Forecast],
    objective: Objective,
    now: float,
    earliest: float,
    latest_start: float,
    duration: float,
    step: float = 900.0,
    min_gain: float = 0.0,
    committed: tuple[str, float] | None = None,
    replan_margin: float = REPLAN_MARGIN,
) -> Plan | None:
    """The best (cluster, start) with start in [max(now, earliest), latest_start]; None when no
    forecast covers any candidate run. When the carbon ceiling excludes every window, the
    deadline wins: the plan is the latest start, in the cluster cheapest then.

    ``committed``: the (cluster, start) the job is deferred to; it is kept (its start, if
    passed, becomes now) unless the best plan, starting now included, beats it by
    ``replan_margin`` on these forecasts or it breaks the carbon ceiling."""
    first = max(now, earliest)
    last = max(first, latest_start)
    # now, every step boundary (quarter hours) up to the latest start, and the latest start
    starts = candidate_starts(first, last, duration, step)
    held = None if committed is None else min(max(committed[1], first), last)
    if held is not None:
        starts = np.unique(np.append(starts, held))
    dur_h = duration / HOUR
    best: tuple[float, float, str, float] | None = None
    now_best: tuple[float, str, float] | None = None
    at_last: tuple[float, str, float] | None = None
    windows = _window_means(forecasts, objective, starts, dur_h)
    kept = None if committed is None else _held(windows, committed[0], held)
    for f, c, g, s_ok in windows:
        if s_ok[0] == first and (now_best is None or c[0] < now_best[0]):
            now_best = (float(c[0]), f.cluster, float(g[0]))
        if at_last is None or c[-1] < at_last[0]:
            at_last = (float(c[-1]), f.cluster, float(g[-1]))
        ceiling = objective.carbon_ceiling
        allowed = np.ones(c.size, dtype=bool) if ceiling is None else g <= ceiling
        if allowed.any():
            i = int(np.argmin(np.where(allowed, c, np.inf)))
            cand = (float(c[i]), float(s_ok[i]), f.cluster, float(g[i]))
            if best is None or (cand[0], cand[1]) < (best[0], best[1]):
                best = cand
    if best is None:
        if at_last is None:
            return None
        best = (at_last[0], last, at_last[1], at_last[2])
    if kept is not None and _holds(kept, best, objective, replan_margin):
        best = kept
    cost_best, start, cluster, carbon = best
    gain = 0.0
    if now_best is not None and start > first:
        gain = planning.relative_saving(now_best[0], cost_best)  # sign-safe
        if kept is not None:  # held (now did not beat it by the margin): no second threshold
            return Plan(cluster, start, carbon, now_best[1], now_best[2], gain)
        within_ceiling = objective.carbon_ceiling is None or now_best[2] <= objective.carbon_ceiling
        # a small saving is not worth a long wait; a wait shorter than that share of the run
        # (the last seconds before a planned start) is kept, so a plan is not cut short
        long_wait = start - first > min_gain * duration
        nothing = gain <= NO_GAIN  # a tie (to rounding): waiting buys nothing
        if within_ceiling and (nothing or (gain < min_gain and long_wait)):
            return Plan(now_best[1], first, now_best[2], now_best[1], now_best[2], gain)
    return Plan(
        cluster,
        start,
        carbon,
        now_best[1] if now_best else None,
        now_best[2] if now_best else None,
        gain,
    )


def _held(
    windows: list[tuple[Forecast, F64, F64, F64]], cluster: str, start: float | None
) -> tuple[float, float, str, float] | None:
    """The held plan costed on the new forecasts: (cost, start, cluster, carbon), or None
    when its cluster is no longer forecast (or no longer eligible)."""
    for f, c, g, s_ok in windows:
        k = np.flatnonzero(s_ok == start)
        if f.cluster == cluster and k.size:
            return (float(c[k[0]]), float(s_ok[k[0]]), f.cluster, float(g[k[0]]))
    return None


def _holds(
    kept: tuple[float, float, str, float],
    best: tuple[float, float, str, float],
    objective: Objective,
    margin: float,
) -> bool:
    """Whether the held plan (cost, start, cluster, carbon) stays: within the carbon ceiling
    and not beaten by ``margin`` (sign-safe relative saving) by the best plan."""
    if objective.carbon_ceiling is not None and kept[3] > objective.carbon_ceiling:
        return False
    return planning.relative_saving(kept[0], best[0]) < margin
