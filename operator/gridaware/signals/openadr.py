"""An OpenADR 3 VEN: gridaware as a flexible load that a utility's VTN can ask for less power.

The VEN authenticates with OAuth client credentials (form-encoded ``POST /auth/token``),
registers itself (``POST /vens``), reads programs and events, turns them into ``GridEvent``
specs, and posts reports of the load it achieved back to the VTN. It is written for OpenADR 3.1
as served by openleadr-vtn (targets are plain strings, durations may come back in the long ISO
form ``P0Y0M0DT0H15M0S``) and uses plain ``requests``: ``openadr3-client`` needs Python 3.12,
``toadr3`` speaks 3.0 and fails on 3.1 events, and ``python-oa3-client`` (which works) clashes
with the former's import name and would add its own model layer for six endpoints.

How events become GridEvents (``MappingConfig``, every number configurable):

========================  =====================================================================
event payload             GridEvent
========================  =====================================================================
``SIMPLE`` level n        ``Curtail`` by ``simple_levels[n]`` percent (default 1: 25 %,
                          2: 50 %, 3: 75 %); level 0 is normal operation (no GridEvent); a
                          level with no entry is skipped with a reason
``IMPORT_CAPACITY_LIMIT`` ``Curtail`` with ``capKw`` = the value in kW (units W, KW or MW from
                          the event's or program's payload descriptor; kW when absent)
``PRICE``                 no GridEvent: a ``PricePoint`` (value, currency, units, interval and
                          the event's zones and clusters, by the targets rule below);
                          ``price_series`` turns them into a ``<currency>/MWh`` Series, and
                          ``signals.providers.openadr.VtnPrices`` keeps the latest per zone for
                          the price signal chain
anything else             skipped with a reason
========================  =====================================================================

Each interval of an event becomes its own GridEvent (levels change between intervals); an
interval without its own ``intervalPeriod`` follows the event's, the i-th one starting i
durations after the event's start. A start of ``0001-01-01`` means "now". Targets: an event
target ``zone_<code>`` or ``cluster_<name>`` (e.g. ``zone_DE-LU``; openleadr-vtn accepts only
``[A-Za-z0-9_-]`` in targets, so the separator is ``_``; ``zone:``/``cluster:`` are read too)
selects zones or clusters; other targets (VEN names, groups) only say that the VTN meant us;
with no zone or cluster target the event applies to ``default_zones``/``default_clusters``, and
with none of those either it is skipped. Events of programs named in ``mandatory_programs`` are
mandatory; all others are voluntary.

Every malformed answer raises ``OpenAdrPayloadError`` (a ``FeedDataError``), and every failure
a ``SignalError``: callers catch nothing else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import requests
from pydantic import BaseModel, ConfigDict, Field, StrictBool, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel

from gridaware.api.gridevents import (
    Curtail,
    EventSource,
    GridEventSpec,
    GridEventTargets,
    OpenAdrSource,
    window_of,
)
from gridaware.api.signals import Quality, Series, Signal, price_unit
from gridaware.core import money
from gridaware.signals.base import MAX_ABS_PRICE
from gridaware.signals.errors import (
    FeedAuthError,
    FeedDataError,
    FeedUnavailableError,
    NoDataError,
)

PAGE = 50  # openleadr-vtn's largest page
TOKEN_MARGIN_SECONDS = 30.0  # renew a token this long before it expires
_KW_PER_UNIT = {"W": 0.001, "KW": 1.0, "MW": 1000.0}
_PER_MWH = {"KWH": 1000.0, "MWH": 1.0, "WH": 1e6}  # PRICE per unit of energy -> per MWh
_DURATION = re.compile(
    r"^P(?:(?P<y>\d+(?:\.\d+)?)Y)?(?:(?P<mo>\d+(?:\.\d+)?)M)?(?:(?P<w>\d+(?:\.\d+)?)W)?"
    r"(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<mi>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)
_SECONDS = {
    "y": 365 * 86400,
    "mo": 30 * 86400,
    "w": 7 * 86400,
    "d": 86400,
    "h": 3600,
    "mi": 60,
    "s": 1,
}
_NOW_YEAR = 1  # a start of 0001-01-01 means "now" (OpenADR 3 user guide)
_OPEN_ENDED = dt.timedelta(days=365 * 100)  # P9999Y and the like: "until further notice"


class OpenAdrPayloadError(FeedDataError):
    """A program, event or payload from the VTN that cannot be understood."""


# --- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MappingConfig:
    """How OpenADR events become GridEvents (see the module docstring)."""

    simple_levels: Mapping[int, float] = field(default_factory=lambda: {1: 25.0, 2: 50.0, 3: 75.0})
    default_zones: tuple[str, ...] = ()
    default_clusters: tuple[str, ...] = ()
    mandatory_programs: frozenset[str] = frozenset()


@dataclass(frozen=True)
class VenConfig:
    """Where the VTN is and who we are there."""

    url: str
    client_id: str
    client_secret: str
    ven_name: str = "gridaware"
    mapping: MappingConfig = field(default_factory=MappingConfig)
    timeout_seconds: float = 10.0


# --- what a poll yields ----------------------------------------------------------------------


@dataclass(frozen=True)
class MappedEvent:
    """A GridEvent to create (or update) for one interval of one OpenADR event."""

    name: str  # a stable, DNS-1123 object name: the same event and interval give the same name
    spec: GridEventSpec


@dataclass(frozen=True)
class PricePoint:
    """A PRICE payload: the price over one interval, for the price signal chain."""

    program_id: str
    event_id: str
    start: float  # epoch seconds
    end: float
    value: float
    currency: str | None
    units: str | None
    zones: tuple[str, ...] = ()  # the event's targets (or the default zones), as for GridEvents
    clusters: tuple[str, ...] = ()


@dataclass(frozen=True)
class Skipped:
    """Part of an event that was not mapped, and why (to log or show in a condition)."""

    event_id: str
    reason: str


@dataclass(frozen=True)
class Poll:
    events: tuple[MappedEvent, ...] = ()
    prices: tuple[PricePoint, ...] = ()
    skipped: tuple[Skipped, ...] = ()


def price_problem(point: PricePoint) -> str | None:
    """Why a PRICE payload cannot be a price signal value, or None when it can: it needs a
    currency that ``core.money`` can convert, units of energy (KWH, MWH or WH), an interval,
    and a plausible value."""
    currency = (point.currency or "").upper()
    if not currency:
        return "PRICE without a currency in its payload descriptor"
    if currency not in money.USD_PER:
        return f"PRICE in currency {currency}, which gridaware cannot convert"
    per_mwh = _PER_MWH.get((point.units or "").upper())
    if per_mwh is None:
        return f"PRICE per {point.units or 'unstated units'}; expected KWH, MWH or WH"
    if point.end <= point.start:
        return "PRICE interval lasts no time"
    if abs(point.value * per_mwh) > MAX_ABS_PRICE:
        return f"PRICE {point.value * per_mwh:g} {currency}/MWh is beyond +-{MAX_ABS_PRICE:.0f}"
    return None


def price_series(
    points: Iterable[PricePoint], zone: str, currency: str, fetched_at: float
) -> Series:
    """PRICE payloads as a price ``Series`` for the signal chain (``<currency>/MWh``).

    Only points that ``price_problem`` accepts are used; those in another currency are
    converted with ``core.money``'s rates. Where two events' intervals overlap, the one that
    starts first is kept. Intervals that have begun are MEASURED (a price the utility set),
    later ones FORECAST."""
    usable = sorted(
        (p for p in points if price_problem(p) is None),
        key=lambda p: (p.start, p.end),
    )
    kept: list[PricePoint] = []
    for point in usable:
        if not kept or point.start >= kept[-1].end:
            kept.append(point)
    target = price_unit(currency)
    return Series(
        zone=zone,
        signal=Signal.PRICE,
        unit=target,
        source="openadr",
        start=np.array([int(p.start) for p in kept], dtype=np.int64),
        length=np.array([int(p.end - p.start) for p in kept], dtype=np.int32),
        value=np.array([_per_mwh(p, target) for p in kept], dtype=np.float64),
        quality=np.array(
            [Quality.MEASURED if p.start <= fetched_at else Quality.FORECAST for p in kept],
            dtype=np.int8,
        ),
        fetched_at=fetched_at,
    )


def _per_mwh(point: PricePoint, unit: str) -> float:
    """The point's price in ``unit`` (``<currency>/MWh``); the point is usable."""
    value = point.value * _PER_MWH[(point.units or "").upper()]
    own = price_unit(point.currency or "")
    if own == unit:
        return value
    return money.to_usd_per_mwh(value, own) / money.to_usd_per_mwh(1.0, unit)


