"""The services of one running operator, built once at start-up and kept in Kopf's memo, and
the one background loop that advances migrations and re-places jobs whose member Job was lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from gridaware.api.v1alpha1 import parse_time
from gridaware.core.lifecycle import TERMINAL
from gridaware.k8s.gateway import GatewayError
from gridaware.services.accounts import AccountService, EnergyPort
from gridaware.services.cache import Cache
from gridaware.services.gridevents import GridEventService
from gridaware.services.ledger import AccountArchive
from gridaware.services.members import MemberAgent
from gridaware.services.metrics import Metrics
from gridaware.services.migration import MigrationService
from gridaware.services.openadr import OpenAdrService
from gridaware.services.pause import PauseService
from gridaware.services.placement import PlacementService
from gridaware.services.ports import Clock, EventsPort, HubPort, Settings, SignalsPort
from gridaware.services.queue import WorkQueue
from gridaware.services.runplan import RunPlanService
from gridaware.services.statuses import JobRecord, Statuses

log = logging.getLogger("gridaware.operator")


@dataclass
class Services:
    cache: Cache
    statuses: Statuses
    placement: PlacementService
    migration: MigrationService
    pause: PauseService
    accounts: AccountService
    members: MemberAgent
    metrics: Metrics
    clock: Clock
    settings: Settings
    queue: WorkQueue
    runplan: RunPlanService
    gridevents: GridEventService
    active: Callable[[], bool] = field(default=lambda: True)  # False on a paused HA replica
    openadr: OpenAdrService | None = None  # the OpenADR 3 VEN, in its own thread (``start``)
    _slack: set[tuple[str, str]] = field(default_factory=set)
    _deadlines_at: float = 0.0

    def tick(self) -> None:
        """One round of the background loop."""
        self.migration.tick()
        self.runplan.tick()
        self.deadlines()
        self.accounts.ledger.refresh()  # contract gauges, once per grid hour
        self.accounts.tick()  # accounts that waited for the energy counters' last scrape
        for rec in self.statuses.records():
            if rec.requeued:  # lost its member Job, or its migration target was taken
                rec.requeued = False
                self.queue.add(rec.key)
            self.accounts.catch_up(rec)
            if rec.status.pause is not None and not rec.deleting:
                try:
                    self.pause.advance(rec)
                except GatewayError as exc:
                    log.info("%s: pause step failed: %s", rec.key, exc)

    def deadlines(self, every: float = 15.0) -> None:
        """The deadline slack of every unfinished job with a deadline (a metric), at most
        every ``every`` wall seconds."""
        if self.clock.wall() < self._deadlines_at:
            return
        self._deadlines_at = self.clock.wall() + every
        now = self.clock.grid_now()
        slack = self.metrics.deadline_slack
        for rec in self.statuses.records():
            spec, st = rec.spec, rec.status
            labels = (rec.namespace, rec.name)
            if spec is None or spec.schedule is None or rec.gone or st.phase in TERMINAL:
                if labels in self._slack:
                    slack.remove(*labels)
                    self._slack.discard(labels)
                continue
            w = self.placement.window(rec, spec)
            if w.deadline is None or w.duration is None:
                continue
            value = w.deadline - w.duration - self.settings.startup_seconds - now
            if st.phase in ("Running", "Paused"):
                value = w.deadline - now - max(0.0, w.duration - self._ran(rec, now))
            slack.labels(*labels).set(value)
            self._slack.add(labels)

    def _ran(self, rec: JobRecord, now: float) -> float:
        grid = self.clock.grid_clock.grid
        done = sum(
            grid(parse_time(r.end)) - grid(parse_time(r.start)) for r in rec.status.run_segments
        )
        start = rec.status.segment_start
        return done + (
            now - grid(parse_time(start)) if start and rec.status.phase == "Running" else 0.0
        )

    def loop(self, stopped: threading.Event, interval: float) -> None:
        while not stopped.wait(interval):
            if not self.active():
                continue
            try:
                self.tick()
            except Exception:  # the loop must outlive any one job's surprise
                log.exception("background round failed")


def build(
    hub: HubPort,
    events: EventsPort,
    feeds: SignalsPort | None,
    clock: Clock,
    settings: Settings,
    metrics: Metrics | None = None,
    active: Callable[[], bool] | None = None,
    active_known: Callable[[], bool] | None = None,
    archive: AccountArchive | None = None,
    openadr: OpenAdrService | None = None,
    energy: EnergyPort | None = None,
    energy_scrape_seconds: float = 30.0,
) -> Services:
    metrics = metrics or Metrics()
    metrics.start()
    gate = active or (lambda: True)
    cache, statuses = Cache(), Statuses(hub, gate, active_known)
    placement = PlacementService(cache, statuses, events, feeds, clock, settings, metrics)
    accounts = AccountService(
        cache,
        statuses,
        feeds,
        clock,
        settings,
        metrics,
        archive=archive,
        energy=energy,
        scrape_seconds=energy_scrape_seconds,
    )
    migration = MigrationService(cache, statuses, placement, events, clock, settings, metrics)
    pause = PauseService(cache, statuses, events, clock)
    gridevents = GridEventService(cache, statuses, pause, events, clock, migration, metrics)
    placement.gate = gridevents
    placement.ledger = accounts.ledger  # objective.valueContracts
    members = MemberAgent(
        cache, statuses, hub, placement, accounts, events, feeds, clock, settings, metrics, gate
    )
    queue = WorkQueue(placement.reconcile)
    members.notify = queue.add
    return Services(
        cache,
        statuses,
        placement,
        migration,
        pause,
        accounts,
        members,
        metrics,
        clock,
        settings,
        queue,
        RunPlanService(statuses, placement, pause, events, clock, settings),
        gridevents,
        gate,
        openadr,
    )
