"""``gridaware feeds check``: what each configured signal chain answers, per zone."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gridaware.api.regions import DEFAULT_LAB_REGIONS, REGIONS
from gridaware.api.signals import Signal
from gridaware.cli.output import age, table
from gridaware.signals import factory
from gridaware.signals.errors import SignalError


def _feeds_check(args: argparse.Namespace) -> int:
    config = factory.load_config(args.config)
    feeds = factory.build(config)
    zones = args.zone or sorted(config.zones) or [REGIONS[r].grid_zone for r in DEFAULT_LAB_REGIONS]
    rows, failures = [], []
    for zone in zones:
        for signal in (Signal.CARBON, Signal.PRICE):
            if not getattr(config.chain(zone), signal.value):
                continue
            try:
                r = feeds.reading(zone, signal)
            except SignalError as exc:
                failures.append(f"{zone} {signal.value}: {exc}")
                rows.append(
                    {
                        "ZONE": zone,
                        "SIGNAL": signal.value,
                        "SOURCE": "-",
                        "VALUE": "-",
                        "KIND": "-",
                        "AGE": "-",
                        "FORECAST": "-",
                        "STATUS": "FAILED",
                    }
                )
                continue
            try:
                fc = feeds.forecast(zone, signal)
                horizon = f"{max(0.0, (fc.end - feeds.clock()) / 3600):.0f}h ({fc.source})"
            except SignalError as exc:
                horizon = "none"
                failures.append(f"{zone} {signal.value} forecast: {exc}")
            status = "STALE" if r.stale else ("fallback" if r.errors else "ok")
            rows.append(
                {
                    "ZONE": zone,
                    "SIGNAL": signal.value,
                    "SOURCE": r.source,
                    "VALUE": f"{r.value:.1f} {r.unit}",
                    "KIND": f"{r.kind.value if r.kind else '-'}/{r.quality.name.lower()}",
                    "AGE": age(r.age_seconds),
                    "FORECAST": horizon,
                    "STATUS": status,
                }
            )
            failures += [f"{zone} {signal.value}: {e}" for e in r.errors]
    print(table(rows))
    for f in failures:
        print(f"warning: {f}", file=sys.stderr)
    return 1 if any(r["STATUS"] == "FAILED" for r in rows) else 0


def add(sub: Any) -> None:
    feeds = sub.add_parser("feeds", help="carbon-intensity and price feeds")
    feeds_sub = feeds.add_subparsers(dest="feeds_command", required=True)
    check = feeds_sub.add_parser(
        "check",
        help="query every configured chain and report, per "
        "zone, source, latest value, age and forecast horizon",
    )
    check.add_argument(
        "--config",
        type=Path,
        help="feeds configuration (YAML); default: the offline synthetic model",
    )
    check.add_argument(
        "--zone", action="append", help="zone to check (repeatable); default: the configured zones"
    )
    check.set_defaults(func=_feeds_check)
