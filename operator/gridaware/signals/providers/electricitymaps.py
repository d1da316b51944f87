"""Electricity Maps API v3: carbon intensity (latest, history, past-range, forecast), day-ahead
price and renewable share, authenticated with the ``auth-token`` header.

Carbon history inside the last 24 hours comes from ``/carbon-intensity/history`` (one call,
the endpoint every plan has); longer or older windows from ``/carbon-intensity/past-range``
in chunks of at most ten days, as the API documents.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from gridaware.api.signals import EmissionKind, Quality, Series, Signal, price_unit
from gridaware.signals.base import (
    Provider,
    carbon_series,
    field,
    iso,
    items,
    json_body,
    make_series,
    number,
    parse_time,
)
from gridaware.signals.errors import FeedDataError
from gridaware.signals.http import HttpClient

DEFAULT_URL = "https://api.electricitymap.org/v3"
HOUR = 3600
PAST_RANGE_CHUNK = 10 * 24 * HOUR
HISTORY_SPAN = 24 * HOUR  # what /carbon-intensity/history covers


class ElectricityMaps(Provider):
    kind = "electricitymaps"
    signals = frozenset({Signal.CARBON, Signal.PRICE, Signal.RENEWABLE_SHARE})

    def __init__(
        self,
        name: str,
        token: str,
        url: str | None = None,
        zone_map: Mapping[str, str] | None = None,
        http: HttpClient | None = None,
        emission_factor_type: str = "lifecycle",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, zone_map)
        self.url = (url or DEFAULT_URL).rstrip("/")
        self._headers = {"auth-token": token}
        self.http = http or HttpClient(name)
        self.factor = emission_factor_type
        self.clock = clock

    def _get(self, path: str, **params: Any) -> Any:
        resp = self.http.get(f"{self.url}{path}", params=params, headers=self._headers)
        return json_body(resp, self.name)

    def _carbon_points(
        self, rows: list[Any], quality: Quality | None = None
    ) -> list[tuple[int, int, float, Quality]]:
        out = []
        for row in rows:
            start = parse_time(field(row, "datetime", self.name), f"{self.name} datetime")
            value = number(field(row, "carbonIntensity", self.name), f"{self.name} carbonIntensity")
            q = quality
            if q is None:
                q = Quality.ESTIMATED if row.get("isEstimated") else Quality.MEASURED
            out.append((start, HOUR, value, q))
        return out

    def _check_factor(self, body: Any) -> None:
        factor = body.get("emissionFactorType") if isinstance(body, Mapping) else None
        if factor and factor != self.factor:
            raise FeedDataError(
                f"{self.name}: got emissionFactorType {factor!r}, configured {self.factor!r}"
            )

    def _price_points(self, rows: list[Any], quality: Quality) -> tuple[str, list[Any]]:
        unit = None
        out = []
        for row in rows:
            row_unit = row.get("unit") if isinstance(row, Mapping) else None
            unit = unit or row_unit
            start = parse_time(field(row, "datetime", self.name), f"{self.name} datetime")
            out.append(
                (start, HOUR, number(field(row, "value", self.name), f"{self.name} price"), quality)
            )
        return self._price_unit(unit), out

    def _price_unit(self, unit: Any) -> str:
        if not isinstance(unit, str) or not unit.upper().endswith("/MWH"):
            raise FeedDataError(f"{self.name}: price unit {unit!r} is not <currency>/MWh")
        return price_unit(unit.split("/")[0])

    def latest(self, zone: str, signal: Signal, now: float) -> Series:
        self._require(signal)
        code = self.code(zone)
        fetched = time.time()
        if signal is Signal.CARBON:
            body = self._get("/carbon-intensity/latest", zone=code, emissionFactorType=self.factor)
            self._check_factor(body)
            return carbon_series(zone, self.name, self._carbon_points([body]), fetched_at=fetched)
        if signal is Signal.PRICE:
            body = self._get("/price-day-ahead/latest", zone=code)
            unit, pts = self._price_points([body], Quality.MEASURED)
            return make_series(zone, signal, unit, self.name, pts, fetched_at=fetched)
        body = self._get("/power-breakdown/latest", zone=code)
        start = parse_time(field(body, "datetime", self.name), f"{self.name} datetime")
        share = number(field(body, "renewablePercentage", self.name), "renewablePercentage")
        return make_series(
            zone,
            signal,
            "%",
            self.name,
            [(start, HOUR, share, Quality.MEASURED)],
            fetched_at=fetched,
        )

    def _recent_carbon(self, zone: str, start: float, end: float, fetched: float) -> Series:
        """The last 24 hours from /carbon-intensity/history, cut to [start, end)."""
        body = self._get(
            "/carbon-intensity/history", zone=self.code(zone), emissionFactorType=self.factor
        )
        self._check_factor(body)
        pts = [
            p
            for p in self._carbon_points(items(body, "history", self.name))
            if p[0] < end and p[0] + p[1] > start
        ]
        return carbon_series(zone, self.name, pts, fetched_at=fetched)

    def history(self, zone: str, signal: Signal, start: float, end: float) -> Series:
        self._require(signal)
        code = self.code(zone)
        fetched = time.time()
        if signal is Signal.CARBON and start >= self.clock() - HISTORY_SPAN:
            return self._recent_carbon(zone, start, end, fetched)
        pts: list[tuple[int, int, float, Quality]] = []
        unit = ""
        t = start
        while t < end:
            t1 = min(end, t + PAST_RANGE_CHUNK)
            if signal is Signal.CARBON:
                body = self._get(
                    "/carbon-intensity/past-range",
                    zone=code,
                    start=iso(t),
                    end=iso(t1),
                    emissionFactorType=self.factor,
                )
                pts += self._carbon_points(items(body, "data", self.name))
            elif signal is Signal.PRICE:
                body = self._get(
                    "/price-day-ahead/past-range", zone=code, start=iso(t), end=iso(t1)
                )
                unit, more = self._price_points(items(body, "data", self.name), Quality.MEASURED)
                pts += more
            else:
                body = self._get(
                    "/power-breakdown/past-range", zone=code, start=iso(t), end=iso(t1)
                )
                for row in items(body, "data", self.name):
                    pts.append(
                        (
                            parse_time(field(row, "datetime", self.name)),
                            HOUR,
                            number(
                                field(row, "renewablePercentage", self.name), "renewablePercentage"
                            ),
                            Quality.MEASURED,
                        )
                    )
                unit = "%"
            t = t1
        if signal is Signal.CARBON:
            return carbon_series(zone, self.name, pts, fetched_at=fetched)
        return make_series(zone, signal, unit or "%", self.name, pts, fetched_at=fetched)

    def forecast(self, zone: str, signal: Signal, now: float, hours: int) -> Series:
        self._require(signal)
        code = self.code(zone)
        fetched = time.time()
        if signal is Signal.CARBON:
            body = self._get("/carbon-intensity/forecast", zone=code, horizonHours=min(hours, 72))
            pts = self._carbon_points(items(body, "forecast", self.name), Quality.FORECAST)
            return carbon_series(zone, self.name, pts, EmissionKind.AVERAGE, fetched)
        if signal is Signal.PRICE:
            body = self._get("/price-day-ahead/forecast", zone=code)
            rows = items(body, "forecast", self.name)
            top_unit = body.get("unit") if isinstance(body, Mapping) else None
            rows = [
                {**r, "unit": r.get("unit", top_unit)} if isinstance(r, Mapping) else r
                for r in rows
            ]
            unit, pts = self._price_points(rows, Quality.FORECAST)
            return make_series(zone, signal, unit, self.name, pts, fetched_at=fetched)
        return super().forecast(zone, signal, now, hours)
