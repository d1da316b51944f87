"""Accounts booked by the services, in memory: concurrent jobs in one cluster share its
contract's hourly delivery by their energy, a restarted operator books the same shares from
the hub's statuses, failed jobs are booked, and the ledger reports unused contracted energy."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from gridaware.api.v1alpha1 import rfc3339
from gridaware.cli import report as cli_report
from gridaware.core import reporting
from gridaware.services.ledger import Ledger
from tests.fakes import T0, World, job_spec

H = 3600.0
KW = 10.0  # wattsPerReplica 10000: 10 kW IT power, 12 kW with the default PUE 1.2


def with_contracts(world: World, cluster: str, contracts: list[dict[str, Any]]) -> None:
    """The admin adds green contracts to a GridCluster."""
    world.update_cluster(cluster, greenContracts=contracts)


def spec() -> dict[str, Any]:
    return job_spec(energy={"wattsPerReplica": KW * 1000}, placement={"clusters": ["eu-central"]})


def start(world: World, key: str) -> None:
    ns, name = key.split("/")
    world.hub.add_job(ns, name, spec())
    world.services.placement.place(world.hub.body(key))
    job = world.members["eu-central"].jobs[key]
    job.state, job.started = "Running", world.clock.t
    world.sync()


def finish(world: World, key: str, state: str = "Complete") -> dict[str, Any]:
    job = world.members["eu-central"].jobs[key]
    job.state, job.finished = state, world.clock.t
    world.sync()
    account: dict[str, Any] = world.status(key)["account"]
    return account


BASELOAD_12 = [{"name": "ppa", "powerKw": 12, "carbonIntensity": 0}]


def test_two_concurrent_jobs_share_the_contract_by_energy() -> None:
    world = World.make()
    with_contracts(world, "eu-central", BASELOAD_12)
    start(world, "team-a/a")
    start(world, "team-a/b")
    world.clock.advance(H)
    a, b = finish(world, "team-a/a"), finish(world, "team-a/b")
    for acct in (a, b):
        assert acct["energyKwh"] == pytest.approx(12.0)
        assert acct["contractKwh"] == pytest.approx(6.0)  # 12 kWh delivered, 24 kWh drawn
        assert acct["carbonMarketG"] == pytest.approx(6 * 100)  # the rest at DE-LU's 100 g
        assert acct["carbonLocationG"] == pytest.approx(12 * 100)


@pytest.mark.parametrize("state", [pytest.param("Failed", id="failed-job-gets-an-account")])
def test_a_lone_job_gets_the_contract_up_to_its_energy(state: str) -> None:
    world = World.make()
    with_contracts(world, "eu-central", [{"name": "ppa", "powerKw": 6}])
    start(world, "team-a/a")
    world.clock.advance(H)
    acct = finish(world, "team-a/a", state)
    assert acct["contractKwh"] == pytest.approx(6.0)
    # the other 6 kWh at DE-LU's 100 g: estimated carbon-free share 1 - 100/700
    assert acct["gridCfeKwh"] == pytest.approx(6 * (1 - 100 / 700))
    assert acct["cfeEstimated"] is True


def test_a_restarted_operator_books_the_same_share() -> None:
    world = World.make()
    with_contracts(world, "eu-central", BASELOAD_12)
    start(world, "team-a/a")
    start(world, "team-a/b")
    world.clock.advance(H)
    a = finish(world, "team-a/a")
    world = world.restart()  # nothing kept in memory: the statuses are the ledger
    with_contracts(world, "eu-central", BASELOAD_12)
    for key in ("team-a/a", "team-a/b"):
        world.services.placement.place(world.hub.body(key))
    b = finish(world, "team-a/b")
    assert a["contractKwh"] == pytest.approx(6.0)
    assert b["contractKwh"] == pytest.approx(6.0)


def test_a_job_that_ends_first_keeps_its_share() -> None:
    # a runs 0-1 h alone; b starts at 1 h: a got the whole delivery it could use
    world = World.make()
    with_contracts(world, "eu-central", BASELOAD_12)
    start(world, "team-a/a")
    world.clock.advance(H)
    a = finish(world, "team-a/a")
    start(world, "team-a/b")
    world.clock.advance(H)
    b = finish(world, "team-a/b")
    assert a["contractKwh"] == pytest.approx(12.0)
    assert b["contractKwh"] == pytest.approx(12.0)


def test_ledger_reports_unused_contracted_energy() -> None:
    world = World.make()
    with_contracts(world, "eu-central", [{"name": "ppa", "powerKw": 20}])
    world.clock.t = (T0 // H + 1) * H  # on an hour
    start(world, "team-a/a")
    world.clock.advance(H)
    ledger: Ledger = world.services.accounts.ledger
    ledger.refresh()
    metrics = world.services.metrics.registry
    labels = {"cluster": "eu-central"}
    assert metrics.get_sample_value("gridaware_contract_delivered_kwh", labels) == 20.0
    # the job drew 12 kWh of the 20 delivered in the last full hour
    assert metrics.get_sample_value("gridaware_contract_unused_kwh", labels) == pytest.approx(8.0)
    finish(world, "team-a/a")
    energy = metrics.get_sample_value("gridaware_energy_kwh_total", labels)
    assert energy == pytest.approx(12.0)
    contract = {"cluster": "eu-central", "source": "contract"}
    assert metrics.get_sample_value("gridaware_cfe_kwh_total", contract) == pytest.approx(12.0)


@dataclass
class MemoryArchive:
    """The account archive in memory (ConfigMaps on the hub in production)."""

    months: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def keep(self, month: str, key: str, record: dict[str, Any]) -> None:
        self.months.setdefault(month, {})[key] = record

    def records(self) -> list[dict[str, Any]]:
        return [r for month in self.months.values() for r in month.values()]


def test_the_report_covers_jobs_deleted_after_they_finished() -> None:
    world = World.make()
    archive = MemoryArchive()
    world.services.accounts.archive = archive
    with_contracts(world, "eu-central", BASELOAD_12)
    start(world, "team-a/a")
    start(world, "team-a/b")
    world.clock.advance(H)
    accounts = [finish(world, "team-a/a"), finish(world, "team-a/b")]
    assert list(archive.months) == [rfc3339(world.clock.t)[:7]]
    del world.hub.jobs["team-a/a"]  # kubectl delete gaj a
    bodies = reporting.merge_archive(list(world.hub.jobs.values()), archive.records())
    assert len(bodies) == 2  # b live, a from the archive (b's archived copy is not counted)
    rep = cli_report.make(
        bodies,
        [],
        argparse.Namespace(start=None, end=None, namespace=None, cluster=None, selector=None),
    )
    assert rep.fleet.energy_kwh == pytest.approx(sum(a["energyKwh"] for a in accounts))
    assert rep.fleet.contract_kwh == pytest.approx(12.0)
    assert rep.fleet.jobs == 2


def test_valuing_contracts_counts_the_jobs_already_there() -> None:
    # 12 kWh per hour delivered at 0 g and 10 USD/MWh; a 12 kW job already runs: a second
    # 12 kW job would get half, so it sees 0.5 x 0 + 0.5 x 100 g and 0.5 x 10 + 0.5 x 150 USD
    world = World.make()
    contract = {"name": "ppa", "powerKw": 12, "carbonIntensity": 0, "priceUsdPerMwh": 10}
    with_contracts(world, "eu-central", [contract])
    start(world, "team-a/a")
    ledger: Ledger = world.services.accounts.ledger
    member = world.services.cache.member("eu-central")
    assert member is not None
    hour0 = (world.clock.t // H + 1) * H
    v = ledger.valued(member, hour0, np.full(3, 100.0), np.full(3, 150.0), KW)
    assert list(v.carbon) == pytest.approx([50.0] * 3)
    assert v.price_usd is not None and list(v.price_usd) == pytest.approx([80.0] * 3)
    assert v.covered == pytest.approx(0.5)
    assert "contracts cover 50 %" in v.note


def test_contract_gauges_follow_contracts_added_and_removed_within_an_hour() -> None:
    world = World.make()
    ledger: Ledger = world.services.accounts.ledger
    metrics = world.services.metrics.registry
    labels = {"cluster": "eu-central"}
    ledger.refresh()
    assert metrics.get_sample_value("gridaware_contract_delivered_kwh", labels) is None
    with_contracts(world, "eu-central", [{"name": "ppa", "powerKw": 20}])
    ledger.refresh()  # same hour: the new contract is shown at once
    assert metrics.get_sample_value("gridaware_contract_delivered_kwh", labels) == 20.0
    with_contracts(world, "eu-central", [])
    ledger.refresh()
    assert metrics.get_sample_value("gridaware_contract_delivered_kwh", labels) is None
    assert metrics.get_sample_value("gridaware_contract_unused_kwh", labels) is None
