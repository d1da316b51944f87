"""What the services need from the outside world, as protocols: the hub, a member cluster,
the feeds, the event recorder and the clock.

The real implementations live in ``gridaware.k8s.gateway`` and ``gridaware.signals``; the
tests pass in-memory ones that raise the same domain errors.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from gridaware.api.signals import Reading, Series, Signal
from gridaware.api.v1alpha1 import MemberJobState, Resources
from gridaware.core.clock import GridClock
from gridaware.core.namespaces import NamespaceMapping
from gridaware.core.podsecurity import Policy


class MemberPort(Protocol):
    def server_version(self) -> str: ...

    def capacity(self) -> tuple[Resources, Resources]: ...

    def create_job(self, manifest: dict[str, Any]) -> str: ...

    def delete_job(
        self, namespace: str, name: str, grace_seconds: int | None = None, kind: str = "Job"
    ) -> bool: ...

    def remaining_pods(self, namespace: str, job_label: str) -> int: ...

    def set_suspended(
        self, namespace: str, name: str, suspended: bool, kind: str = "Job"
    ) -> None: ...

    def list_jobs(self, cluster: str) -> tuple[list[MemberJobState], str]: ...

    def list_jobsets(self, cluster: str) -> list[MemberJobState]: ...

    def watch_jobs(
        self, cluster: str, resource_version: str, seconds: int
    ) -> Iterator[tuple[str, MemberJobState]]: ...


class HubPort(Protocol):
    def patch_job_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None: ...

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def patch_cluster_status(self, name: str, status: dict[str, Any]) -> None: ...

    def list_clusters(self) -> list[dict[str, Any]]: ...

    def connect_member(self, namespace: str, name: str, key: str) -> tuple[MemberPort, str]: ...

    def secret_version(self, namespace: str, name: str) -> str: ...


class StartGate(Protocol):
    """Grid events, power budgets and ramp limits as seen by placement."""

    def hold_reason(
        self, cluster: str, kw: float, key: str, latest_start: float | None
    ) -> str | None: ...

    def note_start(self, cluster: str, kw: float) -> None: ...

    def pulled_forward(self, key: str) -> str | None: ...


class Stopped(Protocol):
    """A stop flag: ``threading.Event`` or Kopf's ``DaemonStopped``."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> object: ...


class EventsPort(Protocol):
    def post(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None: ...


class SignalsPort(Protocol):
    def reading(self, zone: str, signal: Signal) -> Reading: ...

    def forecast(self, zone: str, signal: Signal, hours: int | None = None) -> Series: ...

    def history(self, zone: str, signal: Signal, hours: int | None = None) -> Series: ...


@dataclass
class Clock:
    """Wall time (for Kubernetes timestamps and waits) and grid time (for planning)."""

    grid_clock: GridClock = field(default_factory=lambda: GridClock.realtime(time.time()))
    wall: Callable[[], float] = time.time

    def grid_now(self) -> float:
        return self.grid_clock.grid(self.wall())


@dataclass(frozen=True)
class Settings:
    """Intervals, limits and tenancy rules of a running operator (from the command line)."""

    retry_delay: float = 10.0
    probe_interval: float = 15.0
    history_limit: int = 10
    forecast_hours: int = 48
    history_hours: int = 168
    replan_wall_seconds: float = 60.0  # how often a deferred job is re-planned
    startup_seconds: float = 120.0  # grid seconds a job needs to start; deadlines keep them
    migration_check_grid_seconds: float = 300.0  # how often a running job is reconsidered
    sweep_grace_seconds: float = 60.0  # after start-up, before orphaned member Jobs are swept
    pod_security: Policy = field(default_factory=Policy)  # re-checked before every create
    namespaces: NamespaceMapping = field(default_factory=NamespaceMapping)
