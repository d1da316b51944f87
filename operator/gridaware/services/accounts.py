"""Writing a finished job's carbon and cost account: gather its run segments, the signal
history of their zones and of the home cluster's, the cluster's contract delivery and the
other jobs that ran beside it (``services.ledger``), compute with ``core.accounting`` (hourly
matched), write the status once and count it in the metrics. Failed jobs get an account too:
their energy was drawn all the same."""

from __future__ import annotations

import logging

import numpy as np

from gridaware.api.signals import Signal
from gridaware.api.v1alpha1 import (
    GridAwareJobSpec,
    GridAwareJobStatus,
    MemberJobState,
    parse_time,
    rfc3339,
)
from gridaware.core import accounting, money, reporting
from gridaware.services.cache import Cache, Member
from gridaware.services.ledger import AccountArchive, Ledger, job_power_kw, stopped_at
from gridaware.services.metrics import Metrics
from gridaware.services.ports import Clock, Settings, SignalsPort
from gridaware.services.statuses import JobRecord, Statuses
from gridaware.signals.errors import SignalError

log = logging.getLogger("gridaware.accounts")
HOUR = 3600


class AccountService:
    def __init__(
        self,
        cache: Cache,
        statuses: Statuses,
        feeds: SignalsPort | None,
        clock: Clock,
        settings: Settings,
        metrics: Metrics,
        ledger: Ledger | None = None,
        archive: AccountArchive | None = None,
    ) -> None:
        self.archive = archive
        self.cache = cache
        self.ledger = ledger or Ledger(
            cache, statuses, feeds, clock, metrics, settings.history_hours
        )
        self.statuses = statuses
        self.feeds = feeds
        self.clock = clock
        self.settings = settings
        self.metrics = metrics

    def record(self, rec: JobRecord, state: MemberJobState, member: Member) -> None:
        """Compute and store the account of a finished job, once."""
        status, spec = rec.status, rec.spec
        if status.account is not None or spec is None or not state.start_time:
            return
        end_stamp = state.completion_time or status.completion_time
        if not end_stamp:
            return
        grid = self.clock.grid_clock.grid
        start, end = grid(parse_time(state.start_time)), grid(parse_time(end_stamp))
        kw = job_power_kw(spec)
        segment = self._segment(member, start, end, rec.key)
        if segment is None:
            log.warning(
                "no carbon history for %s: %s stays without an account", member.name, rec.key
            )
            return
        earlier = [s for s in self._earlier_segments(rec, spec) if s is not None]
        home = self.cache.member(self._home(status, spec, member.name)) or member
        ran = (end - start) + sum(s.end - s.start for s in earlier)
        created = grid(parse_time(rec.created)) if rec.created else start
        earliest = created
        if spec.schedule is not None and spec.schedule.earliest_start:
            earliest = max(created, parse_time(spec.schedule.earliest_start))
        counterfactual = self._segment(home, earliest, earliest + ran)
        try:
            acct = accounting.account(
                [*earlier, segment], kw, home.name, counterfactual, segment.carbon_source, rec.key
            )
        except accounting.MixedKindsError as exc:
            log.warning("%s stays without an account: %s", rec.key, exc)
            return
        if self.statuses.update(rec, lambda s: s.model_copy(update={"account": acct})):
            self.metrics.carbon.labels("location", member.name).inc(acct.carbon_location_g)
            self.metrics.carbon.labels("market", member.name).inc(acct.carbon_market_g)
            if acct.saved_location_g is not None:
                self.metrics.carbon_saved.labels("location").inc(max(0.0, acct.saved_location_g))
            if acct.cost_usd is not None:
                self.metrics.cost.labels("USD", member.name).inc(max(0.0, acct.cost_usd))
            saved_cost = (
                None
                if acct.counterfactual_cost_usd is None or acct.cost_usd is None
                else acct.counterfactual_cost_usd - acct.cost_usd
            )
            self.ledger.booked(acct, saved_cost)
            self._archive(rec, end)

    def _archive(self, rec: JobRecord, end: float) -> None:
        """Keep a copy for reports after the job is gone (best effort: a failure is logged;
        the account itself is in the job's status)."""
        if self.archive is None:
            return
        month = rfc3339(end)[:7]
        key = f"{rec.namespace}.{rec.name}.{rec.uid}"
        record = reporting.archive_record(rec.namespace, rec.name, rec.uid, rec.labels, rec.status)
        try:
            self.archive.keep(month, key, record)
        except Exception as exc:
            log.warning("cannot archive the account of %s: %s", rec.key, exc)

    def _segment(
        self, m: Member, start: float, end: float, job: str | None = None
    ) -> accounting.RunSegment | None:
        """A run segment with its signals; with ``job``, also the cluster's contract delivery
        and the other jobs' runs (without, the counterfactual: grid only)."""
        carbon, source = self._series(m.spec.grid_zone, Signal.CARBON, start, end)
        if carbon is None:
            return None
        price, _ = self._series(m.spec.price_zone or m.spec.grid_zone, Signal.PRICE, start, end)
        if job is None:
            return accounting.RunSegment(
                m.name, m.spec.grid_zone, start, end, m.spec.pue, carbon, price, (), source
            )
        hour0 = start // HOUR * HOUR
        hours = max(1, int(np.ceil((end - hour0) / HOUR)))
        return accounting.RunSegment(
            m.name,
            m.spec.grid_zone,
            start,
            end,
            m.spec.pue,
            carbon,
            price,
            tuple(m.spec.green_contracts),
            source,
            self.ledger.delivery(m, hour0, hours),
            tuple(self.ledger.runs(m.name, exclude=job)),
            self.ledger.renewable(m.spec.grid_zone, hour0, hours),
        )

    def _series(
        self, zone: str, signal: Signal, start: float, end: float
    ) -> tuple[accounting.Series | None, str]:
        if self.feeds is None:
            return None, "none"
        hour0 = start // HOUR * HOUR
        hours = max(1, int(np.ceil((end - hour0) / HOUR)))
        back = int((self.clock.grid_now() - hour0) // HOUR) + 2
        try:
            series = self.feeds.history(zone, signal, max(self.settings.history_hours, back))
        except SignalError as exc:
            log.info("no %s history for %s: %s", signal.value, zone, exc)
            return None, "none"
        values = series.hourly(int(hour0), hours)
        if signal is Signal.PRICE:
            try:
                values = values * money.to_usd_per_mwh(1.0, series.unit)
            except KeyError:
                return None, series.source
        ok = np.isfinite(values)
        if not ok.any():
            return None, series.source
        values = np.where(ok, values, np.interp(np.arange(hours), np.flatnonzero(ok), values[ok]))
        return accounting.Series(hour0, values, series.kind.value if series.kind else None), (
            series.source
        )

    def _earlier_segments(
        self, rec: JobRecord, spec: GridAwareJobSpec
    ) -> list[accounting.RunSegment | None]:
        """Segments left behind by migrations, pauses and lost Jobs, in grid time; a
        migration's segment runs on through the checkpoint grace period."""
        grid, status = self.clock.grid_clock.grid, rec.status
        grace, wall_now = spec.migration.grace_period_seconds, self.clock.wall()
        out = []
        for r in status.run_segments:
            m = self.cache.member(r.cluster)
            if m is not None:
                end = stopped_at(status, r, grace, wall_now)
                out.append(self._segment(m, grid(parse_time(r.start)), grid(end), rec.key))
        return out

    @staticmethod
    def _home(status: GridAwareJobStatus, spec: GridAwareJobSpec, fallback: str) -> str:
        if spec.placement.home_cluster:
            return spec.placement.home_cluster
        for record in status.placements:
            eligible = sorted(c.cluster for c in record.candidates if c.eligible)
            if eligible:
                return eligible[0]
        return fallback
