"""The ``gridaware`` command line: ``lab`` (local clusters), and more as the product grows.

Errors that users can fix are printed as one line prefixed with ``error:`` and a non-zero exit
code; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gridaware import __version__
from gridaware.api.regions import DEFAULT_LAB_REGIONS, REGIONS, UnknownRegionError
from gridaware.api.signals import Signal
from gridaware.k8s.clients import FAILURES, KubeconfigError
from gridaware.lab import kind, local, supervisor
from gridaware.lab.errors import LabError
from gridaware.lab.model import NodePool, plan
from gridaware.signals import factory
from gridaware.signals.errors import SignalError


def table(rows: list[dict[str, str]]) -> str:
    """Rows of equal keys as an aligned plain-text table (kubectl style)."""
    if not rows:
        return ""
    headers = list(rows[0])
    widths = {h: max(len(h), *(len(r[h]) for r in rows)) for h in headers}
    lines = ["   ".join(h.ljust(widths[h]) for h in headers).rstrip()]
    lines += ["   ".join(r[h].ljust(widths[h]) for h in headers).rstrip() for r in rows]
    return "\n".join(lines)


def _lab_up(args: argparse.Namespace) -> int:
    regions = (
        [r.strip() for r in args.regions.split(",") if r.strip()]
        if args.regions
        else (
            list(DEFAULT_LAB_REGIONS[: args.members])
            if args.members <= len(DEFAULT_LAB_REGIONS)
            else list(DEFAULT_LAB_REGIONS)
            + [r for r in REGIONS if r not in DEFAULT_LAB_REGIONS][
                : args.members - len(DEFAULT_LAB_REGIONS)
            ]
        )
    )
    pool = NodePool(
        count=args.nodes, cpu=args.node_cpu, memory=args.node_memory, gpus=args.node_gpus
    )
    lab_plan = plan(regions, nodes=pool, backend=args.backend, port_base=args.port_base)
    if args.backend == "kind":
        kind.up(lab_plan, args.state_dir, Path(args.kind_config))
    else:
        local.up(lab_plan, args.state_dir)
    return _lab_status(args)


def _lab_status(args: argparse.Namespace) -> int:
    state = local.load_state(args.state_dir)
    if state is None:
        raise LabError(f"no lab at {args.state_dir} (start one with 'gridaware lab up')")
    print(table(local.cluster_rows(state)))
    print(
        f"\nkubeconfig: {state.kubeconfig}  (contexts: "
        f"{', '.join(c.plan.name for c in state.clusters)})"
    )
    problems = local.health_problems(state)
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    return 1 if problems else 0


def _lab_down(args: argparse.Namespace) -> int:
    started = time.monotonic()
    state = local.load_state(args.state_dir)
    if state is not None and state.backend == "kind":
        kind.down(args.state_dir)
    else:
        local.down(args.state_dir)
    print(f"lab at {args.state_dir} stopped and removed in {time.monotonic() - started:.1f}s")
    return 0


def _lab_register(args: argparse.Namespace) -> int:
    from gridaware.lab import register  # noqa: PLC0415

    state = local.load_state(args.state_dir)
    if state is None:
        raise LabError(f"no lab at {args.state_dir} (start one with 'gridaware lab up')")
    register.register(state)
    members = [c.plan.name for c in state.clusters if c.plan.role == "member"]
    print(f"CRDs installed on the hub; registered {', '.join(members)} as GridClusters")
    return 0


def _lab_operator(args: argparse.Namespace) -> int:
    state = local.load_state(args.state_dir)
    if state is None:
        raise LabError(f"no lab at {args.state_dir} (start one with 'gridaware lab up')")
    extra = ["--probe-interval", str(args.probe_interval)]
    if args.feeds_config:
        extra += ["--feeds-config", str(args.feeds_config.resolve())]
    rec = local.start_operator(state, extra)
    time.sleep(1.0)
    if not supervisor.alive(rec):
        raise LabError(
            f"the operator exited at once; see {rec.log}: " + supervisor.log_tail(rec, 1)
        )
    print(f"operator running (pid {rec.pid}); log: {rec.log}")
    return 0


def _lab_env(args: argparse.Namespace) -> int:
    state = local.load_state(args.state_dir)
    if state is None:
        raise LabError(f"no lab at {args.state_dir} (start one with 'gridaware lab up')")
    print(f"export KUBECONFIG={state.kubeconfig}")
    rss = supervisor.rss_bytes(p for c in state.clusters for p in c.processes)
    print(f"# {len(state.clusters)} clusters, {rss / 2**20:.0f} MiB resident", file=sys.stderr)
    return 0


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


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
                    "AGE": _age(r.age_seconds),
                    "FORECAST": horizon,
                    "STATUS": status,
                }
            )
            failures += [f"{zone} {signal.value}: {e}" for e in r.errors]
    print(table(rows))
    for f in failures:
        print(f"warning: {f}", file=sys.stderr)
    return 1 if any(r["STATUS"] == "FAILED" for r in rows) else 0


def _crds(args: argparse.Namespace) -> int:
    from gridaware.api import crd  # noqa: PLC0415

    for out in args.out or [Path("crds"), Path("helm/gridaware/crds")]:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in crd.render().items():
            (out / name).write_text(text)
            print(f"wrote {out / name}")
    return 0


def _since(stamp: str | None) -> str:
    if not stamp:
        return "-"
    import datetime as dt  # noqa: PLC0415

    then = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return _age((dt.datetime.now(dt.UTC) - then).total_seconds())


def _job_state(st: dict[str, Any], why: str) -> str:
    """Phase plus what is going on: a deferral with its planned start, a migration step."""
    mig = st.get("migration")
    if mig:
        return f"Migrating ({mig['step']}: {mig['source']} -> {mig['target']})"
    deferral = st.get("deferral")
    if deferral and _condition(st, "Deferred").get("status") == "True":
        return (
            f"Deferred (until {deferral['plannedStart']} in {deferral['cluster']}, "
            f"{deferral['expectedCarbon']:.0f} g/kWh)"
        )
    return str(st.get("phase", "Pending")) + (f" ({why})" if why else "")


def _condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == type_), {})


def _status(args: argparse.Namespace) -> int:
    from gridaware.k8s import clients, hub  # noqa: PLC0415

    client = clients.client_for(clients.hub_configuration(args.kubeconfig, args.context))
    jobs = []
    for body in sorted(
        hub.list_jobs(client), key=lambda b: (b["metadata"]["namespace"], b["metadata"]["name"])
    ):
        st = body.get("status") or {}
        sched: dict[str, Any] = next(
            (c for c in st.get("conditions", []) if c["type"] == "Scheduled"), {}
        )
        why = "" if sched.get("reason") in (None, "Placed", "Adopted") else sched["reason"]
        carbon = st.get("carbonAtPlacement")
        jobs.append(
            {
                "JOB": f"{body['metadata']['namespace']}/{body['metadata']['name']}",
                "CLUSTER": st.get("cluster", "-"),
                "REGION": st.get("region", "-"),
                "STATE": _job_state(st, why),
                "gCO2/kWh AT PLACEMENT": "-" if carbon is None else f"{carbon:.0f}",
                "MOVES": str(len(st.get("migrations") or [])),
                "AGE": _since(body["metadata"].get("creationTimestamp")),
            }
        )
    clusters = []
    for body in sorted(hub.list_clusters(client), key=lambda b: b["metadata"]["name"]):
        spec, st = body.get("spec") or {}, body.get("status") or {}
        reach: dict[str, Any] = next(
            (c for c in st.get("conditions", []) if c["type"] == "Reachable"), {}
        )
        free = st.get("free") or {}
        carbon, price = st.get("carbon") or {}, st.get("price") or {}
        clusters.append(
            {
                "CLUSTER": body["metadata"]["name"],
                "REGION": spec.get("region", "-"),
                "ZONE": spec.get("gridZone", "-"),
                "REACHABLE": reach.get("status", "Unknown"),
                "FREE CPU/MEM/GPU": (
                    f"{free.get('cpu', 0):g}/{free.get('memory', 0) / 2**30:.0f}Gi/"
                    f"{free.get('gpu', 0):g}"
                )
                if free
                else "-",
                "gCO2/kWh": f"{carbon['value']:.0f}{' (stale)' if carbon.get('stale') else ''}"
                if carbon
                else "-",
                "PRICE": f"{price['value']:.1f} {price['unit']}" if price else "-",
                "JOBS": str(st.get("jobs", 0)),
            }
        )
    print(table(clusters) if clusters else "no GridClusters registered")
    print()
    print(table(jobs) if jobs else "no GridAwareJobs")
    return 0


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
    )
    print(
        f"{rep.work.count} jobs, zones {', '.join(zones)}, slack {args.slack:g} h, "
        f"capacity +{100 * args.headroom:.0f}% headroom, forecasts: {rep.forecasts.source}"
    )
    print(table(rep.rows()))
    print(f"interruptible perfect-foresight bound: {rep.interruptible_bound_kg:,.0f} kg")
    for zone, src in zip(rep.regions.zones, rep.regions.price_sources, strict=True):
        if src.startswith("synthetic"):
            print(f"note: {zone} prices are {src}")
    report.write(rep, args.json)
    if args.plots:
        for path in rep.plot(args.plots):
            print(f"wrote {path}")
    return 0


def _run(args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415

    import kopf  # noqa: PLC0415

    from gridaware.handlers import operator  # noqa: F401, PLC0415 - registers handlers
    from gridaware.handlers.runtime import RUNTIME  # noqa: PLC0415

    RUNTIME.kubeconfig = args.kubeconfig
    RUNTIME.context = args.context
    RUNTIME.feeds_config = factory.load_config(args.feeds_config)
    RUNTIME.probe_interval = args.probe_interval
    RUNTIME.retry_delay = args.retry_delay
    RUNTIME.metrics_port = args.metrics_port
    if args.replay_start or args.speedup != 1.0:
        import datetime as dt  # noqa: PLC0415

        from gridaware.core.clock import GridClock  # noqa: PLC0415

        wall = time.time()
        start = (
            dt.datetime.fromisoformat(args.replay_start.replace("Z", "+00:00")).timestamp()
            if args.replay_start
            else wall
        )
        RUNTIME.clock = GridClock(wall, start, args.speedup)
        RUNTIME.replan_wall_seconds = max(1.0, 60.0 / args.speedup)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("kopf.objects", "kubernetes", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING if not args.verbose else logging.DEBUG)
    asyncio.run(
        kopf.operator(
            clusterwide=True,
            standalone=args.peering is None,
            peering_name=args.peering,
            priority=args.priority,
            liveness_endpoint=args.liveness,
        )
    )
    return 0


def _add_lab(sub: Any) -> None:
    lab = sub.add_parser("lab", help="local multi-region Kubernetes clusters (no Docker needed)")
    lab.add_argument(
        "--state-dir",
        type=Path,
        default=local.default_state_dir(),
        help="where the lab keeps its state (default: %(default)s; env GRIDAWARE_LAB_DIR)",
    )
    lab_sub = lab.add_subparsers(dest="lab_command", required=True)
    up = lab_sub.add_parser("up", help="start a hub and member clusters (no-op when running)")
    up.add_argument(
        "--members",
        type=int,
        default=3,
        choices=range(1, len(REGIONS) + 1),
        metavar="N",
        help="number of member clusters (default: %(default)s)",
    )
    up.add_argument(
        "--regions",
        help="comma-separated member regions, e.g. "
        f"{','.join(DEFAULT_LAB_REGIONS)}; known: {', '.join(sorted(REGIONS))}",
    )
    up.add_argument("--nodes", type=int, default=2, help="fake nodes per member (default: 2)")
    up.add_argument("--node-cpu", default="32", help="cpu per node (default: 32)")
    up.add_argument("--node-memory", default="128Gi", help="memory per node (default: 128Gi)")
    up.add_argument("--node-gpus", type=int, default=4, help="nvidia.com/gpu per node (default: 4)")
    up.add_argument(
        "--port-base",
        type=int,
        help="use consecutive ports from here (default: free ports chosen by the OS)",
    )
    up.add_argument(
        "--backend",
        choices=["binary", "kind"],
        default="binary",
        help="binary: local processes (default); kind: Docker containers",
    )
    up.add_argument(
        "--kind-config",
        default="kind-config.yaml",
        help="kind cluster template for --backend kind (default: %(default)s)",
    )
    up.set_defaults(func=_lab_up)
    lab_sub.add_parser("status", help="clusters, API URLs, nodes, dead components").set_defaults(
        func=_lab_status
    )
    lab_sub.add_parser("down", help="stop every lab process and remove the state").set_defaults(
        func=_lab_down
    )
    lab_sub.add_parser("env", help="print the KUBECONFIG export for the lab").set_defaults(
        func=_lab_env
    )
    lab_sub.add_parser(
        "register", help="install the CRDs on the hub and register the members as GridClusters"
    ).set_defaults(func=_lab_register)
    lab_op = lab_sub.add_parser(
        "operator",
        help="run the operator against the lab's hub in the background (stopped by 'lab down')",
    )
    lab_op.add_argument("--feeds-config", type=Path, help="feeds configuration (YAML)")
    lab_op.add_argument("--probe-interval", type=float, default=5.0)
    lab_op.set_defaults(func=_lab_operator)


def _add_feeds(sub: Any) -> None:
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


def _add_run(sub: Any) -> None:
    run = sub.add_parser("run", help="run the operator against a hub cluster")
    run.add_argument(
        "--kubeconfig",
        type=Path,
        help="hub kubeconfig (default: KUBECONFIG, ~/.kube/config, or the pod's service account)",
    )
    run.add_argument("--context", help="kubeconfig context of the hub")
    run.add_argument(
        "--feeds-config",
        type=Path,
        help="feeds configuration (YAML); default: the offline synthetic model",
    )
    run.add_argument(
        "--probe-interval",
        type=float,
        default=15.0,
        help="seconds between member health/capacity/signal probes (default: 15)",
    )
    run.add_argument(
        "--retry-delay",
        type=float,
        default=10.0,
        help="seconds before a job that cannot be placed is retried (default: 10)",
    )
    run.add_argument(
        "--replay-start",
        help="grid time at start-up (RFC 3339), for replaying recorded signals in the lab "
        "and demos (default: now)",
    )
    run.add_argument(
        "--speedup",
        type=float,
        default=1.0,
        help="grid time runs this many times faster than wall time (default: 1)",
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="serve Prometheus metrics on this port (default: off)",
    )
    run.add_argument("--peering", help="Kopf peering object for HA (one replica active)")
    run.add_argument("--priority", type=int, default=0, help="peering priority")
    run.add_argument("--liveness", help="health endpoint, e.g. http://0.0.0.0:8080/healthz")
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    run.set_defaults(func=_run)


def _add_simulate(sub: Any) -> None:
    sim = sub.add_parser(
        "simulate",
        help="replay a job trace on recorded grid data and "
        "compare policies (gridaware, simpler ones, the optimum)",
    )
    sim.add_argument(
        "--data-dir",
        type=Path,
        default=Path("../shared/data"),
        help="directory with carbon/ and prices/ traces (default: ../shared/data)",
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
        help="builtin (from the past), perfect, or noisy:STD (e.g. noisy:0.05)",
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
    sim.add_argument("--policies", help="comma-separated subset (default: all)")
    sim.add_argument("--json", type=Path, help="write the results as JSON here")
    sim.add_argument("--plots", type=Path, help="write PNG plots into this directory")
    sim.set_defaults(func=_simulate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridaware",
        description="Carbon- and price-aware placement of batch jobs across Kubernetes clusters.",
    )
    parser.add_argument("--version", action="version", version=f"gridaware {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    _add_lab(sub)
    _add_feeds(sub)
    _add_run(sub)
    _add_simulate(sub)

    status = sub.add_parser("status", help="clusters (signals, capacity) and jobs (where, why)")
    status.add_argument("--kubeconfig", type=Path, help="hub kubeconfig")
    status.add_argument("--context", help="kubeconfig context of the hub")
    status.set_defaults(func=_status)

    crds = sub.add_parser("crds", help="write the CRD YAML generated from the API models")
    crds.add_argument(
        "--out",
        type=Path,
        action="append",
        help="directory (repeatable; default: crds and helm/gridaware/crds)",
    )
    crds.set_defaults(func=_crds)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
        )
        print(f"error: {details}", file=sys.stderr)
        return 2
    except (LabError, UnknownRegionError, ValueError, SignalError, KubeconfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FAILURES as exc:
        print(
            f"error: the cluster did not answer as expected: {str(exc).splitlines()[0]}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
