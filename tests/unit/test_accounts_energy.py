"""Accounts from measured energy, in memory: with an energy port (Prometheus' Kepler/DCGM
counters in the operator), a segment books the joules its pods drew (full coverage), the
measured pods plus the model for the rest (partial), or the model (no counters, Prometheus
down: with a note, never a lost account), and ``energySource`` says which; the same kWh go
into both carbon methods, cost, the counterfactual and the contract sharing of the ledger. The
real client is used once against a local Prometheus double to book across a counter reset."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridaware.core import accounting
from gridaware.signals.errors import FeedUnavailableError
from gridaware.signals.http import HttpClient, RetryPolicy
from gridaware.signals.prometheus import PrometheusEnergy
from tests.fakes import World, job_spec
from tests.feedserver import Answer, FeedServer

H = 3600.0
KW = 10.0  # the model: wattsPerReplica x replicas = 10 kW IT power
PUE = 1.2  # the fake members' default
SCRAPE = 15.0  # the accounts wait two scrape intervals after a job ends
DE_LU_G, DE_LU_USD = 100.0, 150.0  # the fake feeds' eu-central signals
FAST = RetryPolicy(attempts=1, base_delay=0.01, total_timeout=2.0, request_timeout=(0.5, 0.5))


@dataclass(frozen=True)
class Pod:
    """A pod drawing ``kw`` from ``start`` to ``end`` hours after its Job started."""

    name: str
    kw: float
    start: float = 0.0
    end: float = 1.0
    cluster: str = "eu-central"


@dataclass
class MemoryEnergy:
    """Energy counters in memory: each pod's joules are its power over its overlap with the
    asked window; ``down`` plays a Prometheus that does not answer."""

    t0: float
    pods: list[Pod]
    down: bool = False
    asked: list[tuple[str, str, str | None]] = field(default_factory=list)

    def joules(
        self,
        namespace: str,
        pod_regex: str,
        start: dt.datetime,
        end: dt.datetime,
        cluster: str | None = None,
    ) -> dict[str, float] | None:
        self.asked.append((namespace, pod_regex, cluster))
        if self.down:
            raise FeedUnavailableError("prometheus: connection refused")
        t0, t1 = start.timestamp(), end.timestamp()
        out = {}
        for p in self.pods:
            if (cluster is None or p.cluster == cluster) and re.fullmatch(pod_regex, p.name):
                a, b = self.t0 + p.start * H, self.t0 + p.end * H
                out[p.name] = p.kw * 1000 * max(0.0, min(t1, b) - max(t0, a))
        return out or None


def spec(replicas: int = 1) -> dict[str, Any]:
    s = job_spec(
        energy={"wattsPerReplica": KW * 1000 / replicas}, placement={"clusters": ["eu-central"]}
    )
    s["template"]["parallelism"] = replicas
    return s


def measured_world(energy: Any) -> World:
    """The operator configured with a Prometheus URL (here an in-memory energy port)."""
    world = World.make()
    world.services.accounts.energy = energy
    world.services.accounts.scrape_seconds = SCRAPE
    return world


def start(world: World, key: str, replicas: int = 1) -> None:
    ns, name = key.split("/")
    world.hub.add_job(ns, name, spec(replicas))
    world.services.placement.place(world.hub.body(key))
    job = world.members["eu-central"].jobs[key]
    job.state, job.started = "Running", world.clock.t
    world.sync()


def finish(world: World, *keys: str) -> dict[str, Any]:
    """The Jobs complete together; the accounts are booked after the counters' last scrape
    (the first job's account is returned)."""
    for key in keys:
        job = world.members["eu-central"].jobs[key]
        job.state, job.finished = "Complete", world.clock.t
    world.sync()
    assert all("account" not in world.status(k) for k in keys), "booked before the last scrape"
    world.clock.advance(2 * SCRAPE)
    world.services.accounts.tick()
    account: dict[str, Any] = world.status(keys[0])["account"]
    return account


@pytest.mark.parametrize(
    ("replicas", "pods", "down", "it_kwh", "source", "note"),
    [
        pytest.param(1, [Pod("a-x7k2p", 5.0)], False, 5.0, "Measured", None, id="full-coverage"),
        pytest.param(
            2,
            [Pod("a-x7k2p", 3.0), Pod("a-q9z1m", 4.0)],
            False,
            7.0,
            "Measured",
            None,
            id="every-replica-measured",
        ),
        pytest.param(
            1,
            [Pod("a-x7k2p", 4.0, 0.0, 0.25), Pod("a-b8c3d", 4.0, 0.25, 1.0)],
            False,
            4.0,
            "Measured",
            None,
            id="failed-pod-and-its-retry-both-count",
        ),
        pytest.param(
            2,
            [Pod("a-x7k2p", 3.0)],
            False,
            3.0 + KW / 2,
            "Mixed",
            None,
            id="partial-coverage-measured-pod-plus-modelled-replica",
        ),
        pytest.param(
            1,
            [Pod("a-x7k2p", 5.0, cluster="us-west"), Pod("ab-x7k2p", 5.0), Pod("a-1-x7k2p", 0.0)],
            False,
            KW,
            "Modelled",
            "no energy counters for the pods in eu-central",
            id="no-counters-for-these-pods-model",
        ),
        pytest.param(
            1,
            [Pod("a-x7k2p", 5.0)],
            True,
            KW,
            "Modelled",
            "Prometheus unavailable",
            id="outage-falls-back-to-the-model",
        ),
    ],
)
def test_segment_energy_measured_mixed_or_modelled(
    replicas: int, pods: list[Pod], down: bool, it_kwh: float, source: str, note: str | None
) -> None:
    world = measured_world(None)
    energy = MemoryEnergy(world.clock.t, pods, down)
    world.services.accounts.energy = energy
    start(world, "team-a/a", replicas)
    world.clock.advance(H)
    acct = finish(world, "team-a/a")
    kwh = it_kwh * PUE
    assert acct["energySource"] == source
    assert [s["energySource"] for s in acct["segments"]] == [source]
    assert acct["energyKwh"] == pytest.approx(kwh, abs=1e-6)
    if note is None:
        assert "energyNote" not in acct
    else:
        assert note in acct["energyNote"]
    # one kWh figure everywhere: both carbon methods, cost, and the counterfactual
    assert acct["carbonLocationG"] == pytest.approx(kwh * DE_LU_G, abs=1e-3)
    assert acct["carbonMarketG"] == pytest.approx(kwh * DE_LU_G, abs=1e-3)
    assert acct["costUsd"] == pytest.approx(kwh * DE_LU_USD / 1000, abs=1e-6)
    assert acct["counterfactualLocationG"] == pytest.approx(kwh * DE_LU_G, abs=1e-3)
    assert acct["savedLocationG"] == pytest.approx(0.0, abs=1e-3)
    assert energy.asked == [("team-a", "a-([0-9]+-)?[a-z0-9]{5}", "eu-central")]


def test_after_an_outage_prometheus_is_left_alone_for_a_while() -> None:
    world = measured_world(None)
    energy = MemoryEnergy(world.clock.t, [Pod("a-x7k2p", 5.0), Pod("b-x7k2p", 5.0)], down=True)
    world.services.accounts.energy = energy
    start(world, "team-a/a")
    start(world, "team-a/b")
    world.clock.advance(H)
    assert finish(world, "team-a/a")["energySource"] == "Modelled"
    energy.down = False  # back, but the next account within the minute does not ask
    b = finish(world, "team-a/b")
    assert len(energy.asked) == 1
    assert b["energySource"] == "Modelled" and "recent failure" in b["energyNote"]


def test_without_prometheus_accounts_are_booked_at_once_from_the_model() -> None:
    world = World.make()
    start(world, "team-a/a")
    world.clock.advance(H)
    job = world.members["eu-central"].jobs["team-a/a"]
    job.state, job.finished = "Complete", world.clock.t
    world.sync()
    acct = world.status("team-a/a")["account"]
    assert acct["energySource"] == "Modelled" and "energyNote" not in acct
    assert acct["energyKwh"] == pytest.approx(KW * PUE)


def test_contract_sharing_uses_the_measured_kwh() -> None:
    """a (measured 5 kW) and b (no counters: the model's 10 kW) share a 12 kW contract for an
    hour: each gets its kWh x 12 / (6 + 12), and together exactly what was delivered. With
    a's modelled kWh the shares would be 6 and 6."""
    world = measured_world(None)
    world.services.accounts.energy = MemoryEnergy(world.clock.t, [Pod("a-x7k2p", 5.0)])
    world.update_cluster(
        "eu-central", greenContracts=[{"name": "ppa", "powerKw": 12, "carbonIntensity": 0}]
    )
    start(world, "team-a/a")
    start(world, "team-a/b")
    world.clock.advance(H)
    a = finish(world, "team-a/a", "team-a/b")
    b = world.status("team-a/b")["account"]
    assert (a["energySource"], b["energySource"]) == ("Measured", "Modelled")
    assert a["contractKwh"] == pytest.approx(6.0 * 12 / 18)
    assert b["contractKwh"] == pytest.approx(12.0 * 12 / 18)
    assert a["contractKwh"] + b["contractKwh"] == pytest.approx(12.0)
    assert a["carbonMarketG"] == pytest.approx((6.0 - a["contractKwh"]) * DE_LU_G, abs=1e-3)


def _matrix(*series: tuple[str, list[tuple[float, float]]]) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {
                    "metric": {"container_namespace": "team-a", "pod_name": pod},
                    "values": [[t, str(v)] for t, v in vals],
                }
                for pod, vals in series
            ],
        },
    }


