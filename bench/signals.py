"""Signals benchmark: a warm-cache refresh of 20 zones (no network) and the memory of one year
of hourly history for 20 zones.

    .venv/bin/python bench/signals.py

Targets (issue "Signals"): refresh under 50 ms, memory under 20 MB.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.feedserver import FeedServer

from gridaware.api.feeds import FeedsConfig, ProviderConfig, ZoneChain
from gridaware.api.signals import Signal
from gridaware.signals.chain import Feeds
from gridaware.signals.http import HttpClient
from gridaware.signals.providers.electricitymaps import ElectricityMaps
from gridaware.signals.providers.local import Synthetic

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
    feeds = Feeds(
        config,
        {"em": ElectricityMaps("em", "k", server.url, http=HttpClient("em"))},
        clock=lambda: NOW,
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
    server.close()
    print(
        f"refresh of 20 zones (carbon+price, latest+48 h forecast), cold via local HTTP: "
        f"{cold * 1000:.0f} ms, {requests_cold} requests"
    )
    print(f"refresh of 20 zones, warm cache:  {warm * 1000:.2f} ms   (target < 50 ms)")

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


if __name__ == "__main__":
    main()
