"""The ``binary`` backend: each lab cluster is etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and a KWOK controller running as local processes.

``up`` starts clusters in parallel and waits until each really works (API ready, the
controller-manager has created the default ServiceAccount, every fake node is Ready). Any
failure stops everything this call started and removes its state, so nothing half-started is
left behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from gridaware.k8s import clients, nodes, objects
from gridaware.lab import jobset, kubeconfig, pki, supervisor
from gridaware.lab.errors import LabError
from gridaware.lab.model import ClusterPlan, ClusterState, LabPlan, LabState, ProcessRecord

STATE_FILE = "lab.json"
PORT_NAMES = (
    "etcd",
    "etcd-peer",
    "apiserver",
    "controller-manager",
    "scheduler",
    *jobset.PORT_NAMES,
)
START_TIMEOUT = float(os.environ.get("GRIDAWARE_LAB_START_TIMEOUT", "180"))
# The lab's clusters share few cores: keep each Go runtime from claiming all of them.
_GO_ENV = {"GOMAXPROCS": os.environ.get("GRIDAWARE_LAB_GOMAXPROCS", "2")}


def default_state_dir() -> Path:
    explicit = os.environ.get("GRIDAWARE_LAB_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "gridaware" / "lab"


def load_state(state_dir: Path) -> LabState | None:
    path = state_dir / STATE_FILE
    if not path.exists():
        return None
    try:
        return LabState.model_validate_json(path.read_text())
    except ValueError as exc:
        raise LabError(
            f"lab state {path} is unreadable ({exc.__class__.__name__}); "
            f"stop its processes by hand and remove {state_dir}"
        ) from exc


_state_lock = threading.Lock()


def _save(state: LabState) -> None:
    with _state_lock:
        path = state.state_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(state.model_dump_json(indent=2))
        tmp.replace(path)


def save(state: LabState) -> None:
    """Persist ``state`` (for lab parts started after ``up``, such as the lab Prometheus)."""
    _save(state)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def allocate_ports(count: int, base: int | None) -> list[int]:
    """``count`` free ports: consecutive from ``base`` (all must be free), or OS-chosen."""
    if base is not None:
        ports = list(range(base, base + count))
        busy = [p for p in ports if not _port_free(p)]
        if busy:
            raise LabError(
                f"port {busy[0]} is in use (the lab needs {base}-{base + count - 1}); "
                "choose another --port-base or omit it to pick free ports"
            )
        return ports
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _wait(
    what: str, check: Callable[[], bool], procs: list[ProcessRecord], timeout: float = START_TIMEOUT
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        for rec in procs:
            if not supervisor.alive(rec):
                raise LabError(
                    f"{rec.component} exited while waiting for {what}; log {rec.log}: "
                    + supervisor.log_tail(rec, 1)
                )
        if check():
            return
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.25)


def _http_ok(url: str) -> bool:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=2, context=ctx) as resp:  # noqa: S310
            return bool(resp.status == 200)
    except OSError:
        return False


def register_nodes(client: Any, plan: ClusterPlan) -> None:
    """Create the cluster's KWOK nodes, labelled with its region and grid zone."""
    for i in range(plan.nodes.count):
        node_name = f"{plan.name}-node-{i}"
        labels = {
            "type": "kwok",
            "kubernetes.io/hostname": node_name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "node.kubernetes.io/instance-type": "kwok",
        }
        if plan.region:
            labels["topology.kubernetes.io/region"] = plan.region
            labels["topology.kubernetes.io/zone"] = f"{plan.region}-{'abc'[i % 3]}"
        if plan.grid_zone:
            labels["gridaware.dev/grid-zone"] = plan.grid_zone
        if plan.nodes.gpus:
            labels["nvidia.com/gpu.present"] = "true"
        nodes.register_fake_node(
            client, node_name, labels, {"kwok.x-k8s.io/node": "fake"}, plan.nodes.capacity()
        )


