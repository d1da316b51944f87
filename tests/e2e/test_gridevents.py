"""Grid events on the lab with grid time replayed (120x: a grid hour is 30 s).

Twenty pausable jobs and four urgent ones run in eu-central (DE-LU, the greenest zone). A
voluntary Curtail of 25 % on DE-LU reaches its target by pausing jobs in place and holds it
for the window; the operator is killed mid-event and the new one carries on without pausing
anything twice; afterwards every job resumes and completes in its one Job, and the urgent
jobs (whose deadlines cannot wait for the window) are never touched. A second scenario sets
a power budget with a ramp limit on eu-central: the budget is reached and kept, and no grid
minute sees more change than the ramp limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
import yaml

from gridaware.api.v1alpha1 import parse_time, rfc3339
from gridaware.lab.operator_process import OperatorProcess, replay_feeds
from tests.conftest import Lab, Operator, cluster_ready, kubectl, wait_for
from tests.e2e.test_operator import apply, gaj, member_jobs, status
from tests.e2e.test_shifting import write_traces

pytestmark = pytest.mark.slow
START = "2023-01-02T00:00:00Z"
SPEEDUP = 120.0
KW = 1.2  # 1000 W per replica x PUE 1.2 (the lab's default)
FLAT = {"DE-LU": lambda _h: 100.0, "US-CAL-CISO": lambda _h: 400.0, "US-MIDA-PJM": lambda _h: 450.0}


class EventOperator(OperatorProcess):
    """``gridaware run`` on replayed traces (flat by default), grid time from START at
    SPEEDUP."""

    def __init__(self, lab: Lab, tmp: Path, traces: dict[str, Any] | None = None) -> None:
        traces = traces or FLAT
        write_traces(tmp / "data", traces)
        super().__init__(lab.state, tmp, replay_feeds(tmp / "data", list(traces)), [], "events")
        self.lab = lab
        self.grid0 = parse_time(START)
        self.began = 0.0

    def start(self) -> None:
        """Start (again): a restarted operator's grid time carries on where it was."""
        if self.began:
            self.grid0 = self.grid_now()
        self.args = ["--probe-interval", "1", "--retry-delay", "1", "--speedup", str(SPEEDUP)]
        self.args += ["--replay-start", rfc3339(self.grid0)]
        self.began = time.time()
        super().start()

    def grid_now(self) -> float:
        """An upper bound of the operator's grid time (it reads its clock after starting)."""
        return self.grid0 + (time.time() - self.began) * SPEEDUP


def in_place_of(
    lab: Lab, session: Operator, op: EventOperator, cleanup: Callable[[], None] | None = None
) -> Iterator[EventOperator]:
    """Run ``op`` instead of the session operator, which is back afterwards (``cleanup`` runs
    in between, with no operator running)."""
    session.stop()
    try:
        op.start()
        for m in lab.members:
            wait_for(lambda m=m: cluster_ready(lab, m), f"{m} ready", timeout=60)
        yield op
    finally:
        op.stop()
        if cleanup is not None:
            cleanup()
        session.start()


@pytest.fixture
def events_operator(lab: Lab, operator: Operator, tmp_path: Path) -> Iterator[EventOperator]:
    def cleanup() -> None:
        kubectl(lab, "delete", "gridevents", "--all", "--wait=false", check=False)
        kubectl(
            lab, "patch", "gridcluster", "eu-central", "--type", "json",
            "-p", '[{"op": "remove", "path": "/spec/powerBudget"}]', check=False,
        )  # fmt: skip

    yield from in_place_of(lab, operator, EventOperator(lab, tmp_path), cleanup)


def pausable(name: str, run: str = "240s") -> dict[str, Any]:
    doc = gaj(name, cpu="100m", run=run, energy={"wattsPerReplica": 1000})
    doc["spec"]["flexibility"] = {"pausable": True}
    ann = doc["spec"]["template"]["template"]["metadata"]["annotations"]
    ann["lab.gridaware.dev/shutdown-after"] = "1s"  # the checkpoint on SIGTERM
    return doc


