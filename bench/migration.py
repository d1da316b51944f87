"""Migration takeover on the lab: 50 long checkpointable jobs start in eu-central, whose
replayed carbon intensity turns dirty at 03:00 while us-west turns green; every job moves.
Takeover = from the migration decision to the target's pods running (``status.migrations``),
which includes the workload's checkpoint time (1 s here: the pod lingers 1 s after SIGTERM).

    .venv/bin/python bench/migration.py [--jobs 50]

Target (issue "follow green power"): p50 under 10 s.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import kubernetes.client

from gridaware.k8s import clients, hub, objects
from gridaware.lab import local, register
from gridaware.lab.model import plan
from gridaware.lab.operator_process import OperatorProcess, replay_feeds
from gridaware.lab.workload import grid_aware_job

T0 = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
TRACES = {
    "DE-LU": lambda h: 100.0 if h < 27 else 600.0,
    "US-CAL-CISO": lambda h: 300.0 if h < 27 else 50.0,
    "US-MIDA-PJM": lambda h: 450.0,
}


def write_traces(root: Path) -> None:
    (root / "carbon").mkdir(parents=True)
    for zone, f in TRACES.items():
        with (root / "carbon" / f"{zone}_2023_hourly.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["Datetime (UTC)", "Carbon Intensity gCO₂eq/kWh (LCA)", "Data Estimated"])
            for h in range(240):
                w.writerow(
                    [(T0 + dt.timedelta(hours=h)).strftime("%Y-%m-%d %H:%M:%S"), f(h), "false"]
                )


def job(i: int) -> dict[str, object]:
    return grid_aware_job(
        f"move-{i:03d}",
        "bench",
        runs_for="10m",
        checkpoint_takes="1s",
        cpu="500m",
        memory="512Mi",
        schedule={"maxDelaySeconds": 0, "expectedDurationSeconds": 6 * 3600},
        migration={
            "policy": "Checkpoint",
            "minDwellSeconds": 1800,
            "overheadSeconds": 300,
            "gracePeriodSeconds": 1,
        },
        energy={"wattsPerReplica": 300},
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=50)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gridaware-migration-"))
    state = local.up(plan(["us-west", "eu-central", "us-east"]), work / "lab", log=lambda _m: None)
    op = None
    try:
        register.register(state)
        write_traces(work / "data")
        op = OperatorProcess(
            state,
            work,
            replay_feeds(work / "data", list(TRACES)),
            ["--probe-interval", "1", "--retry-delay", "1", "--speedup", "360"],
        )
        op.args += ["--replay-start", "2023-01-02T00:00:00Z"]
        op.start()
        client = clients.from_kubeconfig(state.cluster("hub").kubeconfig)
        objects.ensure_namespace(client, "bench")
        time.sleep(8)
        custom = kubernetes.client.CustomObjectsApi(client)
        for i in range(args.jobs):
            custom.create_namespaced_custom_object(
                "gridaware.dev", "v1alpha1", "bench", "gridawarejobs", job(i)
            )
        deadline = time.monotonic() + 300
        takeovers: list[float] = []
        while time.monotonic() < deadline:
            bodies = hub.list_jobs(client)
            takeovers = [
                m["takeoverSeconds"]
                for b in bodies
                for m in (b.get("status") or {}).get("migrations", [])
            ]
            if len(takeovers) >= args.jobs:
                break
            time.sleep(1)
        takeovers.sort()
        moved = len(takeovers)
        print(f"{moved} migrations of {args.jobs} jobs (eu-central -> us-west)")
        if takeovers:
            p99 = takeovers[int(0.99 * (moved - 1))]
            print(
                f"takeover (decision -> target pods running): p50 "
                f"{statistics.median(takeovers):.1f} s, p99 {p99:.1f} s, max "
                f"{takeovers[-1]:.1f} s   (target p50 < 10 s)"
            )
    finally:
        if op is not None:
            op.stop()
        local.down(work / "lab")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