def test_a_counter_reset_through_the_real_client(feed_server: FeedServer) -> None:
    """Kepler restarts mid-run and its counter starts again from 0: the account counts the
    4.6 MJ before the reset plus the new counter's 5.4 MJ (the series is born inside the
    window, so from 0)."""
    world = measured_world(None)
    t0 = world.clock.t
    samples = [(t0 + 60, 1.0e6), (t0 + 1800, 4.6e6), (t0 + 1900, 0.2e6), (t0 + H, 5.4e6)]
    feed_server.route("/api/v1/query", _matrix(("a-x7k2p", samples)))
    client = PrometheusEnergy(feed_server.url, dcgm_metric=None, http=HttpClient("prom", FAST))
    world.services.accounts.energy = client
    start(world, "team-a/a")
    world.clock.advance(H)
    acct = finish(world, "team-a/a")
    assert acct["energySource"] == "Measured"
    assert acct["energyKwh"] == pytest.approx(10.0e6 / 3.6e6 * PUE, abs=1e-6)
    (query,) = feed_server.hits("/api/v1/query")
    assert 'cluster="eu-central"' in query.query["query"][0]


def test_prometheus_answering_503_books_the_model(feed_server: FeedServer) -> None:
    world = measured_world(None)
    feed_server.route("/api/v1/query", Answer(status=503, body="overloaded"))
    client = PrometheusEnergy(feed_server.url, http=HttpClient("prom", FAST))
    world.services.accounts.energy = client
    start(world, "team-a/a")
    world.clock.advance(H)
    acct = finish(world, "team-a/a")
    assert acct["energySource"] == "Modelled"
    assert acct["energyKwh"] == pytest.approx(KW * PUE)
    assert "Prometheus unavailable" in acct["energyNote"]


