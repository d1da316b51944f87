"""The Green Software Foundation's Carbon Aware SDK WebAPI (self-hosted): emissions by
location and current forecasts. Whether its values are average or marginal depends on the
SDK's own data source, so the admin states it (``options.kind``).

The WebAPI answers 204 No Content when it has no data for a location or time range (its
controller says so); that is an empty result, not a malformed one. Rows may come newest first
and may lack ``duration`` (the documentation's own example has none): such a row lasts until
the next row's time, and a lone one is taken as a five-minute reading, the shortest interval
of the SDK's data sources, so that it never looks fresher than it is.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from gridaware.api.signals import EmissionKind, Quality, Series, Signal
from gridaware.signals.base import (
    Provider,
    carbon_series,
    field,
    iso,
    json_body,
    number,
    parse_time,
)
from gridaware.signals.errors import FeedDataError, NoDataError
from gridaware.signals.http import HttpClient

_SPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.\d+)?$")
LONE_ROW_SECONDS = 300
_ISO = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$")


def parse_duration(value: Any) -> int:
    """Seconds from a .NET TimeSpan (``01:00:00``, ``1.00:00:00``), ISO-8601 (``PT1H``) or
    a number of minutes."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return int(value * 60)
    if isinstance(value, str):
        m = _SPAN.match(value.strip())
        if m:
            d, h, mi, s = (int(g) if g else 0 for g in m.groups())
            secs = ((d * 24 + h) * 60 + mi) * 60 + s
            if secs > 0:
                return secs
        m = _ISO.match(value.strip())
        if m and any(m.groups()):
            h, mi, s = (int(g) if g else 0 for g in m.groups())
            if h * 3600 + mi * 60 + s > 0:
                return h * 3600 + mi * 60 + s
    raise FeedDataError(f"carbon-aware-sdk: unparseable duration {value!r:.40}")


class CarbonAwareSDK(Provider):
    kind = "carbon-aware-sdk"
    signals = frozenset({Signal.CARBON})

    def __init__(
        self,
        name: str,
        url: str,
        zone_map: Mapping[str, str] | None = None,
        http: HttpClient | None = None,
        kind: EmissionKind = EmissionKind.AVERAGE,
    ) -> None:
        super().__init__(name, zone_map)
        self.url = url.rstrip("/")
        self.http = http or HttpClient(name)
        self.emission_kind = kind

    def _get(self, path: str, **params: Any) -> Any:
        resp = self.http.get(f"{self.url}{path}", params=params)
        if resp.status_code == 204 or not resp.content.strip():
            return []  # the SDK's "no data" for this location and time
        return json_body(resp, self.name)

    def _points(
        self, rows: Any, value_key: str, time_key: str, quality: Quality
    ) -> list[tuple[int, int, float, Quality]]:
        if not isinstance(rows, list):
            raise FeedDataError(f"{self.name}: expected a list of emissions data")
        parsed = [
            (
                parse_time(field(r, time_key, self.name), f"{self.name} {time_key}"),
                number(field(r, value_key, self.name), f"{self.name} {value_key}"),
                r.get("duration") if isinstance(r, Mapping) else None,
            )
            for r in rows
        ]
        starts = sorted({p[0] for p in parsed})
        following: dict[int, int | None] = dict(
            zip(starts, [*starts[1:], None][: len(starts)], strict=True)
        )
        out = []
        for start, value, duration in parsed:
            if duration is not None:
                length = parse_duration(duration)
            else:
                after = following[start]
                length = LONE_ROW_SECONDS if after is None else after - start
            out.append((start, length, value, quality))
        return out

    def history(self, zone: str, signal: Signal, start: float, end: float) -> Series:
        self._require(signal)
        rows = self._get(
            "/emissions/bylocations", location=self.code(zone), time=iso(start), toTime=iso(end)
        )
        return carbon_series(
            zone,
            self.name,
            self._points(rows, "rating", "time", Quality.MEASURED),
            self.emission_kind,
            time.time(),
        )

    def latest(self, zone: str, signal: Signal, now: float) -> Series:
        series = self.history(zone, signal, now - 2 * 3600, now + 1)
        if not len(series):
            raise NoDataError(f"{self.name}: no recent value for {zone}")
        return series.window(series.start[-1], series.start[-1] + 1)

    def forecast(self, zone: str, signal: Signal, now: float, hours: int) -> Series:
        self._require(signal)
        body = self._get(
            "/emissions/forecasts/current",
            location=self.code(zone),
            dataStartAt=iso(now),
            dataEndAt=iso(now + hours * 3600),
        )
        if not isinstance(body, list) or not body:
            raise NoDataError(f"{self.name}: no forecast for {zone}")
        rows = field(body[0], "forecastData", self.name)
        return carbon_series(
            zone,
            self.name,
            self._points(rows, "value", "timestamp", Quality.FORECAST),
            self.emission_kind,
            time.time(),
        )
