"""Pausing in place: the state machine in status, one Job throughout, restart-safe."""

from __future__ import annotations

import contextlib

import pytest

from gridaware.api.v1alpha1 import rfc3339
from gridaware.services.pause import NotPausableError
from gridaware.services.placement import RetryLaterError
from gridaware.services.statuses import JobRecord
from tests.fakes import T0, World, job_spec

KEY = "team-a/train"
CHECKPOINTING = job_spec(migration={"policy": "Checkpoint"})


def running(spec: dict[str, object]) -> World:
    world = World.make()
    world.hub.add_job("team-a", "train", spec)
    world.services.placement.place(world.hub.body(KEY))
    job = world.members["eu-central"].jobs[KEY]
    job.state, job.started = "Running", T0
    world.sync()
    return world


def record(world: World) -> JobRecord:
    rec = world.services.statuses.get(KEY)
    assert rec is not None
    return rec


def test_pause_and_resume_in_place() -> None:
    world = running(CHECKPOINTING)
    job = world.members["eu-central"].jobs[KEY]
    env = {e["name"] for e in job.manifest["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "GRIDAWARE_CHECKPOINT_DIR" in env  # known before any pause: pod specs are immutable
    world.services.pause.pause(record(world), "curtail DE-LU 25 %", "GridEvent/peak")
    assert job.state == "Suspended"
    assert world.status(KEY)["pause"]["step"] == "Pausing"
    label = "team-a.train"
    world.members["eu-central"].pods[label] = 1  # still checkpointing
    world.services.tick()
    assert world.status(KEY)["pause"]["step"] == "Pausing"
    world.members["eu-central"].pods[label] = 0
    world.clock.advance(600)
    world.services.tick()
    st = world.status(KEY)
    assert (st["phase"], st["pause"]["step"]) == ("Paused", "Paused")
    assert st["runSegments"][0]["end"] == rfc3339(T0 + 600)
    assert "Paused" in st["summary"]
    world.services.pause.resume(record(world))
    assert job.state == "Active"
    job.state, job.started = "Running", world.clock.t
    world.sync()
    world.services.tick()
    st = world.status(KEY)
    assert "pause" not in st and st["phase"] == "Running" and len(st["pauses"]) == 1
    assert world.copies(KEY) == ["eu-central"] and world.members["eu-central"].creates == 1


def test_planned_resume_happens_by_itself() -> None:
    world = running(CHECKPOINTING)
    world.services.pause.pause(record(world), "green window later", "plan", T0 + 3600)
    world.services.tick()
    assert world.status(KEY)["pause"]["step"] == "Paused"
    world.clock.advance(3600)
    world.services.tick()
    assert world.status(KEY)["pause"]["step"] == "Resuming"
    assert world.members["eu-central"].jobs[KEY].state == "Active"


def test_pause_survives_a_restart() -> None:
    world = running(CHECKPOINTING)
    world.services.pause.pause(record(world), "curtail", "GridEvent/peak")
    world = world.restart()
    world.services.placement.place(world.hub.body(KEY))  # Kopf resume: the record is seeded
    world.services.tick()
    assert world.status(KEY)["pause"]["step"] == "Paused"


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        pytest.param(job_spec(), "does not checkpoint", id="not-checkpointing"),
        pytest.param(
            job_spec(migration={"policy": "Checkpoint"}, flexibility={"maxPauses": 0}),
            "paused 0 times",
            id="no-pauses-left",
        ),
    ],
)
def test_jobs_that_cannot_pause_are_refused(spec: dict[str, object], says: str) -> None:
    world = running(spec)
    with pytest.raises(NotPausableError, match=says):
        world.services.pause.pause(record(world), "curtail", "GridEvent/peak")
    assert world.members["eu-central"].jobs[KEY].state == "Running"


# --- interruptible run plans -----------------------------------------------------------------

