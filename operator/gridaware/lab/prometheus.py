"""A real Prometheus in the lab (Debian's package, installed by ``tools/prometheus.sh``).

It runs as a lab process on loopback with its own configuration and data directory under the
lab's state (never the distribution's service, which would listen on 0.0.0.0:9090), scrapes
the operator's metrics port and one energy exporter per member (``lab.energy``: Kepler's and
DCGM's counter families for the member's pods, labelled ``cluster``), and loads the chart's
recording and alert rules, so the dashboard, the rules and the measured-energy client are
exercised against the real query engine.
"""

from __future__ import annotations

import shutil
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gridaware.lab import binaries, local, supervisor
from gridaware.lab.errors import LabError
from gridaware.lab.model import LabState, ProcessRecord

COMPONENT = "prometheus"
EXPORTER = "energy-exporter"
_HUB = "hub"


@dataclass(frozen=True)
class Settings:
    """What the lab's Prometheus scrapes and how the exporters model power."""

    operator_metrics_port: int | None = None
    rules: tuple[Path, ...] = ()
    scrape_interval: float = 1.0
    watts_per_cpu: float = 10.0
    watts_per_gpu: float = 300.0


def default_rules() -> tuple[Path, ...]:
    """The chart's rule file, when running from a checkout."""
    tools = binaries.tools_dir()
    if tools is None:
        return ()
    path = tools.parent / "helm" / "gridaware" / "rules" / "gridaware.rules.yaml"
    return (path,) if path.is_file() else ()


def config(settings: Settings, exporters: dict[str, int]) -> dict[str, Any]:
    """prometheus.yml: the operator (if given) and each member's exporter (pure)."""
    interval = f"{settings.scrape_interval:g}s"
    jobs: list[dict[str, Any]] = []
    if settings.operator_metrics_port is not None:
        jobs.append(
            {
                "job_name": "gridaware-operator",
                "static_configs": [{"targets": [f"127.0.0.1:{settings.operator_metrics_port}"]}],
            }
        )
    jobs.append(
        {
            "job_name": "energy",
            "honor_labels": True,  # keep the exporters' pod/namespace labels as they are
            "static_configs": [
                {"targets": [f"127.0.0.1:{port}"], "labels": {"cluster": name}}
                for name, port in sorted(exporters.items())
            ],
        }
    )
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(p) for p in settings.rules],
        "scrape_configs": jobs,
    }


def _binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise LabError("no prometheus on PATH: run tools/prometheus.sh (Debian's package)")
    return found


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as resp:  # noqa: S310 - loopback
            return bool(resp.status == 200)
    except OSError:
        return False


def url(state: LabState) -> str | None:
    """The lab Prometheus' base URL, when it was started."""
    port = state.cluster(_HUB).ports.get(COMPONENT)
    return f"http://127.0.0.1:{port}" if port else None


def _start_exporter(state: LabState, name: str, settings: Settings, port: int) -> ProcessRecord:
    cluster = state.cluster(name)
    argv = [
        sys.executable,
        "-m",
        "gridaware.lab.energy",
        "--kubeconfig",
        str(cluster.kubeconfig),
        "--port",
        str(port),
        "--watts-per-cpu",
        str(settings.watts_per_cpu),
        "--watts-per-gpu",
        str(settings.watts_per_gpu),
        "--gpus-per-node",
        str(max(cluster.plan.nodes.gpus, 1)),
    ]
    log = state.state_dir / "clusters" / name / "logs" / f"{EXPORTER}.log"
    rec = supervisor.start(EXPORTER, argv, log)
    cluster.ports[EXPORTER] = port
    cluster.processes.append(rec)
    return rec


def start(state: LabState, settings: Settings, timeout: float = 60) -> str:
    """Start the exporters and Prometheus (replacing earlier ones); returns Prometheus' URL."""
    stop(state)
    members = [c.plan.name for c in state.clusters if c.plan.role == "member"]
    ports = local.allocate_ports(len(members) + 1, None)
    procs = [_start_exporter(state, m, settings, p) for m, p in zip(members, ports, strict=False)]
    hub = state.cluster(_HUB)
    directory = state.state_dir / "prometheus"
    directory.mkdir(parents=True, exist_ok=True)
    config_file = directory / "prometheus.yml"
    exporters = dict(zip(members, ports, strict=False))
    config_file.write_text(yaml.safe_dump(config(settings, exporters), sort_keys=False))
    port = ports[-1]
    argv = [
        _binary(),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1d",
        "--log.level=warn",
    ]
    rec = supervisor.start(
        COMPONENT, argv, state.state_dir / "clusters" / _HUB / "logs" / "prometheus.log"
    )
    hub.ports[COMPONENT] = port
    hub.processes.append(rec)
    local.save(state)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while not _ready(base):
        for p in [*procs, rec]:
            if not supervisor.alive(p):
                raise LabError(f"{p.component} exited; log {p.log}: {supervisor.log_tail(p, 1)}")
        if time.monotonic() > deadline:
            raise LabError(f"Prometheus at {base} not ready after {timeout:.0f}s")
        time.sleep(0.2)
    return base


def stop(state: LabState) -> None:
    """Stop the lab's Prometheus and exporters (``lab down`` also stops them)."""
    for cluster in state.clusters:
        mine = [p for p in cluster.processes if p.component in (COMPONENT, EXPORTER)]
        supervisor.stop(mine, grace=2)
        cluster.processes = [p for p in cluster.processes if p not in mine]
        cluster.ports.pop(COMPONENT, None)
        cluster.ports.pop(EXPORTER, None)
    local.save(state)
