"""What feeding OpenADR PRICE events into the price signal costs the chain: a reading, a 48 h
forecast and a 36-day history of a zone, with and without a VTN overlay (a day of 15-minute
tariff intervals, half of them over, the rest announced), from a warm cache (no network).
Also the cost of one poll's update of the store (every interval for 20 zones).

    .venv/bin/python bench/openadr_prices.py

Placement asks a reading per cluster per probe and a forecast per cluster per job planned;
cost accounts ask the history once per job booked. A zone the VTN has no price for costs the
overlay one dictionary look-up.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gridaware.api.feeds import FeedsConfig, ProviderConfig, ZoneChain
from gridaware.api.signals import Signal
from gridaware.signals.chain import Feeds
from gridaware.signals.openadr import PricePoint
from gridaware.signals.providers.local import Static
from gridaware.signals.providers.openadr import VtnPrices

NOW = 1_699_999_200.0 + 1800  # 2023-11-14T22:30:00Z
QUARTER = 900
ZONES = [f"Z{i:02d}" for i in range(20)]


def tariff(zone: str) -> list[PricePoint]:
    """A day of 15-minute prices for ``zone``, half of them over."""
    return [
        PricePoint("p", f"e{i}", t, t + QUARTER, 0.2 + 0.01 * (i % 8), "EUR", "KWH", (zone,))
        for i in range(96)
        for t in [NOW - 48 * QUARTER + i * QUARTER]
    ]


def per_call(fn: Callable[[], object], n: int) -> float:
    fn()  # warm the cache
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    config = FeedsConfig(
        providers={"static": ProviderConfig(type="static")},
        default=ZoneChain(carbon=["static"], price=["static"]),
    )
    table = {z: {"carbon": 300, "price": 90, "currency": "USD"} for z in ZONES}
    vtn = VtnPrices()
    points = [p for z in ZONES for p in tariff(z)]
    update_us = per_call(lambda: vtn.update(points, NOW), 20)
    plain = Feeds(config, {"static": Static("static", table)}, lambda: NOW)
    over = Feeds(config, {"static": Static("static", table)}, lambda: NOW, overlays=[vtn])
    print(f"store update, {len(points)} intervals in {len(ZONES)} zones: {update_us:8.0f} us")
    print(f"{'per call (us)':28} {'no VTN':>10} {'VTN overlay':>12}")
    for what, call in [
        ("reading", lambda f: f.reading("Z00", Signal.PRICE)),
        ("forecast 48 h", lambda f: f.forecast("Z00", Signal.PRICE, 48)),
        ("history 36 days", lambda f: f.history("Z00", Signal.PRICE, 36 * 24)),
    ]:
        a = per_call(lambda c=call: c(plain), 500)
        b = per_call(lambda c=call: c(over), 500)
        print(f"{what:28} {a:10.1f} {b:12.1f}")
    print(f"VTN reading: {over.reading('Z00', Signal.PRICE).value:.0f} EUR/MWh (source openadr)")


if __name__ == "__main__":
    main()