def _segment(
    start: float, end: float, measured: accounting.MeasuredEnergy | None, hours: int = 4
) -> Any:
    carbon = accounting.Series(0.0, np.full(hours, 100.0), "average")
    price = accounting.Series(0.0, np.full(hours, 50.0))
    return accounting.RunSegment("c", "Z", start, end, 1.5, carbon, price, measured=measured)


@pytest.mark.parametrize(
    ("measured", "sources", "overall", "kwh"),
    [
        pytest.param(
            [accounting.MeasuredEnergy(2.0), accounting.MeasuredEnergy(1.0)],
            ["Measured", "Measured"],
            "Measured",
            (2.0 + 1.0) * 1.5,
            id="every-segment-measured",
        ),
        pytest.param(
            [accounting.MeasuredEnergy(2.0), None],
            ["Measured", "Modelled"],
            "Mixed",
            (2.0 + 4.0) * 1.5,
            id="migrated-to-a-cluster-without-counters",
        ),
        pytest.param(
            [accounting.MeasuredEnergy(1.0, 0.25), None],
            ["Mixed", "Modelled"],
            "Mixed",
            (1.0 + 1.0 + 4.0) * 1.5,
            id="partial-then-modelled",
        ),
        pytest.param(
            [None, None], ["Modelled", "Modelled"], "Modelled", 8.0 * 1.5, id="nothing-measured"
        ),
    ],
)
def test_account_energy_source_over_segments(
    measured: list[accounting.MeasuredEnergy | None],
    sources: list[str],
    overall: str,
    kwh: float,
) -> None:
    """Two one-hour segments of a 4 kW job (model), PUE 1.5."""
    segs = [_segment(0.0, H, measured[0]), _segment(H, 2 * H, measured[1])]
    cf = _segment(0.0, 2 * H, None)
    acct = accounting.account(segs, 4.0, "c", cf, "test")
    assert [s.energy_source for s in acct.segments] == sources
    assert acct.energy_source == overall
    assert acct.energy_kwh == pytest.approx(kwh)
    assert acct.carbon_location_g == pytest.approx(kwh * 100)
    assert acct.cost_usd == pytest.approx(kwh * 50 / 1000)
    # the counterfactual runs as long at the job's actual average power
    assert acct.counterfactual_location_g == pytest.approx(kwh * 100)


def test_a_zero_length_segment_is_modelled() -> None:
    seg = _segment(H, H, accounting.MeasuredEnergy(1.0))
    assert accounting.energy_source(seg) == "Modelled"
    assert accounting.it_power_kw(seg, 4.0) == 4.0


