"""Deferral on the lab with replayed, time-accelerated signals, and the carbon account.

Grid time starts at 2023-01-02T00:00Z and runs 360 times faster than wall time (a grid hour
is 10 s). The replayed trace makes eu-central (DE-LU) very green from 03:00 to 06:00 only;
the other zones are flat.
"""

from __future__ import annotations

import csv
import datetime as dt
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gridaware.k8s import hub
from tests.conftest import Lab, Operator, cluster_ready, wait_for
from tests.e2e.test_operator import apply, condition, gaj, member_jobs, status

pytestmark = pytest.mark.slow
T0 = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
START = "2023-01-02T00:00:00Z"
SPEEDUP = 360.0


def dip(hour: int) -> float:
    """DE-LU: 400 g/kWh except 50 from 03:00 to 06:00 on 2 January."""
    return 50.0 if 24 + 3 <= hour < 24 + 6 else 400.0


TRACES = {"DE-LU": dip, "US-CAL-CISO": lambda _h: 300.0, "US-MIDA-PJM": lambda _h: 350.0}


def write_traces(root: Path) -> None:
    (root / "carbon").mkdir(parents=True)
    for zone, f in TRACES.items():
        with (root / "carbon" / f"{zone}_2023_hourly.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(
                [
                    "Datetime (UTC)",
                    "Zone Id",
                    "Carbon Intensity gCO₂eq/kWh (LCA)",
                    "Renewable Percentage",
                    "Data Estimated",
                ]
            )
            for h in range(24 * 10):
                t = T0 + dt.timedelta(hours=h)
                w.writerow([t.strftime("%Y-%m-%d %H:%M:%S"), zone, f(h), 50, "false"])


@pytest.fixture
def replay_operator(lab: Lab, operator: Operator, tmp_path: Path) -> Iterator[Path]:
    write_traces(tmp_path / "data")
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(
        yaml.safe_dump(
            {
                "providers": {
                    "replay": {"type": "replay", "options": {"directory": str(tmp_path / "data")}},
                    "static": {
                        "type": "static",
                        "options": {
                            "values": {z: {"price": 50, "currency": "USD"} for z in TRACES}
                        },
                    },
                },
                "default": {"carbon": ["replay"], "price": ["static"]},
            }
        )
    )
    operator.stop()
    log = tmp_path / "replay-operator.log"
    proc = subprocess.Popen(
        [
            str(Path(operator.proc.args[0])),
            "run",
            "--kubeconfig",  # type: ignore[union-attr,index]
            str(lab.state.kubeconfig),
            "--context",
            "hub",
            "--feeds-config",
            str(feeds),
            "--probe-interval",
            "1",
            "--retry-delay",
            "1",
            "--replay-start",
            START,
            "--speedup",
            str(SPEEDUP),
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        for m in lab.members:
            wait_for(lambda m=m: cluster_ready(lab, m), f"{m} ready", timeout=60)
        yield log
    finally:
        proc.terminate()
        proc.wait(15)
        operator.start()


def grid(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def scheduled(spec_extra: dict[str, Any], name: str, run: str = "10s") -> dict[str, Any]:
    doc = gaj(name, run=run, energy={"wattsPerReplica": 1000})
    doc["spec"].update(spec_extra)
    return doc


def test_waits_for_the_forecast_green_window_and_starts_in_it(
    lab: Lab, replay_operator: Path, namespace: str
) -> None:
    apply(
        lab,
        namespace,
        scheduled(
            {"schedule": {"maxDelaySeconds": 8 * 3600, "expectedDurationSeconds": 3600}}, "wait"
        ),
    )
    wait_for(
        lambda: condition(status(lab, namespace, "wait"), "Deferred").get("status") == "True",
        "the Deferred condition",
        timeout=30,
    )
    st = status(lab, namespace, "wait")
    assert st["phase"] == "Pending"
    assert st["deferral"]["cluster"] == "eu-central"
    assert st["deferral"]["expectedCarbon"] == 50
    planned = grid(st["deferral"]["plannedStart"])
    assert planned == dt.datetime(2023, 1, 2, 3, tzinfo=dt.UTC)
    assert "greener window" in condition(st, "Deferred")["message"]
    assert member_jobs(lab, f"{namespace}.wait") == {}, "nothing runs while deferred"
    wait_for(lambda: status(lab, namespace, "wait").get("cluster"), "the start", timeout=90)
    st = status(lab, namespace, "wait")
    assert st["cluster"] == "eu-central" and st["carbonAtPlacement"] == 50
    assert condition(st, "Deferred")["status"] == "False"
    wait_for(lambda: status(lab, namespace, "wait").get("account"), "the account", timeout=90)
    acct = status(lab, namespace, "wait")["account"]
    seg = acct["segments"][0]
    hours = (grid(seg["end"]) - grid(seg["start"])).total_seconds() / 3600
    # by hand: 1 kW x PUE 1.2 x hours x 50 g/kWh (the run lies inside the green window)
    assert grid(seg["start"]) >= dt.datetime(2023, 1, 2, 3, tzinfo=dt.UTC)
    assert acct["energyKwh"] == pytest.approx(1.2 * hours, rel=1e-3)
    assert acct["carbonLocationG"] == pytest.approx(1.2 * hours * 50, rel=1e-3)
    assert acct["carbonMarketG"] == acct["carbonLocationG"], "no contracts: same figure"
    assert acct["homeCluster"] == "eu-central"
    assert acct["counterfactualLocationG"] == pytest.approx(1.2 * hours * 400, rel=1e-3)
    assert acct["savedLocationG"] > 0


def test_a_deadline_is_never_missed_because_of_deferral(
    lab: Lab, replay_operator: Path, namespace: str
) -> None:
    # the green window is hours away, but the job must start now to meet its deadline
    apply(
        lab,
        namespace,
        scheduled({"schedule": {"maxDelaySeconds": 0, "expectedDurationSeconds": 3600}}, "urgent"),
    )
    wait_for(lambda: status(lab, namespace, "urgent").get("cluster"), "placement", timeout=30)
    st = status(lab, namespace, "urgent")
    assert condition(st, "Deferred") == {}
    assert st["cluster"] == "us-west"  # the greenest right now (300 < 350 < 400)
    body = hub.get_job(lab.client("hub"), namespace, "urgent")
    assert body is not None
