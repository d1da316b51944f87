"""Temporal scenarios (issue 12): one zone each, so every saving comes from timing alone.

Per scenario, with the built-in forecaster (fitted on the past only) for every policy but the
oracles: carbon saved against running at once by ``lowest-window``, ``gridaware``
(non-interruptible, re-planned hourly), the non-interruptible oracle, ``gridaware-
interruptible`` (checkpointable jobs: pause and resume in place) and the interruptible
perfect-foresight bound, with the ratios the issue's targets are stated in side by side.

    .venv/bin/python bench/temporal.py [--every 20] [--forecast builtin]

The job trace is the Alibaba PAI trace (pai-100k), every Nth job (a sample spread over the
whole year), capacity 1.5 x the peak run-at-once load as in bench/carbon.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "operator"))

from gridaware.cli.output import table  # noqa: E402
from gridaware.sim.report import simulate  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
SCENARIOS = [("DE-LU", 24.0), ("US-CAL-CISO", 6.0), ("GB", 24.0), ("AU-NSW", 12.0), ("ZA", 24.0)]
NAMES = ["now", "lowest-window", "gridaware", "oracle", "gridaware-interruptible"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--every", type=int, default=20, help="keep every Nth job of pai-100k")
    parser.add_argument("--forecast", default="builtin")
    parser.add_argument("--zones", help="comma-separated subset of the scenarios' zones")
    args = parser.parse_args()
    chosen = [s for s in SCENARIOS if not args.zones or s[0] in args.zones.split(",")]
    rows = []
    for zone, slack in chosen:
        wall = time.time()
        rep = simulate(
            [zone],
            DATA,
            DATA / "workloads" / "pai-100k.csv",
            slack=slack,
            forecast=args.forecast,
            names=NAMES,
            every=args.every,
        )
        res = rep.results
        bound = rep.interruptible_bound_kg
        lw, ga = rep.captured("lowest-window"), rep.captured("gridaware")
        gi = rep.captured("gridaware-interruptible", bound)
        rows.append(
            {
                "ZONE": zone,
                "SLACK h": f"{slack:g}",
                "JOBS": str(rep.work.count),
                "NOW kg": f"{res['now'].carbon_kg:,.0f}",
                "ORACLE kg": f"{res['oracle'].carbon_kg:,.0f}",
                "BOUND kg": f"{bound:,.0f}",
                "LOWEST-WINDOW %oracle": f"{100 * lw:.1f}",
                "GRIDAWARE %oracle": f"{100 * ga:.1f}",
                "GA > LW": "yes" if ga > lw else "NO",
                "INTERRUPTIBLE %bound": f"{100 * gi:.1f}",
                "ORACLE %bound": f"{100 * rep.captured('oracle', bound):.1f}",
                "MISSES": str(sum(r.deadline_misses for r in res.values())),
                "PAUSES/JOB": f"{res['gridaware-interruptible'].pauses_per_job:.2f}",
                "s": f"{time.time() - wall:.0f}",
            }
        )
        print(f"{zone}: {rep.forecasts.source}", flush=True)
        print(table(rep.rows()), flush=True)
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
