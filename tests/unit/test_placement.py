"""Placement decisions: table-driven cases for constraints, capacity, ceilings and scoring."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridaware.api.v1alpha1 import LabelSelector, Objective, Placement, Resources
from gridaware.core.placement import ClusterSnapshot, JobRequest, Wait, decide, score

BIG = Resources(cpu=64, memory=2**40, gpu=8)


def cluster(
    name: str,
    carbon: float | None,
    price: float | None = 50.0,
    *,
    zone: str = "",
    free: Resources = BIG,
    reachable: bool = True,
    pue: float = 1.0,
    labels: dict[str, str] | None = None,
    allocatable: Resources = BIG,
) -> ClusterSnapshot:
    return ClusterSnapshot(
        name=name,
        region=name,
        zone=zone or name.upper(),
        labels=labels or {},
        reachable=reachable,
        allocatable=allocatable,
        free=free,
        carbon=carbon,
        price_usd=price,
        pue=pue,
    )


def job(
    cpu: float = 1,
    gpu: float = 0,
    placement: Placement | None = None,
    objective: Objective | None = None,
) -> JobRequest:
    return JobRequest(
        Resources(cpu=cpu, memory=2**30, gpu=gpu),
        placement or Placement(),
        objective or Objective(),
    )


THREE = [cluster("a", 300), cluster("b", 100), cluster("c", 200)]


@pytest.mark.parametrize(
    ("request_", "clusters", "chosen", "wait"),
    [
        pytest.param(job(), THREE, "b", None, id="greenest"),
        pytest.param(
            job(placement=Placement(clusters=["a", "c"])), THREE, "c", None, id="allowed-names"
        ),
        pytest.param(
            job(placement=Placement(excluded_zones=["B"])), THREE, "c", None, id="excluded-zone"
        ),
        pytest.param(
            job(placement=Placement(cluster_selector=LabelSelector(match_labels={"tier": "gold"}))),
            [cluster("a", 300, labels={"tier": "gold"}), cluster("b", 100)],
            "a",
            None,
            id="selector",
        ),
        pytest.param(
            job(gpu=4),
            [cluster("a", 300), cluster("b", 100, free=Resources(cpu=64, memory=2**40, gpu=2))],
            "a",
            None,
            id="capacity-skips-greenest",
        ),
        pytest.param(job(gpu=16), THREE, None, Wait.NO_ELIGIBLE, id="never-fits"),
        pytest.param(
            job(gpu=4),
            [cluster("a", 300, free=Resources(cpu=64, memory=2**40))],
            None,
            Wait.CAPACITY,
            id="full-now",
        ),
        pytest.param(
            job(),
            [cluster("a", 300, reachable=False), cluster("b", 100, reachable=False)],
            None,
            Wait.UNREACHABLE,
            id="unreachable",
        ),
        pytest.param(
            job(),
            [cluster("a", 300, reachable=False), cluster("b", 400)],
            "b",
            None,
            id="unreachable-skipped",
        ),
        pytest.param(
            job(objective=Objective(carbon_ceiling=150)),
            [cluster("a", 300), cluster("b", 200)],
            None,
            Wait.CEILING,
            id="above-ceiling",
        ),
        pytest.param(
            job(objective=Objective(carbon_ceiling=250)), THREE, "b", None, id="below-ceiling"
        ),
        pytest.param(
            job(objective=Objective(carbon_weight=0, price_weight=1)),
            [cluster("a", 100, 90), cluster("b", 500, 20)],
            "b",
            None,
            id="price-only",
        ),
        pytest.param(
            job(),
            [cluster("a", 200, pue=1.6), cluster("b", 250, pue=1.1)],
            "b",
            None,
            id="pue-matters",
        ),
        pytest.param(
            job(), [cluster("a", None), cluster("b", 400)], "b", None, id="missing-signal"
        ),
        pytest.param(job(), [cluster("a", None)], None, Wait.NO_SIGNAL, id="no-signal-at-all"),
        pytest.param(job(), [], None, Wait.NO_ELIGIBLE, id="no-clusters"),
        pytest.param(job(), [cluster("b", 100), cluster("a", 100)], "a", None, id="tie-by-name"),
    ],
)
def test_decide(
    request_: JobRequest, clusters: list[ClusterSnapshot], chosen: str | None, wait: Wait | None
) -> None:
    d = decide(request_, clusters)
    assert (d.cluster.name if d.cluster else None) == chosen
    assert d.wait == wait
    assert len(d.candidates) == len(clusters)
    assert d.reason


def test_every_candidate_is_explained() -> None:
    d = decide(job(placement=Placement(clusters=["a", "b"])), THREE)
    by_name = {c.cluster: c for c in d.candidates}
    assert by_name["c"].eligible is False and "placement.clusters" in by_name["c"].reason
    assert by_name["b"].score == pytest.approx(100 / 400)
    assert "next a" in d.reason


@pytest.mark.parametrize(
    ("objective", "carbon", "price", "pue", "expected"),
    [
        (Objective(), 400, None, 1.0, 1.0),
        (Objective(), 200, None, 1.5, 0.75),
        (Objective(carbon_weight=1, price_weight=1), 400, 100, 1.0, 1.0),
        (Objective(carbon_weight=0, price_weight=2), 400, 50, 1.0, 0.5),
        (Objective(carbon_weight=1, price_weight=1), 400, None, 1.0, None),
    ],
)
def test_score(
    objective: Objective,
    carbon: float | None,
    price: float | None,
    pue: float,
    expected: float | None,
) -> None:
    got = score(objective, carbon, price, pue)
    assert got == (pytest.approx(expected) if expected is not None else None)


snapshots = st.lists(
    st.builds(
        cluster,
        name=st.sampled_from(list("abcdefg")),
        carbon=st.one_of(st.none(), st.floats(1, 1500)),
        price=st.one_of(st.none(), st.floats(-100, 500)),
        free=st.builds(
            Resources, cpu=st.floats(0, 64), memory=st.floats(0, 2**40), gpu=st.integers(0, 8)
        ),
        reachable=st.booleans(),
        pue=st.floats(1.0, 2.0),
    ),
    max_size=7,
    unique_by=lambda c: c.name,
)


@given(
    snapshots,
    st.floats(0, 64),
    st.integers(0, 8),
    st.floats(0, 10),
    st.floats(0, 10),
    st.one_of(st.none(), st.floats(1, 2000)),
)
def test_decision_never_violates_a_hard_constraint(
    clusters: list[ClusterSnapshot],
    cpu: float,
    gpu: int,
    wc: float,
    wp: float,
    ceiling: float | None,
) -> None:
    if wc + wp == 0:
        wc = 1
    j = job(
        cpu=cpu,
        gpu=gpu,
        objective=Objective(carbon_weight=wc, price_weight=wp, carbon_ceiling=ceiling),
    )
    d = decide(j, clusters)
    if d.cluster is None:
        assert d.wait is not None
        return
    c = d.cluster
    assert c.reachable and c.free.fits(j.requests)
    assert ceiling is None or (c.carbon is not None and c.carbon <= ceiling)
    best = score(j.objective, c.carbon, c.price_usd, c.pue)
    assert best is not None
    for other in d.candidates:
        if other.eligible and other.score is not None:
            assert best <= other.score + 1e-3
