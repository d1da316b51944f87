"""Forecast accuracy of the built-in forecasters on every zone of the shared data (issue 12).

Rolling origin: at every hour from day 60 of 2023 to two days before its end, each forecaster
sees only the hours before the origin (``regression`` fits its weights on them, refitted once
a day) and forecasts the next 48 h. MAE (g/kWh) and MAPE at leads 1, 6, 24 and 48 h, and
TIMING: the share of the oracle's saving that deciding at arrival on the forecast keeps (a
3-hour job arriving at every origin may start in the next 24 h; its start is the forecast's
cheapest, costed on what came), which is what a forecast is for here and, unlike the job
simulation, is measured at every hour, so a difference of half a point is not chance.

- ``persistence``: the last observed value,
- ``blend``: the former built-in (7-day seasonal profile, current gap fading, 6 h half-life),
- ``regression-alone``: the least-squares forecaster without the blend (``combined=0``),
- ``regression``: the built-in forecaster (``core.forecast.regression``: the two combined).

The means over zones are printed for origins in January-June (H1, on which the combination's
share was chosen), July-December (H2, held out) and all.

    .venv/bin/python bench/forecast.py [--zones DE-LU,GB]

2023, mean of the 16 zones, regression-alone -> regression (the combination's share chosen on
H1): H1 MAE 1 h 6.9 -> 6.9, 6 h 20.5 -> 20.4, 24 h 27.1 -> 27.0, 48 h 31.5 -> 30.8 g/kWh,
TIMING 83.2 -> 83.7 %; H2 (held out) 6.7 -> 6.7, 20.2 -> 20.2, 28.0 -> 28.0, 33.4 -> 32.5,
TIMING 83.6 -> 83.9 %. The seasonal blend alone: TIMING 83.4 % (H1), 83.1 % (H2).

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
MID = 181 * 24  # 1 July
JOB, SLACK = 3, 24  # the timing figure's job: hours of run, hours it may wait


def timing_share(y: np.ndarray, pred: np.ndarray, origins: np.ndarray) -> tuple[float, float]:
    """(saving kept, oracle saving) summed over ``origins`` for a JOB-hour job that may start
    up to SLACK hours later, started where ``pred`` (rows: origins) puts the cheapest run."""
    ok = origins + SLACK + JOB <= y.size
    o, p = origins[ok], pred[ok]
    cs = np.concatenate([[0.0], np.cumsum(y)])
    starts = o[:, None] + np.arange(SLACK + 1)
    actual = cs[starts + JOB] - cs[starts]
    pcs = np.concatenate([np.zeros((p.shape[0], 1)), np.cumsum(p, axis=1)], axis=1)
    k = np.arange(SLACK + 1)
    chosen = np.argmin(pcs[:, k + JOB] - pcs[:, k], axis=1)
    got = actual[np.arange(o.size), chosen]
    return float((actual[:, 0] - got).sum()), float((actual[:, 0] - actual.min(axis=1)).sum())


def zone_errors(y: np.ndarray) -> dict[str, dict[str, dict[str, float]]]:
    """Per forecaster, per part of the year (H1, H2, all): MAE and MAPE % per lead, TIMING %."""
    origins = np.arange(WARMUP, y.size - HORIZON)
    models = {
        "persistence": np.repeat(y[origins - 1][:, None], HORIZON, axis=1),
        "blend": forecast.seasonal_blend_all(y, HORIZON)[origins],
        "regression-alone": forecast.regression_all(y, HORIZON, combined=0.0)[origins],
        "regression": forecast.regression_all(y, HORIZON)[origins],
    }
    parts = {"H1": origins < MID, "H2": origins >= MID, "all": origins >= 0}
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, pred in models.items():
        out[name] = {}
        for part, sel in parts.items():
            o, p = origins[sel], pred[sel]
            figures: dict[str, float] = {}
            for lead in LEADS:
                truth = y[o + lead - 1]
                err = np.abs(p[:, lead - 1] - truth)
                figures[f"{lead}h MAE"] = float(err.mean())
                figures[f"{lead}h MAPE"] = float(100 * np.mean(err / np.abs(truth)))
            kept, room = timing_share(y, p, o)
            figures["TIMING"] = 100 * kept / room if room > 0 else 100.0
            out[name][part] = figures
    return out


def _row(figures: dict[str, float]) -> dict[str, str]:
    row = {}
    for lead in LEADS:
        row[f"{lead}h MAE"] = f"{figures[f'{lead}h MAE']:.1f}"
        row[f"{lead}h MAPE"] = f"{figures[f'{lead}h MAPE']:.1f}%"
    row["TIMING"] = f"{figures['TIMING']:.1f}%"
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--zones", help="comma-separated subset (default: every zone)")
    args = parser.parse_args()
    replay = Replay("replay", DATA)
    start = int(dt.datetime(2023, 1, 1, tzinfo=dt.UTC).timestamp())
    zones = sorted(p.name.split("_")[0] for p in (DATA / "carbon").glob("*_hourly.csv"))
    if args.zones:
        zones = [z for z in zones if z in args.zones.split(",")]
    rows = []
    per_zone: list[dict[str, dict[str, dict[str, float]]]] = []
    cpu = time.process_time()
    for zone in zones:
        series = replay.history(zone, Signal.CARBON, start, start + 8760 * 3600)
        y = forecast._filled(series.hourly(start, 8760))
        errors = zone_errors(y)
        per_zone.append(errors)
        rows += [{"ZONE": zone, "MODEL": n, **_row(e["all"])} for n, e in errors.items()]
        print(f"{zone} done", file=sys.stderr, flush=True)
    print(table(rows))
    for part in ("H1", "H2", "all"):
        print(f"\nmean over zones, origins in {part} (MAE g/kWh, MAPE %, TIMING %):")
        summary = []
        for name in per_zone[0]:
            keys = per_zone[0][name][part]
            mean = {k: float(np.mean([z[name][part][k] for z in per_zone])) for k in keys}
            summary.append({"MODEL": name, **_row(mean)})
        print(table(summary))
    print(f"\n{len(zones)} zones, {time.process_time() - cpu:.0f} s CPU")


if __name__ == "__main__":
    main()