SIX_HOURS = {"deadline": rfc3339(T0 + 6 * 3600 + 600), "expectedDurationSeconds": 3 * 3600}
# eu-central: green now, dirty for three hours, green again before the deadline; no single
# 3-hour window avoids the dirty hours, two runs do
TWO_WINDOWS = [20.0, 300.0, 300.0, 900.0, 20.0, 20.0, 20.0]


def _running_in_eu_central(spec: dict[str, object], hourly: list[float]) -> World:
    """The job placed in eu-central (DE-LU carbon ``hourly`` from T0), running since T0."""
    world = World.make(carbon={"US-CAL-CISO": 700.0, "DE-LU": 100.0, "US-MIDA-PJM": 700.0})
    world.feeds.hourly["DE-LU"] = hourly
    world.hub.add_job("team-a", "train", spec)
    world.services.placement.place(world.hub.body(KEY))
    job = world.members["eu-central"].jobs[KEY]
    job.state, job.started = "Running", T0
    world.sync()
    return world


def test_a_run_plan_pauses_for_a_greener_window_and_resumes_in_it() -> None:
    spec = job_spec(
        flexibility={"pausable": True}, migration={"overheadSeconds": 0}, schedule=SIX_HOURS
    )
    world = _running_in_eu_central(spec, TWO_WINDOWS)
    world.clock.advance(3600)  # one hour of work done in the green first hour
    world.services.tick()
    st = world.status(KEY)
    assert st["pause"]["requestedBy"] == "plan"
    assert st["pause"]["resumeAt"] == rfc3339(T0 + 4 * 3600)
    world.services.tick()
    assert world.status(KEY)["pause"]["step"] == "Paused"
    world.clock.advance(3 * 3600)
    world.services.tick()
    assert world.status(KEY)["pause"]["step"] == "Resuming"
    assert world.members["eu-central"].creates == 1  # the same Job, resumed


def test_without_a_pausable_opt_in_the_plan_never_pauses() -> None:
    spec = job_spec(
        migration={"policy": "Checkpoint", "overheadSeconds": 0},  # pausable for grid events
        schedule=SIX_HOURS,
    )
    world = _running_in_eu_central(spec, TWO_WINDOWS)
    world.clock.advance(3600)
    world.services.tick()
    assert "pause" not in world.status(KEY)


def _paused_by_its_plan() -> World:
    """The job of the test above, paused by its plan at hour 1 until hour 4."""
    spec = job_spec(
        flexibility={"pausable": True}, migration={"overheadSeconds": 0}, schedule=SIX_HOURS
    )
    world = _running_in_eu_central(spec, TWO_WINDOWS)
    world.clock.advance(3600)
    world.services.tick()
    world.services.tick()
    assert world.status(KEY)["pause"]["step"] == "Paused"
    assert world.status(KEY)["pause"]["resumeAt"] == rfc3339(T0 + 4 * 3600)
    return world


@pytest.mark.parametrize(
    ("hourly", "resume_hour"),
    [
        # hours 2-3 turn green: the two hours of work left run there
        pytest.param([20.0, 300.0, 20.0, 20.0, 900.0, 900.0, 900.0], 2, id="brought-forward"),
        pytest.param([20.0, 300.0, 300.0, 900.0, 20.0, 20.0, 20.0], 4, id="unchanged"),
        # no forecast (a feed down, an operator just restarted): the planned resume stays
        pytest.param(None, 4, id="no-forecast-keeps-the-planned-resume"),
    ],
)
def test_a_paused_job_is_replanned_with_fresher_forecasts(
    hourly: list[float] | None, resume_hour: int
) -> None:
    world = _paused_by_its_plan()
    if hourly is None:
        world.feeds.carbon["DE-LU"] = None
    else:
        world.feeds.hourly["DE-LU"] = hourly
    world.clock.advance(600)
    world.services.tick()
    moved = [m for _n, reason, m in world.events.posted if reason == "ResumeMoved"]
    st = world.status(KEY)
    assert st["pause"]["resumeAt"] == rfc3339(T0 + resume_hour * 3600)
    assert bool(moved) == (resume_hour != 4)
    assert st["pause"]["reason"].endswith(rfc3339(T0 + resume_hour * 3600))


