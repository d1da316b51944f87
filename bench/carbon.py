"""Carbon benchmark, the canonical scenario (issue "simulator"):

- regions US-CAL-CISO, US-MIDA-PJM, DE-LU, GB and CA-ON with their 2023 hourly traces
  (lifecycle intensity; GB has no recorded prices, so its prices are synthetic),
- the Alibaba PAI trace (pai-100k: 100,000 jobs over 2023), homes assigned round-robin,
- capacity per region = 1.5 x the peak load of its home jobs run at once (50 % headroom),
- 24 h slack, checkpointable jobs (0.1 h lost per migration, 10 % hysteresis margin),
- every policy side by side; forecasts from the built-in forecaster (what the operator can
  know), then the same with perfect forecasts and with 5 % noise for comparison.

    .venv/bin/python bench/carbon.py [--limit N] [--every N] [--forecasts builtin,perfect]
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

ZONES = ["US-CAL-CISO", "US-MIDA-PJM", "DE-LU", "GB", "CA-ON"]
DATA = ROOT.parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int)
    parser.add_argument("--every", type=int, default=1, help="keep every Nth job (a sample)")
    parser.add_argument("--forecasts", default="builtin,noisy:0.05,perfect")
    parser.add_argument("--plots", type=Path)
    args = parser.parse_args()
    for model in args.forecasts.split(","):
        wall, cpu = time.time(), time.process_time()
        rep = simulate(
            ZONES,
            DATA,
            DATA / "workloads" / "pai-100k.csv",
            slack=24,
            headroom=0.5,
            forecast=model,
            limit=args.limit,
            every=args.every,
        )
        print(
            f"\n== forecasts: {rep.forecasts.source}; {rep.work.count} jobs; "
            f"{time.time() - wall:.0f} s wall, {time.process_time() - cpu:.0f} s CPU =="
        )
        print(table(rep.rows()))
        print(
            f"non-interruptible oracle {rep.results['oracle'].carbon_kg:,.0f} kg; interruptible "
            f"perfect-foresight bound {rep.interruptible_bound_kg:,.0f} kg; gridaware "
            f"{100 * rep.captured('gridaware'):.1f}% of the oracle's saving"
        )
        if model == "builtin" and args.plots:
            for p in rep.plot(args.plots):
                print(f"wrote {p}")


if __name__ == "__main__":
    main()
