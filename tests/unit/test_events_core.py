"""Response planning (cheapest first, deadlines kept) and the status figures, by hand."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridaware.api.v1alpha1 import Resources
from gridaware.core import events
from gridaware.core.events import Request, Tally
from gridaware.core.power import JobLoad, LoadState

T = 1_700_000_000.0
H = 3600.0
CURTAIL = Request("peak", "Curtail", 30.0, T, T + 3 * H)


def job(
    key: str,
    kw: float = 10.0,
    *,
    state: LoadState = LoadState.RUNNING,
    start: float = T - H,
    remaining: float | None = 2 * H,
    deadline: float | None = None,
    pausable: bool = True,
    checkpoint: bool = False,
    priority: int = 0,
    max_pause: float | None = None,
    pauses_left: int = 4,
) -> JobLoad:
    return JobLoad(
        key,
        "de",
        "DE-LU",
        kw,
        state,
        start,
        remaining,
        deadline,
        pausable,
        checkpoint,
        priority,
        max_pause,
        pauses_left,
    )


def kinds(plan: list[events.Planned]) -> list[tuple[str, str | None]]:
    return [(p.type, p.job) for p in plan]


@pytest.mark.parametrize(
    ("running", "deferred", "expected"),
    [
        pytest.param(
            [job("a"), job("b"), job("c"), job("d")], [], [("Pause", "a")], id="one-pause-enough"
        ),
        pytest.param(
            [job("a", priority=5), job("b"), job("c"), job("d", priority=5)],
            [],
            [("Pause", "b")],
            id="lowest-priority-first",
        ),
        pytest.param(
            [job("a", deadline=T + 6 * H), job("b", deadline=T + 20 * H), job("c"), job("d", 1)],
            [],
            [("Pause", "c")],
            id="most-slack-first",
        ),
        pytest.param(
            [job("a", deadline=T + 4 * H), job("b", pausable=False), job("c", 20, pausable=False)],
            [],
            [],
            id="voluntary-never-spends-a-deadline",
        ),
        pytest.param(
            [job("a", max_pause=H), job("b", pauses_left=0), job("c"), job("d")],
            [],
            [("Pause", "c")],
            id="pause-limits-respected",
        ),
        pytest.param(
            [job("a"), job("b"), job("c"), job("d")],
            [
                job("e", state=LoadState.DEFERRED, start=T + H),
                job("f", state=LoadState.DEFERRED, start=T + 4 * H),
            ],
            [("HoldStarts", None), ("Pause", "a")],
            id="hold-starts-due-in-window",
        ),
        pytest.param(
            [job("a"), job("b"), job("c"), job("d")],
            [job("e", state=LoadState.DEFERRED, start=T + H, deadline=T + 4 * H)],
            [("Pause", "a")],
            id="no-hold-that-would-miss-a-deadline",
        ),
    ],
)
def test_plan_curtail(
    running: list[JobLoad], deferred: list[JobLoad], expected: list[tuple[str, str | None]]
) -> None:
    assert kinds(events.plan_curtail(CURTAIL, running, deferred, T)) == expected


def test_migrate_after_pauses_where_another_zone_has_room() -> None:
    req = Request("peak", "Curtail", 20.0, T, T + 3 * H)
    running = [
        job("a", pausable=False, checkpoint=True),
        job("b", pausable=False, checkpoint=True),
        job("c", pausable=False),
        job("d"),
    ]
    moves = {k: events.Move(Resources(cpu=1), ("west",)) for k in ("a", "b")}
    rooms = {"west": events.Room(Resources(cpu=1))}  # room for one move
    plan = events.plan_curtail(req, running, [], T, moves, rooms)
    assert kinds(plan) == [("Pause", "d"), ("Migrate", "a")]
    assert plan[1].target == "west"


def test_mandatory_spends_deadlines_but_not_unpausable_jobs() -> None:
    req = Request("peak", "Curtail", 0.0, T, T + 3 * H, mandatory=True)
    running = [job("a", deadline=T + 2.5 * H), job("b", pausable=False)]
    assert kinds(events.plan_curtail(req, running, [], T)) == [("Pause", "a")]


@pytest.mark.parametrize(
    ("current", "deferred", "expected"),
    [
        pytest.param(
            10.0,
            [
                job("x", 5, state=LoadState.DEFERRED, start=T + 2 * H),
                job("y", 5, state=LoadState.DEFERRED, start=T + H),
            ],
            ["y", "x"],
            id="soonest-first",
        ),
        pytest.param(
            18.0,
            [
                job("x", 5, state=LoadState.DEFERRED, start=T + H),
                job("y", 2, state=LoadState.DEFERRED, start=T + 2 * H),
            ],
            ["y"],
            id="never-overshoot",
        ),
        pytest.param(0.0, [job("z", 1)], [], id="running-is-not-deferred"),
    ],
)
def test_plan_absorb(current: float, deferred: list[JobLoad], expected: list[str]) -> None:
    req = Request("solar", "Absorb", 20.0, T, T + H)
    assert [p.job for p in events.plan_absorb(req, current, deferred, T)] == expected


def test_tally_by_hand() -> None:
    """Target 30 kW. 40 kW for 60 s, 35 kW for 30 s, 28 kW for 210 s (sampled at 300 s):
    achieved = (40*60 + 35*30 + 28*210) / 300 = 31.1; compliance = 210/300 = 0.7;
    time to target = 90 s."""
    t = Tally.start(T, 40.0, "Curtail", 30.0)
    assert t.time_to_target is None and t.compliance == 0.0
    t = t.add(T + 60, 35.0, "Curtail", 30.0)
    t = t.add(T + 90, 28.0, "Curtail", 30.0)
    t = t.add(T + 300, 28.0, "Curtail", 30.0)
    assert t.achieved_kw == pytest.approx(31.1)
    assert t.compliance == pytest.approx(0.7)
    assert t.time_to_target == 90.0


def test_tally_absorb_and_restart_carry_over() -> None:
    t = Tally.start(T, 20.0, "Absorb", 25.0).add(T + 100, 26.0, "Absorb", 25.0)
    carried = Tally(t.since, t.until, t.achieved_kw, t.compliance, t.last_kw, t.time_to_target)
    t2 = carried.add(T + 200, 26.0, "Absorb", 25.0)
    assert (t2.achieved_kw, t2.compliance, t2.time_to_target) == pytest.approx((23.0, 0.5, 100.0))


def test_resumable_tightest_deadline_first() -> None:
    paused = [job("a", 5, deadline=T + 9 * H), job("b", 5, deadline=T + 3 * H), job("c", 5)]
    assert [j.key for j in events.resumable(paused, 11)] == ["b", "a"]
    assert events.must_resume(job("b", deadline=T + 2 * H + 60), T, 120)


jobs_st = st.lists(
    st.builds(
        lambda i, kw, dl, rem, pa, ck, pr, mp: job(
            f"j{i}",
            kw,
            deadline=dl,
            remaining=rem,
            pausable=pa,
            checkpoint=ck,
            priority=pr,
            max_pause=mp,
        ),
        st.integers(0, 10_000),
        st.floats(0.1, 50),
        st.one_of(st.none(), st.floats(T, T + 12 * H)),
        st.floats(60, 6 * H),
        st.booleans(),
        st.booleans(),
        st.integers(-5, 5),
        st.one_of(st.none(), st.floats(60, 8 * H)),
    ),
    max_size=25,
    unique_by=lambda j: j.key,
)


@given(jobs_st, jobs_st, st.floats(0, 200), st.floats(60, 6 * H))
def test_voluntary_events_never_miss_a_deadline(
    running: list[JobLoad], deferred_: list[JobLoad], target: float, length: float
) -> None:
    req = Request("e", "Curtail", target, T, T + length)
    deferred = [
        JobLoad(
            j.key + "d",
            j.cluster,
            j.zone,
            j.kw,
            LoadState.DEFERRED,
            T + 60,
            j.remaining,
            j.deadline,
        )
        for j in deferred_
    ]
    moves = {j.key: events.Move(Resources(), ("west",)) for j in running}
    rooms = {"west": events.Room(Resources())}
    plan = events.plan_curtail(req, running, deferred, T, moves, rooms)
    by_key = {j.key: j for j in running}
    for p in plan:
        if p.type == "Pause":
            j = by_key[p.job or ""]
            assert j.pausable and (
                j.deadline is None or j.deadline >= T + length + (j.remaining or 0)
            )
        if p.type == "Migrate":
            j = by_key[p.job or ""]
            assert j.checkpoint and (
                j.deadline is None or j.deadline >= T + 300 + (j.remaining or 0)
            )
    for j in events.held_starts(req, deferred, T):
        assert j.deadline is None or j.deadline >= T + length + (j.remaining or 0)
    assert len({p.job for p in plan if p.job}) == len([p for p in plan if p.job])  # one action each
