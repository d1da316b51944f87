"""Measured energy in an account, on the lab: an operator started with ``--prometheus-url``
(the lab's real Prometheus scraping the members' Kepler/DCGM-shaped exporters) books a
finished job's energy from the exporter's counters, not from the spec's energy model, says so
(``energySource: Measured``), and prices carbon with that energy.

The job's spec models 25 W per CPU while the exporters draw 10 W per CPU, so an account that
fell back to the model would be 2.5 times the counters and could not pass."""

from __future__ import annotations

import re
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gridaware.api.v1alpha1 import GridClusterSpec, parse_time
from gridaware.lab import prometheus
from gridaware.lab.energy import KEPLER
from gridaware.signals.prometheus import job_pods_regex
from tests.conftest import STATIC_SIGNALS, Lab, Operator, cluster_ready, kubectl, wait_for

pytestmark = pytest.mark.slow

WATTS_PER_CPU = 10.0  # what the lab's exporters draw per requested CPU
MODEL_WATTS_PER_CPU = 25.0  # what the job's energy model says
CPUS = 16
SCRAPE_SECONDS = 1.0  # Prometheus scrapes the exporters every second
JOULES_PER_KWH = 3.6e6


@pytest.fixture
def measuring_operator(lab: Lab, operator: Operator, tmp_path: Path) -> Iterator[str]:
    """The lab Prometheus and, instead of the session operator, one that measures energy;
    yields Prometheus' URL."""
    if shutil.which("prometheus") is None:
        pytest.fail("no prometheus on PATH: ./dev installs it (tools/prometheus.sh)")
    settings = prometheus.Settings(
        scrape_interval=SCRAPE_SECONDS, watts_per_cpu=WATTS_PER_CPU, watts_per_gpu=300.0
    )
    base = prometheus.start(lab.state, settings)
    args = ["--probe-interval", "2", "--retry-delay", "2", "--prometheus-url", base]
    # the accounts wait two of these after a job ends (and read that far past its end):
    # generous against a loaded machine's late scrapes
    args += ["--prometheus-scrape-interval", "5"]
    measuring = Operator(lab, tmp_path, args=args, name="energy-operator")
    operator.stop()
    try:
        measuring.start()
        for member in lab.members:
            wait_for(lambda m=member: cluster_ready(lab, m), f"{member} Ready", timeout=90)
        yield base
    finally:
        measuring.stop()
        prometheus.stop(lab.state)
        operator.start()


def _gaj(name: str, run: str) -> dict[str, Any]:
    return {
        "apiVersion": "gridaware.dev/v1alpha1",
        "kind": "GridAwareJob",
        "metadata": {"name": name},
        "spec": {
            "energy": {"wattsPerCpu": MODEL_WATTS_PER_CPU},
            "template": {
                "backoffLimit": 0,
                "template": {
                    "metadata": {"annotations": {"lab.gridaware.dev/complete-after": run}},
                    "spec": {
                        "restartPolicy": "Never",
                        "securityContext": {
                            "runAsNonRoot": True,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [
                            {
                                "name": "main",
                                "image": "t:1",
                                "resources": {"requests": {"cpu": str(CPUS), "memory": "1Gi"}},
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                            }
                        ],
                    },
                },
            },
        },
    }


def _status(lab: Lab, namespace: str, name: str) -> dict[str, Any]:
    out = kubectl(lab, "-n", namespace, "get", "gaj", name, "-o", "yaml", check=False)
    if out.returncode != 0:
        return {}
    status = (yaml.safe_load(out.stdout) or {}).get("status") or {}
    return dict(status)


def _kepler_joules(lab: Lab, cluster: str, namespace: str, job: str) -> dict[str, float]:
    """The exporter's own Kepler counters (joules) of the job's pods, per pod."""
    port = lab.state.cluster(cluster).ports[prometheus.EXPORTER]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    pod_re = re.compile(job_pods_regex(job))
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith(KEPLER + "{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
        if labels["container_namespace"] == namespace and pod_re.fullmatch(labels["pod_name"]):
            out[labels["pod_name"]] = out.get(labels["pod_name"], 0.0) + float(line.split()[-1])
    return out


def _pue(lab: Lab, cluster: str) -> float:
    out = kubectl(lab, "get", "gridcluster", cluster, "-o", "yaml")
    return GridClusterSpec.model_validate(yaml.safe_load(out.stdout)["spec"]).pue


def test_an_account_books_the_exporters_counters_as_measured_energy(
    lab: Lab, measuring_operator: str, namespace: str
) -> None:
    kubectl(lab, "-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump(_gaj("train", "25s")))
    wait_for(
        lambda: _status(lab, namespace, "train").get("phase") == "Succeeded",
        "train Succeeded",
        150,
    )
    # the account follows once the counters' last scrape is in (two scrape intervals)
    wait_for(lambda: "account" in _status(lab, namespace, "train"), "train's account", 60)
    status = _status(lab, namespace, "train")
    account, cluster = status["account"], status["cluster"]
    counters = _kepler_joules(lab, cluster, namespace, "train")
    assert len(counters) == 1, counters  # one pod, measured
    pue = _pue(lab, cluster)
    measured_kwh = sum(counters.values()) / JOULES_PER_KWH * pue
    assert account["energySource"] == "Measured", account.get("energyNote")
    assert [s["energySource"] for s in account["segments"]] == ["Measured"]
    assert "energyNote" not in account
    # the account's energy is the exporter's counters over the run (rounded to a micro-kWh)
    assert account["energyKwh"] == pytest.approx(measured_kwh, abs=1e-6)
    assert measured_kwh > 0
    # ... and not the model (25 W per CPU over the same run would be 2.5 times as much)
    (segment,) = account["segments"]
    assert segment["energyKwh"] == account["energyKwh"]
    hours = (parse_time(segment["end"]) - parse_time(segment["start"])) / 3600
    model_kwh = MODEL_WATTS_PER_CPU * CPUS / 1000 * hours * pue
    assert account["energyKwh"] < 0.7 * model_kwh
    # carbon is priced on that energy: the static signals hold one intensity per zone
    zone_carbon = STATIC_SIGNALS[status["zone"]]["carbon"]
    assert isinstance(zone_carbon, int)
    assert account["carbonLocationG"] == pytest.approx(account["energyKwh"] * zone_carbon, abs=0.01)
