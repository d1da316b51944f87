"""The HA rule: one active replica, and a newcomer waits until the others can have seen it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridaware.core.peering import MARGIN, Peer, decide

TTL = 2.0
ME = 5


@pytest.mark.parametrize(
    ("peers", "own_since", "now", "active"),
    [
        pytest.param([], None, 0.0, False, id="own-record-not-written-yet"),
        pytest.param([Peer(ME, True)], None, 0.0, True, id="alone-acts-at-once"),
        pytest.param([Peer(ME, True), Peer(9, True)], 0.0, 60.0, False, id="outranked"),
        pytest.param([Peer(ME, True), Peer(ME, True)], 0.0, 60.0, False, id="tied"),
        pytest.param([Peer(ME, True), Peer(9, False)], 0.0, 0.0, True, id="dead-peer-ignored"),
        pytest.param([Peer(ME, True), Peer(1, True)], None, 0.0, False, id="newcomer-waits"),
        pytest.param(
            [Peer(ME, True), Peer(1, True)], 0.0, TTL + MARGIN - 0.1, False, id="still-waits"
        ),
        pytest.param(
            [Peer(ME, True), Peer(1, True)], 0.0, TTL + MARGIN, True, id="takes-over-after-ttl"
        ),
        pytest.param([Peer(ME, False), Peer(1, True)], 0.0, 60.0, False, id="own-record-expired"),
    ],
)
def test_who_acts(peers: list[Peer], own_since: float | None, now: float, active: bool) -> None:
    assert decide(peers, ME, now, own_since, TTL).active is active


@given(
    st.lists(st.integers(0, 3), min_size=2, max_size=4, unique=True),
    st.lists(st.floats(0, 30), min_size=4, max_size=4),
    st.floats(0, 60),
)
def test_never_two_active_replicas(prios: list[int], joined: list[float], t: float) -> None:
    """Replicas joining at different times, each reading the records at most TTL ago: at
    any moment at most one of them acts."""
    records = [(p, j) for p, j in zip(prios, joined, strict=False)]
    acting = 0
    for me, since in records:
        if t < since:
            continue
        read_at = max(since, t - TTL)  # its cached answer was read then
        peers = [Peer(p, True) for p, j in records if j <= read_at]
        acting += decide(peers, me, read_at, since, TTL).active
    assert acting <= 1
