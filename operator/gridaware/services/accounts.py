"""Writing a finished job's carbon and cost account: gather its run segments, the signal
history of their zones and of the home cluster's, the cluster's contract delivery and the
other jobs that ran beside it (``services.ledger``), compute with ``core.accounting`` (hourly
matched), write the status once and count it in the metrics. Failed jobs get an account too:
their energy was drawn all the same.

Measured energy. With an ``EnergyPort`` (``signals.prometheus.PrometheusEnergy`` when the
operator runs with ``--prometheus-url``), each segment's energy is the joules the energy
counters measured for the job's pods in that cluster over that segment's wall-clock run, plus
the model for the pods that had no counters, and ``energySource`` says which. Series are told
apart by the scrape's ``cluster`` label (the GridCluster's name) and the member workload's pod
names. A pod counts as measured when its counters grew during the run; when fewer pods were
measured than the workload runs at once (its parallelism, or every replicated job's), the
missing replicas' share of the model is added (Mixed); retried or sequential pods all count.
Live jobs are still seen by the ledger at their modelled power until their own account. The
account
waits two scrape intervals after the job ends, so that Prometheus holds the counters' final
values (the job's own status already says it finished; only the account comes later). When
Prometheus cannot be asked, the account is booked from the model with a note saying why, and
Prometheus is left alone for a minute, so an outage never loses or stalls an account.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
from pydantic import ValidationError

from gridaware.api.signals import Signal
from gridaware.api.v1alpha1 import (
    Account,
    GridAwareJobSpec,
    GridAwareJobStatus,
    MemberJobState,
    parse_time,
    rfc3339,
)
from gridaware.core import accounting, lifecycle, money, quantity, reporting
from gridaware.services.cache import Cache, Member
from gridaware.services.ledger import AccountArchive, Ledger, job_power_kw, stopped_at
from gridaware.services.metrics import Metrics
from gridaware.services.ports import Clock, Settings, SignalsPort
from gridaware.services.statuses import JobRecord, Statuses
from gridaware.signals.errors import SignalError
from gridaware.signals.prometheus import job_pods_regex, jobset_pods_regex

log = logging.getLogger("gridaware.accounts")
HOUR = 3600
JOULES_PER_KWH = 3.6e6
OUTAGE_BACKOFF_SECONDS = 60.0  # after a failed query, book from the model this long


class EnergyPort(Protocol):
    """Measured joules per pod over a wall-clock window (``PrometheusEnergy``); ``None`` when
    nothing is measured there; raises ``SignalError`` when it cannot be asked."""

    def joules(
        self,
        namespace: str,
        pod_regex: str,
        start: dt.datetime,
        end: dt.datetime,
        cluster: str | None = None,
    ) -> dict[str, float] | None: ...


@dataclass(frozen=True)
class _Run:
    """One run segment of the job in wall time (what the energy counters saw)."""

    cluster: str
    start: float
    end: float


@dataclass
class _Pending:
    """A finished job whose account waits for the counters' last scrape."""

    state: MemberJobState
    member: str
    due: float


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
        energy: EnergyPort | None = None,
        scrape_seconds: float = 30.0,
    ) -> None:
        self.archive = archive
        self.energy = energy
        self.scrape_seconds = scrape_seconds
        self._pending: dict[str, _Pending] = {}
        self._energy_down_until = 0.0
        self.cache = cache
        self.ledger = ledger or Ledger(
            cache, statuses, feeds, clock, metrics, settings.history_hours
        )
        self.statuses = statuses
        self.feeds = feeds
        self.clock = clock
        self.settings = settings
        self.metrics = metrics

    def catch_up(self, rec: JobRecord) -> None:
        """Book a finished job whose account never was (its member Job was listed before
        this operator knew the GridAwareJob, e.g. at start-up): from the cached Job, at most
        once a minute per job."""
        st, now = rec.status, self.clock.wall()
        if st.account is not None or st.phase not in lifecycle.TERMINAL or rec.gone:
            return
        if st.member_job is None or rec.key in self._pending or rec.next_account > now:
            return
        rec.next_account = now + 60.0
        ref = st.member_job
        state = self.cache.job_in(ref.cluster, ref.namespace, ref.name)
        member = self.cache.member(ref.cluster)
        if state is None or member is None or not state.finished:
            return
        if state.owner_uid == rec.uid:
            self.record(rec, state, member)

    def record(self, rec: JobRecord, state: MemberJobState, member: Member) -> None:
        """Compute and store the account of a finished job, once (with measured energy, once
        the counters' last scrape is in: ``tick`` books it then). The member agents and the
        background loop may both call this: one job's account is computed by one at a time."""
        with rec.busy:
            self._record(rec, state, member)

    def _record(self, rec: JobRecord, state: MemberJobState, member: Member) -> None:
        status, spec = rec.status, rec.spec or _parsed_spec(rec)
        if status.account is not None or spec is None or not state.start_time:
            return
        end_stamp = state.completion_time or status.completion_time
        if not end_stamp:
            return
        due = parse_time(end_stamp) + 2 * self.scrape_seconds
        if self.energy is not None and self.clock.wall() < due:
            self._pending[rec.key] = _Pending(state, member.name, due)
            return
        self._pending.pop(rec.key, None)
        current = _Run(member.name, parse_time(state.start_time), parse_time(end_stamp))
        acct = self._account(rec, spec, state, member, current)
        if acct is None:
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
            self._archive(rec, self.clock.grid_clock.grid(current.end))

    def tick(self) -> None:
        """Book the accounts that waited for the energy counters' last scrape."""
        now = self.clock.wall()
        for key, p in list(self._pending.items()):
            if p.due > now or self._pending.pop(key, None) is None:
                continue
            rec, member = self.statuses.get(key), self.cache.member(p.member)
            if rec is not None and member is not None:
                self.record(rec, p.state, member)

    def _account(
        self,
        rec: JobRecord,
        spec: GridAwareJobSpec,
        state: MemberJobState,
        member: Member,
        current: _Run,
    ) -> Account | None:
        grid = self.clock.grid_clock.grid
        start, end = grid(current.start), grid(current.end)
        segment = self._segment(member, start, end, rec.key)
        if segment is None:
            log.warning(
                "no carbon history for %s: %s stays without an account", member.name, rec.key
            )
            return None
        runs = [*self._earlier_segments(rec, spec), (current, segment)]
        measured, note = self._measure(spec, state, [r for r, _ in runs])
        segments = [replace(s, measured=m) for (_, s), m in zip(runs, measured, strict=True)]
        home = self.cache.member(self._home(rec.status, spec, member.name)) or member
        ran = sum(s.end - s.start for s in segments)
        created = grid(parse_time(rec.created)) if rec.created else start
        earliest = created
        if spec.schedule is not None and spec.schedule.earliest_start:
            earliest = max(created, parse_time(spec.schedule.earliest_start))
        counterfactual = self._segment(home, earliest, earliest + ran)
        try:
            return accounting.account(
                segments,
                job_power_kw(spec),
                home.name,
                counterfactual,
                segment.carbon_source,
                rec.key,
                note,
            )
        except accounting.MixedKindsError as exc:
            log.warning("%s stays without an account: %s", rec.key, exc)
            return None

    def _measure(
        self, spec: GridAwareJobSpec, state: MemberJobState, runs: list[_Run]
    ) -> tuple[list[accounting.MeasuredEnergy | None], str | None]:
        """The measured energy of each run (None where nothing was measured) and a note when
        measurement is configured but (part of) the energy is modelled."""
        if self.energy is None:
            return [None] * len(runs), None
        if self.clock.wall() < self._energy_down_until:
            note = "Prometheus not asked after a recent failure: modelled"
            return [None] * len(runs), note
        regex = _pods_regex(spec, state.name)
        _, replicas = quantity.workload_requests(spec)
        out: list[accounting.MeasuredEnergy | None] = []
        notes: list[str] = []
        for i, run in enumerate(runs):
            if run.end <= run.start:  # nothing ran: nothing to measure or model
                out.append(None)
                continue
            try:
                out.append(self._measure_run(state.namespace, regex, runs, i, max(1, replicas)))
            except SignalError as exc:
                log.warning("energy counters unavailable, accounts modelled: %s", exc)
                self._energy_down_until = self.clock.wall() + OUTAGE_BACKOFF_SECONDS
                notes.append(f"Prometheus unavailable ({exc}): modelled")
                out += [None] * (len(runs) - len(out))
                break
            if out[-1] is None:
                notes.append(f"no energy counters for the pods in {run.cluster}: modelled")
        return out, "; ".join(dict.fromkeys(notes)) or None

    def _measure_run(
        self, namespace: str, regex: str, runs: list[_Run], i: int, replicas: int
    ) -> accounting.MeasuredEnergy | None:
        """One run's measured joules, its window closed a little after its end (the last
        scrape) but before the job's next run in the same cluster began."""
        assert self.energy is not None
        run = runs[i]
        tail = 2 * self.scrape_seconds
        for later in runs[i + 1 :]:
            if later.cluster == run.cluster and later.start >= run.end:
                tail = min(tail, later.start - run.end)
        per_pod = self.energy.joules(
            namespace,
            regex,
            dt.datetime.fromtimestamp(run.start, dt.UTC),
            dt.datetime.fromtimestamp(run.end + tail, dt.UTC),
            cluster=run.cluster,
        )
        pods = {pod: j for pod, j in (per_pod or {}).items() if j > 0}
        if not pods:
            return None
        missing = max(0, replicas - len(pods)) / replicas
        return accounting.MeasuredEnergy(sum(pods.values()) / JOULES_PER_KWH, missing)

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
    ) -> list[tuple[_Run, accounting.RunSegment]]:
        """Segments left behind by migrations, pauses and lost Jobs (in wall time, and with
        their signals in grid time); a migration's segment runs on through the checkpoint
        grace period. A segment without a known cluster or carbon history is left out."""
        grid, status = self.clock.grid_clock.grid, rec.status
        grace, wall_now = spec.migration.grace_period_seconds, self.clock.wall()
        out = []
        for r in status.run_segments:
            m = self.cache.member(r.cluster)
            if m is None:
                continue
            run = _Run(r.cluster, parse_time(r.start), stopped_at(status, r, grace, wall_now))
            seg = self._segment(m, grid(run.start), grid(run.end), rec.key)
            if seg is not None:
                out.append((run, seg))
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


def _parsed_spec(rec: JobRecord) -> GridAwareJobSpec | None:
    """The spec of a job that finished before this operator started (placement does not parse
    finished jobs), so that an account still waiting for its last scrape is not lost."""
    if not rec.spec_raw:
        return None
    try:
        return GridAwareJobSpec.model_validate(rec.spec_raw)
    except ValidationError:
        return None


def _pods_regex(spec: GridAwareJobSpec, name: str) -> str:
    """The member workload's pods: a Job's, or every replicated job's of a JobSet."""
    if spec.job_set is None:
        return job_pods_regex(name)
    replicated = [str(r.get("name", "")) for r in spec.job_set.get("replicatedJobs") or []]
    return jobset_pods_regex(name, [r for r in replicated if r])
