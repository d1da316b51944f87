"""``gridaware report`` from job accounts: sums per cluster and fleet, filters, the period rule,
unused contracted energy, the output formats and the charts (issue 13 item 4)."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from gridaware.api.v1alpha1 import rfc3339
from gridaware.cli import main
from gridaware.cli import report as cli_report
from gridaware.core import reporting
from tests.fakes import T0, World, job_spec

H = 3600.0
DAY0 = 1_700_006_400.0  # 2023-11-15T00:00:00Z


def seg(
    cluster: str, start: float, hours: int, kw: float, ci: float, contract: float
) -> dict[str, Any]:
    kwh = kw * hours
    return {
        "cluster": cluster,
        "zone": "Z",
        "start": rfc3339(start),
        "end": rfc3339(start + hours * H),
        "energyKwh": kwh,
        "carbonLocationG": kwh * ci,
        "carbonMarketG": (kwh - contract) * ci,
        "contractKwh": contract,
        "gridCfeKwh": 0.0,
        "costUsd": kwh * 0.1,
        "hourlyLoadKwh": [kw] * hours,
        "hourlyCfeKwh": [contract / hours] * hours,
    }


def body(
    name: str,
    segments: list[dict[str, Any]],
    namespace: str = "team-a",
    labels: dict[str, str] | None = None,
    **status: Any,
) -> dict[str, Any]:
    energy = sum(s["energyKwh"] for s in segments)
    loc = sum(s["carbonLocationG"] for s in segments)
    account = {
        "energyKwh": energy,
        "carbonLocationG": loc,
        "carbonMarketG": sum(s["carbonMarketG"] for s in segments),
        "costUsd": energy * 0.1,
        "counterfactualCostUsd": energy * 0.15,
        "homeCluster": "a",
        "counterfactualLocationG": loc + 100,
        "savedLocationG": 100.0,
        "carbonSource": "test",
        "contractKwh": sum(s["contractKwh"] for s in segments),
        "segments": segments,
    }
    return {
        "metadata": {"namespace": namespace, "name": name, "labels": labels or {}},
        "status": {"phase": "Succeeded", "account": account, **status},
    }


JOBS = [
    body(
        "j1",
        [seg("a", DAY0, 2, 10, 400, 5), seg("b", DAY0 + 2 * H, 1, 10, 100, 0)],
        labels={"team": "ml"},
        migrations=[
            {
                "time": rfc3339(DAY0 + 2 * H),
                "source": "a",
                "target": "b",
                "reason": "r",
                "takeoverSeconds": 3.0,
            }
        ],
        conditions=[{"type": "Deferred", "status": "False", "reason": "Started"}],
    ),
    body(
        "j2",
        [seg("a", DAY0 + H, 1, 5, 400, 5)],
        namespace="team-b",
        pauses=[
            {
                "start": rfc3339(DAY0),
                "end": rfc3339(DAY0 + H),
                "reason": "r",
                "requestedBy": "GridEvent/peak",
            }
        ],
    ),
    # next month: a separate bar in the monthly chart
    body("j3", [seg("b", DAY0 + 20 * 86400, 1, 2, 100, 0)]),
    {"metadata": {"namespace": "team-a", "name": "running"}, "status": {"phase": "Running"}},
]
CLUSTERS = [
    {
        "metadata": {"name": "a"},
        "spec": {
            "region": "nowhere",
            "gridZone": "Z",
            "kubeconfigSecretRef": {"namespace": "x", "name": "y"},
            "greenContracts": [{"name": "ppa", "powerKw": 5}],
        },
    }
]


def args(**kw: Any) -> argparse.Namespace:
    base: dict[str, Any] = {
        "start": None,
        "end": None,
        "namespace": None,
        "cluster": None,
        "selector": None,
    }
    return argparse.Namespace(**{**base, **kw})


def test_report_is_the_sum_of_the_accounts() -> None:
    rep = cli_report.make(JOBS, CLUSTERS, args())
    a, b = rep.clusters["a"], rep.clusters["b"]
    assert a.energy_kwh == pytest.approx(20 + 5)
    assert a.contract_kwh == pytest.approx(10)
    assert a.carbon_location_g == pytest.approx(25 * 400)
    assert a.carbon_market_g == pytest.approx(15 * 400)
    assert b.energy_kwh == pytest.approx(10 + 2)
    assert (a.cost_usd, b.cost_usd) == pytest.approx((2.5, 1.2))  # by segment, not by job
    fleet = rep.fleet
    assert fleet.energy_kwh == pytest.approx(37)
    assert fleet.carbon_location_g == pytest.approx(25 * 400 + 12 * 100)
    assert fleet.cost_usd == pytest.approx(3.7)
    assert fleet.saved_cost_usd == pytest.approx(37 * 0.05)
    assert fleet.saved_location_g == pytest.approx(300)
    assert fleet.cfe_percent == pytest.approx(100 * 10 / 37)
    # j1 finished in b: its move and deferral count there; j2's pause was a grid event
    assert (b.migrations, b.deferrals, a.pauses, a.grid_events) == (1, 1, 1, 1)
    assert fleet.jobs == 3


def test_unused_contract_energy_over_the_period() -> None:
    # 5 kW baseload over the 3 hours of the first day's accounts: 15 kWh, 10 used
    rep = cli_report.make(JOBS, CLUSTERS, args(start=rfc3339(DAY0), end=rfc3339(DAY0 + 3 * H)))
    assert rep.clusters["a"].contract_delivered_kwh == pytest.approx(15)
    assert rep.clusters["a"].contract_unused_kwh == pytest.approx(5)


@pytest.mark.parametrize(
    ("filters", "energy"),
    [
        pytest.param({"namespace": "team-b"}, 5.0, id="namespace"),
        pytest.param({"cluster": "b"}, 12.0, id="cluster"),
        pytest.param({"selector": "team=ml"}, 30.0, id="selector"),
        pytest.param({"selector": "team!=ml"}, 7.0, id="selector-not"),
        pytest.param({"selector": "!team"}, 7.0, id="selector-absent"),
        # a segment counts in the period it started in: j1's b segment starts at 2 h
        pytest.param({"start": rfc3339(DAY0), "end": rfc3339(DAY0 + 2 * H)}, 25.0, id="period"),
    ],
)
def test_filters(filters: dict[str, str], energy: float) -> None:
    assert cli_report.make(JOBS, CLUSTERS, args(**filters)).fleet.energy_kwh == pytest.approx(
        energy
    )


def test_the_default_period_is_that_of_the_jobs_the_filters_select() -> None:
    # a namespace whose jobs ran two years after the others: its own accounts set the period
    later = body("late", [seg("a", DAY0 + 2 * 365 * 86400, 1, 1, 100, 0)], namespace="team-z")
    rep = cli_report.make([*JOBS, later], CLUSTERS, args(namespace="team-z"))
    assert rep.scope.start == DAY0 + 2 * 365 * 86400
    assert rep.fleet.jobs == 1
    with pytest.raises(ValueError, match="at most 400 days; choose a period"):
        cli_report.make([*JOBS, later], CLUSTERS, args())


@pytest.mark.parametrize(
    "bad", [pytest.param("=ml", id="empty-key"), pytest.param("a b=c", id="space")]
)
def test_bad_selectors_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="label requirement"):
        reporting.parse_selector(bad)


def test_csv_and_json_carry_the_same_rows(tmp_path: Path) -> None:
    jobs_file, clusters_file = tmp_path / "jobs.json", tmp_path / "clusters.json"
    jobs_file.write_text(json.dumps({"items": JOBS}))
    clusters_file.write_text(json.dumps({"items": CLUSTERS}))
    common = ["report", "--jobs-file", str(jobs_file), "--clusters-file", str(clusters_file)]
    assert main([*common, "-o", "csv", "--file", str(tmp_path / "r.csv")]) == 0
    assert main([*common, "-o", "json", "--file", str(tmp_path / "r.json")]) == 0
    table = list(csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text())))
    doc = json.loads((tmp_path / "r.json").read_text())
    assert [r["cluster"] for r in table] == ["a", "b", "(fleet)"]
    assert float(table[-1]["energy_kwh"]) == doc["fleet"]["energy_kwh"] == pytest.approx(37)
    # both methods side by side, never one "total" column
    assert {"carbon_location_kg", "carbon_market_kg"} <= set(table[0])
    assert not any("total" in k for k in table[0])
    assert sum(doc["hourly"]["load_kwh"]) == pytest.approx(37)
    assert set(doc["monthly_kg"]) == {"2023-11", "2023-12"}


def test_table_and_charts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jobs_file = tmp_path / "jobs.json"
    jobs_file.write_text(json.dumps({"items": JOBS}))
    plots = tmp_path / "plots"
    assert main(["report", "--jobs-file", str(jobs_file), "--plots", str(plots)]) == 0
    out = capsys.readouterr().out
    assert "(fleet)" in out and "never added" in out
    for name in ("hourly.png", "monthly.png"):
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_after_jobs_ran_in_memory_equals_their_accounts() -> None:
    world = World.make()
    for i in range(3):
        key = f"team-a/j{i}"
        world.hub.add_job("team-a", f"j{i}", job_spec(cpu=str(i + 1)))
        world.services.placement.place(world.hub.body(key))
        cluster = world.status(key)["cluster"]
        job = world.members[cluster].jobs[key]
        job.state, job.started = "Running", T0
    world.clock.advance(2 * H)
    for m in world.members.values():
        for job in m.jobs.values():
            job.state, job.finished = "Complete", world.clock.t
    world.sync()
    bodies = list(world.hub.jobs.values())
    rep = cli_report.make(bodies, [], args())
    accounts = [b["status"]["account"] for b in bodies]
    assert rep.fleet.energy_kwh == pytest.approx(sum(a["energyKwh"] for a in accounts))
    assert rep.fleet.carbon_market_g == pytest.approx(sum(a["carbonMarketG"] for a in accounts))
    assert rep.fleet.cost_usd == pytest.approx(sum(a["costUsd"] for a in accounts))