def kwok_argv(bin_dir: Path, kubeconfig_path: Path, stages: Path) -> list[str]:
    """The KWOK controller's command line; it drives nodes labelled type=kwok only."""
    stages.write_text(resources.files("gridaware.lab").joinpath("kwok-stages.yaml").read_text())
    return [
        str(bin_dir / "kwok"),
        f"--kubeconfig={kubeconfig_path}",
        f"--config={stages}",
        "--manage-all-nodes=false",
        "--manage-nodes-with-label-selector=type=kwok",
        "--node-lease-duration-seconds=40",
        "--cidr=10.244.0.0/16",
        "--node-ip=10.1.0.1",
    ]


class _ClusterStarter:
    """Brings one cluster up, recording every process in the shared state as it goes."""

    def __init__(
        self, state: LabState, cluster: ClusterState, bin_dir: Path, jobset_crd: Path
    ) -> None:
        self.state = state
        self.cluster = cluster
        self.bin = bin_dir
        self.jobset_crd = jobset_crd
        self.dir = state.state_dir / "clusters" / cluster.plan.name

    def _rate_limits(self, default_qps: int) -> list[str]:
        """Client rate-limit flags when the plan asks for more than the component's default."""
        qps = self.cluster.plan.controller_qps
        return (
            [] if qps <= default_qps else [f"--kube-api-qps={qps}", f"--kube-api-burst={2 * qps}"]
        )

    def _start(self, component: str, argv: list[str]) -> ProcessRecord:
        rec = supervisor.start(component, argv, self.dir / "logs" / f"{component}.log", _GO_ENV)
        self.cluster.processes.append(rec)
        _save(self.state)
        return rec

    def run(self) -> None:
        name = self.cluster.plan.name
        ports = self.cluster.ports
        certs = pki.create(self.dir / "pki", name)
        etcd_url = f"http://127.0.0.1:{ports['etcd']}"
        peer_url = f"http://127.0.0.1:{ports['etcd-peer']}"
        etcd = self._start(
            "etcd",
            [
                str(self.bin / "etcd"),
                f"--name={name}",
                f"--data-dir={self.dir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster={name}={peer_url}",
                "--unsafe-no-fsync",
                "--log-level=warn",
                "--quota-backend-bytes=4294967296",
            ],
        )
        _wait(f"etcd of {name}", lambda: _http_ok(f"{etcd_url}/health"), [etcd])

        api_url = f"https://127.0.0.1:{ports['apiserver']}"
        apiserver = self._start(
            "kube-apiserver",
            [
                str(self.bin / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                f"--secure-port={ports['apiserver']}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                "--endpoint-reconciler-type=none",
                f"--tls-cert-file={certs.serving_cert}",
                f"--tls-private-key-file={certs.serving_key}",
                f"--client-ca-file={certs.ca_cert}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={certs.sa_pub}",
                f"--service-account-signing-key-file={certs.sa_key}",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--authorization-mode=RBAC",
                "--allow-privileged=true",
                "--profiling=false",
                "--v=0",
                "--event-ttl=1h",
            ],
        )
        kcfg = kubeconfig.entry(name, api_url, certs.ca_cert, certs.admin_cert, certs.admin_key)
        kubeconfig.write(self.cluster.kubeconfig, kcfg)
        self.cluster.api_url = api_url
        _save(self.state)
        client = clients.from_kubeconfig(self.cluster.kubeconfig)
        _wait(f"kube-apiserver of {name}", lambda: clients.is_ready(client), [etcd, apiserver])

        kc = str(self.cluster.kubeconfig)
        kcm = self._start(
            "kube-controller-manager",
            [
                str(self.bin / "kube-controller-manager"),
                f"--kubeconfig={kc}",
                f"--authentication-kubeconfig={kc}",
                f"--authorization-kubeconfig={kc}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports['controller-manager']}",
                f"--service-account-private-key-file={certs.sa_key}",
                f"--root-ca-file={certs.ca_cert}",
                "--use-service-account-credentials=false",
                "--profiling=false",
                *self._rate_limits(20),
                f"--concurrent-job-syncs={max(5, self.cluster.plan.controller_qps // 10)}",
            ],
        )
        scheduler = self._start(
            "kube-scheduler",
            [
                str(self.bin / "kube-scheduler"),
                f"--kubeconfig={kc}",
                f"--authentication-kubeconfig={kc}",
                f"--authorization-kubeconfig={kc}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports['scheduler']}",
                "--profiling=false",
                *self._rate_limits(50),
            ],
        )
        kwok = self._start(
            "kwok", kwok_argv(self.bin, self.cluster.kubeconfig, self.dir / "kwok-stages.yaml")
        )
        running = [etcd, apiserver, kcm, scheduler, kwok]
        if self.cluster.plan.role == "member":
            running.append(self._start_jobset(certs))
        _wait(
            f"the default ServiceAccount of {name} (controller-manager)",
            lambda: objects.service_account_exists(client, "default", "default"),
            running,
        )
        _wait(
            f"kube-scheduler of {name}",
            lambda: _http_ok(f"https://127.0.0.1:{ports['scheduler']}/healthz"),
            running,
        )

        plan = self.cluster.plan
        register_nodes(client, plan)
        _wait(
            f"{plan.nodes.count} ready nodes in {name}",
            lambda: nodes.ready_nodes(client)[0] >= plan.nodes.count,
            running,
        )
        if plan.role == "member":
            health = f"http://127.0.0.1:{ports['jobset-health']}/readyz"
            _wait(f"the JobSet controller of {name}", lambda: _http_ok(health), running)

    def _start_jobset(self, certs: pki.ClusterPKI) -> ProcessRecord:
        """JobSet CRD, webhook certificate and configurations, then the controller-manager
        (see ``lab.jobset`` for why the webhooks are registered by URL)."""
        name, ports = self.cluster.plan.name, self.cluster.ports
        kubectl = self.bin / "kubectl"
        jobset.install_crd(kubectl, self.cluster.kubeconfig, name, self.jobset_crd)
        cert_dir = self.dir / "jobset" / "certs"
        pki.issue_serving(certs, cert_dir, "jobset-webhook")
        config_file = self.dir / "jobset" / "config.yaml"
        config = jobset.config(ports["jobset-webhook"], ports["jobset-health"], cert_dir)
        config_file.write_text(yaml.safe_dump(config))
        rec = self._start(
            "jobset-controller", jobset.argv(self.bin, self.cluster.kubeconfig, config_file)
        )
        jobset.install_webhooks(
            kubectl,
            self.cluster.kubeconfig,
            name,
            ports["jobset-webhook"],
            certs.ca_cert.read_bytes(),
        )
        return rec


def up(lab_plan: LabPlan, state_dir: Path, log: Callable[[str], None] = print) -> LabState:
    """Start the lab described by ``lab_plan``; a no-op when it is already running."""
    existing = load_state(state_dir)
    if existing is not None:
        problems = health_problems(existing)
        if not problems and existing.complete:
            log(f"lab already running ({state_dir}); nothing to do")
            return existing
        detail = problems[0] if problems else "a previous 'lab up' did not finish"
        raise LabError(
            f"a lab at {state_dir} is partly down: {detail}; "
            "run 'gridaware lab down' and then 'gridaware lab up'"
        )
    from gridaware.lab import binaries  # noqa: PLC0415 - keep 'lab status' free of builds

    bin_dir = binaries.locate(build=True)
    jobset_crd = jobset.crd_file(binaries.tools_dir())
    ports = allocate_ports(len(PORT_NAMES) * len(lab_plan.clusters), lab_plan.port_base)
    if state_dir.exists():
        shutil.rmtree(state_dir)
    state_dir.mkdir(parents=True)
    state = LabState(
        backend="binary",
        state_dir=state_dir,
        bin_dir=bin_dir,
        kubeconfig=state_dir / "kubeconfig",
        clusters=[
            ClusterState(
                plan=c,
                kubeconfig=state_dir / "clusters" / c.name / "kubeconfig",
                ports=dict(zip(PORT_NAMES, ports[i * len(PORT_NAMES) :], strict=False)),
            )
            for i, c in enumerate(lab_plan.clusters)
        ],
    )
    _save(state)
    started = time.monotonic()
    names = ", ".join(c.plan.name for c in state.clusters)
    log(f"starting {len(state.clusters)} clusters ({names}) in {state_dir}")
    try:
        with ThreadPoolExecutor(max_workers=len(state.clusters)) as pool:
            futures = {
                c.plan.name: pool.submit(_ClusterStarter(state, c, bin_dir, jobset_crd).run)
                for c in state.clusters
            }
            for name, fut in futures.items():
                fut.result()
                log(f"  {name}: ready after {time.monotonic() - started:.1f}s")
        configs = [_read_yaml(c.kubeconfig) for c in state.clusters]
        kubeconfig.write(
            state.kubeconfig, kubeconfig.merge(configs, current=state.clusters[0].plan.name)
        )
        state.complete = True
        _save(state)
    except BaseException:
        _teardown(state)
        raise
    log(f"lab up in {time.monotonic() - started:.1f}s; kubeconfig: {state.kubeconfig}")
    return state


def _read_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def _teardown(state: LabState) -> None:
    # The state is deleted right after, so nothing needs a graceful shutdown; a graceful one
    # takes seconds (API servers drain watches, etcd waits for its clients).
    supervisor.stop([p for c in state.clusters for p in c.processes], grace=0)
    shutil.rmtree(state.state_dir, ignore_errors=True)


def down(state_dir: Path) -> LabState:
    """Stop every process of the lab at ``state_dir`` and remove its state."""
    state = load_state(state_dir)
    if state is None:
        raise LabError(
            f"no lab at {state_dir}: nothing to stop (start one with 'gridaware lab up')"
        )
    _teardown(state)
    return state


def health_problems(state: LabState) -> list[str]:
    """One line per dead component, with the last line of its log."""
    problems = []
    for cluster in state.clusters:
        for rec in cluster.processes:
            if not supervisor.alive(rec):
                tail = supervisor.log_tail(rec, 1).strip() or "(empty log)"
                problems.append(
                    f"{rec.component} of {cluster.plan.name} (pid {rec.pid}) is not running; "
                    f"log {rec.log}: {tail}"
                )
    return problems


def cluster_rows(state: LabState) -> list[dict[str, str]]:
    """What ``lab status`` prints per cluster."""
    rows = []
    for cluster in state.clusters:
        down_components = [r.component for r in cluster.processes if not supervisor.alive(r)]
        nodes_col = "-"
        if not down_components and cluster.api_url:
            with contextlib.suppress(Exception):
                client = clients.from_kubeconfig(cluster.kubeconfig)
                ready, total = nodes.ready_nodes(client)
                nodes_col = f"{ready}/{total}"
        rows.append(
            {
                "CLUSTER": cluster.plan.name,
                "ROLE": cluster.plan.role,
                "REGION": cluster.plan.region or "-",
                "ZONE": cluster.plan.grid_zone or "-",
                "API": cluster.api_url or "-",
                "NODES READY": nodes_col,
                "COMPONENTS": "ok" if not down_components else "DOWN: " + ",".join(down_components),
            }
        )
    return rows


def start_operator(state: LabState, extra_args: list[str]) -> ProcessRecord:
    """Run ``gridaware run`` against the lab's hub as a lab process (stopped by ``lab down``);
    a no-op when it already runs."""
    hub = state.cluster("hub")
    for rec in hub.processes:
        if rec.component == "gridaware-operator" and supervisor.alive(rec):
            return rec
    hub.processes = [p for p in hub.processes if p.component != "gridaware-operator"]
    argv = [
        sys.executable,
        "-m",
        "gridaware.cli",
        "run",
        "--kubeconfig",
        str(state.kubeconfig),
        "--context",
        "hub",
        *extra_args,
    ]
    rec = supervisor.start(
        "gridaware-operator", argv, state.state_dir / "clusters" / "hub" / "logs" / "operator.log"
    )
    hub.processes.append(rec)
    _save(state)
    return rec
