"""Forecast accuracy of the built-in forecasters on every zone of the shared data (issue 12).

Rolling origin: at every hour from day 60 of 2023 to two days before its end, each forecaster
sees only the hours before the origin (``regression`` fits its weights on them, refitted once
a day) and forecasts the next 48 h. MAE (g/kWh) and MAPE at leads 1, 6, 24 and 48 h:

- ``persistence``: the last observed value,
- ``blend``: the former built-in (7-day seasonal profile, current gap fading, 6 h half-life),
- ``regression``: the built-in forecaster (``core.forecast.regression``).

    .venv/bin/python bench/forecast.py [--zones DE-LU,GB]

Published day-ahead accuracy for comparison (different years and methods, with weather and
generation forecasts as inputs): the GB ESO Carbon Intensity API forecast, up to 48 h ahead,
Sept 2017 - March 2023, MAE 13.7 g/kWh and MAPE about 7.1 % (nickmp.com, "Carbon Intensity
Forecast Tracking"); Germany, generation-based emission factor, day-ahead, best model
(gradient boosting) MAE 40.7 g/kWh, MAPE 8.2 % (Energy Informatics 7:2, 2024).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "operator"))

from gridaware.api.signals import Signal  # noqa: E402
from gridaware.cli.output import table  # noqa: E402
from gridaware.core import forecast  # noqa: E402
from gridaware.signals.providers.local import Replay  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
LEADS = (1, 6, 24, 48)
HORIZON = 48
WARMUP = 60 * 24


def zone_errors(y: np.ndarray) -> dict[str, dict[int, tuple[float, float]]]:
    """Per forecaster and lead: (MAE, MAPE %) over every origin after the warm-up."""
    origins = np.arange(WARMUP, y.size - HORIZON)
    models = {
        "persistence": np.repeat(y[origins - 1][:, None], HORIZON, axis=1),
        "blend": forecast.seasonal_blend_all(y, HORIZON)[origins],
        "regression": forecast.regression_all(y, HORIZON)[origins],
    }
    out: dict[str, dict[int, tuple[float, float]]] = {}
    for name, pred in models.items():
        out[name] = {}
        for lead in LEADS:
            truth = y[origins + lead - 1]
            err = np.abs(pred[:, lead - 1] - truth)
            out[name][lead] = (float(err.mean()), float(100 * np.mean(err / np.abs(truth))))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--zones", help="comma-separated subset (default: every zone)")
    args = parser.parse_args()
    replay = Replay("replay", DATA)
    start = int(dt.datetime(2023, 1, 1, tzinfo=dt.UTC).timestamp())
    zones = sorted(p.name.split("_")[0] for p in (DATA / "carbon").glob("*_hourly.csv"))
    if args.zones:
        zones = [z for z in zones if z in args.zones.split(",")]
    rows, mean_rows = [], {}
    cpu = time.process_time()
    for zone in zones:
        series = replay.history(zone, Signal.CARBON, start, start + 8760 * 3600)
        y = forecast._filled(series.hourly(start, 8760))
        errors = zone_errors(y)
        for name, by_lead in errors.items():
            row = {"ZONE": zone, "MODEL": name}
            for lead in LEADS:
                mae, mape = by_lead[lead]
                row[f"{lead}h MAE"] = f"{mae:.1f}"
                row[f"{lead}h MAPE"] = f"{mape:.1f}%"
                mean_rows.setdefault(name, {}).setdefault(lead, []).append((mae, mape))
            rows.append(row)
        print(f"{zone} done", file=sys.stderr, flush=True)
    print(table(rows))
    print("\nmean over zones (MAE g/kWh, MAPE %):")
    summary = []
    for name, by_lead in mean_rows.items():
        row = {"MODEL": name}
        for lead in LEADS:
            vals = np.array(by_lead[lead])
            row[f"{lead}h MAE"] = f"{vals[:, 0].mean():.1f}"
            row[f"{lead}h MAPE"] = f"{vals[:, 1].mean():.1f}%"
        summary.append(row)
    print(table(summary))
    print(f"\n{len(zones)} zones, {time.process_time() - cpu:.0f} s CPU")


if __name__ == "__main__":
    main()
