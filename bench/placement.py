"""Operator benchmark: 1,000 GridAwareJobs created at once on a hub with 3 member clusters.

Starts its own lab (nodes sized so that every job fits), registers the members, runs
``gridaware run`` as a subprocess, creates the jobs from a thread pool and watches the hub.

Prints: time until all member Jobs exist, p50/p99 create-to-placed latency (from the moment the
create call returned to the moment the bench's watch saw status.memberJob), operator CPU
seconds and peak RSS, and Kubernetes API requests per job (from the API servers' own
apiserver_request_total counters, with the benchmark's own requests subtracted).

    .venv/bin/python bench/placement.py [--jobs 1000]

    .venv/bin/python bench/placement.py --jobs 10000 --migratable --controller-qps 200

    .venv/bin/python bench/placement.py --rate 20   # paced creates: latency below saturation

    .venv/bin/python bench/placement.py --backlog   # the operator's own placement rate

``--backlog`` creates the jobs while the operator is stopped and then starts it: the rate at
which it drains the backlog is its placement capacity on this machine, free of the hub's create
rate (and what an admin sees after an upgrade or a restart).

Targets (issue "A control loop admins can trust"): p99 create-to-placed under 5 s at 1,000 and
10,000 jobs, >= 100 jobs/s where the hub accepts creates that fast, <= 2 hub requests per
placed job, and with 10,000 live migratable jobs idle CPU under 0.2 cores and RSS under 1 GB.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import statistics
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import kubernetes.client
import kubernetes.watch
import psutil

from gridaware.k8s import clients, objects
from gridaware.lab import local, register
from gridaware.lab.model import NodePool, plan
from gridaware.lab.operator_process import OperatorProcess
from gridaware.lab.workload import grid_aware_job

CLUSTER_DIR = re.compile(r"/clusters/([^/]+)/")
METRIC = re.compile(r"^apiserver_request_total\{([^}]*)\} ([0-9.e+]+)$")


def request_counts(client: kubernetes.client.ApiClient) -> Counter[tuple[str, str, str]]:
    _, text = clients.raw_get(client, "/metrics")
    out: Counter[tuple[str, str, str]] = Counter()
    for line in text.splitlines():
        m = METRIC.match(line)
        if not m:
            continue
        labels = dict(kv.split("=", 1) for kv in re.findall(r'\w+="[^"]*"', m.group(1)))
        labels = {k: v.strip('"') for k, v in labels.items()}
        out[
            (labels.get("verb", ""), labels.get("resource", ""), labels.get("subresource", ""))
        ] += int(float(m.group(2)))
    return out


def lab_cpu(workdir: Path) -> Counter[tuple[str, str]]:
    """CPU seconds used so far by the lab's processes (every cluster's etcd, API server,
    controllers and KWOK), by program and cluster."""
    out: Counter[tuple[str, str]] = Counter()
    for p in psutil.process_iter(["cmdline", "cpu_times"]):
        cmd = p.info["cmdline"] or []
        if not cmd or not any(str(workdir) in part for part in cmd):
            continue
        name = Path(cmd[0]).name
        if name.startswith("python") or name == "gridaware":
            continue  # the operator is counted on its own
        cluster = next(iter(CLUSTER_DIR.findall(" ".join(cmd))), "?")
        times = p.info["cpu_times"]
        out[name, cluster] += times.user + times.system
    return out


def lab_cpu_line(used: Counter[tuple[str, str]]) -> str:
    """``kube-apiserver 20 (hub 8, us-west 11, ...), etcd 3, ...``: by program, and by cluster
    for the API servers (the hub's share is the cost of the GridAwareJobs themselves)."""
    programs: Counter[str] = Counter()
    for (name, _cluster), v in used.items():
        programs[name] += v
    parts = []
    for name in sorted(programs):
        part = f"{name} {programs[name]:.0f}"
        if name == "kube-apiserver":
            part += (
                " ("
                + ", ".join(f"{c} {v:.0f}" for (n, c), v in sorted(used.items()) if n == name)
                + ")"
            )
        parts.append(part)
    return ", ".join(parts)


def job(i: int, migratable: bool = False) -> dict[str, object]:
    moving: dict[str, object] = (
        {
            "migration": {"policy": "Checkpoint", "minDwellSeconds": 600},
            "schedule": {"expectedDurationSeconds": 86400},
        }
        if migratable
        else {}
    )
    return grid_aware_job(
        f"bench-{i:05d}", "bench", runs_for="30m", cpu="10m", memory="16Mi", **moving
    )


def idle_figures(
    custom: kubernetes.client.CustomObjectsApi,
    proc: psutil.Process,
    n: int,
    seconds: float,
    t0: float,
) -> list[str]:
    """Wait until every job runs (on KWOK) with its status written, then measure the operator
    with nothing to decide."""
    t_run0 = time.monotonic()
    running = 0
    while time.monotonic() - t_run0 < 600:
        items = custom.list_namespaced_custom_object(
            "gridaware.dev", "v1alpha1", "bench", "gridawarejobs"
        )["items"]
        running = sum((i.get("status") or {}).get("phase") == "Running" for i in items)
        if running >= n:
            break
        time.sleep(2)
    t_running = time.monotonic() - t0
    time.sleep(5)
    idle0 = sum(proc.cpu_times()[:2])
    time.sleep(seconds)
    idle_cores = (sum(proc.cpu_times()[:2]) - idle0) / seconds
    rss_idle = proc.memory_info().rss
    return [
        f"all {running} Running on the hub after {t_running:.1f} s",
        f"idle with {n} live jobs: {idle_cores:.3f} cores over {seconds:.0f} s, "
        f"RSS {rss_idle / 2**20:.0f} MiB   (targets < 0.2 cores, < 1 GB)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument(
        "--migratable",
        action="store_true",
        help="jobs may migrate (Checkpoint): measures the idle cost of watching them",
    )
    parser.add_argument(
        "--idle-seconds", type=float, default=30.0, help="0: skip the wait for Running and idle"
    )
    parser.add_argument(
        "--controller-qps",
        type=int,
        default=20,
        help="the lab controllers' request rate (Kubernetes default 20/s; 200 starts 10,000 "
        "pods in minutes, for the idle figure, but takes CPU from placement meanwhile)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="create at this many jobs/s (default: as fast as 16 client threads can)",
    )
    parser.add_argument("--workers", type=int, default=16, help="the operator's --workers")
    parser.add_argument(
        "--backlog",
        action="store_true",
        help="create every job while the operator is stopped, then start it and time the drain",
    )
    args = parser.parse_args()
    n = args.jobs
    workdir = Path(tempfile.mkdtemp(prefix="gridaware-bench-"))
    state = local.up(
        plan(
            ["us-west", "eu-central", "us-east"],
            nodes=NodePool(count=2, cpu="64", memory="512Gi", gpus=0, pods=max(2000, n)),
            controller_qps=args.controller_qps,
        ),
        workdir / "lab",
        log=lambda _m: None,
    )
    op: OperatorProcess | None = None
    try:
        register.register(state)
        hub = clients.from_kubeconfig(state.cluster("hub").kubeconfig)
        member_clients = {
            c.plan.name: clients.from_kubeconfig(c.kubeconfig)
            for c in state.clusters
            if c.plan.role == "member"
        }
        objects.ensure_namespace(hub, "bench")
        op = OperatorProcess(
            state, workdir, None, ["--probe-interval", "15", "--workers", str(args.workers)]
        )
        op.start()
        procs = [psutil.Process(op.pid)]
        custom = kubernetes.client.CustomObjectsApi(hub)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            items = custom.list_cluster_custom_object("gridaware.dev", "v1alpha1", "gridclusters")[
                "items"
            ]
            ready = [
                i
                for i in items
                if any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in (i.get("status") or {}).get("conditions", [])
                )
            ]
            if len(ready) == 3:
                break
            time.sleep(0.5)
        time.sleep(2)
        base_hub = request_counts(hub)
        base_members = {k: request_counts(c) for k, c in member_clients.items()}
        cpu0 = sum(procs[0].cpu_times()[:2])
        peak = [procs[0].memory_info().rss]
        if args.backlog:
            op.stop()
        created: dict[str, float] = {}
        placed: dict[str, float] = {}
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                with contextlib.suppress(psutil.NoSuchProcess):  # stopped for --backlog
                    peak[0] = max(peak[0], procs[0].memory_info().rss)
                time.sleep(0.1)

        def watch() -> None:
            # list once, then follow a watch (re-listing if it breaks): cheap for the hub
            rv = None
            while len(placed) < n and not done.is_set() and time.monotonic() - t_start < 900:
                try:
                    if rv is None:
                        listing = custom.list_namespaced_custom_object(
                            "gridaware.dev", "v1alpha1", "bench", "gridawarejobs"
                        )
                        see(listing["items"])
                        rv = listing["metadata"]["resourceVersion"]
                    w = kubernetes.watch.Watch()
                    for ev in w.stream(
                        custom.list_namespaced_custom_object,
                        "gridaware.dev",
                        "v1alpha1",
                        "bench",
                        "gridawarejobs",
                        resource_version=rv,
                        timeout_seconds=30,
                    ):
                        if ev["type"] == "ERROR":
                            rv = None
                            break
                        rv = ev["object"]["metadata"]["resourceVersion"]
                        see([ev["object"]])
                        if len(placed) >= n:
                            w.stop()
                except Exception:
                    rv = None

        def see(items: list[dict[str, object]]) -> None:
            now = time.monotonic()
            for obj in items:
                name = obj["metadata"]["name"]  # type: ignore[index]
                if (obj.get("status") or {}).get("memberJob") and name not in placed:  # type: ignore[attr-defined]
                    placed[name] = now  # type: ignore[index]

        t_start = time.monotonic()
        threading.Thread(target=sample, daemon=True).start()
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        time.sleep(0.5)

        def create(i: int) -> None:
            if args.rate > 0:  # paced: job i is created at i / rate seconds
                time.sleep(max(0.0, t0 + i / args.rate - time.monotonic()))
            body = job(i, args.migratable)
            custom.create_namespaced_custom_object(
                "gridaware.dev", "v1alpha1", "bench", "gridawarejobs", body
            )
            created[str(body["metadata"]["name"])] = time.monotonic()  # type: ignore[index]

        lab_cpu0 = lab_cpu(workdir)
        t0 = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(create, range(n)))
        t_created = time.monotonic() - t0
        t_op = t0
        if args.backlog:
            t_op = time.monotonic()
            op.start()
            procs[0] = psutil.Process(op.pid)
            cpu0 = 0.0  # a new process: its start-up is part of the drain
        watcher.join(timeout=900)
        t_placing = time.monotonic() - t0
        lab_cpu1 = lab_cpu(workdir)
        t_all_placed = max(placed.values()) - t0 if len(placed) == n else float("nan")
        # every member Job exists?
        total_member_jobs = 0
        for c in member_clients.values():
            total_member_jobs += len(
                kubernetes.client.BatchV1Api(c)
                .list_namespaced_job("bench", label_selector="gridaware.dev/job")
                .items
            )
        done.set()
        proc = procs[0]
        cpu = sum(proc.cpu_times()[:2]) - cpu0
        lat = sorted(placed[k] - created[k] for k in placed if k in created)
        hub_delta = request_counts(hub) - base_hub
        member_delta: Counter[tuple[str, str, str]] = Counter()
        for k, c in member_clients.items():
            member_delta += request_counts(c) - base_members[k]
        # the benchmark's own requests on the hub: n creates, one watch, two metric reads
        hub_delta[("POST", "gridawarejobs", "")] -= n
        hub_delta[("LIST", "gridawarejobs", "")] = 0  # the benchmark's own list
        hub_ops = sum(
            v
            for (verb, res, _sub), v in hub_delta.items()
            if res in ("gridawarejobs", "events", "gridclusters", "secrets")
        )
        creates = member_delta[("POST", "jobs", "")]
        per_cluster = Counter()
        for name, c in member_clients.items():
            per_cluster[name] = len(
                kubernetes.client.BatchV1Api(c).list_namespaced_job("bench").items
            )
        idle = idle_figures(custom, proc, n, args.idle_seconds, t0) if args.idle_seconds > 0 else []
        print(
            f"jobs: {n}{' (migratable)' if args.migratable else ''}; created on the hub in "
            f"{t_created:.1f} s = {n / t_created:.0f} jobs/s (16 client threads)"
        )
        if args.backlog:
            first, last = min(placed.values()) - t_op, max(placed.values()) - t_op
            print(
                f"backlog drained (operator started after the creates): first placed "
                f"{first:.1f} s after start, all {last:.1f} s; placement rate "
                f"{n / (last - first):.0f} jobs/s from first to last, {n / last:.0f} jobs/s "
                f"including start-up (target >= 100)"
            )
        print(
            f"placement rate: {n / t_all_placed:.0f} jobs/s (target >= 100 where the hub accepts)"
        )
        print(
            f"all placed (member Job exists, status written) after: {t_all_placed:.1f} s"
            f"   (target < 60 s); member Jobs found: {total_member_jobs}"
        )
        print(
            f"create-to-placed latency: p50 {statistics.median(lat):.2f} s, "
            f"p99 {lat[int(0.99 * (len(lat) - 1))]:.2f} s, max {lat[-1]:.2f} s"
            f"   (target p99 < 5 s)"
        )
        print(
            f"operator CPU while placing: {cpu:.1f} s ({1000 * cpu / n:.1f} ms per job); "
            f"peak RSS {peak[0] / 2**20:.0f} MiB"
        )
        lab_used = lab_cpu1 - lab_cpu0
        print(
            f"machine CPU while placing ({t_placing:.0f} s x {psutil.cpu_count()} cores = "
            f"{t_placing * (psutil.cpu_count() or 1):.0f} core-s): operator {cpu:.0f}, lab "
            f"control planes {sum(lab_used.values()):.0f} "
            f"({lab_cpu_line(lab_used)})"
        )
        for line in idle:
            print(line)
        print(
            f"API requests per job: hub (gridawarejobs, events, clusters) "
            f"{hub_ops / n:.2f}; member Job creates {creates / n:.2f}"
        )
        top = sorted(((v, k) for k, v in hub_delta.items() if v > 0), reverse=True)[:6]
        print(
            "  hub detail: "
            + ", ".join(
                f"{verb} {res}{'/' + sub if sub else ''}: {v}" for v, (verb, res, sub) in top
            )
        )
        print(f"  placement spread: {dict(per_cluster)}")
    finally:
        if op is not None:
            op.stop()
        local.down(workdir / "lab")
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
