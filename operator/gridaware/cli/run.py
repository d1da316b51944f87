"""``gridaware run``: the operator itself, against a hub cluster."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any

import yaml

from gridaware.api.v1alpha1 import parse_time
from gridaware.core import namespaces
from gridaware.core.clock import GridClock
from gridaware.core.namespaces import NamespaceMapping
from gridaware.core.podsecurity import Policy
from gridaware.core.redact import RedactingFilter
from gridaware.handlers.runtime import OperatorConfig
from gridaware.services.openadr import OpenAdrOptions
from gridaware.services.ports import Clock, Settings
from gridaware.signals import factory
from gridaware.signals.openadr import MappingConfig, VenConfig


def priority(text: str) -> int:
    """A peering priority, or ``random``: one per process, so that identical HA replicas get
    distinct priorities (Kopf pauses every replica whose priority equals another's)."""
    if text == "random":
        return secrets.randbelow(2**31 - 2) + 1
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be an integer or 'random'") from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def tenancy(path: Path | None, level: str) -> tuple[Policy, NamespaceMapping]:
    """The pod security policy and namespace mapping (the same values the chart gives the hub's
    admission policy): ``level``, ``serviceAccounts`` per namespace, ``namespaceMapping``,
    ``operatorNamespace``."""
    raw: dict[str, Any] = {}
    if path is not None:
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: a tenancy configuration must be a mapping")
        raw = loaded
    level = str(raw.get("level", level))
    if level not in ("restricted", "baseline"):
        raise ValueError(f"pod security level {level!r} must be restricted or baseline")
    accounts = {
        str(ns): frozenset(str(a) for a in names)
        for ns, names in (raw.get("serviceAccounts") or {}).items()
    }
    mapping = NamespaceMapping(
        operator_namespace=str(
            raw.get("operatorNamespace") or os.environ.get("POD_NAMESPACE") or "gridaware-system"
        ),
        mapping={str(k): str(v) for k, v in (raw.get("namespaceMapping") or {}).items()},
    )
    problems = namespaces.validate(mapping)
    if problems:
        raise ValueError("; ".join(problems))
    return Policy("baseline" if level == "baseline" else "restricted", accounts), mapping


def openadr(args: argparse.Namespace) -> OpenAdrOptions | None:
    """The VEN's settings when ``--openadr-url`` is given: the client id and secret are the
    files ``clientId`` and ``clientSecret`` in ``--openadr-credentials`` (a mounted Secret)."""
    if not args.openadr_url:
        return None
    if args.openadr_interval <= 0:
        raise ValueError("--openadr-interval must be a positive number of seconds")
    if args.openadr_credentials is None:
        raise ValueError("--openadr-url needs --openadr-credentials (clientId, clientSecret)")
    try:
        creds = {
            key: (args.openadr_credentials / key).read_text().strip()
            for key in ("clientId", "clientSecret")
        }
    except OSError as exc:
        raise ValueError(f"cannot read the VEN's credentials: {exc}") from None
    mapping = MappingConfig(
        default_zones=tuple(z for z in args.openadr_zones.split(",") if z),
        mandatory_programs=frozenset(p for p in args.openadr_mandatory_programs.split(",") if p),
    )
    ven = VenConfig(
        args.openadr_url, creds["clientId"], creds["clientSecret"], args.openadr_ven_name, mapping
    )
    return OpenAdrOptions(ven, args.openadr_interval)


def config_from(args: argparse.Namespace) -> OperatorConfig:
    wall = time.time()
    start = parse_time(args.replay_start) if args.replay_start else wall
    speedup = args.speedup
    policy, mapping = tenancy(args.tenancy_config, args.pod_security)
    settings = Settings(
        retry_delay=args.retry_delay,
        probe_interval=args.probe_interval,
        replan_wall_seconds=max(1.0, 60.0 / speedup),
        startup_seconds=args.startup_seconds,
        pod_security=policy,
        namespaces=mapping,
    )
    return OperatorConfig(
        kubeconfig=args.kubeconfig,
        context=args.context,
        feeds_config=factory.load_config(args.feeds_config),
        clock=Clock(GridClock(wall, start, speedup)),
        settings=settings,
        metrics_port=args.metrics_port,
        metrics_address=args.metrics_address,
        loop_interval=min(2.0, max(0.2, 60.0 / speedup / 10)),
        workers=args.workers,
        peering=args.peering,
        priority=args.priority,
        openadr=openadr(args),
        prometheus_url=args.prometheus_url,
        prometheus_scrape_seconds=args.prometheus_scrape_interval,
    )


def _run(args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415

    import kopf  # noqa: PLC0415

    from gridaware.handlers import operator  # noqa: F401, PLC0415 - registers handlers

    config = config_from(args)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:  # no credential in any line, debug or not
        handler.addFilter(RedactingFilter())
    for noisy in ("kopf.objects", "kubernetes", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING if not args.verbose else logging.DEBUG)
    asyncio.run(
        kopf.operator(
            clusterwide=True,
            standalone=args.peering is None,
            peering_name=args.peering,
            priority=args.priority,
            liveness_endpoint=args.liveness,
            memo=kopf.Memo(config=config),
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
    run.add_argument(
        "--metrics-address",
        default="0.0.0.0",  # noqa: S104 - a pod serves metrics on its own IP
        help="address the metrics endpoint binds (default: 0.0.0.0; 127.0.0.1 for local use)",
    )
    run.add_argument(
        "--startup-seconds",
        type=float,
        default=120.0,
        help="grid seconds a job needs to start; a deadline keeps them free (default: 120)",
    )
    run.add_argument(
        "--pod-security",
        choices=["restricted", "baseline"],
        default="restricted",
        help="Pod Security level every member Job's pods must meet (default: restricted)",
    )
    run.add_argument(
        "--tenancy-config",
        type=Path,
        help="YAML: level, serviceAccounts {namespace: [names]}, namespaceMapping "
        "{hub: member}, operatorNamespace (the chart writes it from admissionPolicy.*)",
    )
    run.add_argument(
        "--prometheus-url",
        help="Prometheus holding Kepler/DCGM energy counters (labelled cluster=<GridCluster>): "
        "accounts use measured energy where it exists (default: the energy model only)",
    )
    run.add_argument(
        "--prometheus-scrape-interval",
        type=float,
        default=30.0,
        help="seconds between Prometheus' scrapes of the energy exporters; an account waits "
        "two of them after its job ends (default: 30)",
    )
    run.add_argument(
        "--workers",
        type=positive_int,
        default=16,
        help="threads placing jobs; each waits on API calls most of the time (default: 16)",
    )
    run.add_argument("--peering", help="Kopf peering object for HA (one replica active)")
    run.add_argument(
        "--priority",
        type=priority,
        default=0,
        help="peering priority (an integer, or 'random' for HA replicas of one Deployment)",
    )
    run.add_argument("--liveness", help="health endpoint, e.g. http://0.0.0.0:8080/healthz")
    _add_openadr(run)
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    run.set_defaults(func=_run)


def _add_openadr(run: Any) -> None:
    run.add_argument("--openadr-url", help="base URL of an OpenADR 3 VTN to take events from")
    run.add_argument(
        "--openadr-credentials",
        type=Path,
        help="directory with the VEN's OAuth files clientId and clientSecret (a mounted Secret)",
    )
    run.add_argument(
        "--openadr-ven-name", default="gridaware", help="VEN name at the VTN (default: gridaware)"
    )
    run.add_argument(
        "--openadr-interval",
        type=float,
        default=30.0,
        help="wall seconds between polls of the VTN and reports of active events (default: 30)",
    )
    run.add_argument(
        "--openadr-zones",
        default="",
        help="comma-separated zones for events with no zone_/cluster_ target (default: none)",
    )
    run.add_argument(
        "--openadr-mandatory-programs",
        default="",
        help="comma-separated VTN program names whose events are mandatory (default: none)",
    )
