"""Deferral on the lab with replayed, time-accelerated signals, and the carbon account.

Grid time starts at 2023-01-02T00:00Z and runs 360 times faster than wall time (a grid hour
is 10 s). The replayed trace makes eu-central (DE-LU) very green from 03:00 to 06:00 only;
the other zones are flat.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gridaware.k8s import hub
from gridaware.lab.operator_process import OperatorProcess, replay_feeds
from tests.conftest import Lab, Operator, cluster_ready, kubectl, wait_for
from tests.e2e.test_operator import apply, condition, gaj, member_jobs, status

pytestmark = pytest.mark.slow
T0 = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
START = "2023-01-02T00:00:00Z"
SPEEDUP = 360.0


def dip(hour: int) -> float:
    """DE-LU: 400 g/kWh except 50 from 03:00 to 06:00 on 2 January."""
    return 50.0 if 24 + 3 <= hour < 24 + 6 else 400.0


TRACES = {"DE-LU": dip, "US-CAL-CISO": lambda _h: 300.0, "US-MIDA-PJM": lambda _h: 350.0}


def write_traces(root: Path, traces: dict[str, Any]) -> None:
    (root / "carbon").mkdir(parents=True, exist_ok=True)
    for zone, f in traces.items():
        with (root / "carbon" / f"{zone}_2023_hourly.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(
                [
                    "Datetime (UTC)",
                    "Zone Id",
                    "Carbon Intensity gCO₂eq/kWh (LCA)",
                    "Renewable Percentage",
                    "Data Estimated",
                ]
            )
            for h in range(24 * 10):
                t = T0 + dt.timedelta(hours=h)
                w.writerow([t.strftime("%Y-%m-%d %H:%M:%S"), zone, f(h), 50, "false"])


class ReplayOperator(OperatorProcess):
    """Runs ``gridaware run`` on replayed traces (instead of the session operator)."""

    def __init__(self, lab: Lab, tmp: Path) -> None:
        args = ["--probe-interval", "1", "--retry-delay", "1"]
        args += ["--replay-start", START, "--speedup", str(SPEEDUP)]
        super().__init__(lab.state, tmp, None, args, name="replay-operator")
        self.lab, self.tmp = lab, tmp

    def configure(self, traces: dict[str, Any]) -> None:
        write_traces(self.tmp / "data", traces)
        self.feeds = replay_feeds(self.tmp / "data", list(traces))

    def run_on(self, traces: dict[str, Any]) -> None:
        """Start on these traces and wait until every member cluster is Ready."""
        self.configure(traces)
        self.start()
        for m in self.lab.members:
            wait_for(lambda m=m: cluster_ready(self.lab, m), f"{m} ready", timeout=60)


@pytest.fixture
def replay(lab: Lab, operator: Operator, tmp_path: Path) -> Iterator[ReplayOperator]:
    ro = ReplayOperator(lab, tmp_path)
    operator.stop()
    try:
        yield ro
    finally:
        ro.stop()
        operator.start()


@pytest.fixture
def replay_operator(lab: Lab, replay: ReplayOperator) -> Iterator[Path]:
    replay.run_on(TRACES)
    yield replay.log


def integral(trace: Any, start: dt.datetime, end: dt.datetime) -> float:
    """gCO2e/kWh x hours of an hourly trace over [start, end)."""
    total, t = 0.0, start
    while t < end:
        hour = int((t - T0).total_seconds() // 3600)
        nxt = min(end, T0 + dt.timedelta(hours=hour + 1))
        total += trace(hour) * (nxt - t).total_seconds() / 3600
        t = nxt
    return total


def grid(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def scheduled(spec_extra: dict[str, Any], name: str, run: str = "10s") -> dict[str, Any]:
    doc = gaj(name, run=run, energy={"wattsPerReplica": 1000})
    doc["spec"].update(spec_extra)
    return doc


def test_waits_for_the_forecast_green_window_and_starts_in_it(
    lab: Lab, replay_operator: Path, namespace: str
) -> None:
    apply(
        lab,
        namespace,
        scheduled(
            {"schedule": {"maxDelaySeconds": 8 * 3600, "expectedDurationSeconds": 3600}}, "wait"
        ),
    )
    wait_for(
        lambda: condition(status(lab, namespace, "wait"), "Deferred").get("status") == "True",
        "the Deferred condition",
        timeout=30,
    )
    st = status(lab, namespace, "wait")
    assert st["phase"] == "Pending"
    assert st["deferral"]["cluster"] == "eu-central"
    assert st["deferral"]["expectedCarbon"] == 50
    planned = grid(st["deferral"]["plannedStart"])
    assert planned == dt.datetime(2023, 1, 2, 3, tzinfo=dt.UTC)
    assert "greener window" in condition(st, "Deferred")["message"]
    assert member_jobs(lab, f"{namespace}.wait") == {}, "nothing runs while deferred"
    shown = subprocess.run(
        [
            str(Path(sys.executable).parent / "gridaware"),
            "status",
            "--kubeconfig",
            str(lab.state.kubeconfig),
            "--context",
            "hub",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Deferred (until 2023-01-02T03:00:00Z in eu-central, 50 g/kWh)" in shown
    wait_for(lambda: status(lab, namespace, "wait").get("cluster"), "the start", timeout=90)
    st = status(lab, namespace, "wait")
    assert st["cluster"] == "eu-central" and st["carbonAtPlacement"] == 50
    assert condition(st, "Deferred")["status"] == "False"
    wait_for(lambda: status(lab, namespace, "wait").get("account"), "the account", timeout=90)
    acct = status(lab, namespace, "wait")["account"]
    seg = acct["segments"][0]
    hours = (grid(seg["end"]) - grid(seg["start"])).total_seconds() / 3600
    # by hand: 1 kW x PUE 1.2 x the trace integrated over the recorded run. Kubernetes
    # timestamps have 1 s resolution, which is 6 grid minutes at 360x: the recorded start may
    # lie up to that much before 03:00.
    start, end = grid(seg["start"]), grid(seg["end"])
    assert start >= dt.datetime(2023, 1, 2, 2, 54, tzinfo=dt.UTC)
    assert acct["energyKwh"] == pytest.approx(1.2 * hours, rel=1e-3)
    # (the segment's RFC 3339 times drop the sub-second part of the grid time: +-1 grid s)
    assert acct["carbonLocationG"] == pytest.approx(1.2 * integral(dip, start, end), abs=0.5)
    assert acct["carbonMarketG"] == acct["carbonLocationG"], "no contracts: same figure"
    assert acct["homeCluster"] == "eu-central"
    assert acct["counterfactualLocationG"] == pytest.approx(1.2 * hours * 400, rel=1e-3)
    assert acct["savedLocationG"] > 0


def test_a_deadline_is_never_missed_because_of_deferral(
    lab: Lab, replay_operator: Path, namespace: str
) -> None:
    # the green window is hours away, but the job must start now to meet its deadline
    apply(
        lab,
        namespace,
        scheduled({"schedule": {"maxDelaySeconds": 0, "expectedDurationSeconds": 3600}}, "urgent"),
    )
    wait_for(lambda: status(lab, namespace, "urgent").get("cluster"), "placement", timeout=30)
    st = status(lab, namespace, "urgent")
    assert condition(st, "Deferred") == {}
    assert st["cluster"] == "us-west"  # the greenest right now (300 < 350 < 400)
    body = hub.get_job(lab.client("hub"), namespace, "urgent")
    assert body is not None


def flip(hour: int) -> float:
    """DE-LU: green until 03:00 on 2 January, then dirty for good."""
    return 100.0 if hour < 24 + 3 else 600.0


def sunrise(hour: int) -> float:
    """US-CAL-CISO: average until 03:00, then very green."""
    return 300.0 if hour < 24 + 3 else 50.0


FLIP = {"DE-LU": flip, "US-CAL-CISO": sunrise, "US-MIDA-PJM": lambda _h: 450.0}


def movable(name: str) -> dict[str, Any]:
    doc = scheduled(
        {
            # no slack: placed at once by today's scores; a move must still meet the deadline,
            # so it may cost no overhead (with slack the planner, seeing the replayed future,
            # would start it in the cluster that stays green and never need to move)
            "schedule": {"maxDelaySeconds": 0, "expectedDurationSeconds": 6 * 3600},
            "migration": {
                "policy": "Checkpoint",
                "minDwellSeconds": 1800,
                "overheadSeconds": 0,
                "margin": 0.1,
                "gracePeriodSeconds": 2,
            },
        },
        name,
        run="60s",
    )
    annotations = doc["spec"]["template"]["template"]["metadata"]["annotations"]
    annotations["lab.gridaware.dev/shutdown-after"] = "2s"  # the workload checkpoints
    return doc


class CopyWatch:
    """Counts, across every member at the same instant, the live pods of one job."""

    def __init__(self, lab: Lab, namespace: str, name: str) -> None:
        self.lab, self.label = lab, f"gridaware.dev/job={namespace}.{name}"
        self.most = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import kubernetes.client as k  # noqa: PLC0415

        apis = [k.CoreV1Api(self.lab.client(m)) for m in self.lab.members]
        while not self._stop.is_set():
            live = 0
            for api in apis:
                for pod in api.list_pod_for_all_namespaces(label_selector=self.label).items:
                    if pod.status and pod.status.phase not in ("Succeeded", "Failed"):
                        live += 1
            self.most = max(self.most, live)
            self.samples += 1
            time.sleep(0.05)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(10)
        return self.most


def test_a_long_job_follows_the_greener_region_and_resumes_from_its_checkpoint(
    lab: Lab, replay: ReplayOperator, namespace: str
) -> None:
    replay.run_on(FLIP)
    watch = CopyWatch(lab, namespace, "mover")
    apply(lab, namespace, movable("mover"))
    wait_for(lambda: status(lab, namespace, "mover").get("cluster"), "placement", timeout=30)
    assert status(lab, namespace, "mover")["cluster"] == "eu-central"
    wait_for(lambda: status(lab, namespace, "mover").get("migrations"), "a migration", timeout=90)
    st = status(lab, namespace, "mover")
    record = st["migrations"][0]
    assert (record["source"], record["target"]) == ("eu-central", "us-west")
    assert 0 < record["takeoverSeconds"] < 60
    assert st["cluster"] == "us-west" and st["memberJob"]["cluster"] == "us-west"
    job = kubectl(
        lab, "-n", namespace, "get", "job", "mover", "-o", "json", context="us-west"
    ).stdout
    env = {
        e["name"]: e.get("value")
        for e in json.loads(job)["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["GRIDAWARE_RESUME"] == "1"
    assert env["GRIDAWARE_CHECKPOINT_DIR"] == "/var/run/gridaware/checkpoint"
    assert member_jobs(lab, f"{namespace}.mover") == {"us-west": ["mover"]}
    wait_for(
        lambda: status(lab, namespace, "mover").get("phase") == "Succeeded", "success", timeout=120
    )
    wait_for(lambda: status(lab, namespace, "mover").get("account"), "the account", timeout=60)
    assert len(status(lab, namespace, "mover")["account"]["segments"]) == 2
    assert watch.stop() == 1 and watch.samples > 50, "never two active copies"
    assert len(status(lab, namespace, "mover")["migrations"]) == 1, "no flapping"
    shown = subprocess.run(
        [
            str(Path(sys.executable).parent / "gridaware"),
            "status",
            "--kubeconfig",
            str(lab.state.kubeconfig),
            "--context",
            "hub",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    row = next(line for line in shown.splitlines() if f"{namespace}/mover" in line)
    assert "us-west" in row and row.split()[-2] == "1", row  # MOVES column


@pytest.mark.parametrize("step", ["Stopping", "WaitingForStop", "Starting", "Started"])
def test_operator_killed_during_a_migration_step_resumes_it(
    lab: Lab, replay: ReplayOperator, namespace: str, step: str
) -> None:
    replay.run_on(FLIP)
    watch = CopyWatch(lab, namespace, "crashy")
    apply(lab, namespace, movable("crashy"))
    order = ["Stopping", "WaitingForStop", "Starting", "Started"]

    def reached() -> bool:
        mig = status(lab, namespace, "crashy").get("migration") or {}
        done = status(lab, namespace, "crashy").get("migrations")
        return bool(done) or (mig.get("step") in order[order.index(step) :])

    wait_for(reached, f"migration step {step}", timeout=90)
    seen = (status(lab, namespace, "crashy").get("migration") or {}).get("step", "done")
    replay.kill()
    time.sleep(1)
    replay.start()
    wait_for(
        lambda: status(lab, namespace, "crashy").get("migrations"), "the migration", timeout=90
    )
    wait_for(
        lambda: status(lab, namespace, "crashy").get("phase") == "Succeeded",
        f"success after a kill at {seen}",
        timeout=120,
    )
    assert watch.stop() == 1, "never two active copies"
    copies = member_jobs(lab, f"{namespace}.crashy")
    assert sum(len(v) for v in copies.values()) == 1