def test_a_restart_before_the_last_scrape_books_the_same_account() -> None:
    """Nothing waits on disk: the restarted operator relists the finished Job and books it."""
    world = measured_world(None)
    pods = [Pod("a-x7k2p", 5.0)]
    world.services.accounts.energy = MemoryEnergy(world.clock.t, pods)
    start(world, "team-a/a")
    world.clock.advance(H)
    job = world.members["eu-central"].jobs["team-a/a"]
    job.state, job.finished = "Complete", world.clock.t
    world.sync()
    world = world.restart()
    world.services.accounts.energy = MemoryEnergy(job.started or 0.0, pods)
    world.services.accounts.scrape_seconds = SCRAPE
    world.services.placement.place(world.hub.body("team-a/a"))  # Kopf seeds the job
    world.sync()
    assert "account" not in world.status("team-a/a")
    world.clock.advance(2 * SCRAPE)
    world.services.accounts.tick()
    acct = world.status("team-a/a")["account"]
    assert acct["energySource"] == "Measured"
    assert acct["energyKwh"] == pytest.approx(5.0 * PUE, abs=1e-6)


@given(
    st.lists(
        st.tuples(
            st.floats(0.1, 5.0),  # hours
            st.none() | st.tuples(st.floats(0.0, 50.0), st.floats(0.0, 1.0)),  # kWh, share
        ),
        min_size=1,
        max_size=4,
    ),
    st.floats(0.0, 20.0),
)
def test_energy_is_measured_plus_modelled_share_and_carbon_follows(
    runs: list[tuple[float, tuple[float, float] | None]], model_kw: float
) -> None:
    segs, t, expected = [], 0.0, 0.0
    for hours, m in runs:
        measured = None if m is None else accounting.MeasuredEnergy(m[0], m[1])
        segs.append(_segment(t, t + hours * H, measured, hours=int(t / H + hours) + 2))
        it_kwh = model_kw * hours if m is None else m[0] + model_kw * m[1] * hours
        expected += it_kwh * 1.5
        t += hours * H
    acct = accounting.account(segs, model_kw, "c", None, "test")
    assert acct.energy_kwh == pytest.approx(expected, rel=1e-6, abs=1e-5)
    assert acct.carbon_location_g == pytest.approx(100 * acct.energy_kwh, rel=1e-6, abs=1e-2)
    sources = {s.energy_source for s in acct.segments}
    assert acct.energy_source == (sources.pop() if len(sources) == 1 else "Mixed")


def test_a_finished_member_job_with_a_ttl_is_kept_until_its_account_is_booked() -> None:
    world = measured_world(None)
    world.services.accounts.energy = MemoryEnergy(world.clock.t, [Pod("a-x7k2p", 5.0)])
    s = spec()
    s["template"]["ttlSecondsAfterFinished"] = 0
    world.hub.add_job("team-a", "a", s)
    world.services.placement.place(world.hub.body("team-a/a"))
    job = world.members["eu-central"].jobs["team-a/a"]
    job.state, job.started = "Running", world.clock.t
    world.sync()
    world.clock.advance(H)
    job.state, job.finished = "Complete", world.clock.t
    world.connect("eu-central")  # outcome recorded; the account waits for the last scrape
    world.clock.advance(SCRAPE)
    world.connect("eu-central")
    assert world.copies("team-a/a") == ["eu-central"], "deleted before its account"
    world.clock.advance(SCRAPE)
    world.services.accounts.tick()
    world.connect("eu-central")
    assert world.status("team-a/a")["account"]["energySource"] == "Measured"
    assert world.copies("team-a/a") == []


def test_an_account_missed_at_start_up_is_booked_by_the_loop() -> None:
    # the member Job finished and was listed before the operator knew its GridAwareJob
    world = World.make()
    world.hub.add_job("team-a", "a", spec())
    world.services.placement.place(world.hub.body("team-a/a"))
    job = world.members["eu-central"].jobs["team-a/a"]
    job.state, job.started, job.finished = "Complete", world.clock.t, world.clock.t + H
    world.services.statuses.forget("team-a/a")  # unknown while the watch lists the Job
    world.sync()
    key = world.services.placement.watched(world.hub.body("team-a/a"))  # then Kopf hands it over
    world.services.placement.reconcile(key)  # the outcome is mirrored, not the account
    assert world.status("team-a/a")["phase"] == "Succeeded"
    assert "account" not in world.status("team-a/a")
    world.services.tick()
    assert world.status("team-a/a")["account"]["energyKwh"] > 0
