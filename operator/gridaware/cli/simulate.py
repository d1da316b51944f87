"""``gridaware simulate``: replay a job trace on recorded grid data and compare policies."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gridaware.cli.output import table


def _simulate(args: argparse.Namespace) -> int:
    from gridaware.sim import report  # noqa: PLC0415
    from gridaware.sim.engine import Params  # noqa: PLC0415

    params = Params(
        slack=args.slack,
        carbon_weight=args.carbon_weight,
        price_weight=args.price_weight,
        migration_overhead_h=args.migration_overhead,
        migration_margin=args.migration_margin,
    )
    zones = [z.strip() for z in args.zones.split(",") if z.strip()]
    rep = report.simulate(
        zones,
        args.data_dir,
        args.workload,
        slack=args.slack,
        headroom=args.headroom,
        forecast=args.forecast,
        limit=args.limit,
        params=params,
        names=args.policies.split(",") if args.policies else None,
        every=args.every,
        contracts=args.contract or (),
    )
    print(
        f"{rep.work.count} jobs, zones {', '.join(zones)}, slack {args.slack:g} h, "
        f"capacity +{100 * args.headroom:.0f}% headroom, forecasts: {rep.forecasts.source}"
    )
    print(table(rep.rows()))
    bound = rep.interruptible_bound_kg
    oracle = rep.results["oracle"].carbon_kg if "oracle" in rep.results else float("nan")
    print(
        f"non-interruptible oracle: {oracle:,.0f} kg; interruptible perfect-foresight bound: "
        f"{bound:,.0f} kg (OF ORACLE / OF BOUND: share of each one's saving captured)"
    )
    for zone, src in zip(rep.regions.zones, rep.regions.price_sources, strict=True):
        if src.startswith("synthetic"):
            print(f"note: {zone} prices are {src}")
    report.write(rep, args.json)
    if args.plots:
        for path in rep.plot(args.plots):
            print(f"wrote {path}")
    return 0


def add(sub: Any) -> None:
    sim = sub.add_parser(
        "simulate",
        help="replay a job trace on recorded grid data and "
        "compare policies (gridaware, simpler ones, the optimum)",
    )
    sim.add_argument(
        "--data-dir",
        type=Path,
        default=Path("../shared/data"),
        help="directory with carbon/<ZONE>_<YEAR>_hourly.csv and prices/<ZONE>_electricity_"
        "prices_<YEAR>.csv traces, any year or range (default: ../shared/data)",
    )
    sim.add_argument(
        "--zones",
        default="US-CAL-CISO,US-MIDA-PJM,DE-LU,GB,CA-ON",
        help="comma-separated grid zones (one region each)",
    )
    sim.add_argument(
        "--workload",
        type=Path,
        default=Path("../shared/data/workloads/pai-100k.csv"),
        help="job trace: arrival_time,length,cpus (GAIA format)",
    )
    sim.add_argument("--limit", type=int, help="use only the first N jobs")
    sim.add_argument(
        "--every", type=int, default=1, help="use every Nth job (a sample over the whole trace)"
    )
    sim.add_argument("--slack", type=float, default=24.0, help="hours of slack per job")
    sim.add_argument(
        "--headroom",
        type=float,
        default=0.5,
        help="capacity above each region's peak run-at-once load (default 0.5)",
    )
    sim.add_argument(
        "--forecast",
        default="builtin",
        help="builtin (regression fitted on the past), blend (the former seasonal blend), "
        "perfect, or noisy:STD (e.g. noisy:0.05)",
    )
    sim.add_argument("--carbon-weight", type=float, default=1.0)
    sim.add_argument("--price-weight", type=float, default=0.0)
    sim.add_argument(
        "--migration-overhead",
        type=float,
        default=0.1,
        help="hours lost per migration (checkpoint + restart)",
    )
    sim.add_argument(
        "--migration-margin",
        type=float,
        default=0.1,
        help="required relative saving beyond the overhead (hysteresis)",
    )
    sim.add_argument(
        "--contract",
        action="append",
        help="a green contract, repeatable: SHAPE:POWER@ZONE[,g=GCO2][,price=USD_PER_MWH][,cf=F] "
        "(SHAPE baseload, solar or wind; POWER in kW or with kW/MW), e.g. solar:500kW@US-CAL-CISO;"
        " adds CFE % columns and the policy gridaware+contracts (objective.valueContracts)",
    )
    sim.add_argument("--policies", help="comma-separated subset (default: all)")
    sim.add_argument("--json", type=Path, help="write the results as JSON here")
    sim.add_argument("--plots", type=Path, help="write PNG plots into this directory")
    sim.set_defaults(func=_simulate)
