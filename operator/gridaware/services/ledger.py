"""The per-cluster hourly energy ledger: which gridaware jobs drew how much power in a cluster
in each stretch of time, what the cluster's green contracts delivered then, and the grid's
carbon-free share, so that concurrent jobs share one hour's contracted energy by their energy.

Where the ledger lives. It is recomputed from the hub's job statuses rather than kept in a
store of its own: every run of a job is already recorded there (a finished job's
``status.account.segments`` in grid time with their energy; a live job's ``runSegments`` and
its current segment, at the power of its spec's energy model). A restarted operator seeds
every GridAwareJob (finished ones too) before it books anything, so it computes the same
shares, and no second writer can disagree with the statuses. The one gap: a job deleted from
the hub while an overlapping job still runs drops out of the later job's sharing (the later
job then gets a larger share); its own account was final before it could be deleted.

Issue 10 item 10 (energy during the checkpoint grace period): a run segment that a migration
ended is recorded at the decision time, while the source's pods may run for up to the grace
period. Until that segment is recorded when the pods are gone, its end is taken as the
decision plus ``min(gracePeriodSeconds, takeover)`` (an upper bound: no pod outlives the grace
period, and the target runs after the source has stopped).
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from prometheus_client import Counter, Gauge

from gridaware.api.regions import REGIONS
from gridaware.api.signals import Signal
from gridaware.api.v1alpha1 import (
    Account,
    GreenContract,
    GridAwareJobSpec,
    GridAwareJobStatus,
    RunRecord,
    Segment,
    parse_time,
)
from gridaware.core import accounting, cfe, quantity
from gridaware.core.lifecycle import TERMINAL
from gridaware.services.cache import Cache, Member
from gridaware.services.metrics import Metrics
from gridaware.services.ports import Clock, SignalsPort
from gridaware.services.statuses import JobRecord, Statuses
from gridaware.signals.errors import SignalError

log = logging.getLogger("gridaware.ledger")
HOUR = 3600.0


class AccountArchive(Protocol):
    """Where a copy of each account is kept for reports after the job is gone
    (``gridaware.k8s.archive.ConfigMapArchive`` on the hub)."""

    def keep(self, month: str, key: str, record: dict[str, Any]) -> None: ...


class LedgerMetrics:
    """The accounting figures as metrics, registered in the operator's own registry."""

    def __init__(self, metrics: Metrics) -> None:
        reg = metrics.registry
        self.energy = Counter(
            "gridaware_energy_kwh_total",
            "Energy of finished job accounts (kWh, PUE included)",
            ["cluster"],
            registry=reg,
        )
        self.cfe = Counter(
            "gridaware_cfe_kwh_total",
            "Hourly-matched carbon-free energy of finished job accounts (kWh): source contract "
            "(green contracts) or grid (the grid mix's carbon-free share)",
            ["cluster", "source"],
            registry=reg,
        )
        self.contract_delivered = Gauge(
            "gridaware_contract_delivered_kwh",
            "What the cluster's green contracts delivered in the last full hour (kWh)",
            ["cluster"],
            registry=reg,
        )
        self.contract_unused = Gauge(
            "gridaware_contract_unused_kwh",
            "Contracted energy no gridaware job used in the last full hour (kWh)",
            ["cluster"],
            registry=reg,
        )
        self.cost_saved = Counter(
            "gridaware_cost_saved_usd_total",
            "Cost saved against running at once in the home cluster (USD)",
            registry=reg,
        )


def job_power_kw(spec: GridAwareJobSpec) -> float:
    """IT power of the job (kW) from its spec's energy model."""
    total, replicas = quantity.workload_requests(spec)
    e = spec.energy
    return accounting.power_kw(
        e.watts_per_replica, e.watts_per_cpu, e.watts_per_gpu, total.cpu, total.gpu, replicas
    )


