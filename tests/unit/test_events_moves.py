"""Moving checkpointing jobs out of a curtailed zone (the third response, after held starts
and pauses): who moves, where to, and never into a cluster without room or past a deadline."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridaware.api.v1alpha1 import Resources
from gridaware.core import events
from gridaware.core.events import Move, Request, Room
from gridaware.core.power import JobLoad, LoadState

T = 1_700_000_000.0
H = 3600.0
CPU1 = Resources(cpu=1)


def job(
    key: str,
    kw: float = 10.0,
    *,
    deadline: float | None = None,
    pausable: bool = True,
    checkpoint: bool = True,
    priority: int = 0,
    max_pause: float | None = None,
    pauses_left: int = 4,
) -> JobLoad:
    return JobLoad(
        key, "de", "DE-LU", kw, LoadState.RUNNING, T - H, 2 * H, deadline, pausable,
        checkpoint, priority, max_pause, pauses_left,
    )  # fmt: skip


def curtail(target_kw: float, mandatory: bool = False) -> Request:
    """A 3-hour Curtail from T to ``target_kw``."""
    return Request("peak", "Curtail", target_kw, T, T + 3 * H, mandatory)


def everywhere(*keys: str, clusters: tuple[str, ...] = ("west", "east")) -> dict[str, Move]:
    return {k: Move(CPU1, clusters) for k in keys}


ROOMY = {"west": Room(Resources(cpu=64)), "east": Room(Resources(cpu=64))}


@pytest.mark.parametrize(
    ("running", "req", "moves", "rooms", "expected"),
    [
        pytest.param(
            [
                job("a", pauses_left=0),
                job("b", pauses_left=0),
                job("c", checkpoint=False, pausable=False),
            ],
            curtail(20.0),
            everywhere("a", "b"),
            ROOMY,
            [("Migrate", "a", "west")],
            id="no-pauses-left-moves-out",
        ),
        pytest.param(
            [job("a", max_pause=H), job("b", pausable=False, checkpoint=False)],
            curtail(10.0),
            everywhere("a"),
            ROOMY,
            [("Migrate", "a", "west")],
            id="longest-pause-shorter-than-window",
        ),
        pytest.param(
            [job("a", deadline=T + 2 * H + 600), job("b", checkpoint=False, pausable=False)],
            curtail(10.0),
            everywhere("a"),
            ROOMY,
            [("Migrate", "a", "west")],
            id="deadline-waits-for-a-move-not-the-window",
        ),
        pytest.param(
            [job("a", deadline=T + 2 * H + 100, pausable=False)],
            curtail(0.0),
            everywhere("a"),
            ROOMY,
            [],
            id="deadline-cannot-wait-for-a-move",
        ),
        pytest.param(
            [job("a", deadline=T + 2 * H + 100, pausable=False)],
            curtail(0.0, mandatory=True),
            everywhere("a"),
            ROOMY,
            [("Migrate", "a", "west")],
            id="mandatory-spends-the-deadline",
        ),
        pytest.param(
            [job("a", checkpoint=False, max_pause=H)],
            curtail(0.0),
            everywhere("a"),
            ROOMY,
            [],
            id="no-checkpoint-no-move",
        ),
        pytest.param(
            [job("a", pauses_left=0)],
            curtail(0.0),
            {},
            ROOMY,
            [],
            id="no-allowed-cluster-no-move",
        ),
        pytest.param(
            [job("a"), job("b"), job("c", pauses_left=0)],
            curtail(20.0),
            everywhere("a", "b", "c"),
            ROOMY,
            [("Pause", "a", None)],
            id="pausing-enough-no-move",
        ),
        pytest.param(
            [job("a"), job("b", pauses_left=0), job("c", pauses_left=0, priority=-1)],
            curtail(0.0),
            everywhere("b", "c"),
            ROOMY,
            [("Pause", "a", None), ("Migrate", "c", "west"), ("Migrate", "b", "west")],
            id="pauses-first-then-moves-lowest-priority-first",
        ),
        pytest.param(
            [job("a", pauses_left=0), job("b", pauses_left=0), job("c", pauses_left=0)],
            curtail(0.0),
            everywhere("a", "b", "c"),
            {"west": Room(Resources(cpu=1.5)), "east": Room(Resources(cpu=1))},
            [("Migrate", "a", "west"), ("Migrate", "b", "east")],
            id="resources-taken-by-earlier-moves",
        ),
        pytest.param(
            [job("a", pauses_left=0)],
            curtail(0.0),
            everywhere("a"),
            {"west": Room(Resources(cpu=64), kw=5.0), "east": Room(Resources(cpu=64), kw=10.0)},
            [("Migrate", "a", "east")],
            id="power-budget-of-the-destination",
        ),
        pytest.param(
            [job("a", pauses_left=0)],
            curtail(0.0),
            everywhere("a", clusters=("north",)),
            ROOMY,
            [],
            id="ranked-cluster-unknown-to-rooms",
        ),
    ],
)
def test_moves(
    running: list[JobLoad],
    req: Request,
    moves: dict[str, Move],
    rooms: dict[str, Room],
    expected: list[tuple[str, str | None, str | None]],
) -> None:
    got = [
        (p.type, p.job, p.target) for p in events.plan_curtail(req, running, [], T, moves, rooms)
    ]
    assert got == expected


loads = st.lists(
    st.builds(
        lambda i, kw, dl, pa, ck, pl, mp: job(
            f"j{i}", kw, deadline=dl, pausable=pa, checkpoint=ck, pauses_left=pl, max_pause=mp
        ),
        st.integers(0, 10_000),
        st.floats(0.1, 50),
        st.one_of(st.none(), st.floats(T, T + 12 * H)),
        st.booleans(),
        st.booleans(),
        st.integers(0, 2),
        st.one_of(st.none(), st.floats(60, 8 * H)),
    ),
    max_size=20,
    unique_by=lambda j: j.key,
)
room_st = st.builds(
    Room,
    st.builds(Resources, cpu=st.floats(0, 8)),
    st.one_of(st.just(math.inf), st.floats(0, 100)),
)


@given(
    loads,
    st.floats(0, 200),
    st.dictionaries(st.sampled_from(["west", "east", "north"]), room_st, max_size=3),
    st.floats(0, 3),
    st.booleans(),
)
def test_moves_fit_and_keep_deadlines(
    running: list[JobLoad], target: float, rooms: dict[str, Room], cpus: float, mandatory: bool
) -> None:
    moves = {j.key: Move(Resources(cpu=cpus), ("west", "east", "north"), 300.0) for j in running}
    req = Request("e", "Curtail", target, T, T + 3 * H, mandatory)
    plan = events.plan_curtail(req, running, [], T, moves, rooms)
    by_key = {j.key: j for j in running}
    used: dict[str, tuple[float, float]] = {}
    for p in plan:
        if p.type != "Migrate":
            continue
        j = by_key[p.job or ""]
        assert j.checkpoint and p.target in rooms
        assert mandatory or j.slack(T) >= 300.0
        cpu, kw = used.get(p.target or "", (0.0, 0.0))
        used[p.target or ""] = (cpu + cpus, kw + j.kw)
    for name, (cpu, kw) in used.items():
        assert cpu <= rooms[name].free.cpu + 1e-6
        assert kw <= rooms[name].kw + 1e-3 * len(plan)
    jobs = [p.job for p in plan if p.job]
    assert len(jobs) == len(set(jobs))  # one action per job
