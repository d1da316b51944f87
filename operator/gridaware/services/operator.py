"""The services of one running operator, built once at start-up and kept in Kopf's memo, and
the one background loop that advances migrations and re-places jobs whose member Job was lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from gridaware.k8s.gateway import GatewayError
from gridaware.services.accounts import AccountService
from gridaware.services.cache import Cache
from gridaware.services.members import MemberAgent
from gridaware.services.metrics import Metrics
from gridaware.services.migration import MigrationService
from gridaware.services.pause import PauseService
from gridaware.services.placement import PlacementService
from gridaware.services.ports import Clock, EventsPort, HubPort, Settings, SignalsPort
from gridaware.services.queue import WorkQueue
from gridaware.services.runplan import RunPlanService
from gridaware.services.statuses import Statuses

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
    active: Callable[[], bool] = field(default=lambda: True)  # False on a paused HA replica

    def tick(self) -> None:
        """One round of the background loop."""
        self.migration.tick()
        self.runplan.tick()
        for rec in self.statuses.records():
            if rec.requeued:  # lost its member Job, or its migration target was taken
                rec.requeued = False
                self.queue.add(rec.key)
            if rec.status.pause is not None and not rec.deleting:
                try:
                    self.pause.advance(rec)
                except GatewayError as exc:
                    log.info("%s: pause step failed: %s", rec.key, exc)

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
) -> Services:
    metrics = metrics or Metrics()
    cache, statuses = Cache(), Statuses(hub)
    placement = PlacementService(cache, statuses, events, feeds, clock, settings, metrics)
    accounts = AccountService(cache, statuses, feeds, clock, settings, metrics)
    migration = MigrationService(cache, statuses, placement, events, clock, settings, metrics)
    pause = PauseService(cache, statuses, events, clock)
    gate = active or (lambda: True)
    members = MemberAgent(
        cache, statuses, hub, placement, accounts, events, feeds, clock, settings, metrics, gate
    )
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
        WorkQueue(placement.reconcile),
        RunPlanService(statuses, placement, pause, clock, settings),
        gate,
    )
