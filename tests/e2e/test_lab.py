"""The lab on real control planes: jobs run on KWOK nodes, clusters are separate, and the
lab's lifecycle commands (up, status, down) behave, including when a component dies."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import kubernetes.client
import psutil
import pytest
from kubernetes.client.exceptions import ApiException

from gridaware.k8s import clients
from gridaware.lab import binaries, local, supervisor
from gridaware.lab.errors import LabError
from gridaware.lab.model import NodePool, plan
from tests.conftest import REPO, Lab, wait_for

pytestmark = pytest.mark.slow


def _job(name: str, complete_after: str, gpus: int = 0) -> dict[str, object]:
    resources: dict[str, dict[str, str]] = {"requests": {"cpu": "1", "memory": "1Gi"}}
    if gpus:
        resources["limits"] = {"nvidia.com/gpu": str(gpus)}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": {"lab.gridaware.dev/complete-after": complete_after}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "main", "image": "train:latest", "resources": resources}
                    ],
                },
            },
        },
    }


def _create_job(client: kubernetes.client.ApiClient, ns: str, body: dict[str, object]) -> None:
    kubernetes.client.BatchV1Api(client).create_namespaced_job(
        ns, kubernetes.client.V1Job.model_validate(body)
    )


def test_job_runs_on_kwok_node_and_succeeds_after_annotated_delay(lab: Lab, namespace: str) -> None:
    client = lab.client("eu-central")
    batch = kubernetes.client.BatchV1Api(client)
    core = kubernetes.client.CoreV1Api(client)
    _create_job(client, namespace, _job("train", "4s", gpus=1))

    def running_pod() -> kubernetes.client.V1Pod | None:
        pods = core.list_namespaced_pod(namespace, label_selector="job-name=train").items
        return next((p for p in pods if p.status and p.status.phase == "Running"), None)

    wait_for(running_pod, "a Running pod of the job")
    pod = running_pod()
    assert pod is not None and pod.spec is not None
    assert pod.spec.node_name in {"eu-central-node-0", "eu-central-node-1"}
    started = time.monotonic()

    def succeeded() -> bool:
        status = batch.read_namespaced_job_status("train", namespace).status
        return bool(status and status.succeeded == 1)

    wait_for(succeeded, "the job to succeed", timeout=60)
    elapsed = time.monotonic() - started
    assert 2.5 <= elapsed <= 30, f"job finished {elapsed:.1f}s after running; annotation says 4s"


def test_job_that_fails_is_reported_failed(lab: Lab, namespace: str) -> None:
    client = lab.client("us-west")
    body = _job("crash", "1h")
    body["spec"]["template"]["metadata"]["annotations"]["lab.gridaware.dev/fail-after"] = "1s"  # type: ignore[index]
    _create_job(client, namespace, body)
    batch = kubernetes.client.BatchV1Api(client)

    def failed() -> bool:
        status = batch.read_namespaced_job_status("crash", namespace).status
        return bool(status and (status.failed or 0) >= 1)

    wait_for(failed, "the job to fail")


def test_job_asking_for_more_gpus_than_exist_stays_pending(lab: Lab, namespace: str) -> None:
    client = lab.client("us-east")
    core = kubernetes.client.CoreV1Api(client)
    _create_job(client, namespace, _job("huge", "1s", gpus=64))

    def unschedulable() -> bool:
        pods = core.list_namespaced_pod(namespace, label_selector="job-name=huge").items
        return any(
            c.type == "PodScheduled" and c.reason == "Unschedulable"
            for p in pods
            for c in (p.status.conditions if p.status else None) or []
        )

    wait_for(unschedulable, "the scheduler to mark the pod Unschedulable")
    time.sleep(3)
    pods = core.list_namespaced_pod(namespace, label_selector="job-name=huge").items
    assert [p.status.phase for p in pods if p.status] == ["Pending"]
    assert "nvidia.com/gpu" in str(pods[0].status.conditions)  # type: ignore[union-attr]


def test_hub_and_members_are_separate_clusters(lab: Lab, namespace: str) -> None:
    hub = kubernetes.client.CoreV1Api(lab.client("hub"))
    hub.create_namespaced_config_map(
        namespace,
        kubernetes.client.V1ConfigMap.model_validate(
            {"metadata": {"name": "only-on-hub"}, "data": {"k": "v"}}
        ),
    )
    for member in lab.members:
        api = kubernetes.client.CoreV1Api(lab.client(member))
        with pytest.raises(ApiException) as err:
            api.read_namespaced_config_map("only-on-hub", namespace)
        assert err.value.status == 404
    # each cluster has its own CA: the hub's credentials are rejected by a member
    member_url = lab.state.cluster(lab.members[0]).api_url
    hub_cfg = (
        lab.state.cluster("hub")
        .kubeconfig.read_text()
        .replace(lab.state.cluster("hub").api_url, member_url)
    )
    foreign = lab.state.state_dir / "foreign-kubeconfig"
    foreign.write_text(hub_cfg)
    assert not clients.is_ready(clients.from_kubeconfig(foreign))
    # and every cluster's nodes carry its own region and zone
    for member in lab.members:
        nodes = kubernetes.client.CoreV1Api(lab.client(member)).list_node().items
        zone = lab.state.cluster(member).plan.grid_zone
        assert {n.metadata.labels["gridaware.dev/grid-zone"] for n in nodes} == {zone}  # type: ignore[union-attr]
        assert {n.metadata.labels["topology.kubernetes.io/region"] for n in nodes} == {member}  # type: ignore[union-attr]


def test_merged_kubeconfig_works_with_kubectl(lab: Lab) -> None:
    kubectl = str(lab.state.bin_dir / "kubectl")  # type: ignore[operator]
    for name in lab.names:
        out = subprocess.run(
            [
                kubectl,
                "--kubeconfig",
                str(lab.state.kubeconfig),
                "--context",
                name,
                "get",
                "nodes",
                "-o",
                "name",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.count("node/") == lab.state.cluster(name).plan.nodes.count


def _gridaware(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("gridaware") or str(Path(os.sys.executable).parent / "gridaware")  # type: ignore[attr-defined]
    return subprocess.run(
        [exe, "lab", "--state-dir", str(state_dir), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_lab_lifecycle_noop_crash_report_and_clean_down(tmp_path: Path) -> None:
    state_dir = tmp_path / "small"
    up = _gridaware(state_dir, "up", "--regions", "uk-south", "--nodes", "1")
    assert up.returncode == 0, up.stderr
    assert "uk-south" in up.stdout and "GB" in up.stdout
    state = local.load_state(state_dir)
    assert state is not None
    pids = [p for c in state.clusters for p in c.processes]
    # 5 per cluster and the member's JobSet controller
    assert len(pids) == 11 and all(supervisor.alive(p) for p in pids)

    again = _gridaware(state_dir, "up", "--regions", "uk-south")
    assert again.returncode == 0
    assert "already running" in again.stdout
    assert local.load_state(state_dir) == state, "a second 'lab up' must change nothing"

    kwok = next(p for p in state.cluster("uk-south").processes if p.component == "kwok")
    os.kill(kwok.pid, signal.SIGKILL)
    wait_for(lambda: not supervisor.alive(kwok), "kwok to die")
    status = _gridaware(state_dir, "status")
    assert status.returncode == 1
    assert "DOWN: kwok" in status.stdout
    assert "error: kwok of uk-south" in status.stderr
    rerun = _gridaware(state_dir, "up")
    assert rerun.returncode != 0
    assert "partly down" in rerun.stderr and "lab down" in rerun.stderr

    down = _gridaware(state_dir, "down")
    assert down.returncode == 0, down.stderr
    assert not state_dir.exists()
    alive = [p for p in pids if psutil.pid_exists(p.pid) and supervisor.alive(p)]
    assert alive == []
    again_down = _gridaware(state_dir, "down")
    assert again_down.returncode != 0 and again_down.stderr.startswith("error: no lab at")


def test_port_in_use_fails_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _gridaware(tmp_path / "s", "up", "--regions", "us-west", "--port-base", str(port))
    assert result.returncode != 0
    assert f"port {port} is in use" in result.stderr
    assert not (tmp_path / "s").exists()


def test_failed_start_leaves_nothing_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A component that cannot start makes 'lab up' fail and stop what it had started."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in binaries.REQUIRED:
        (bin_dir / name).symlink_to(Path(binaries.locate(build=False)) / name)
    (bin_dir / "kube-scheduler").unlink()
    (bin_dir / "kube-scheduler").write_text("#!/bin/sh\necho 'scheduler: boom' >&2\nexit 3\n")
    (bin_dir / "kube-scheduler").chmod(0o755)
    monkeypatch.setenv("GRIDAWARE_BIN_DIR", str(bin_dir))
    state_dir = tmp_path / "s"
    before = {p.pid for p in psutil.process_iter()}
    with pytest.raises(LabError, match="kube-scheduler exited") as err:
        local.up(plan(["us-west"], nodes=NodePool(count=1)), state_dir, log=lambda _m: None)
    assert "boom" in str(err.value)
    assert not state_dir.exists()
    leftovers = [
        p
        for p in psutil.process_iter(["name", "cmdline"])
        if p.pid not in before and str(tmp_path) in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == []


def test_corrupt_binary_cache_is_rebuilt(tmp_path: Path) -> None:
    """A cache entry whose binary no longer matches its manifest is detected and rebuilt."""
    real_etcd = (Path(binaries.locate(build=False)) / "etcd").resolve()
    cache = tmp_path / "cache"
    entry = cache / "bin" / real_etcd.parent.name
    shutil.copytree(real_etcd.parent, entry)
    (entry / "etcd").write_bytes(b"corrupt")
    env = {**os.environ, "GRIDAWARE_CACHE": str(cache)}
    check = subprocess.run(
        ["bash", str(REPO / "tools/build.sh"), "--check"], env=env, capture_output=True, check=False
    )
    assert check.returncode == 1
    build = subprocess.run(
        ["bash", str(REPO / "tools/build.sh"), "etcd"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert build.returncode == 0, build.stderr
    assert "corrupt, rebuilding" in build.stderr
    version = subprocess.run(
        [str(entry / "etcd"), "--version"], capture_output=True, text=True, check=True
    )
    assert "etcd Version: 3.6" in version.stdout
