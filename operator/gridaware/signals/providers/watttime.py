"""WattTime API v3: marginal operating emissions (``co2_moer``), forecast and history.

Login is HTTP Basic on ``/login`` and returns a bearer token valid for about 30 minutes; it is
refreshed before expiry and once more when a data call answers 401. MOER values come in
lbs CO2/MWh and are converted to g/kWh (x 0.45359237) and labelled *marginal*: they must never be
compared with the average intensities of other providers.

A 403 whose body says "Invalid scope" means the login worked but the region or signal is
outside the account's plan (free accounts get one region): that is ``FeedScopeError``, with
WattTime's own sentence, not a credentials problem. Any other 401/403 (WattTime's nginx
answers an expired or refused token with an HTML 403 page) triggers one new login, and only
then becomes ``FeedAuthError``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from gridaware.api.signals import EmissionKind, Quality, Series, Signal
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
from gridaware.signals.errors import FeedAuthError, FeedDataError, FeedScopeError
from gridaware.signals.http import HttpClient

DEFAULT_URL = "https://api.watttime.org"
LBS_PER_MWH_TO_G_PER_KWH = 0.45359237
TOKEN_LIFETIME = 25 * 60
HISTORY_CHUNK = 30 * 24 * 3600


class WattTime(Provider):
    kind = "watttime"
    signals = frozenset({Signal.CARBON})

    def __init__(
        self,
        name: str,
        username: str,
        password: str,
        url: str | None = None,
        zone_map: Mapping[str, str] | None = None,
        http: HttpClient | None = None,
    ) -> None:
        super().__init__(name, zone_map)
        self.url = (url or DEFAULT_URL).rstrip("/")
        self._auth = (username, password)
        self.http = http or HttpClient(name)
        self._token: str | None = None
        self._token_at = 0.0

    def _login(self) -> str:
        resp = self.http.get(f"{self.url}/login", auth=self._auth)
        token = field(json_body(resp, self.name), "token", f"{self.name} login")
        if not isinstance(token, str) or not token:
            raise FeedDataError(f"{self.name}: login answered without a token")
        self._token, self._token_at = token, time.monotonic()
        return token

    def _scope(self, exc: FeedAuthError, path: str, params: Mapping[str, Any]) -> None:
        """Raise FeedScopeError when a 403 says the plan does not cover the request."""
        if exc.status == 403 and "invalid scope" in exc.detail.lower():
            message = _message(exc.detail)
            raise FeedScopeError(
                f"{self.name}: region {params.get('region', '?')} ({path}) is outside this "
                f"WattTime account's plan (403 Invalid scope): {message}"
            ) from None

    def _call(self, path: str, params: Mapping[str, Any]) -> Any:
        resp = self.http.get(
            f"{self.url}{path}", params=params, headers={"Authorization": f"Bearer {self._token}"}
        )
        return json_body(resp, self.name)

    def _get(self, path: str, **params: Any) -> Any:
        if self._token is None or time.monotonic() - self._token_at > TOKEN_LIFETIME:
            self._login()
        try:
            return self._call(path, params)
        except FeedAuthError as exc:
            self._scope(exc, path, params)
        # the token expired early or was revoked: log in again, once
        self._login()
        try:
            return self._call(path, params)
        except FeedAuthError as exc:
            self._scope(exc, path, params)
            raise

    def _series(self, zone: str, body: Any, quality: Quality) -> Series:
        meta = field(body, "meta", self.name)
        units = meta.get("units") if isinstance(meta, Mapping) else None
        if units != "lbs_co2_per_mwh":
            raise FeedDataError(f"{self.name}: unexpected units {units!r} (want lbs_co2_per_mwh)")
        period = int(number(meta.get("data_point_period_seconds", 300), "period"))
        if period <= 0:
            raise FeedDataError(f"{self.name}: data_point_period_seconds must be positive")
        pts = []
        for row in items(body, "data", self.name):
            start = parse_time(field(row, "point_time", self.name), f"{self.name} point_time")
            lbs = number(field(row, "value", self.name), f"{self.name} value")
            pts.append((start, period, lbs * LBS_PER_MWH_TO_G_PER_KWH, quality))
        return carbon_series(zone, self.name, pts, EmissionKind.MARGINAL, time.time())

    def latest(self, zone: str, signal: Signal, now: float) -> Series:
        self._require(signal)
        body = self._get(
            "/v3/forecast", region=self.code(zone), signal_type="co2_moer", horizon_hours=0
        )
        series = self._series(zone, body, Quality.ESTIMATED)
        return series if len(series) <= 1 else series.window(series.start[0], series.start[0] + 1)

    def history(self, zone: str, signal: Signal, start: float, end: float) -> Series:
        self._require(signal)
        out: Series | None = None
        t = start
        while t < end:
            t1 = min(end, t + HISTORY_CHUNK)
            body = self._get(
                "/v3/historical",
                region=self.code(zone),
                start=iso(t),
                end=iso(t1),
                signal_type="co2_moer",
            )
            part = self._series(zone, body, Quality.MEASURED)
            out = part if out is None else out.concat(part)
            t = t1
        if out is None:
            return carbon_series(zone, self.name, [], EmissionKind.MARGINAL)
        return out

    def forecast(self, zone: str, signal: Signal, now: float, hours: int) -> Series:
        self._require(signal)
        body = self._get(
            "/v3/forecast",
            region=self.code(zone),
            signal_type="co2_moer",
            horizon_hours=max(1, min(72, hours)),
        )
        return self._series(zone, body, Quality.FORECAST)


def _message(detail: str) -> str:
    """WattTime's own explanation from a JSON error body (``message`` or ``msg``)."""
    try:
        body = json.loads(detail)
    except ValueError:
        return detail
    if isinstance(body, Mapping):
        for key in ("message", "msg", "error"):
            if isinstance(body.get(key), str):
                return str(body[key])
    return detail
