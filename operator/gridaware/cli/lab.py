"""``gridaware lab``: local multi-region clusters for tests, demos and benchmarks."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from gridaware.api.regions import DEFAULT_LAB_REGIONS, REGIONS
from gridaware.cli.output import table
from gridaware.lab import kind, local, prometheus, supervisor
from gridaware.lab.errors import LabError
from gridaware.lab.model import LabState, NodePool, plan


def _state(args: argparse.Namespace) -> LabState:
    state = local.load_state(args.state_dir)
    if state is None:
        raise LabError(f"no lab at {args.state_dir} (start one with 'gridaware lab up')")
    return state


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
        state = local.up(lab_plan, args.state_dir)
        if args.prometheus:
            base = prometheus.start(state, prometheus.Settings(rules=prometheus.default_rules()))
            print(f"prometheus: {base} (energy exporters in every member)")
    return _lab_status(args)


def _lab_prometheus(args: argparse.Namespace) -> int:
    state = _state(args)
    if args.stop:
        prometheus.stop(state)
        print("lab prometheus and energy exporters stopped")
        return 0
    settings = prometheus.Settings(
        operator_metrics_port=args.operator_metrics_port,
        rules=tuple(r.resolve() for r in args.rules) if args.rules else prometheus.default_rules(),
        scrape_interval=args.scrape_interval,
        watts_per_cpu=args.watts_per_cpu,
        watts_per_gpu=args.watts_per_gpu,
    )
    base = prometheus.start(state, settings)
    print(f"prometheus: {base}  (config and data under {state.state_dir / 'prometheus'})")
    return 0


def _lab_status(args: argparse.Namespace) -> int:
    state = _state(args)
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

    state = _state(args)
    register.register(state)
    members = [c.plan.name for c in state.clusters if c.plan.role == "member"]
    print(f"CRDs installed on the hub; registered {', '.join(members)} as GridClusters")
    return 0


def _lab_operator(args: argparse.Namespace) -> int:
    state = _state(args)
    extra = ["--probe-interval", str(args.probe_interval)]
    if args.feeds_config:
        extra += ["--feeds-config", str(args.feeds_config.resolve())]
    if args.metrics_port:
        extra += ["--metrics-port", str(args.metrics_port), "--metrics-address", "127.0.0.1"]
    rec = local.start_operator(state, extra)
    time.sleep(1.0)
    if not supervisor.alive(rec):
        raise LabError(
            f"the operator exited at once; see {rec.log}: " + supervisor.log_tail(rec, 1)
        )
    print(f"operator running (pid {rec.pid}); log: {rec.log}")
    return 0


def _lab_env(args: argparse.Namespace) -> int:
    state = _state(args)
    print(f"export KUBECONFIG={state.kubeconfig}")
    rss = supervisor.rss_bytes(p for c in state.clusters for p in c.processes)
    print(f"# {len(state.clusters)} clusters, {rss / 2**20:.0f} MiB resident", file=sys.stderr)
    return 0


def add(sub: Any) -> None:
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
    up.add_argument(
        "--prometheus",
        action="store_true",
        help="also start the lab Prometheus and the members' energy exporters "
        "(see 'lab prometheus')",
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
    lab_op.add_argument(
        "--metrics-port", type=int, help="serve the operator's metrics on 127.0.0.1:PORT"
    )
    lab_op.set_defaults(func=_lab_operator)
    prom = lab_sub.add_parser(
        "prometheus",
        help="(re)start a Prometheus on loopback scraping the operator and an energy exporter "
        "(Kepler and DCGM counters) per member; stopped by 'lab down'",
    )
    prom.add_argument("--operator-metrics-port", type=int, help="the operator's --metrics-port")
    prom.add_argument(
        "--rules", type=Path, action="append", help="rule file(s) (default: the chart's rules)"
    )
    prom.add_argument("--scrape-interval", type=float, default=1.0, help="seconds (default: 1)")
    prom.add_argument("--watts-per-cpu", type=float, default=10.0)
    prom.add_argument("--watts-per-gpu", type=float, default=300.0)
    prom.add_argument("--stop", action="store_true", help="stop them instead")
    prom.set_defaults(func=_lab_prometheus)