# --- wire format (OpenADR 3.1, the parts gridaware reads) -----------------------------------


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class WirePeriod(_Wire):
    start: str
    duration: str | None = None


class WireValues(_Wire):
    type: str
    values: list[StrictBool | int | float | str | dict[str, float]]


class WireDescriptor(_Wire):
    payload_type: str
    units: str | None = None
    currency: str | None = None


class WireInterval(_Wire):
    id: int
    interval_period: WirePeriod | None = None
    payloads: list[WireValues]


class WireEvent(_Wire):
    id: str
    program_id: str = Field(alias="programID")
    event_name: str | None = None
    modification_date_time: str | None = None
    targets: list[str] | None = None
    payload_descriptors: list[WireDescriptor] | None = None
    interval_period: WirePeriod | None = None
    intervals: list[WireInterval] | None = None


class WireProgram(_Wire):
    id: str
    program_name: str
    payload_descriptors: list[WireDescriptor] | None = None


_EVENTS: TypeAdapter[list[WireEvent]] = TypeAdapter(list[WireEvent])
_PROGRAMS: TypeAdapter[list[WireProgram]] = TypeAdapter(list[WireProgram])


def parse_events(doc: object) -> list[WireEvent]:
    """``GET /events`` answer -> events; OpenAdrPayloadError when it is not one."""
    try:
        return _EVENTS.validate_python(doc)
    except ValidationError as exc:
        raise OpenAdrPayloadError(f"VTN events are malformed: {_first_error(exc)}") from None


