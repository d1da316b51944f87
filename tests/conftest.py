"""Shared fixtures: the session lab (a hub and three member clusters) and per-test namespaces.

The lab is started once per test session in a temporary state directory with the real
binaries (built or reused by tools/build.sh) and stopped at the end; tests that need a lab of
their own (to kill components or tear it down) start a small one themselves.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest

from gridaware.k8s import clients, objects
from gridaware.lab import local, register
from gridaware.lab.model import LabState, plan
from gridaware.lab.operator_process import OperatorProcess, static_feeds
from tests.feedserver import FeedServer

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@dataclass
class Lab:
    state: LabState

    def client(self, cluster: str) -> kubernetes.client.ApiClient:
        return clients.from_kubeconfig(self.state.cluster(cluster).kubeconfig)

    @property
    def members(self) -> list[str]:
        return [c.plan.name for c in self.state.clusters if c.plan.role == "member"]

    @property
    def names(self) -> list[str]:
        return [c.plan.name for c in self.state.clusters]


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    state_dir = tmp_path_factory.mktemp("lab") / "state"
    state = local.up(plan(["us-west", "eu-central", "us-east"]), state_dir, log=lambda _m: None)
    try:
        yield Lab(state)
    finally:
        local.down(state_dir)


@pytest.fixture
def namespace(lab: Lab, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace of the same name in every lab cluster, ready for pods."""
    name = f"t-{request.node.name[:30].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:6]}"
    name = "".join(ch for ch in name if ch.isalnum() or ch == "-")
    for cluster in lab.names:
        client = lab.client(cluster)
        objects.ensure_namespace(client, name, {"gridaware.dev/test": "true"})
    for cluster in lab.names:
        client = lab.client(cluster)
        wait_for(
            lambda c=client: objects.service_account_exists(c, name, "default"),
            f"default ServiceAccount in {cluster}/{name}",
        )
    yield name
    if os.environ.get("GRIDAWARE_KEEP_NAMESPACES"):
        return
    for cluster in lab.names:
        objects.delete_namespace(lab.client(cluster), name)


def wait_for(check: object, what: str, timeout: float = 60.0, interval: float = 0.2) -> None:
    """Poll ``check()`` until it is truthy; fail the test with ``what`` after ``timeout``."""
    assert callable(check)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.close()


STATIC_SIGNALS = {  # gCO2e/kWh and USD/MWh per lab zone: eu-central greenest, us-east cheapest
    "US-CAL-CISO": {"carbon": 300, "price": 80, "currency": "USD"},
    "DE-LU": {"carbon": 100, "price": 150, "currency": "USD"},
    "US-MIDA-PJM": {"carbon": 200, "price": 40, "currency": "USD"},
}


class Operator(OperatorProcess):
    """The session operator: ``gridaware run`` on static signals against the lab's hub."""

    def __init__(self, lab: Lab, workdir: Path, **kwargs: Any) -> None:
        port = local.allocate_ports(1, None)[0]  # metrics, scraped by the lab Prometheus
        metrics = ["--metrics-port", str(port), "--metrics-address", "127.0.0.1"]
        super().__init__(
            lab.state,
            workdir,
            kwargs.pop("feeds", static_feeds(STATIC_SIGNALS)),
            kwargs.pop("args", ["--probe-interval", "2", "--retry-delay", "2", *metrics]),
            **kwargs,
        )
        self.lab = lab
        self.metrics_port = port


def kubectl(
    lab: Lab, *args: str, stdin: str | None = None, context: str = "hub", check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [
            str(Path(str(lab.state.bin_dir)) / "kubectl"),
            "--kubeconfig",
            str(lab.state.kubeconfig),
            "--context",
            context,
            *args,
        ],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if check and result.returncode != 0:
        pytest.fail(f"kubectl {' '.join(args)} failed: {result.stderr}")
    return result


def cluster_ready(lab: Lab, name: str) -> bool:
    out = kubectl(
        lab,
        "get",
        "gridcluster",
        name,
        "-o",
        'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
        check=False,
    )
    return out.stdout.strip() == "True"


@pytest.fixture(scope="session")
def operator(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    register.register(lab.state)
    op = Operator(lab, tmp_path_factory.mktemp("operator"))
    op.start()
    for member in lab.members:
        wait_for(lambda m=member: cluster_ready(lab, m), f"GridCluster {member} Ready", timeout=90)
    yield op
    op.stop()
