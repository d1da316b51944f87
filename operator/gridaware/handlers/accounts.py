"""Writing a finished job's carbon and cost account: gather the run segment, the signal
history of its zone and of the home cluster's, compute with ``core.accounting``, write the
status once and count it in the metrics."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import numpy as np

from gridaware.api.signals import Signal
from gridaware.api.v1alpha1 import GridAwareJobSpec, GridAwareJobStatus, MemberJobState
from gridaware.core import accounting, money, quantity
from gridaware.handlers import metrics
from gridaware.handlers.registry import REGISTRY, Member
from gridaware.handlers.runtime import RUNTIME
from gridaware.k8s import hub
from gridaware.signals.errors import SignalError

log = logging.getLogger("gridaware.accounts")
HOUR = 3600


def _wall(stamp: str | None) -> float | None:
    if not stamp:
        return None
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _series(
    zone: str, signal: Signal, start: float, end: float
) -> tuple[accounting.Series | None, str]:
    feeds = RUNTIME.feeds
    if feeds is None:
        return None, "none"
    hour0 = start // HOUR * HOUR
    hours = max(1, int(np.ceil((end - hour0) / HOUR)))
    try:
        series = feeds.history(
            zone,
            signal,
            hours=max(
                RUNTIME.feeds_config.history_hours, int((RUNTIME.grid_now() - hour0) // HOUR) + 2
            ),
        )
    except SignalError as exc:
        log.info("no %s history for %s: %s", signal.value, zone, exc)
        return None, "none"
    values = series.hourly(int(hour0), hours)
    if signal is Signal.PRICE:
        try:
            values = values * money.to_usd_per_mwh(1.0, series.unit)
        except KeyError:
            return None, series.source
    if not np.isfinite(values).any():
        return None, series.source
    ok = np.isfinite(values)
    values = np.where(ok, values, np.interp(np.arange(hours), np.flatnonzero(ok), values[ok]))
    return accounting.Series(hour0, values), series.source


def _earlier_segments(status: GridAwareJobStatus) -> list[tuple[Member, float, float]]:
    """Segments left behind by migrations, as (member, grid start, grid end)."""
    out = []
    for r in status.run_segments:
        m = REGISTRY.members.get(r.cluster)
        b, e = _wall(r.start), _wall(r.end)
        if m is not None and b is not None and e is not None:
            out.append((m, RUNTIME.clock.grid(b), RUNTIME.clock.grid(e)))
    return out


def _home(status: GridAwareJobStatus, spec: GridAwareJobSpec, fallback: str) -> str:
    if spec.placement.home_cluster:
        return spec.placement.home_cluster
    for record in status.placements:
        eligible = sorted(c.cluster for c in record.candidates if c.eligible)
        if eligible:
            return eligible[0]
    return fallback


def record(owner: str, state: MemberJobState, member: Member) -> None:
    """Compute and store the account of a finished job, once."""
    status = REGISTRY.status(owner)
    start_wall, end_wall = _wall(state.start_time), _wall(state.completion_time)
    if status is None or status.account is not None or start_wall is None or end_wall is None:
        return
    body: dict[str, Any] | None = hub.get_job(REGISTRY.hub_client, *owner.split("/", 1))
    if body is None:
        return
    spec = GridAwareJobSpec.model_validate(body.get("spec") or {})
    total, replicas = quantity.job_requests(spec.template)
    kw = accounting.power_kw(
        spec.energy.watts_per_replica,
        spec.energy.watts_per_cpu,
        spec.energy.watts_per_gpu,
        total.cpu,
        total.gpu,
        replicas,
    )
    clock = RUNTIME.clock
    start, end = clock.grid(start_wall), clock.grid(end_wall)
    zone = member.spec.grid_zone
    carbon, source = _series(zone, Signal.CARBON, start, end)
    if carbon is None:
        log.warning("no carbon history for %s: %s stays without an account", zone, owner)
        return
    price, _ = _series(member.spec.price_zone or zone, Signal.PRICE, start, end)
    home_name = _home(status, spec, member.name)
    home = REGISTRY.members.get(home_name) or member
    created = clock.grid(_wall(body["metadata"].get("creationTimestamp")) or start_wall)
    sched = spec.schedule
    earliest = created
    if sched is not None and sched.earliest_start:
        earliest = max(created, _wall(sched.earliest_start) or created)
    earlier = _earlier_segments(status)
    cf_end = earliest + (end - start) + sum(e - b for _m, b, e in earlier)
    cf_carbon, _ = _series(home.spec.grid_zone, Signal.CARBON, earliest, cf_end)
    segment = accounting.RunSegment(
        member.name,
        zone,
        start,
        end,
        member.spec.pue,
        carbon,
        price,
        tuple(member.spec.green_contracts),
    )
    counterfactual = accounting.RunSegment(
        home.name, home.spec.grid_zone, earliest, cf_end, home.spec.pue, cf_carbon or carbon, None
    )
    previous = []
    for m, b, e in earlier:
        series, _ = _series(m.spec.grid_zone, Signal.CARBON, b, e)
        prices, _ = _series(m.spec.price_zone or m.spec.grid_zone, Signal.PRICE, b, e)
        previous.append(
            accounting.RunSegment(
                m.name,
                m.spec.grid_zone,
                b,
                e,
                m.spec.pue,
                series or carbon,
                prices,
                tuple(m.spec.green_contracts),
            )
        )
    acct = accounting.account([*previous, segment], kw, home.name, counterfactual, source)
    if REGISTRY.update_status(owner, lambda s: s.model_copy(update={"account": acct})):
        metrics.CARBON.labels("location", member.name).inc(acct.carbon_location_g)
        metrics.CARBON.labels("market", member.name).inc(acct.carbon_market_g)
        metrics.CARBON_SAVED.labels("location").inc(max(0.0, acct.saved_location_g))
        if acct.cost_usd is not None:
            metrics.COST.labels("USD", member.name).inc(max(0.0, acct.cost_usd))