def parse_programs(doc: object) -> list[WireProgram]:
    """``GET /programs`` answer -> programs; OpenAdrPayloadError when it is not one."""
    try:
        return _PROGRAMS.validate_python(doc)
    except ValidationError as exc:
        raise OpenAdrPayloadError(f"VTN programs are malformed: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else str(err["msg"])


# --- times -----------------------------------------------------------------------------------


def parse_duration(text: str) -> dt.timedelta:
    """An ISO 8601 duration (``PT15M``, ``P0Y0M0DT0H15M0S``, ``P1W``) as a timedelta. Years
    count 365 days and months 30; ``P9999Y`` (OpenADR's "infinite") and anything longer than a
    century become a century."""
    match = _DURATION.match(text.strip()) if text else None
    if match is None or text.strip() in ("P", "PT") or text.strip().endswith("T"):
        raise OpenAdrPayloadError(f"{text!r} is not an ISO 8601 duration such as PT1H")
    seconds = sum(float(v) * _SECONDS[k] for k, v in match.groupdict().items() if v is not None)
    if seconds >= _OPEN_ENDED.total_seconds():
        return _OPEN_ENDED
    return dt.timedelta(seconds=seconds)


def parse_start(text: str, now: float) -> dt.datetime:
    """An OpenADR start time (RFC 3339); ``0001-01-01`` means now."""
    try:
        t = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise OpenAdrPayloadError(f"{text!r} is not an RFC 3339 start time") from None
    if t.year == _NOW_YEAR:
        return dt.datetime.fromtimestamp(now, tz=dt.UTC)
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)  # OpenADR times are UTC unless they say otherwise
    return t