def urgent(name: str, now: float) -> dict[str, Any]:
    doc = pausable(name, run="150s")  # 5 grid hours
    doc["spec"]["schedule"] = {
        "deadline": rfc3339(now + 6 * 3600),
        "expectedDurationSeconds": 5 * 3600,
    }
    return doc


def event(name: str, start: float, hours: float, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gridaware.dev/v1alpha1",
        "kind": "GridEvent",
        "metadata": {"name": name},
        "spec": {
            "targets": {"zones": ["DE-LU"]},
            "window": {"start": rfc3339(start), "end": rfc3339(start + hours * 3600)},
            **spec,
        },
    }


def gridevent(lab: Lab, name: str) -> dict[str, Any]:
    api = kubernetes.client.CustomObjectsApi(lab.client("hub"))
    body = api.get_cluster_custom_object("gridaware.dev", "v1alpha1", "gridevents", name)
    return dict(body.get("status") or {})


def running(lab: Lab, namespace: str, names: list[str]) -> bool:
    return all(status(lab, namespace, n).get("phase") == "Running" for n in names)


def test_curtail_reaches_and_holds_its_target_across_an_operator_kill(
    lab: Lab, events_operator: EventOperator, namespace: str
) -> None:
    names = [f"flex-{i:02d}" for i in range(20)]
    hurry = [f"urgent-{i}" for i in range(4)]
    now = events_operator.grid_now()
    apply(lab, namespace, *(pausable(n) for n in names), *(urgent(n, now) for n in hurry))
    wait_for(lambda: running(lab, namespace, names + hurry), "24 jobs running", timeout=120)
    start = events_operator.grid_now() + 600
    peak = event("peak", start, 3, kind="Curtail", curtail={"reducePercent": 25})
    kubectl(lab, "apply", "-f", "-", stdin=yaml.safe_dump(peak))
    wait_for(lambda: gridevent(lab, "peak").get("phase") == "Active", "Active", timeout=60)
    st = gridevent(lab, "peak")
    assert st["baselineKw"] == pytest.approx(24 * KW)
    assert st["targetKw"] == pytest.approx(18 * KW)
    events_operator.kill()  # mid-event: the pauses are recorded, maybe not all taken
    time.sleep(2)
    events_operator.start()
    wait_for(
        lambda: gridevent(lab, "peak").get("timeToTargetSeconds") is not None,
        "the target",
        timeout=90,
    )
    held: list[float] = []
    while gridevent(lab, "peak").get("phase") == "Active":
        held.append(float(gridevent(lab, "peak")["currentKw"]))
        time.sleep(1)
    assert held and max(held[2:] or held) <= 18 * KW + 1e-6, "the target holds"
    st = gridevent(lab, "peak")
    paused = [a["job"] for a in st["actions"] if a["type"] == "Pause"]
    assert len(paused) == len(set(paused)) >= 5, "each job paused once, enough to meet 25 %"
    assert not any(p.split("/")[1].startswith("urgent") for p in paused), "deadlines kept"
    # held from the first moment it was met: compliance is the rest of the window (a grid
    # minute of sampling tolerance; the operator's downtime counts as its last sample did)
    window = 3 * 3600.0
    assert st["compliance"] >= 1 - float(st["timeToTargetSeconds"]) / window - 60 / window
    wait_for(
        lambda: all(status(lab, namespace, n).get("phase") == "Succeeded" for n in names + hurry),
        "every job done",
        timeout=400,
    )
    for n in names + hurry:
        st_job = status(lab, namespace, n)
        assert sum(len(v) for v in member_jobs(lab, f"{namespace}.{n}").values()) == 1
        assert len(st_job.get("pauses", [])) <= 1
    for n in hurry:  # (a run plan may pause them; the event never does)
        by = [p["requestedBy"] for p in status(lab, namespace, n).get("pauses", [])]
        assert "GridEvent/peak" not in by, "a deadline that cannot wait"
    assert gridevent(lab, "peak")["phase"] == "Completed"


