"""ENTSO-E Transparency Platform: day-ahead prices (A44) and actual generation per production
type (A75, process A16), XML, bidding zones by EIC code.

Generation per type also yields a renewable share and an *estimated* average carbon intensity
(generation-weighted lifecycle emission factors per production type), which gives EU users a
key-free carbon signal. Points are at ``start + (position - 1) x resolution``; with curve type
A03 a missing position repeats the previous value.

One price document can hold several products for the same hours: hourly days next to
15-minute days (the 2025 switch of the day-ahead market to 15 minutes), and in DE-LU and AT two
auctions, told apart by ``classificationSequence``: ENTSO-E publishes the Single Day-Ahead
Coupling (SDAC, gate closure 12:00) under sequence 1 and the separate EXAA auction under
sequence 2. Every point is kept unless a better product covers its time: the configured
sequence (default 1) first, then the finer resolution; so the answer never depends on the order
of the series in the document, and no hourly day is lost next to 15-minute days.

Errors come as an ``Acknowledgement_MarketDocument`` (also with HTTP 400): "No matching data
found" becomes ``NoDataError``, any other reason a ``FeedRequestError`` quoting it.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Mapping

import numpy as np

from gridaware.api.signals import CARBON_UNIT, EmissionKind, Quality, Series, Signal, price_unit
from gridaware.core.redact import redact
from gridaware.signals.base import Provider, make_series, number, parse_time
from gridaware.signals.errors import FeedDataError, FeedRequestError, NoDataError, SignalError
from gridaware.signals.http import HttpClient, mask_error

DEFAULT_URL = "https://web-api.tp.entsoe.eu/api"
MAX_RANGE = 365 * 24 * 3600

EIC: dict[str, str] = {
    "DE-LU": "10Y1001A1001A82H",
    "FR": "10YFR-RTE------C",
    "NL": "10YNL----------L",
    "BE": "10YBE----------2",
    "ES": "10YES-REE------0",
    "PT": "10YPT-REN------W",
    "AT": "10YAT-APG------L",
    "CH": "10YCH-SWISSGRIDZ",
    "PL": "10YPL-AREA-----S",
    "SE-SE3": "10Y1001A1001A46L",
    "NO-NO1": "10YNO-1--------2",
    "DK-DK1": "10YDK-1--------W",
    "IT-NO": "10Y1001A1001A73I",
}

# Lifecycle emission factors in gCO2e/kWh per ENTSO-E production type (rounded IPCC AR5
# medians; lignite and peat above hard coal). Pumped-storage generation is excluded: it
# re-delivers energy that was counted when it was generated.
FACTORS: dict[str, float] = {
    "B01": 230,
    "B02": 1100,
    "B03": 820,
    "B04": 490,
    "B05": 820,
    "B06": 650,
    "B07": 650,
    "B08": 1100,
    "B09": 38,
    "B11": 24,
    "B12": 24,
    "B13": 24,
    "B14": 12,
    "B15": 30,
    "B16": 45,
    "B17": 240,
    "B18": 12,
    "B19": 11,
    "B20": 700,
}
RENEWABLE = {"B01", "B09", "B11", "B12", "B13", "B15", "B16", "B18", "B19"}
_RES = re.compile(r"^PT(\d+)([MH])$")


def _stamp(t: float) -> str:
    return dt.datetime.fromtimestamp(t, tz=dt.UTC).strftime("%Y%m%d%H%M")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: ET.Element, name: str) -> ET.Element | None:
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _children(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if _local(c.tag) == name]


def _text(el: ET.Element | None, name: str, what: str) -> str:
    child = _child(el, name) if el is not None else None
    if child is None or child.text is None:
        raise FeedDataError(f"entsoe: {what}: missing <{name}>")
    return child.text.strip()


def _curve(ts: ET.Element) -> str:
    el = _child(ts, "curveType")
    return (el.text or "A01").strip() if el is not None else "A01"


def _resolution(text: str) -> int:
    m = _RES.match(text)
    if not m:
        raise FeedDataError(f"entsoe: unsupported resolution {text!r}")
    step = int(m.group(1)) * (60 if m.group(2) == "M" else 3600)
    if step <= 0:
        raise FeedDataError(f"entsoe: resolution {text!r} must be positive")
    return step


def _acknowledgement(root: ET.Element) -> NoDataError:
    """The error an acknowledgement document stands for, with its reason text."""
    reasons = []
    for reason in _children(root, "Reason"):
        code = _child(reason, "code")
        text = _child(reason, "text")
        reasons.append(
            (
                (code.text or "").strip() if code is not None else "",
                (text.text or "").strip() if text is not None else "",
            )
        )
    detail = "; ".join(t or f"reason code {c}" for c, t in reasons) or "no reason given"
    if any(c == "999" or "no matching data" in t.lower() for c, t in reasons):
        return NoDataError(f"entsoe: {detail}")
    return FeedRequestError(f"entsoe: request rejected: {detail}")


def parse_document(xml: str | bytes, expect: str = "") -> tuple[ET.Element, list[ET.Element]]:
    """Root and TimeSeries of a market document (of root tag ``expect`` when given);
    NoDataError for an acknowledgement."""
    try:
        root = ET.fromstring(xml)  # noqa: S314 - trusted provider; expat guards entity expansion
    except ET.ParseError as exc:
        raise FeedDataError(f"entsoe: malformed XML ({exc})") from None
    if _local(root.tag) == "Acknowledgement_MarketDocument":
        raise _acknowledgement(root)
    if _local(root.tag) not in ("Publication_MarketDocument", "GL_MarketDocument"):
        raise FeedDataError(f"entsoe: unexpected document <{_local(root.tag)}>")
    if expect and _local(root.tag) != expect:
        raise FeedDataError(f"entsoe: expected a {expect}, got a {_local(root.tag)}")
    return root, _children(root, "TimeSeries")


def _sequence(ts: ET.Element) -> int:
    """The series' classificationSequence position (1 when absent: a single product)."""
    el = _child(ts, "classificationSequence_AttributeInstanceComponent.position")
    if el is None or not (el.text or "").strip():
        return 1
    return int(number(el.text, "classificationSequence position"))