def _intervals(
    event: WireEvent, now: float
) -> Iterable[tuple[WireInterval, dt.datetime, dt.timedelta]]:
    """Each interval with its start and duration (its own period, or the event's)."""
    for index, interval in enumerate(event.intervals or []):
        own = interval.interval_period
        base = own or event.interval_period
        if base is None:
            raise OpenAdrPayloadError(
                f"event {event.id}: interval {interval.id} has no intervalPeriod and neither "
                "has the event"
            )
        duration_text = base.duration or (
            event.interval_period.duration if event.interval_period else None
        )
        if duration_text is None:
            raise OpenAdrPayloadError(f"event {event.id}: interval {interval.id} has no duration")
        duration = parse_duration(duration_text)
        if duration <= dt.timedelta(0):
            raise OpenAdrPayloadError(f"event {event.id}: interval {interval.id} lasts no time")
        start = parse_start(base.start, now)
        try:
            if own is None:
                start += index * duration
            (start + duration).timestamp()  # raises when the end is past year 9999
        except OverflowError:
            raise OpenAdrPayloadError(
                f"event {event.id}: interval {interval.id} ends beyond the calendar"
            ) from None
        yield interval, start, duration


# --- mapping ---------------------------------------------------------------------------------


def _object_name(event_id: str, interval_id: int, payload: str) -> str:
    raw = f"openadr-{event_id}-{interval_id}-{payload}".lower().replace("_", "-")
    name = re.sub(r"[^a-z0-9-]+", "-", raw).strip("-")
    if len(name) <= 63 and name == raw:
        return name
    digest = hashlib.sha256(raw.encode()).hexdigest()[:10]
    return f"{name[:52].rstrip('-')}-{digest}"


def _prefixed(targets: Iterable[str], kind: str) -> list[str]:
    """The names in targets such as ``zone_DE-LU`` (or ``zone:DE-LU``) for kind ``zone``."""
    return [t[len(kind) + 1 :] for t in targets if t[: len(kind) + 1] in (f"{kind}_", f"{kind}:")]


def _targets(event: WireEvent, config: MappingConfig) -> GridEventTargets | None:
    zones = _prefixed(event.targets or [], "zone")
    clusters = _prefixed(event.targets or [], "cluster")
    zones = [z for z in zones if z] or ([] if clusters else list(config.default_zones))
    clusters = [c for c in clusters if c] or ([] if zones else list(config.default_clusters))
    if not zones and not clusters:
        return None
    try:
        return GridEventTargets(zones=sorted(set(zones)), clusters=sorted(set(clusters)))
    except ValidationError as exc:
        raise OpenAdrPayloadError(f"event {event.id}: bad targets: {_first_error(exc)}") from None


def _number(values: Sequence[object], what: str) -> float:
    if len(values) != 1 or isinstance(values[0], bool) or not isinstance(values[0], int | float):
        raise OpenAdrPayloadError(f"{what} must carry exactly one number, got {values!r}")
    return float(values[0])


@dataclass(frozen=True)
class _Context:
    event: WireEvent
    program: WireProgram | None
    vtn: str
    config: MappingConfig
    descriptors: Mapping[str, WireDescriptor]

    def source(self, payload_type: str, value: float) -> EventSource:
        return EventSource(
            type="OpenADR",
            open_adr=OpenAdrSource(
                vtn=self.vtn,
                program_id=self.event.program_id,
                program_name=self.program.program_name if self.program else None,
                event_id=self.event.id,
                event_name=self.event.event_name,
                payload_type=payload_type,
                value=value,
                modification_date_time=self.event.modification_date_time,
            ),
        )

    @property
    def mandatory(self) -> bool:
        return self.program is not None and (
            self.program.program_name in self.config.mandatory_programs
        )


