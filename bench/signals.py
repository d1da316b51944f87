"""Signals benchmark: a warm-cache refresh of 20 zones (no network), the memory of one year
of hourly history for 20 zones, a refresh during a feed outage (requests per query when
8 callers refresh at once, and while backing off), and the cost of a time-of-use tariff.

    .venv/bin/python bench/signals.py

Targets (issue "Signals"): refresh under 50 ms, memory under 20 MB; during an outage one
retry budget for the whole provider and no request while backing off.
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.feedserver import Answer, FeedServer

from gridaware.api.feeds import FeedsConfig, ProviderConfig, ZoneChain
from gridaware.api.signals import Signal
from gridaware.signals.chain import Feeds
from gridaware.signals.errors import SignalError
from gridaware.signals.http import HttpClient
from gridaware.signals.providers.electricitymaps import ElectricityMaps
from gridaware.signals.providers.local import Synthetic
from gridaware.signals.providers.tou import TimeOfUse

ZONES = [f"Z{i:02d}" for i in range(20)]
NOW = dt.datetime(2023, 6, 1, 12, 30, tzinfo=dt.UTC).timestamp()


def main() -> None:
    server = FeedServer()
    latest = {"carbonIntensity": 300, "datetime": "2023-06-01T12:00Z", "isEstimated": False}
    server.route("/carbon-intensity/latest", latest)
    server.route(
        "/carbon-intensity/forecast",
        {
            "forecast": [
                {
                    "carbonIntensity": 300 + h,
                    "datetime": f"2023-06-0{1 + (12 + h) // 24}T{(12 + h) % 24:02d}:00Z",
                }
                for h in range(48)
            ]
        },
    )
    server.route(
        "/price-day-ahead/latest", {"datetime": "2023-06-01T12:00Z", "value": 80, "unit": "EUR/MWh"}
    )
    server.route(
        "/price-day-ahead/forecast",
        {
            "unit": "EUR/MWh",
            "forecast": [
                {
                    "value": 80 + h,
                    "datetime": f"2023-06-0{1 + (12 + h) // 24}T{(12 + h) % 24:02d}:00Z",
                }
                for h in range(36)
            ],
        },
    )
    config = FeedsConfig(
        providers={"em": ProviderConfig(type="electricitymaps")},
        default=ZoneChain(carbon=["em"], price=["em"]),
    )
    clock = [NOW]
    feeds = Feeds(
        config,
        {"em": ElectricityMaps("em", "k", server.url, http=HttpClient("em"))},
        clock=lambda: clock[0],
    )

    def refresh() -> None:
        for zone in ZONES:
            for signal in (Signal.CARBON, Signal.PRICE):
                feeds.reading(zone, signal)
                feeds.forecast(zone, signal)

    t = time.perf_counter()
    refresh()
    cold = time.perf_counter() - t
    requests_cold = len(server.requests)
    runs = 50
    t = time.perf_counter()
    for _ in range(runs):
        refresh()
    warm = (time.perf_counter() - t) / runs
    assert len(server.requests) == requests_cold, "a warm refresh must not touch the network"
    outage = _outage(server, feeds, clock)
    server.close()
    print(
        f"refresh of 20 zones (carbon+price, latest+48 h forecast), cold via local HTTP: "
        f"{cold * 1000:.0f} ms, {requests_cold} requests"
    )
    print(f"refresh of 20 zones, warm cache:  {warm * 1000:.2f} ms   (target < 50 ms)")
    print(outage)
    print(_tariff())

    tracemalloc.start()
    synthetic = Synthetic()
    start = dt.datetime(2023, 1, 1, tzinfo=dt.UTC).timestamp()
    before = tracemalloc.get_traced_memory()[0]
    year = [
        synthetic.history(z, s, start, start + 8760 * 3600)
        for z in ZONES
        for s in (Signal.CARBON, Signal.PRICE)
    ]
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    carbon_only = sum(
        s.start.nbytes + s.length.nbytes + s.value.nbytes + s.quality.nbytes
        for s in year
        if s.signal is Signal.CARBON
    )
    print(
        f"one year hourly, 20 zones, carbon: {carbon_only / 2**20:.1f} MiB of arrays; "
        f"carbon+price held: {held / 2**20:.1f} MiB   (target < 20 MB)"
    )


def _outage(server: FeedServer, feeds: Feeds, clock: list[float]) -> str:
    """Every endpoint fails just after the cache expired; 8 callers read every zone at once."""
    for path in ("/carbon-intensity/latest", "/price-day-ahead/latest"):
        server.route(path, Answer(503))
    clock[0] = NOW + 301  # past refresh_seconds: every latest query is due
    before = len(server.requests)
    answered: list[bool] = []

    def caller() -> None:
        for zone in ZONES:
            for signal in (Signal.CARBON, Signal.PRICE):
                try:
                    feeds.reading(zone, signal)
                    answered.append(True)
                except SignalError:
                    answered.append(False)

    t = time.perf_counter()
    threads = [threading.Thread(target=caller) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t
    first = len(server.requests) - before
    clock[0] += 5  # inside the 30 s backoff
    caller()
    again = len(server.requests) - before - first
    return (
        f"outage (every endpoint 503), 8 callers x 20 zones x 2 signals: {first} requests, "
        f"{elapsed:.1f} s, {sum(answered[:320])} of 320 readings answered (cached values); "
        f"5 s later, backing off: {again} requests"
    )


def _tariff() -> str:
    """A 15-minute-step tariff evaluation: one year of prices and a 48 h forecast."""
    schedule = [
        "00:00 valley 0.4",
        "07:00 flat 1.0",
        "10:00 peak 1.7",
        "12:00 flat 1.0",
        "17:00 peak 1.7",
        "22:00 flat 1.0",
    ]
    tou = TimeOfUse.from_options(
        "tou",
        {
            "tariff": {"zone": "Europe/Berlin", "currency": "EUR", "schedule": schedule},
            "base_price": 0.2,
        },
    )
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()
    t = time.perf_counter()
    year = tou.history("DE-LU", Signal.PRICE, start, start + 8784 * 3600)
    year_s = time.perf_counter() - t
    t = time.perf_counter()
    runs = 50
    for _ in range(runs):
        tou.forecast("DE-LU", Signal.PRICE, start, 48)
    fc_ms = (time.perf_counter() - t) / runs * 1000
    return (
        f"tou tariff: one year of prices ({len(year)} points) {year_s * 1000:.0f} ms; "
        f"48 h forecast {fc_ms:.1f} ms"
    )


if __name__ == "__main__":
    main()