def choose_points(
    ranked: list[tuple[tuple[int, int], list[tuple[int, int, float]]]],
) -> list[tuple[int, int, float]]:
    """Points of several products, each kept unless a better-ranked product covers part of its
    interval. ``ranked`` holds (rank, points) with lower ranks better; the result does not
    depend on the order of ``ranked``."""
    starts = np.zeros(0, dtype=np.int64)
    ends = np.zeros(0, dtype=np.int64)
    kept: list[tuple[int, int, float]] = []
    groups: dict[tuple[int, int], list[tuple[int, int, float]]] = defaultdict(list)
    for rank, pts in ranked:
        groups[rank].extend(pts)
    for rank in sorted(groups):
        fresh: list[tuple[int, int, float]] = []
        for s, length, v in sorted(groups[rank]):
            i = int(np.searchsorted(ends, s, side="right"))
            if i < len(starts) and starts[i] < s + length:
                continue  # a better product covers (part of) this interval
            if fresh and fresh[-1][0] + fresh[-1][1] > s:
                continue  # the same product twice for one time: keep one, deterministically
            fresh.append((s, length, v))
        kept.extend(fresh)
        if fresh:
            starts = np.concatenate([starts, [p[0] for p in fresh]])
            ends = np.concatenate([ends, [p[0] + p[1] for p in fresh]])
            order = np.argsort(starts, kind="stable")
            starts, ends = starts[order], ends[order]
    return sorted(kept)


