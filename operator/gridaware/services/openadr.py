"""The OpenADR 3 VEN in the running operator: a utility's events become GridEvents on the hub,
and what the fleet achieved goes back to the utility as reports.

Once per interval (``OpenAdrOptions.interval_seconds``, wall time) the service polls the VTN
through the VEN client (``signals.openadr``, which owns the mapping of SIMPLE levels,
IMPORT_CAPACITY_LIMIT and PRICE payloads), then:

- **creates** a GridEvent for every mapped interval that has none yet, named by the VEN
  client's deterministic name (``openadr-<event id>-<interval id>-<payload>``), so a second
  poll, a restarted operator or an HA peer finds the same object instead of making another;
- **replaces the spec** of one the utility changed (a new ``modificationDateTime``, or a
  different mapping when the VTN gives none), as long as its window has not closed;
- **ends** one the utility withdrew (deleted or cancelled on the VTN: absent from two polls
  in a row while its window is still open; listed but not mapped this time does not count):
  a pending one is marked ``Cancelled`` (the controller never acts on it), an active one
  gets its window cut at now, so the grid-event controller closes it normally (figures at
  the cut, paused work resumed at the ramp's pace, Completed);
- **reports** the achieved load (``status.achievedKw``, the mean over the window so far, with
  the baseline) of each of its GridEvents: once per interval while active, over the window so
  far, and once at the end over the whole window. ``status.lastReportTime`` (grid time) is the
  end of the last interval reported; the window's end means the final report went out (an
  active-phase report never covers the window's end, even when it is sent after it).

Only GridEvents whose ``source.openAdr.vtn`` is this VTN are touched; manual ones and those of
another VTN are left alone. No state is kept in memory: everything is read back from the hub
each round, so a restart or a failover carries on. An unreachable or refusing VTN ends the
round (logged); it does not end any GridEvent.

PRICE payloads become no GridEvent: each poll's prices (per zone, from the event's targets or
the default zones) replace what the price store (``prices``, ``signals.providers.openadr.
VtnPrices``, an overlay of the signal chain) holds, so the price signal follows the VTN inside
its intervals: GridCluster status, placement scores, forecasts and the price history of cost
accounts. A withdrawn event's prices go with the next poll; a failed poll keeps the last ones.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from gridaware.api.gridevents import (
    EventWindow,
    GridEventSpec,
    GridEventStatus,
    OpenAdrSource,
)
from gridaware.api.v1alpha1 import API_VERSION, parse_time, rfc3339
from gridaware.core import lifecycle
from gridaware.k8s.gateway import ConflictError, GatewayError
from gridaware.services.ports import Clock, EventsPort, Stopped
from gridaware.signals.errors import SignalError
from gridaware.signals.openadr import MappedEvent, Poll, PricePoint, Skipped, VenConfig

log = logging.getLogger("gridaware.openadr")

SOURCE_LABEL = "gridaware.dev/source"
CLOSED = ("Completed", "Cancelled")


@dataclass(frozen=True)
class OpenAdrOptions:
    """The VEN's settings in a running operator (``gridaware run --openadr-*``)."""

    ven: VenConfig
    interval_seconds: float = 30.0  # wall seconds between polls (and between reports)


class VenPort(Protocol):
    """What the service needs of the VEN client (``signals.openadr.OpenAdrVen``)."""

    @property
    def base(self) -> str: ...

    def poll(self, now: float | None = None) -> Poll: ...

    def post_report(
        self,
        source: OpenAdrSource,
        start: float,
        end: float,
        achieved_kw: float,
        baseline_kw: float | None = None,
        resource: str = "AGGREGATED_REPORT",
    ) -> str: ...


class PricesPort(Protocol):
    """Where the VTN's prices go (``signals.providers.openadr.VtnPrices``)."""

    def update(self, points: Iterable[PricePoint], now: float) -> list[Skipped]: ...