def _curtail(ctx: _Context, payload_type: str, value: float) -> Curtail | Skipped | None:
    """The Curtail a SIMPLE or IMPORT_CAPACITY_LIMIT payload asks for (None: no event)."""
    if payload_type == "SIMPLE":
        if value == 0:
            return None
        percent = ctx.config.simple_levels.get(int(value)) if value.is_integer() else None
        if percent is None:
            return Skipped(ctx.event.id, f"SIMPLE level {value:g} has no configured percentage")
        return Curtail(reduce_percent=percent)
    desc = ctx.descriptors.get(payload_type)
    units = desc.units if desc else None
    factor = _KW_PER_UNIT.get((units or "KW").upper())
    if factor is None:
        return Skipped(ctx.event.id, f"IMPORT_CAPACITY_LIMIT in unsupported units {units!r}")
    if value < 0:
        raise OpenAdrPayloadError(f"event {ctx.event.id}: negative capacity limit {value:g}")
    return Curtail(cap_kw=value * factor)


def _map_payload(
    ctx: _Context,
    interval: WireInterval,
    payload: WireValues,
    window: tuple[dt.datetime, dt.timedelta],
    targets: GridEventTargets | None,
) -> MappedEvent | PricePoint | Skipped | None:
    if payload.type not in ("SIMPLE", "IMPORT_CAPACITY_LIMIT", "PRICE"):
        return Skipped(ctx.event.id, f"payload type {payload.type} is not mapped")
    start, duration = window
    value = _number(payload.values, f"event {ctx.event.id}: {payload.type} payload")
    if payload.type == "PRICE":
        desc = ctx.descriptors.get("PRICE")
        return PricePoint(
            program_id=ctx.event.program_id,
            event_id=ctx.event.id,
            start=start.timestamp(),
            end=(start + duration).timestamp(),
            value=value,
            currency=desc.currency if desc else None,
            units=desc.units if desc else None,
            zones=tuple(targets.zones) if targets else (),
            clusters=tuple(targets.clusters) if targets else (),
        )
    curtail = _curtail(ctx, payload.type, value)
    if curtail is None or isinstance(curtail, Skipped):
        return curtail
    if targets is None:
        return Skipped(ctx.event.id, "no zone_/cluster_ target and no default zones or clusters")
    spec = GridEventSpec(
        targets=targets,
        window=window_of(start, duration),
        kind="Curtail",
        curtail=curtail,
        source=ctx.source(payload.type, value),
        mandatory=ctx.mandatory,
    )
    return MappedEvent(_object_name(ctx.event.id, interval.id, payload.type), spec)


def _map_interval(
    ctx: _Context,
    interval: WireInterval,
    window: tuple[dt.datetime, dt.timedelta],
    targets: GridEventTargets | None,
) -> Iterable[MappedEvent | PricePoint | Skipped]:
    for payload in interval.payloads:
        try:
            part = _map_payload(ctx, interval, payload, window, targets)
        except ValidationError as exc:  # a value beyond what a GridEvent may hold
            raise OpenAdrPayloadError(
                f"event {ctx.event.id}: interval {interval.id}: {payload.type} cannot be a "
                f"GridEvent: {_first_error(exc)}"
            ) from None
        if part is not None:
            yield part


def map_event(
    event: WireEvent,
    program: WireProgram | None,
    vtn: str,
    config: MappingConfig,
    now: float,
) -> list[MappedEvent | PricePoint | Skipped]:
    """Every GridEvent, price and skipped part of one OpenADR event (pure; see the module
    docstring for the mapping)."""
    descriptors = (
        {d.payload_type: d for d in (program.payload_descriptors or [])} if program else {}
    )
    descriptors.update({d.payload_type: d for d in event.payload_descriptors or []})
    ctx = _Context(event, program, vtn, config, descriptors)
    targets = _targets(event, config)
    out: list[MappedEvent | PricePoint | Skipped] = []
    for interval, start, duration in _intervals(event, now):
        out.extend(_map_interval(ctx, interval, (start, duration), targets))
    return out