def period_points(period: ET.Element, value_tag: str, curve: str) -> list[tuple[int, int, float]]:
    """(start, length, value) for every position of a Period, filling A03 gaps."""
    interval = _child(period, "timeInterval")
    start = parse_time(_text(interval, "start", "timeInterval"), "entsoe period start")
    end = parse_time(_text(interval, "end", "timeInterval"), "entsoe period end")
    step = _resolution(_text(period, "resolution", "Period"))
    if end <= start or (end - start) % step:
        raise FeedDataError("entsoe: period length is not a multiple of its resolution")
    n = (end - start) // step
    values: dict[int, float] = {}
    for point in _children(period, "Point"):
        pos = int(number(_text(point, "position", "Point"), "position"))
        if not 1 <= pos <= n:
            raise FeedDataError(f"entsoe: position {pos} outside 1..{n}")
        values[pos] = number(_text(point, value_tag, "Point"), value_tag)
    out = []
    last: float | None = None
    for pos in range(1, n + 1):
        if pos in values:
            last = values[pos]
        elif curve != "A03" or last is None:
            continue
        out.append((start + (pos - 1) * step, step, last))
    return out


def _common_grid(
    per_type: Mapping[str, list[tuple[int, int, float]]],
) -> tuple[dict[int, dict[str, float]], int]:
    """Generation per slot and production type on one time grid: when types come at different
    resolutions, finer ones are averaged onto the coarsest, so that every slot sums the same
    types (a 15-minute slot must not miss the hourly types)."""
    step = max((p[1] for pts in per_type.values() for p in pts), default=3600)
    # the grid is anchored at a point of the coarsest resolution (zones off the hour stay so)
    origin = next((p[0] for pts in per_type.values() for p in pts if p[1] == step), 0)
    sums: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    covered: dict[tuple[int, str], int] = defaultdict(int)
    for psr_type, pts in per_type.items():
        for s, length, v in pts:
            slot = origin + (s - origin) // step * step
            sums[slot][psr_type] += max(v, 0.0) * length
            covered[(slot, psr_type)] += length
    mix = {
        slot: {k: total / covered[(slot, k)] for k, total in types.items()}
        for slot, types in sums.items()
    }
    return mix, step


