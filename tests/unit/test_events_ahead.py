"""Pre-curtailment (``core.events.plan_ahead``): the lead from the kW to shed, the ramp
limit and the reaction time; nothing before ``start - lead``; at the start the planned load
is at the target whenever enough pausable load exists; deadlines kept."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridaware.core import events, ramp
from gridaware.core.events import Request
from gridaware.core.power import JobLoad, LoadState

T = 1_700_000_000.0
H = 3600.0
START = T + H
REACTION = 32.0


def job(
    key: str,
    kw: float = 10.0,
    *,
    zone: str = "DE-LU",
    state: LoadState = LoadState.RUNNING,
    start: float = T - H,
    remaining: float | None = 6 * H,
    deadline: float | None = None,
    pausable: bool = True,
    max_pause: float | None = None,
) -> JobLoad:
    return JobLoad(
        key, zone, zone, kw, state, start, remaining, deadline, pausable, False, 0, max_pause, 4
    )


def req(target: float, start: float = START, length: float = 3 * H) -> Request:
    return Request("peak", "Curtail", target, start, start + length)


@pytest.mark.parametrize(
    ("deltas", "limit", "expected"),
    [
        pytest.param([], None, 0.0, id="nothing-to-shed-no-lead"),
        pytest.param([-10.0, -10.0], None, REACTION, id="no-ramp-limit-reaction-only"),
        pytest.param([-10.0, -10.0], 20.0, REACTION, id="two-fit-in-one-minute"),
        pytest.param([-10.0] * 5, 20.0, 120 + REACTION, id="five-over-three-minutes"),
        pytest.param([-30.0, -10.0], 20.0, 60 + REACTION, id="one-larger-than-the-limit"),
    ],
)
def test_lead_time(deltas: list[float], limit: float | None, expected: float) -> None:
    assert events.lead_time(deltas, limit, REACTION) == pytest.approx(expected)


def test_zone_lead_slowest_zone_sets_it() -> None:
    steps = [
        events.Planned("Pause", k, "c", -10.0, "") for k in ("a1", "a2", "a3", "b1", "b2", "b3")
    ]
    zones = {k: ("A" if k.startswith("a") else "B") for k in ("a1", "a2", "a3", "b1", "b2", "b3")}
    assert events.zone_lead(steps, zones, {"A": 10.0}, REACTION) == 120 + REACTION
    assert events.zone_lead(steps, zones, {"A": 30.0, "B": 20.0}, REACTION) == 60 + REACTION


@pytest.mark.parametrize(
    ("now", "running", "target", "begun", "expected"),
    [
        pytest.param(
            START - 600,
            [job("a"), job("b"), job("c"), job("d")],
            30.0,
            False,
            [],
            id="too-early-nothing",
        ),
        pytest.param(
            START - REACTION,
            [job("a"), job("b"), job("c"), job("d")],
            30.0,
            False,
            [("Pause", "a")],
            id="at-start-minus-lead-pause",
        ),
        pytest.param(
            START - 600,
            [job("a"), job("b"), job("c"), job("d")],
            30.0,
            True,
            [("Pause", "a")],
            id="begun-carries-on",
        ),
        pytest.param(
            START - REACTION,
            [job("a"), job("b"), job("c"), job("d", remaining=10)],
            30.0,
            False,
            [],
            id="a-job-ending-before-the-start-leaves-enough",
        ),
        pytest.param(
            START - REACTION,
            [job("a"), job("b"), job("c"), job("d", remaining=0.0)],
            30.0,
            False,
            [("Pause", "a")],
            id="a-job-past-its-expected-end-still-counts",
        ),
        pytest.param(
            START - REACTION,
            [job("a", deadline=START + 3 * H), job("b"), job("c"), job("d")],
            30.0,
            False,
            [("Pause", "b")],
            id="a-deadline-that-cannot-wait-from-now",
        ),
        pytest.param(
            START - REACTION,
            [job("a", max_pause=3 * H), job("b"), job("c"), job("d")],
            30.0,
            False,
            [("Pause", "b")],
            id="longest-pause-counts-from-now",
        ),
        pytest.param(
            START - REACTION,
            [job("a", pausable=False), job("b", pausable=False)],
            10.0,
            False,
            [],
            id="nothing-pausable-no-lead",
        ),
    ],
)
def test_plan_ahead(
    now: float,
    running: list[JobLoad],
    target: float,
    begun: bool,
    expected: list[tuple[str, str]],
) -> None:
    a = events.plan_ahead(req(target), running, [], now, REACTION, None, begun)
    assert [(s.type, s.job) for s in a.steps if s.type == "Pause"] == expected
    assert [s.type for s in a.steps][:1] == (["HoldStarts"] if expected else [])
    assert all(s.reason.startswith("pre-curtailment: ") for s in a.steps)


def test_holds_only_starts_that_reach_into_the_window() -> None:
    soon = job("soon", state=LoadState.DEFERRED, start=START - 1800, remaining=20)
    into = job("into", state=LoadState.DEFERRED, start=START - 600, remaining=H)
    running = [job("x"), job("y"), job("z"), job("w")]
    a = events.plan_ahead(req(30.0), running, [soon, into], START - REACTION, REACTION)
    holds = [s for s in a.steps if s.type == "HoldStarts"]
    assert len(holds) == 1 and holds[0].delta_kw == -10.0  # "into" only
    assert "pre-curtailment" in holds[0].reason


def test_ramp_limit_begins_earlier() -> None:
    running = [job(k) for k in "abcdefgh"]
    a = events.plan_ahead(req(40.0), running, [], START - 600, REACTION, {"DE-LU": 20.0})
    assert a.lead == 60 + REACTION and a.steps == ()  # 4 pauses of 10 kW at 20 kW/min
    a = events.plan_ahead(req(40.0), running, [], START - 92, REACTION, {"DE-LU": 20.0})
    assert len(a.steps) == 5  # the hold and 4 pauses


jobs_st = st.lists(
    st.builds(
        lambda i, kw, rem, dl, pa, mp: job(
            f"j{i}", kw, remaining=rem, deadline=dl, pausable=pa, max_pause=mp
        ),
        st.integers(0, 10_000),
        st.floats(0.1, 50),
        st.one_of(st.none(), st.floats(60, 12 * H)),
        st.one_of(st.none(), st.floats(T, T + 24 * H)),
        st.booleans(),
        st.one_of(st.none(), st.floats(60, 8 * H)),
    ),
    max_size=25,
    unique_by=lambda j: j.key,
)


@given(
    jobs_st,
    st.floats(0.0, 1.0),
    st.one_of(st.none(), st.floats(1.0, 100.0)),
    st.floats(0.0, 600.0),
    st.floats(0.0, 4 * H),
)
def test_never_before_start_minus_lead_and_on_target_at_the_start(
    running: list[JobLoad],
    share: float,
    limit: float | None,
    reaction: float,
    early: float,
) -> None:
    """Asked at any time, pre-curtailment gives nothing before ``start - lead``; its pauses,
    begun at ``start - lead`` and admitted as the ramp allows, all take effect by the start;
    no paused job misses its deadline; and the planned load at the start is at or below the
    target whenever the pausable jobs can shed enough. (The jobs are as observed at T.)"""
    limits = {} if limit is None else {"DE-LU": limit}
    at_start = events.load_at_start(req(0.0), running, T)
    r = req(at_start * (1 - share))
    asked = T + early
    a = events.plan_ahead(r, running, [], asked, reaction, limits)
    if a.steps:
        assert asked >= START - a.lead
    a = events.plan_ahead(r, running, [], T, reaction, limits, begun=True)
    pauses = [s for s in a.steps if s.type == "Pause"]
    times = ramp.spread([s.delta_kw for s in pauses], limit, START - a.lead)
    assert all(t + reaction <= START + 1e-6 for t in times)
    by_key = {j.key: j for j in running}
    for s in pauses:
        j = by_key[s.job or ""]
        assert j.pausable and j.slack(T) >= r.end - T
    planned = at_start + sum(s.delta_kw for s in pauses)
    could = sum(
        j.kw
        for j in running
        if j.pausable
        and events.runs_at(j, T, START)
        and j.slack(T) >= r.end - T
        and (j.max_pause is None or j.max_pause >= r.end - T)
    )
    if at_start - could <= r.target_kw:
        assert planned <= r.target_kw + events.TOLERANCE_KW


@pytest.mark.parametrize(
    ("resume", "remaining", "expected"),
    [
        pytest.param(START - 600, 6 * H, ["a", "b"], id="back-before-the-start-counts"),
        pytest.param(
            START + 600, 6 * H, ["a"], id="back-in-the-window-is-the-window-rounds-affair"
        ),
        pytest.param(START - 600, 0.0, ["a", "b"], id="back-past-its-expected-duration-counts"),
    ],
)
def test_load_paused_by_others_that_comes_back(
    resume: float, remaining: float, expected: list[str]
) -> None:
    """A job a run plan paused, planned to resume before the window opens, draws at the
    start: pre-curtailment sheds for it too (and never pauses it)."""
    running = [job("a"), job("b"), job("c"), job("d")]
    back = job("r", state=LoadState.PAUSED, start=resume, remaining=remaining)
    a = events.plan_ahead(req(30.0), running, [], START - REACTION, REACTION, resuming=[back])
    assert [s.job for s in a.steps if s.type == "Pause"] == expected
    load = events.load_at_start(req(30.0), running, START - REACTION, [back])
    assert load == 10.0 * (3 + len(expected))


def test_a_resume_just_after_the_start_is_shed_for_a_reaction_ahead() -> None:
    running = [job("a"), job("b"), job("c"), job("d")]
    back = job("r", state=LoadState.PAUSED, start=START + 15)
    a = events.plan_ahead(req(30.0), running, [], START - 10, REACTION, None, True, [back])
    assert [s.job for s in a.steps if s.type == "Pause"] == ["a", "b"]
    a = events.plan_ahead(req(30.0), running, [], START - 20, REACTION, None, True, [back])
    assert [s.job for s in a.steps if s.type == "Pause"] == ["a"], "not yet: 35 s away"
