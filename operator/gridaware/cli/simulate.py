"""``gridaware simulate``: replay a job trace on recorded grid data and compare policies, or
(``--events FILE``) replay grid events on it and report how the fleet answered and at what
cost."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gridaware.cli.output import table

if TYPE_CHECKING:
    from gridaware.sim.events import EventParams, Replayed

DEFAULT_ZONES = "US-CAL-CISO,US-MIDA-PJM,DE-LU,GB,CA-ON"


def _zones(text: str | None) -> list[str]:
    return [z.strip() for z in (text or "").split(",") if z.strip()]


def _simulate(args: argparse.Namespace) -> int:
    if args.events is not None:
        return _simulate_events(args)
    from gridaware.sim import report  # noqa: PLC0415
    from gridaware.sim.engine import Params  # noqa: PLC0415

    params = Params(
        slack=args.slack,
        carbon_weight=args.carbon_weight,
        price_weight=args.price_weight,
        migration_overhead_h=args.migration_overhead,
        migration_margin=args.migration_margin,
    )
    zones = _zones(args.zones or DEFAULT_ZONES)
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
    if args.output == "json":
        print(json.dumps(rep.to_json(), indent=2))
        report.write(rep, args.json)
        return 0
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


def _simulate_events(args: argparse.Namespace) -> int:
    """Replay a file of event windows (or GridEvents) on the traces and print the figures."""
    from gridaware.sim import eventfile  # noqa: PLC0415
    from gridaware.sim import events as ev  # noqa: PLC0415

    try:
        windows = eventfile.read(args.events, tuple(_zones(args.event_types)))
    except eventfile.EventFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    params = ev.EventParams(
        reduce_share=args.reduce_percent / 100,
        pausable_share=args.pausable_share,
        ramp_kw_per_minute=args.ramp_kw_per_minute,
        latency_s=args.checkpoint_latency,
    )
    try:
        rep = ev.replay_windows(
            windows, args.data_dir, args.workload, _zones(args.zones) or None, args.slack,
            params, args.limit, args.every,
        )  # fmt: skip
    except (OSError, ValueError) as exc:  # no trace for a zone, no workload file
        print(f"error: {exc}", file=sys.stderr)
        return 2
    doc = ev.to_json(rep.results, rep.skipped, rep.trace_start)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2))
    if args.output == "json":
        print(json.dumps(doc, indent=2))
        return 0
    _print_events(args, rep, params)
    return 0


def _print_events(args: argparse.Namespace, rep: Replayed, params: EventParams) -> None:
    from gridaware.sim import events as ev  # noqa: PLC0415

    print(
        f"{len(rep.results)} event windows replayed on {rep.trace_hours // 24} days of traces "
        f"from {_day(rep.trace_start)} ({', '.join(rep.zones)}), {rep.jobs} jobs, slack "
        f"{args.slack:g} h; where the file gives no amount: Curtail by "
        f"{100 * params.reduce_share:g} %; {100 * params.pausable_share:g} % of jobs checkpoint"
    )
    if rep.results:
        print(table(ev.rows(rep.results, rep.trace_start)))
        _print_totals(ev.totals(rep.results))
    else:
        print("no event window falls in the traces' time range and zones")
    if rep.skipped:
        print(
            f"left out: {len(rep.skipped)} windows outside the traces or the zones "
            f"(e.g. {rep.skipped[0].zone} {_day(ev.YEAR0 + rep.skipped[0].start)})"
        )


def _print_totals(t: dict[str, float]) -> None:
    ttt = t["median_time_to_target_s"]
    print(
        f"compliance {100 * t['compliance']:.1f} % (time-weighted); curtailed "
        f"{t['curtailed_kwh']:.2f} kWh, absorbed {t['absorbed_kwh']:.2f} kWh; median time to "
        f"target {'-' if math.isnan(ttt) else f'{ttt:.0f} s'} ({t['events_never_on_target']:.0f} "
        f"never on target); delay {t['delay_job_hours']:+.1f} job-h; carbon "
        f"{t['extra_carbon_kg']:+.2f} kg; deadline misses {t['deadline_misses']:.0f}"
    )


def _day(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%d")


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
        help=f"comma-separated grid zones (one region each; default {DEFAULT_ZONES}, with "
        "--events the zones of the events)",
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
    sim.add_argument(
        "-o", "--output", choices=("table", "json"), default="table", help="what to print"
    )
    ev = sim.add_argument_group("grid events (--events)")
    ev.add_argument(
        "--events",
        type=Path,
        help="replay these event windows instead of comparing policies: a grid-events CSV "
        "(zone,start_utc,end_utc,type,...; a directory: its events_*.csv), or YAML of "
        "GridEvents or their specs; windows outside the traces are left out",
    )
    ev.add_argument(
        "--event-types",
        help="only these CSV types, comma-separated (curtail, stress; default: all)",
    )
    ev.add_argument(
        "--reduce-percent",
        type=float,
        default=25.0,
        help="Curtail by this share of the baseline where the file gives no amount (CSV)",
    )
    ev.add_argument(
        "--pausable-share",
        type=float,
        default=0.6,
        help="share of jobs that checkpoint (may be paused), spread evenly (default 0.6)",
    )
    ev.add_argument("--ramp-kw-per-minute", type=float, help="ramp limit of each zone")
    ev.add_argument(
        "--checkpoint-latency",
        type=float,
        default=30.0,
        help="seconds from a pause decision to the load falling (default 30)",
    )
    sim.add_argument("--plots", type=Path, help="write PNG plots into this directory")
    sim.set_defaults(func=_simulate)
