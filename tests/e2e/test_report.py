"""``gridaware report`` on the lab: jobs that ran side by side in a cluster with a green
contract share its hourly delivery, and the report of their namespace equals the sum of their
accounts (issue 13).

Grid time is replayed from 2023-01-02T00:00Z at 360x (a grid hour is 10 s wall), as in
tests/e2e/test_shifting.py.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Lab, kubectl, wait_for
from tests.e2e.test_operator import apply, gaj, status
from tests.e2e.test_shifting import TRACES, ReplayOperator, replay  # noqa: F401 - fixture

pytestmark = pytest.mark.slow
CONTRACT_KW = 1.0  # baseload: 1 kWh per grid hour, to share among 2.4 kW of jobs
JOBS = ("a", "b", "c")


def patch_contracts(lab: Lab, contracts: list[dict[str, Any]]) -> None:
    kubectl(
        lab,
        "patch",
        "gridcluster",
        "eu-central",
        "--type",
        "merge",
        "-p",
        json.dumps({"spec": {"greenContracts": contracts}}),
    )


@pytest.fixture
def contracted(lab: Lab) -> Iterator[None]:
    patch_contracts(lab, [{"name": "ppa", "powerKw": CONTRACT_KW, "carbonIntensity": 20}])
    try:
        yield
    finally:
        patch_contracts(lab, [])


def grid(stamp: str) -> float:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def report(lab: Lab, namespace: str) -> dict[str, Any]:
    out = subprocess.run(
        [
            str(Path(sys.executable).parent / "gridaware"),
            "report",
            "--kubeconfig",
            str(lab.state.kubeconfig),
            "--context",
            "hub",
            "-n",
            namespace,
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def test_report_equals_the_sum_of_the_job_accounts(
    lab: Lab,
    contracted: None,
    replay: ReplayOperator,  # noqa: F811 - the fixture imported above
    namespace: str,
) -> None:
    replay.run_on(TRACES)
    docs = [
        gaj(
            name,
            run="10s",
            energy={"wattsPerReplica": 1000},
            placement={"clusters": ["eu-central"]},
        )
        for name in JOBS
    ]
    apply(lab, namespace, *docs)
    for name in JOBS:
        wait_for(lambda n=name: status(lab, namespace, n).get("account"), f"{name}'s account", 120)
    accounts = [status(lab, namespace, n)["account"] for n in JOBS]
    segments = [s for a in accounts for s in a["segments"]]
    # three 1.2 kW jobs side by side: together they never get more than the contract delivers
    first = min(grid(s["start"]) for s in segments)
    last = max(grid(s["end"]) for s in segments)
    hours_spanned = len({int(t // 3600) for t in range(int(first), int(last) + 1, 60)})
    assert sum(a["contractKwh"] for a in accounts) <= CONTRACT_KW * hours_spanned + 1e-6
    for a in accounts:
        assert 0 < a["contractKwh"] < a["energyKwh"], "a share, not the whole contract"
        assert a["carbonMarketG"] < a["carbonLocationG"]

    doc = report(lab, namespace)
    fleet = doc["fleet"]
    assert fleet["jobs"] == len(JOBS)
    for field, key, scale in (
        ("energy_kwh", "energyKwh", 1),
        ("contract_kwh", "contractKwh", 1),
        ("carbon_location_kg", "carbonLocationG", 1000),
        ("carbon_market_kg", "carbonMarketG", 1000),
        ("cost_usd", "costUsd", 1),
    ):
        total = sum((a[key] or 0) for a in accounts) / scale
        assert fleet[field] == pytest.approx(total, rel=1e-6, abs=1e-6), field
    assert [c["cluster"] for c in doc["clusters"]] == ["eu-central"]
    assert fleet["contract_delivered_kwh"] >= fleet["contract_kwh"]
