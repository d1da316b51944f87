"""``gridaware run``: the operator itself, against a hub cluster."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from gridaware.signals import factory


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


def add(sub: Any) -> None:
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