class EntsoE(Provider):
    kind = "entsoe"
    signals = frozenset({Signal.PRICE, Signal.CARBON, Signal.RENEWABLE_SHARE})

    def __init__(
        self,
        name: str,
        token: str,
        url: str | None = None,
        zone_map: Mapping[str, str] | None = None,
        http: HttpClient | None = None,
        sequence: int = 1,
    ) -> None:
        super().__init__(name, zone_map)
        self.url = url or DEFAULT_URL
        self._token = token
        self.http = http or HttpClient(name)
        self.sequence = sequence  # classificationSequence to prefer (1: SDAC)

    def code(self, zone: str) -> str:
        code = self.zone_map.get(zone) or EIC.get(zone)
        if code is None:
            raise NoDataError(f"{self.name}: no EIC code known for zone {zone}; add it to zone_map")
        return code

    def _fetch(self, params: dict[str, str]) -> bytes:
        # ENTSO-E answers bad or empty queries with an acknowledgement document at HTTP 400
        resp = self.http.get(
            self.url, params={"securityToken": self._token, **params}, accept=(400,)
        )
        if resp.status_code == 400 and "Acknowledgement_MarketDocument" not in resp.text[:2000]:
            body = redact(resp.text, [self._token])[:200]  # masked before cut: no partial key
            raise FeedRequestError(f"{self.name}: request rejected (400): {body!r}")
        return resp.content

    def _document(self, params: dict[str, str], expect: str) -> list[ET.Element]:
        """The TimeSeries of the document answering ``params``; an acknowledgement's reason
        text (the provider's words) comes with the token masked."""
        try:
            return parse_document(self._fetch(params), expect)[1]
        except SignalError as exc:
            mask_error(exc, [self._token])
            raise

    def _prices(self, zone: str, start: float, end: float) -> Series:
        eic = self.code(zone)
        series = self._document(
            {
                "documentType": "A44",
                "in_Domain": eic,
                "out_Domain": eic,
                "periodStart": _stamp(start),
                "periodEnd": _stamp(end),
            },
            "Publication_MarketDocument",
        )
        ranked: list[tuple[tuple[int, int], list[tuple[int, int, float]]]] = []
        currencies = set()
        for ts in series:
            cur = _child(ts, "currency_Unit.name")
            if cur is not None and cur.text and cur.text.strip():
                currencies.add(cur.text.strip())
            measure = _child(ts, "price_Measure_Unit.name")
            if measure is not None and (measure.text or "").strip().upper() != "MWH":
                raise FeedDataError(f"entsoe: price unit per {measure.text!r}, expected MWH")
            seq = _sequence(ts)
            preference = 0 if seq == self.sequence else seq
            for period in _children(ts, "Period"):
                pts = period_points(period, "price.amount", _curve(ts))
                if pts:
                    ranked.append(((preference, pts[0][1]), pts))
        if len(currencies) > 1:
            raise FeedDataError(f"entsoe: prices in several currencies {sorted(currencies)}")
        chosen = choose_points(ranked)
        if not chosen:
            raise NoDataError(f"{self.name}: no prices for {zone}")
        return make_series(
            zone,
            Signal.PRICE,
            price_unit(currencies.pop() if currencies else "EUR"),
            self.name,
            [(s, length, v, Quality.MEASURED) for s, length, v in chosen],
            fetched_at=time.time(),
        )

    def _generation(self, zone: str, start: float, end: float) -> tuple[Series, Series]:
        eic = self.code(zone)
        series = self._document(
            {
                "documentType": "A75",
                "processType": "A16",
                "in_Domain": eic,
                "periodStart": _stamp(start),
                "periodEnd": _stamp(end),
            },
            "GL_MarketDocument",
        )
        per_type: dict[str, list[tuple[int, int, float]]] = defaultdict(list)
        for ts in series:
            if _child(ts, "inBiddingZone_Domain.mRID") is None:
                continue  # consumption (e.g. pumping), not generation
            psr = _child(ts, "MktPSRType")
            psr_type = _text(psr, "psrType", "MktPSRType") if psr is not None else "B20"
            for period in _children(ts, "Period"):
                per_type[psr_type] += period_points(period, "quantity", _curve(ts))
        mix, step = _common_grid(per_type)
        carbon, share = [], []
        for s in sorted(mix):
            gen = {k: v for k, v in mix[s].items() if k in FACTORS}
            total = sum(gen.values())
            if total <= 0:
                continue
            ci = sum(FACTORS[k] * v for k, v in gen.items()) / total
            ren = 100.0 * sum(v for k, v in gen.items() if k in RENEWABLE) / total
            carbon.append((s, step, ci, Quality.ESTIMATED))
            share.append((s, step, ren, Quality.MEASURED))
        if not carbon:
            raise NoDataError(f"{self.name}: no generation data for {zone}")
        now = time.time()
        return (
            make_series(
                zone,
                Signal.CARBON,
                CARBON_UNIT,
                f"{self.name} (generation mix)",
                carbon,
                EmissionKind.AVERAGE,
                now,
            ),
            make_series(zone, Signal.RENEWABLE_SHARE, "%", self.name, share, fetched_at=now),
        )

    def history(self, zone: str, signal: Signal, start: float, end: float) -> Series:
        self._require(signal)
        if end - start > MAX_RANGE:
            raise NoDataError(f"{self.name}: at most one year per query")
        if signal is Signal.PRICE:
            return self._prices(zone, start, end)
        carbon, share = self._generation(zone, start, end)
        return carbon if signal is Signal.CARBON else share

    def latest(self, zone: str, signal: Signal, now: float) -> Series:
        series = self.history(zone, signal, now - 6 * 3600, now + 3600)
        past = series.window(series.start[0], now + 1)
        if not len(past):
            raise NoDataError(f"{self.name}: no {signal.value} value up to now for {zone}")
        return past.window(past.start[-1], past.start[-1] + 1)

    def forecast(self, zone: str, signal: Signal, now: float, hours: int) -> Series:
        if signal is not Signal.PRICE:
            return super().forecast(zone, signal, now, hours)
        # day-ahead prices are published for tomorrow around noon CET: the known future
        return self._prices(zone, now - now % 3600, now + max(hours, 24) * 3600)