def map_events(
    events: Iterable[WireEvent],
    programs: Iterable[WireProgram],
    vtn: str,
    config: MappingConfig,
    now: float,
) -> Poll:
    """Map every event; GridEvents whose window has ended are left out (prices are kept: the
    price history of cost accounts), and an event that cannot be understood is skipped (with
    the reason) rather than failing the others."""
    by_id = {p.id: p for p in programs}
    mapped: list[MappedEvent] = []
    prices: list[PricePoint] = []
    skipped: list[Skipped] = []
    for event in events:
        try:
            parts = map_event(event, by_id.get(event.program_id), vtn, config, now)
        except OpenAdrPayloadError as exc:
            skipped.append(Skipped(event.id, str(exc)))
            continue
        for part in parts:
            if isinstance(part, MappedEvent) and part.spec.window.end_epoch > now:
                mapped.append(part)
            elif isinstance(part, PricePoint):  # ended ones too: what was paid, for accounts
                prices.append(part)
            elif isinstance(part, Skipped):
                skipped.append(part)
    return Poll(tuple(mapped), tuple(prices), tuple(skipped))


# --- the VEN ---------------------------------------------------------------------------------


@dataclass
class _Token:
    value: str = ""
    expires: float = 0.0


class OpenAdrVen:
    """gridaware's VEN at one VTN. Not thread-safe: one poller owns it."""

    def __init__(
        self,
        config: VenConfig,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.base = config.url.rstrip("/")
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = "gridaware-ven (+carbon-aware batch scheduling)"
        self._clock = clock
        self._token = _Token()
        self.ven_id: str | None = None

    # transport

    def _authenticate(self) -> None:
        resp = self._send(
            "POST",
            "/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.config.client_id,
                "client_secret": self.config.client_secret,
            },
            authorised=False,
        )
        if not resp.ok:
            raise _refusal(self.base, "POST", "/auth/token", resp)
        body = _json(resp)
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise OpenAdrPayloadError("VTN token answer has no access_token")
        expires_in = body.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 300.0
        self._token = _Token(body["access_token"], self._clock() + lifetime)

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: object = None,
        data: Mapping[str, str] | None = None,
        authorised: bool = True,
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {self._token.value}"} if authorised else {}
        try:
            return self.session.request(
                method,
                self.base + path,
                params=params,
                json=json,
                data=data,
                headers=headers,
                timeout=self.config.timeout_seconds,
            )
        except requests.RequestException as exc:
            raise FeedUnavailableError(
                f"OpenADR VTN {self.base}: {method} {path} failed ({exc.__class__.__name__})"
            ) from None

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: object = None,
        accept: Sequence[int] = (),
    ) -> requests.Response:
        """An authorised request; the token is renewed before expiry and once on a 401."""
        if self._clock() > self._token.expires - TOKEN_MARGIN_SECONDS:
            self._authenticate()
        resp = self._send(method, path, params=params, json=json)
        if resp.status_code == 401:
            self._authenticate()
            resp = self._send(method, path, params=params, json=json)
        if resp.status_code in accept or resp.ok:
            return resp
        raise _refusal(self.base, method, path, resp)

    def _pages(self, path: str, params: Mapping[str, str | int] | None = None) -> list[object]:
        items: list[object] = []
        while True:
            page = _json(
                self._call(
                    "GET", path, params={**(params or {}), "skip": len(items), "limit": PAGE}
                )
            )
            if not isinstance(page, list):
                raise OpenAdrPayloadError(f"VTN {path} answer is not a list")
            items.extend(page)
            if len(page) < PAGE:
                return items

    # the VEN's operations

    def register(self) -> str:
        """Register this VEN (``POST /vens``) or find its existing registration; its id."""
        name = self.config.ven_name
        resp = self._call(
            "POST", "/vens", json={"objectType": "VEN_VEN_REQUEST", "venName": name}, accept=(409,)
        )
        if resp.status_code != 409:
            body = _json(resp)
            if not isinstance(body, dict) or not isinstance(body.get("id"), str):
                raise OpenAdrPayloadError("VTN answered POST /vens without an id")
            self.ven_id = body["id"]
            return self.ven_id
        for ven in self._pages("/vens", {"venName": name}):
            if (
                isinstance(ven, dict)
                and ven.get("venName") == name
                and isinstance(ven.get("id"), str)
            ):
                self.ven_id = ven["id"]
                return self.ven_id
        raise NoDataError(f"VTN {self.base}: VEN {name!r} exists but is not visible to us")

    def programs(self) -> list[WireProgram]:
        return parse_programs(self._pages("/programs"))

    def events(self) -> list[WireEvent]:
        return parse_events(self._pages("/events"))

    def poll(self, now: float | None = None) -> Poll:
        """Read programs and events and map them (see the module docstring)."""
        if self.ven_id is None:
            self.register()
        return map_events(
            self.events(),
            self.programs(),
            self.base,
            self.config.mapping,
            self._clock() if now is None else now,
        )

    def post_report(
        self,
        source: OpenAdrSource,
        start: float,
        end: float,
        achieved_kw: float,
        baseline_kw: float | None = None,
        resource: str = "AGGREGATED_REPORT",
    ) -> str:
        """Report the mean load achieved over [start, end) for the event ``source`` names: a
        DEMAND (kW) and a USAGE (kWh) value, and the BASELINE (kW) when known. Its id."""
        if end <= start:
            raise ValueError("report interval must end after it starts")
        body = report_request(
            source, self.config.ven_name, start, end, achieved_kw, baseline_kw, resource
        )
        answer = _json(self._call("POST", "/reports", json=body))
        if not isinstance(answer, dict) or not isinstance(answer.get("id"), str):
            raise OpenAdrPayloadError("VTN answered POST /reports without an id")
        return str(answer["id"])