def test_without_a_forecast_the_deadline_resumes_a_paused_job() -> None:
    """Two hours of work left, a planned resume at hour 5 and the deadline at 6:08: with no
    forecast to re-plan on, the job resumes now rather than miss it."""
    world = _paused_by_its_plan()
    world.services.pause.resume(record(world))
    job = world.members["eu-central"].jobs[KEY]
    job.state, job.started = "Running", world.clock.t
    world.sync()
    world.services.tick()  # the pause is over: the job runs again, its work unchanged
    world.services.pause.pause(record(world), "later", "plan", T0 + 5 * 3600)
    world.services.tick()
    assert world.status(KEY)["pause"]["step"] == "Paused"
    world.feeds.carbon["DE-LU"] = None
    world.clock.advance(600)
    world.services.tick()
    assert world.status(KEY)["pause"]["resumeAt"] == rfc3339(world.clock.t)
    world.services.tick()
    assert world.status(KEY)["pause"]["step"] == "Resuming"


def test_a_pause_asked_by_a_grid_event_is_not_replanned() -> None:
    world = running(CHECKPOINTING | {"flexibility": {"pausable": True}})
    world.services.pause.pause(record(world), "curtail", "GridEvent/peak", T0 + 3 * 3600)
    world.services.tick()
    world.feeds.hourly["DE-LU"] = [20.0] * 8
    world.clock.advance(600)
    world.services.tick()
    assert world.status(KEY)["pause"]["resumeAt"] == rfc3339(T0 + 3 * 3600)


# --- the first run of a pausable job ---------------------------------------------------------


def _planned(hourly: list[float], pausable: bool) -> World:
    spec = job_spec(
        flexibility={"pausable": pausable},
        migration={"policy": "Checkpoint", "overheadSeconds": 0},
        schedule={"deadline": rfc3339(T0 + 5 * 3600 + 600), "expectedDurationSeconds": 2 * 3600},
    )
    world = World.make(carbon={"US-CAL-CISO": 700.0, "DE-LU": 100.0, "US-MIDA-PJM": 700.0})
    world.feeds.hourly["DE-LU"] = hourly
    world.hub.add_job("team-a", "train", spec)
    with contextlib.suppress(RetryLaterError):  # deferred: Kopf retries at the planned start
        world.services.placement.place(world.hub.body(KEY))
    return world


GREEN_NOW_AND_AT_3 = [20.0, 500.0, 500.0, 100.0, 100.0, 900.0]  # runs: hour 0 and hour 3
GREEN_AT_1_AND_3 = [900.0, 20.0, 900.0, 20.0, 900.0, 900.0]  # runs: hours 1 and 3


@pytest.mark.parametrize(
    ("hourly", "pausable", "created", "deferred_to", "says"),
    [
        # the best single run waits for hours 3-4; two runs start in the green hour now
        pytest.param(GREEN_NOW_AND_AT_3, True, True, None, None, id="two-runs-start-now"),
        pytest.param(GREEN_NOW_AND_AT_3, False, False, 3, "at 100 gCO2e/kWh", id="one-run-waits"),
        pytest.param(
            GREEN_AT_1_AND_3, True, False, 1, "over 2 runs, paused in between", id="two-runs-wait"
        ),
    ],
)
def test_a_pausable_job_starts_on_its_interval_plan(
    hourly: list[float], pausable: bool, created: bool, deferred_to: int | None, says: str | None
) -> None:
    world = _planned(hourly, pausable)
    assert (KEY in world.members["eu-central"].jobs) == created
    deferral = world.status(KEY).get("deferral")
    if deferred_to is None:
        assert deferral is None
        return
    assert deferral["plannedStart"] == rfc3339(T0 + deferred_to * 3600)
    assert deferral["cluster"] == "eu-central"
    messages = [m for _n, reason, m in world.events.posted if reason == "Deferred"]
    assert says in messages[-1]