def stopped_at(status: GridAwareJobStatus, record: RunRecord, grace: int, wall_now: float) -> float:
    """Wall time a recorded run segment really ended: a segment that a migration ended at
    its decision ran on while the source's pods checkpointed (see the module docstring)."""
    end = parse_time(record.end)
    for m in status.migrations:
        if m.source == record.cluster and m.time == record.end:
            return end + min(float(grace), max(0.0, m.takeover_seconds))
    mig = status.migration
    if mig is not None and mig.source == record.cluster and mig.decided == record.end:
        return end + min(float(grace), max(0.0, wall_now - end))
    return end


class Ledger:
    def __init__(
        self,
        cache: Cache,
        statuses: Statuses,
        feeds: SignalsPort | None,
        clock: Clock,
        metrics: Metrics,
        history_hours: int = 168,
    ) -> None:
        self.cache = cache
        self.statuses = statuses
        self.feeds = feeds
        self.clock = clock
        self.history_hours = history_hours
        self.metrics = LedgerMetrics(metrics)
        self._refreshed: tuple[float, tuple[tuple[str, str], ...]] | None = None

    # --- runs ------------------------------------------------------------------------------
    def runs(self, cluster: str, exclude: str = "") -> list[cfe.Run]:
        """Every recorded or ongoing run of a gridaware job in ``cluster`` (grid time)."""
        out: list[cfe.Run] = []
        for rec in self.statuses.records():
            if rec.key != exclude and _touches(rec.status, cluster):
                out.extend(r for r in self.job_runs(rec) if self._in(rec, r, cluster))
        return out

    @staticmethod
    def _in(rec: JobRecord, run: cfe.Run, cluster: str) -> bool:
        return run.job.startswith(f"{rec.key}@{cluster}#")

    def job_runs(self, rec: JobRecord) -> list[cfe.Run]:
        """The runs of one job; each named ``<ns>/<name>@<cluster>#<i>``."""
        st = rec.status
        if st.account is not None:
            return [_account_run(rec.key, i, s) for i, s in enumerate(st.account.segments)]
        if rec.spec is None:
            return []
        kw = job_power_kw(rec.spec)
        grid, wall_now = self.clock.grid_clock.grid, self.clock.wall()
        grace = rec.spec.migration.grace_period_seconds
        out = []
        for i, r in enumerate(st.run_segments):
            end = stopped_at(st, r, grace, wall_now)
            pue = self._pue(r.cluster)
            out.append(
                cfe.Run(
                    f"{rec.key}@{r.cluster}#{i}", grid(parse_time(r.start)), grid(end), kw * pue
                )
            )
        current = self._current(rec, wall_now)
        if current is not None and st.cluster is not None:
            start, end = current
            out.append(
                cfe.Run(
                    f"{rec.key}@{st.cluster}#{len(out)}",
                    grid(start),
                    grid(end),
                    kw * self._pue(st.cluster),
                )
            )
        return out

    @staticmethod
    def _current(rec: JobRecord, wall_now: float) -> tuple[float, float] | None:
        st = rec.status
        begun = st.segment_start or st.start_time
        if begun is None or st.phase not in ("Running", "Succeeded", "Failed"):
            return None
        if st.migration is not None and st.migration.step != "Stopping":
            return None  # the source's segment is recorded; the target has not started
        end = parse_time(st.completion_time) if st.completion_time else wall_now
        return parse_time(begun), max(parse_time(begun), end)

    def _pue(self, cluster: str) -> float:
        m = self.cache.member(cluster)
        return m.spec.pue if m is not None else 1.0

    # --- supply ----------------------------------------------------------------------------
    def delivery(self, m: Member, hour0: float, hours: int) -> cfe.Delivery:
        """What the cluster's contracts deliver per hour from ``hour0``."""
        contracts = tuple(m.spec.green_contracts)
        if not contracts:
            return cfe.Delivery(hour0, np.zeros(hours), np.zeros(hours), np.full(hours, np.nan))
        region = REGIONS.get(m.spec.region)
        offset = region.timezone_offset_hours if region is not None else 0.0
        share = None
        if any(c.shape == "wind" for c in contracts):
            series = self.renewable(m.spec.grid_zone, hour0, hours)
            share = None if series is None else series.values
        hourly = [
            cfe.contract_kwh(c, hour0, hours, offset, share, self._trace(c)) for c in contracts
        ]
        return cfe.delivery(contracts, hourly, hour0)

    @staticmethod
    def _trace(c: GreenContract) -> tuple[float, list[float]] | None:
        if c.trace is None or c.trace.file is None:
            return None
        try:
            return cfe.parse_trace_csv(Path(c.trace.file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("contract %s: cannot read its trace %s: %s", c.name, c.trace.file, exc)
            return (0.0, [])

    def renewable(self, zone: str, hour0: float, hours: int) -> accounting.Series | None:
        """The zone's renewable share (%) per hour from the feeds' history, if they give it."""
        if self.feeds is None:
            return None
        back = int((self.clock.grid_now() - hour0) // HOUR) + 2
        try:
            series = self.feeds.history(zone, Signal.RENEWABLE_SHARE, max(self.history_hours, back))
        except SignalError:
            return None
        if series.signal is not Signal.RENEWABLE_SHARE or series.unit != "%":
            return None  # a feed that answered with something else
        values = series.hourly(int(hour0), hours)
        if not np.isfinite(values).any():
            return None
        return accounting.Series(hour0, values)

    # --- valuing contracted supply (objective.valueContracts) -------------------------------
    def planned_load(
        self, cluster: str, hour0: float, hours: int, exclude: str = ""
    ) -> npt.NDArray[np.float64]:
        """kWh per hour from ``hour0`` that other gridaware jobs (all but ``exclude``) draw in
        ``cluster``: recorded runs as they ran, running jobs as if they ran through the window
        (conservative)."""
        now = self.clock.grid_now()
        load = np.zeros(hours)
        edges = hour0 + HOUR * np.arange(hours + 1)
        spans = [
            (r.start, edges[-1] if r.end >= now - 1.0 else r.end, r.kw)
            for r in self.runs(cluster, exclude=exclude)
        ]
        spans += [(r.start, r.end, r.kw) for r in self.planned_runs(cluster, exclude)]
        for start, end, kw in spans:
            overlap = np.minimum(edges[1:], end) - np.maximum(edges[:-1], start)
            load += kw * np.clip(overlap, 0.0, None) / HOUR
        return load

    def planned_runs(self, cluster: str, exclude: str = "") -> list[cfe.Run]:
        """Jobs that will draw in ``cluster`` but have not run there yet: placed and not
        started (from now), and deferred with a planned start there; for their expected
        duration, else through any window. A burst of placements, or several deferred jobs
        aiming at the same covered hours, thus shares the contracts instead of each counting
        on all of them."""
        now, out = self.clock.grid_now(), []
        for rec in self.statuses.records():
            spec = rec.spec
            if rec.key == exclude or spec is None or rec.gone or rec.status.phase in TERMINAL:
                continue
            start = _planned_start(rec.status, cluster, now)
            if start is None:
                continue
            duration = spec.schedule.expected_duration_seconds if spec.schedule else None
            end = start + duration if duration else math.inf
            kw = job_power_kw(spec) * self._pue(cluster)
            out.append(cfe.Run(f"{rec.key}@{cluster}#planned", start, end, kw))
        return out

    def valued(
        self,
        m: Member,
        hour0: float,
        carbon: npt.NDArray[np.float64],
        price_usd: npt.NDArray[np.float64] | None,
        job_kw: float,
        exclude: str = "",
    ) -> Valued:
        """The hourly intensity and price a job (IT power ``job_kw``, key ``exclude``) that
        values contracted supply sees in this cluster (``core.cfe.valued``): market-based, the
        other jobs' load served first. The note for ``status.placements`` says so also where
        no contract covers anything, so that every candidate of one decision reads the same."""
        hours = carbon.size
        d = self.delivery(m, hour0, hours)
        other = self.planned_load(m.name, hour0, hours, exclude)
        covered = cfe.cover(d.kwh, other, np.full(hours, job_kw * m.spec.pue))
        c, p = cfe.valued(carbon, price_usd, covered, d)
        share = float(covered.mean()) if hours else 0.0
        if share > 0:
            note = (
                f"market-based: contracts cover {100 * share:.0f} % (at their intensity and price)"
            )
        elif m.spec.green_contracts:
            note = "market-based: its contracts cover nothing then (grid values)"
        else:
            note = "market-based: no green contract (grid values)"
        return Valued(c, p, share, note)

    # --- metrics ---------------------------------------------------------------------------
    def booked(self, acct: Account, saved_cost: float | None) -> None:
        """Count a new account in the metrics."""
        for s in acct.segments:
            self.metrics.energy.labels(s.cluster).inc(max(0.0, s.energy_kwh))
            self.metrics.cfe.labels(s.cluster, "contract").inc(max(0.0, s.contract_kwh))
            self.metrics.cfe.labels(s.cluster, "grid").inc(max(0.0, s.grid_cfe_kwh))
        if saved_cost is not None and saved_cost > 0:
            self.metrics.cost_saved.inc(saved_cost)

    def refresh(self) -> None:
        """Set the contract gauges for the last full hour (the background loop calls this;
        it computes once per grid hour, and again when a cluster's contracts change)."""
        hour0 = (self.clock.grid_now() // HOUR - 1) * HOUR
        with self.cache.lock:
            members = list(self.cache.members.values())
        key = (hour0, tuple((m.name, repr(m.spec.green_contracts)) for m in members))
        if key == self._refreshed:
            return
        self._refreshed = key
        for m in members:
            if not m.spec.green_contracts:
                for gauge in (self.metrics.contract_delivered, self.metrics.contract_unused):
                    with contextlib.suppress(KeyError):  # never had one, or removed already
                        gauge.remove(m.name)
                continue
            d = self.delivery(m, hour0, 1)
            used = 0.0
            runs = [r for r in self.runs(m.name) if r.start < hour0 + HOUR and r.end > hour0]
            for r in runs:
                others = [o for o in runs if o.job != r.job]
                used += float(cfe.shares(r, others, d.kwh, hour0)[1].sum())
            self.metrics.contract_delivered.labels(m.name).set(float(d.kwh.sum()))
            self.metrics.contract_unused.labels(m.name).set(max(0.0, float(d.kwh.sum()) - used))


def _planned_start(st: GridAwareJobStatus, cluster: str, now: float) -> float | None:
    """When a job that has not started will start in ``cluster``: now when it is placed
    there, its planned start when it is deferred to go there; None otherwise."""
    if st.cluster == cluster and st.phase in ("Pending", "Scheduled"):
        return now if st.member_job is not None and st.start_time is None else None
    d = st.deferral
    if st.cluster is None and st.phase == "Pending" and d is not None and d.cluster == cluster:
        return max(now, parse_time(d.planned_start))
    return None


def _touches(st: GridAwareJobStatus, cluster: str) -> bool:
    """Whether the job ever ran in ``cluster`` (cheap: no time parsing)."""
    if st.account is not None:
        return any(s.cluster == cluster for s in st.account.segments)
    return st.cluster == cluster or any(r.cluster == cluster for r in st.run_segments)


@dataclass(frozen=True)
class Valued:
    carbon: npt.NDArray[np.float64]
    price_usd: npt.NDArray[np.float64] | None
    covered: float  # mean share of the job's energy the contracts cover
    note: str  # for the placement record's per-cluster reason


def _account_run(key: str, i: int, s: Segment) -> cfe.Run:
    start, end = parse_time(s.start), parse_time(s.end)
    hours = (end - start) / HOUR
    return cfe.Run(f"{key}@{s.cluster}#{i}", start, end, s.energy_kwh / hours if hours > 0 else 0.0)