class GridEventsPort(Protocol):
    """GridEvents on the hub (``k8s.gateway.GridEventApi``)."""

    def list_gridevents(self) -> list[dict[str, Any]]: ...

    def create_gridevent(self, body: dict[str, Any]) -> None: ...

    def replace_gridevent_spec(self, name: str, spec: dict[str, Any]) -> None: ...

    def patch_gridevent_status(self, name: str, status: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class Owned:
    """One of this VTN's GridEvents as found on the hub."""

    name: str
    uid: str
    spec: GridEventSpec
    status: GridEventStatus

    @property
    def source(self) -> OpenAdrSource:
        assert self.spec.source.open_adr is not None  # only OpenADR events are owned
        return self.spec.source.open_adr


@dataclass(frozen=True)
class Report:
    """A report due for one GridEvent: the mean load over [start, end) and whether it is the
    final one."""

    start: float
    end: float
    achieved_kw: float
    baseline_kw: float | None
    final: bool


def owned(body: dict[str, Any], vtn: str) -> Owned | None:
    """The GridEvent if this VTN's event made it (and it parses), else None."""
    meta = body.get("metadata") or {}
    try:
        spec = GridEventSpec.model_validate(body.get("spec") or {})
        status = GridEventStatus.model_validate(body.get("status") or {})
    except ValidationError:
        return None
    src = spec.source.open_adr
    if spec.source.type != "OpenADR" or src is None or src.vtn.rstrip("/") != vtn.rstrip("/"):
        return None
    return Owned(str(meta.get("name", "")), str(meta.get("uid", "")), spec, status)


def manifest(mapped: MappedEvent) -> dict[str, Any]:
    """The GridEvent object for a mapped VTN event interval."""
    return {
        "apiVersion": API_VERSION,
        "kind": "GridEvent",
        "metadata": {"name": mapped.name, "labels": {SOURCE_LABEL: "openadr"}},
        "spec": spec_body(mapped.spec),
    }


def spec_body(spec: GridEventSpec) -> dict[str, Any]:
    return spec.model_dump(by_alias=True, exclude_none=True, mode="json")


def changed(ev: Owned, mapped: MappedEvent) -> bool:
    """Whether the utility changed the event since its GridEvent was written: by its
    ``modificationDateTime`` when the VTN gives one (an event that starts "now" maps to a new
    start at every poll; its first start is kept), else by the spec."""
    new = mapped.spec.source.open_adr
    before, after = ev.source.modification_date_time, new.modification_date_time if new else None
    if before is not None and after is not None:
        return before != after
    return ev.spec != mapped.spec


def cut_window(window: EventWindow, now: float) -> EventWindow:
    """The window ended at ``now`` (at least a second after its start: end must follow start)."""
    end = max(int(now), int(window.start_epoch) + 1)
    return EventWindow(start=window.start, end=rfc3339(end))


def report_due(ev: Owned, now: float, every: float) -> Report | None:
    """The report this GridEvent is owed at grid time ``now`` (``every``: grid seconds
    between reports while active), None when nothing is due."""
    st, w = ev.status, ev.spec.window
    if (
        st.achieved_kw is None
        or st.sampled_until is None
        or st.phase not in ("Active", "Completed")
    ):
        return None
    last = parse_time(st.last_report_time) if st.last_report_time else None
    if st.phase == "Completed":
        if last is not None and last >= w.end_epoch:
            return None  # the final report went out
        end = min(st.sampled_until, w.end_epoch)
        final = True
    else:
        if last is not None and now - last < every:
            return None
        end = min(st.sampled_until, now)
        final = False
        if last is not None and end <= last:
            return None  # nothing sampled since (the controller waits, e.g. after a restart)
    if end <= w.start_epoch:
        return None
    return Report(w.start_epoch, end, st.achieved_kw, st.baseline_kw, final)


class OpenAdrService:
    """One VEN at one VTN, run from the operator's own thread (``start``)."""

    def __init__(
        self,
        ven: VenPort,
        store: GridEventsPort,
        events: EventsPort,
        clock: Clock,
        options: OpenAdrOptions,
        prices: PricesPort | None = None,
    ) -> None:
        self.ven = ven
        self.store = store
        self.events = events
        self.clock = clock
        self.options = options
        self.prices = prices
        self._missing: set[str] = set()  # GridEvents whose VTN event the last poll lacked

    @property
    def report_every(self) -> float:
        """Grid seconds between reports of an active event (one interval of wall time, a
        little less so that a round that comes slightly early still reports)."""
        return self.clock.grid_clock.speedup * self.options.interval_seconds * 0.9

    # --- one round -----------------------------------------------------------------------
    def tick(self) -> None:
        """Poll, bring the hub's GridEvents in line with the VTN, and report."""
        now = self.clock.grid_now()
        try:
            poll = self.ven.poll(now)
        except SignalError as exc:
            log.warning("OpenADR VTN %s: poll failed: %s", self.ven.base, exc)
            return
        unpriced = self.prices.update(poll.prices, now) if self.prices is not None else []
        for skipped in (*poll.skipped, *unpriced):
            log.info("OpenADR event %s not taken in: %s", skipped.event_id, skipped.reason)
        try:
            mine = self._owned()
        except GatewayError as exc:
            log.warning("cannot list GridEvents: %s", exc)
            return
        self.sync(poll, mine, now)
        for ev in mine.values():
            self.report(ev, now)

    def _owned(self) -> dict[str, Owned]:
        found = (owned(b, self.ven.base) for b in self.store.list_gridevents())
        return {ev.name: ev for ev in found if ev is not None}

    def sync(self, poll: Poll, mine: dict[str, Owned], now: float) -> None:
        """Create, update and end GridEvents so that they follow the poll."""
        wanted = {m.name: m for m in poll.events}
        for name, mapped in wanted.items():
            try:
                self._apply(mapped, mine.get(name))
            except GatewayError as exc:
                log.warning("GridEvent %s: not written: %s", name, exc)
        unmapped = {s.event_id for s in poll.skipped}  # listed, but not mapped this time
        missing = set()
        for name, ev in mine.items():
            if name in wanted or ev.status.phase in CLOSED or now >= ev.spec.window.end_epoch:
                continue
            if ev.source.event_id in unmapped:
                continue
            missing.add(name)
            if name not in self._missing:
                continue  # withdrawn only when two polls in a row lack it (not one glitch)
            try:
                self._end(ev, now)
            except GatewayError as exc:
                log.warning("GridEvent %s: not ended: %s", name, exc)
        self._missing = missing

    def _apply(self, mapped: MappedEvent, ev: Owned | None) -> None:
        if ev is None:
            try:
                self.store.create_gridevent(manifest(mapped))
            except ConflictError:  # a peer (or an earlier round that timed out) made it
                return
            self._post(mapped.name, "", "Normal", "OpenAdrEvent", _describe("taken in", mapped))
            return
        if not changed(ev, mapped) or ev.status.phase in CLOSED:
            return
        self.store.replace_gridevent_spec(mapped.name, spec_body(mapped.spec))
        self._post(ev.name, ev.uid, "Normal", "OpenAdrUpdated", _describe("changed", mapped))

    def _end(self, ev: Owned, now: float) -> None:
        """The VTN no longer has this event interval: end it (see the module docstring)."""
        why = f"event {ev.source.event_id} was withdrawn by the VTN"
        if now < ev.spec.window.start_epoch:
            conditions = lifecycle.set_condition(
                ev.status.conditions,
                "Withdrawn",
                "True",
                "WithdrawnByVtn",
                why,
                ev.status.observed_generation,
                rfc3339(self.clock.wall()),
            )
            status = {
                "phase": "Cancelled",
                "conditions": [c.model_dump(by_alias=True, exclude_none=True) for c in conditions],
            }
            self.store.patch_gridevent_status(ev.name, status)
        else:
            window = cut_window(ev.spec.window, now)
            if window == ev.spec.window:
                return  # cut already (within the window's first second)
            spec = ev.spec.model_copy(update={"window": window})
            self.store.replace_gridevent_spec(ev.name, spec_body(spec))
        self._post(ev.name, ev.uid, "Normal", "OpenAdrWithdrawn", why)

    def report(self, ev: Owned, now: float) -> None:
        """Post the report this GridEvent is owed, if any, and record it in its status."""
        due = report_due(ev, now, self.report_every)
        if due is None:
            return
        try:
            report_id = self.ven.post_report(
                ev.source, due.start, due.end, due.achieved_kw, due.baseline_kw
            )
        except SignalError as exc:
            log.warning("GridEvent %s: report to the VTN failed: %s", ev.name, exc)
            return
        kind = "final report" if due.final else "report"
        message = (
            f"{kind} {report_id}: {due.achieved_kw:.3f} kW achieved over "
            f"{rfc3339(due.start)} to {rfc3339(due.end)}"
        )
        conditions = lifecycle.set_condition(
            ev.status.conditions,
            "Reported",
            "True",
            "FinalReport" if due.final else "Reported",
            message,
            ev.status.observed_generation,
            rfc3339(self.clock.wall()),
        )
        status = {  # the final report marks the window's end; others the end they covered
            "lastReportTime": rfc3339(ev.spec.window.end_epoch if due.final else due.end),
            "conditions": [c.model_dump(by_alias=True, exclude_none=True) for c in conditions],
        }
        try:
            self.store.patch_gridevent_status(ev.name, status)
        except GatewayError as exc:  # reported, not recorded: the next round reports again
            log.warning("GridEvent %s: report not recorded: %s", ev.name, exc)
        log.info("GridEvent %s: %s", ev.name, message)
        self._post(ev.name, ev.uid, "Normal", "Reported", message)

    def _post(self, name: str, uid: str, type_: str, reason: str, message: str) -> None:
        if reason != "Reported":
            log.info("GridEvent %s: %s", name, message)
        meta = {"name": name, "uid": uid} if uid else {"name": name}
        ref = {"apiVersion": API_VERSION, "kind": "GridEvent", "metadata": meta}
        try:
            self.events.post(ref, type_, reason, message)
        except GatewayError as exc:
            log.info("cannot post an Event for GridEvent %s: %s", name, exc)

    # --- the thread ----------------------------------------------------------------------
    def loop(self, stopped: Stopped, active: Callable[[], bool]) -> None:
        """A round now and then once per interval until ``stopped`` (skipped on a paused HA
        replica)."""
        while True:
            if active():
                try:
                    self.tick()
                except Exception:  # the VEN must outlive any one surprise of the VTN or hub
                    log.exception("OpenADR round failed")
            if stopped.wait(self.options.interval_seconds):
                return

    def start(self, stopped: Stopped, active: Callable[[], bool]) -> threading.Thread:
        thread = threading.Thread(
            target=self.loop, args=(stopped, active), daemon=True, name="openadr"
        )
        thread.start()
        return thread


def _describe(what: str, mapped: MappedEvent) -> str:
    src = mapped.spec.source.open_adr
    event = src.event_id if src else "?"
    payload = f"{src.payload_type} {src.value:g}" if src else ""
    w = mapped.spec.window
    return f"OpenADR event {event} {what}: {payload}, {w.start} to {w.end}"
