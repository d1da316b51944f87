"""The GB Carbon Intensity API (National Energy System Operator; no key, CC BY 4.0).

Zones: ``GB`` is national (forecast and actual, half-hourly); ``GB-<regionid>`` (1-17, e.g.
``GB-13`` for London) is regional, which the API offers as forecasts only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from gridaware.api.signals import Quality, Series, Signal
from gridaware.signals.base import (
    Provider,
    carbon_series,
    field,
    iso,
    items,
    json_body,
    number,
    parse_time,
)
from gridaware.signals.errors import FeedDataError, NoDataError
from gridaware.signals.http import HttpClient

DEFAULT_URL = "https://api.carbonintensity.org.uk"
HALF_HOUR = 1800
MAX_RANGE = 14 * 24 * 3600


class UKCarbonIntensity(Provider):
    kind = "uk-carbon-intensity"
    signals = frozenset({Signal.CARBON})

    def __init__(
        self,
        name: str,
        url: str | None = None,
        zone_map: Mapping[str, str] | None = None,
        http: HttpClient | None = None,
    ) -> None:
        super().__init__(name, zone_map)
        self.url = (url or DEFAULT_URL).rstrip("/")
        self.http = http or HttpClient(name)

    def _get(self, path: str) -> Any:
        return json_body(
            self.http.get(f"{self.url}{path}", headers={"Accept": "application/json"}), self.name
        )

    def _region(self, zone: str) -> int | None:
        code = self.code(zone)
        if code == "GB":
            return None
        if code.startswith("GB-") and code[3:].isdigit() and 1 <= int(code[3:]) <= 17:
            return int(code[3:])
        raise NoDataError(f"{self.name}: serves GB and GB-1..GB-17, not {zone}")

    def _points(
        self, rows: list[Any], forecast_only: bool
    ) -> list[tuple[int, int, float, Quality]]:
        out = []
        for row in rows:
            start = parse_time(field(row, "from", self.name), f"{self.name} from")
            end = parse_time(field(row, "to", self.name), f"{self.name} to")
            if end <= start:
                raise FeedDataError(f"{self.name}: interval ends before it starts")
            intensity = field(row, "intensity", self.name)
            actual = None if forecast_only else intensity.get("actual")
            if actual is not None:
                out.append((start, end - start, number(actual, "actual"), Quality.MEASURED))
                continue
            fc = intensity.get("forecast") if isinstance(intensity, Mapping) else None
            if fc is None:
                continue
            out.append((start, end - start, number(fc, "forecast"), Quality.FORECAST))
        return out

    def _regional(self, zone: str, region: int, start: float) -> Series:
        body = self._get(f"/regional/intensity/{iso(start, seconds=False)}/fw48h/regionid/{region}")
        inner = field(body, "data", self.name)
        if isinstance(inner, list):  # some deployments wrap the region object in a list
            if not inner:
                raise NoDataError(f"{self.name}: no data for region {region}")
            inner = inner[0]
        rows = items(inner, "data", self.name)
        return carbon_series(zone, self.name, self._points(rows, True), fetched_at=time.time())

    def latest(self, zone: str, signal: Signal, now: float) -> Series:
        self._require(signal)
        region = self._region(zone)
        if region is not None:
            series = self._regional(zone, region, now - HALF_HOUR)
            return series.window(series.start[0], now + 1) if len(series) else series
        rows = items(self._get("/intensity"), "data", self.name)
        return carbon_series(zone, self.name, self._points(rows, False), fetched_at=time.time())

    def history(self, zone: str, signal: Signal, start: float, end: float) -> Series:
        self._require(signal)
        if self._region(zone) is not None:
            raise NoDataError(f"{self.name}: regional history is not offered, only forecasts")
        pts: list[tuple[int, int, float, Quality]] = []
        t = start
        while t < end:
            t1 = min(end, t + MAX_RANGE)
            pts += self._points(
                items(
                    self._get(f"/intensity/{iso(t, seconds=False)}/{iso(t1, seconds=False)}"),
                    "data",
                    self.name,
                ),
                False,
            )
            t = t1
        return carbon_series(zone, self.name, pts, fetched_at=time.time())

    def forecast(self, zone: str, signal: Signal, now: float, hours: int) -> Series:
        self._require(signal)
        region = self._region(zone)
        if region is not None:
            return self._regional(zone, region, now)
        rows = items(self._get(f"/intensity/{iso(now, seconds=False)}/fw48h"), "data", self.name)
        return carbon_series(zone, self.name, self._points(rows, True), fetched_at=time.time())
