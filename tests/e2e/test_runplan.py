"""Interruptible run plans on the lab, grid time replayed (120x: a grid hour is 30 s).

DE-LU (eu-central) is green in two separate hours of the replayed day and dirty between
them; the other regions are flat and dearer. A pausable two-hour job with an eight-hour
deadline waits for the first green hour (Deferred, over two runs), runs in it, is paused in
place by its plan, survives an operator kill while paused, is re-planned while paused onto the
second green hour, resumes in it in the same Job and completes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gridaware.api.v1alpha1 import parse_time, rfc3339
from tests.conftest import Lab, Operator, wait_for
from tests.e2e.test_gridevents import EventOperator, in_place_of, pausable
from tests.e2e.test_operator import apply, member_jobs, status

pytestmark = pytest.mark.slow
HOUR = 3600.0
GREEN = (26, 30)  # trace hours (from 2023-01-01): START + 2 h and START + 6 h
TRACES = {
    "DE-LU": lambda h: 50.0 if h in GREEN else 600.0,
    "US-CAL-CISO": lambda _h: 700.0,
    "US-MIDA-PJM": lambda _h: 750.0,
}


@pytest.fixture
def plan_operator(lab: Lab, operator: Operator, tmp_path: Path) -> Iterator[EventOperator]:
    yield from in_place_of(lab, operator, EventOperator(lab, tmp_path, TRACES))


def _job(name: str, deadline: float) -> dict[str, Any]:
    doc = pausable(name, run="60s")  # two grid hours
    doc["spec"]["migration"] = {"overheadSeconds": 0}
    doc["spec"]["schedule"] = {"deadline": rfc3339(deadline), "expectedDurationSeconds": 7200}
    return doc


def test_a_pausable_job_runs_in_two_green_hours_in_one_job(
    lab: Lab, plan_operator: EventOperator, namespace: str
) -> None:
    grid0 = plan_operator.grid0
    first, second = grid0 + 2 * HOUR, grid0 + 6 * HOUR
    assert plan_operator.grid_now() < first - 0.5 * HOUR, "the lab started too slowly"
    apply(lab, namespace, _job("twice", grid0 + 8 * HOUR))
    wait_for(lambda: "deferral" in status(lab, namespace, "twice"), "Deferred", timeout=60)
    st = status(lab, namespace, "twice")
    assert st["deferral"]["plannedStart"] == rfc3339(first)
    assert st["deferral"]["cluster"] == "eu-central"
    deferred = next(c for c in st["conditions"] if c["type"] == "Deferred")
    assert "over 2 runs" in deferred["message"]

    def paused() -> bool:
        p = status(lab, namespace, "twice").get("pause") or {}
        return p.get("step") == "Paused"

    wait_for(paused, "paused by its plan", timeout=150)
    assert status(lab, namespace, "twice")["pause"]["requestedBy"] == "plan"
    assert plan_operator.grid_now() < first + 1.5 * HOUR, "paused after its first green hour"
    plan_operator.kill()  # while paused: the new operator resumes it on time
    time.sleep(2)
    plan_operator.start()

    def resumes_in_the_second_green_hour() -> bool:
        # the running plan's hour slots start where the job stood; re-planned while paused,
        # the resume moves onto the green hour itself
        at = (status(lab, namespace, "twice").get("pause") or {}).get("resumeAt")
        return at is not None and abs(parse_time(at) - second) <= 0.2 * HOUR

    # a restarted operator keeps the planned resume until it has forecasts again (slow on a
    # loaded machine: 60 s once was not enough); the second green hour is ~140 s away
    wait_for(resumes_in_the_second_green_hour, "resume re-planned", timeout=110)
    wait_for(lambda: "pause" not in status(lab, namespace, "twice"), "resumed", timeout=240)
    wait_for(
        lambda: status(lab, namespace, "twice").get("phase") == "Succeeded", "done", timeout=150
    )
    st = status(lab, namespace, "twice")
    assert len(st["pauses"]) == 1 and st["pauses"][0]["requestedBy"] == "plan"
    assert sum(len(v) for v in member_jobs(lab, f"{namespace}.twice").values()) == 1
    assert {s["cluster"] for s in st["runSegments"]} == {"eu-central"}
