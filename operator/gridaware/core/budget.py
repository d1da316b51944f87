"""Power budgets: the kW a cluster's gridaware-managed work may draw at a given time.

A site may only be allowed so much power (a connection agreement, a capacity market
commitment, hourly caps like Google's per-cluster capacity curves). A ``PowerBudget`` has a
standing cap, caps by hour of day (local time of the site) and caps for scheduled stretches;
when several apply the lowest wins, so adding a rule never raises the cap. Placement asks
``admits`` before starting work; the budget enforcer pauses work when ``excess`` is positive,
like a standing Curtail.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from gridaware.api.v1alpha1 import HourlyCap, PowerBudget, parse_time

EPS = 1e-9


def _hour_matches(rule: HourlyCap, hour: int) -> bool:
    if rule.start_hour < rule.end_hour:
        return rule.start_hour <= hour < rule.end_hour
    return hour >= rule.start_hour or hour < rule.end_hour  # wraps past midnight


def local_hour(epoch: float, zone: str) -> int:
    """Hour of day (0-23) at ``epoch`` in the IANA zone ``zone``."""
    return dt.datetime.fromtimestamp(epoch, tz=zoneinfo.ZoneInfo(zone)).hour


def cap_at(budget: PowerBudget | None, epoch: float) -> float | None:
    """The cap (kW) at ``epoch`` (grid time), None when nothing caps the cluster then."""
    if budget is None:
        return None
    caps: list[float] = []
    if budget.cap_kw is not None:
        caps.append(budget.cap_kw)
    if budget.hourly:
        hour = local_hour(epoch, budget.time_zone)
        caps += [r.cap_kw for r in budget.hourly if _hour_matches(r, hour)]
    caps += [p.cap_kw for p in budget.schedule if parse_time(p.start) <= epoch < parse_time(p.end)]
    return min(caps) if caps else None


def admits(budget: PowerBudget | None, drawn_kw: float, add_kw: float, epoch: float) -> bool:
    """Whether work drawing ``add_kw`` more may start now without exceeding the cap."""
    cap = cap_at(budget, epoch)
    return cap is None or drawn_kw + add_kw <= cap + EPS


def excess(budget: PowerBudget | None, drawn_kw: float, epoch: float) -> float:
    """How many kW must go for the cluster to be within its budget (0 when within)."""
    cap = cap_at(budget, epoch)
    return 0.0 if cap is None else max(0.0, drawn_kw - cap)


def headroom(budget: PowerBudget | None, drawn_kw: float, epoch: float) -> float:
    """How many kW more may be drawn now (inf without a cap)."""
    cap = cap_at(budget, epoch)
    return float("inf") if cap is None else max(0.0, cap - drawn_kw)


def next_change(budget: PowerBudget | None, epoch: float, horizon: float = 86400.0) -> float | None:
    """The next time (within ``horizon`` seconds) the cap changes, to the minute; None if it
    does not (when a paused job may be resumed under a rising cap)."""
    now = cap_at(budget, epoch)
    t = (epoch // 60 + 1) * 60
    while t <= epoch + horizon:
        if cap_at(budget, t) != now:
            return t
        t += 60
    return None