def report_request(
    source: OpenAdrSource,
    client_name: str,
    start: float,
    end: float,
    achieved_kw: float,
    baseline_kw: float | None = None,
    resource: str = "AGGREGATED_REPORT",
) -> dict[str, Any]:
    """The OpenADR 3.1 ``REPORT`` body for one interval of achieved load."""
    hours = (end - start) / 3600
    period = window_of(
        dt.datetime.fromtimestamp(start, tz=dt.UTC), dt.timedelta(seconds=end - start)
    )
    payloads = [
        {"type": "DEMAND", "values": [round(achieved_kw, 6)]},
        {"type": "USAGE", "values": [round(achieved_kw * hours, 6)]},
    ]
    descriptors = [
        {"payloadType": "DEMAND", "readingType": "AVERAGE", "units": "KW"},
        {"payloadType": "USAGE", "readingType": "SUMMED", "units": "KWH"},
    ]
    if baseline_kw is not None:
        payloads.append({"type": "BASELINE", "values": [round(baseline_kw, 6)]})
        descriptors.append({"payloadType": "BASELINE", "readingType": "AVERAGE", "units": "KW"})
    return {
        "objectType": "REPORT",
        "programID": source.program_id,
        "eventID": source.event_id,
        "clientName": client_name,
        "reportName": f"gridaware {source.event_id} {period.start}",
        "payloadDescriptors": descriptors,
        "resources": [
            {
                "resourceName": resource,
                "intervalPeriod": {"start": period.start, "duration": f"PT{int(end - start)}S"},
                "intervals": [{"id": 0, "payloads": payloads}],
            }
        ],
    }


def _json(resp: requests.Response) -> object:
    try:
        return resp.json()
    except ValueError:
        raise OpenAdrPayloadError(
            f"VTN answered {resp.request.method} {resp.url} with non-JSON ({resp.status_code})"
        ) from None


def _refusal(base: str, method: str, path: str, resp: requests.Response) -> Exception:
    code = resp.status_code
    detail = " ".join(resp.text.split())[:300]
    what = f"OpenADR VTN {base}: {method} {path} answered {code}"
    if code in (401, 403):
        return FeedAuthError(
            f"{what}: check the VEN's client id, secret and scopes", status=code, detail=detail
        )
    if code >= 500 or code == 429:
        return FeedUnavailableError(f"{what}: {detail}")
    return NoDataError(f"{what}: {detail}")