def test_budget_with_a_ramp_limit(lab: Lab, events_operator: EventOperator, namespace: str) -> None:
    names = [f"load-{i:02d}" for i in range(12)]
    apply(lab, namespace, *(pausable(n, run="180s") for n in names))
    wait_for(lambda: running(lab, namespace, names), "12 jobs running", timeout=120)
    budget = {"spec": {"powerBudget": {"capKw": 10, "rampKwPerMinute": 2.5}}}
    kubectl(
        lab, "patch", "gridcluster", "eu-central", "--type", "merge", "-p", yaml.safe_dump(budget)
    )

    def power() -> dict[str, Any]:
        out = kubectl(lab, "get", "gridcluster", "eu-central", "-o", "jsonpath={.status.power}")
        return dict(yaml.safe_load(out.stdout or "{}") or {})

    wait_for(lambda: power().get("capKw") == 10, "the budget in status", timeout=30)
    wait_for(lambda: float(power().get("nowKw", 99)) <= 10 + 1e-6, "within budget", timeout=120)
    seen = []
    for _ in range(10):
        seen.append(float(power()["nowKw"]))
        time.sleep(1)
    assert max(seen) <= 10 + 1e-6, "the budget holds"
    steps = sorted(
        (parse_time(s["pause"]["since"]), 1.2)
        for s in (status(lab, namespace, n) for n in names)
        if s.get("pause")
    )
    assert len(steps) >= 3  # 14.4 kW -> at most 10 kW
    wall_minute = 60.0 / SPEEDUP
    for t, _kw in steps:
        in_minute = [kw for u, kw in steps if t <= u < t + wall_minute]
        assert sum(in_minute) <= 2.5 + 1e-6, "ramp limit per grid minute"


def test_pre_curtailment_opens_the_window_on_target(
    lab: Lab, events_operator: EventOperator, namespace: str
) -> None:
    """A 25 % Curtail created two grid hours (a wall minute) ahead of its window, on eight
    pausable jobs: nothing happens until its lead before the window (the pods' default 30 s
    termination grace and two 1 s rounds: 32 wall seconds, 64 grid minutes); then, while the
    event is still Pending, starts are held and two jobs paused, recorded as pre-curtailment;
    the window opens on target (time to target 0), holds it (compliance 1), and every job
    resumes and completes in its one Job."""
    names = [f"pre-{i}" for i in range(8)]
    apply(lab, namespace, *(pausable(n) for n in names))
    wait_for(lambda: running(lab, namespace, names), "8 jobs running", timeout=120)
    start = events_operator.grid_now() + 2 * 3600
    ahead = event("ahead", start, 1, kind="Curtail", curtail={"reducePercent": 25})
    kubectl(lab, "apply", "-f", "-", stdin=yaml.safe_dump(ahead))
    lead = (30 + 2) * SPEEDUP
    time.sleep(5)
    st = gridevent(lab, "ahead")
    assert st.get("phase") == "Pending" and not st.get("actions"), "not before start - lead"

    def pauses() -> list[dict[str, Any]]:
        return [a for a in gridevent(lab, "ahead").get("actions", []) if a["type"] == "Pause"]

    wait_for(lambda: len(pauses()) == 2, "two jobs paused ahead", timeout=90)
    st = gridevent(lab, "ahead")
    assert st["phase"] == "Pending"
    assert (st["baselineKw"], st["targetKw"]) == pytest.approx((8 * KW, 6 * KW))
    assert all(a["reason"].startswith("pre-curtailment: ") for a in st["actions"])
    first = min(parse_time(a["time"]) for a in st["actions"])
    assert start - lead <= first <= start - lead + 5 * SPEEDUP, "at start - lead"
    assert any(c["type"] == "PreCurtailment" for c in st["conditions"])
    wait_for(lambda: gridevent(lab, "ahead").get("phase") == "Active", "Active", timeout=90)
    assert gridevent(lab, "ahead")["timeToTargetSeconds"] == 0.0
    wait_for(lambda: gridevent(lab, "ahead").get("phase") == "Completed", "done", timeout=90)
    st = gridevent(lab, "ahead")
    assert st["compliance"] == 1.0 and st["achievedKw"] == pytest.approx(6 * KW)
    assert len(pauses()) == 2, "nothing paused twice"
    wait_for(
        lambda: all(status(lab, namespace, n).get("phase") == "Succeeded" for n in names),
        "every job done",
        timeout=400,
    )
    for n in names:
        assert sum(len(v) for v in member_jobs(lab, f"{namespace}.{n}").values()) == 1