def test_a_pausable_job_starts_when_its_planned_start_comes() -> None:
    """Woken a minute after its planned start, the job starts: the plan's hour slots cannot
    start it then, and re-planning would put it off to the next green hour."""
    world = _planned(GREEN_AT_1_AND_3, True)
    assert world.status(KEY)["deferral"]["plannedStart"] == rfc3339(T0 + 3600)
    world.clock.advance(3600 + 60)
    with contextlib.suppress(RetryLaterError):
        world.services.placement.place(world.hub.body(KEY))
    assert KEY in world.members["eu-central"].jobs


def test_a_due_resume_is_not_put_off() -> None:
    """Checked a minute after its planned resume, the job resumes at once (re-planned, the
    hour slots would have put it off to the next hour)."""
    world = _paused_by_its_plan()
    world.clock.advance(3 * 3600 + 60)
    world.services.runplan.tick()
    assert world.status(KEY)["pause"]["resumeAt"] == rfc3339(T0 + 4 * 3600)
    world.services.tick()
    assert world.status(KEY)["pause"]["step"] == "Resuming"


def test_a_job_too_short_for_two_runs_is_never_paused_by_its_plan() -> None:
    """1.5 h of work cannot make two 1-hour runs: deferred as one run (like the simulator),
    it is not paused when a greener hour shows up."""
    spec = job_spec(
        flexibility={"pausable": True},
        migration={"overheadSeconds": 0},
        schedule={"deadline": rfc3339(T0 + 6 * 3600 + 600), "expectedDurationSeconds": 5400},
    )
    world = _running_in_eu_central(spec, [20.0, 20.0, 900.0, 900.0, 20.0, 20.0, 20.0])
    world.feeds.hourly["DE-LU"] = [20.0, 900.0, 900.0, 900.0, 20.0, 20.0, 20.0]
    world.clock.advance(3600)
    world.services.tick()
    assert "pause" not in world.status(KEY)


@pytest.mark.parametrize(
    ("overhead", "limit", "resume_hour"),
    [
        # paused at once, re-planned at 0:10 with the green hours at 3-4 and the deadline at
        # 6:08: 3 h of work run from 3 (the dear hour 5 is the least dear left)
        pytest.param(0, None, 3, id="pushed-back"),
        # 3.5 h with the 30 minutes the resume redoes: from 2:30 (half of hour 2 as well)
        pytest.param(1800, None, 2.5, id="the-resume-redoes-its-overhead"),
        # a pause lasts at most 1.5 h: the move stops there
        pytest.param(0, 5400, 1.5, id="max-pause-seconds-caps-the-move"),
    ],
)
def test_a_paused_jobs_resume_moves_within_its_bounds(
    overhead: int, limit: int | None, resume_hour: float
) -> None:
    flexibility: dict[str, object] = {"pausable": True}
    if limit is not None:
        flexibility["maxPauseSeconds"] = limit
    spec = job_spec(
        flexibility=flexibility,
        migration={"overheadSeconds": overhead},
        schedule={"deadline": rfc3339(T0 + 6 * 3600 + 600), "expectedDurationSeconds": 3 * 3600},
    )
    world = running(spec)
    world.services.pause.pause(record(world), "later", "plan", T0 + 2 * 3600)
    world.services.tick()
    assert world.status(KEY)["pause"]["step"] == "Paused"
    world.feeds.hourly["DE-LU"] = [900.0, 800.0, 700.0, 20.0, 20.0, 600.0, 950.0]
    world.clock.advance(600)
    world.services.tick()
    assert world.status(KEY)["pause"]["resumeAt"] == rfc3339(T0 + resume_hour * 3600)
