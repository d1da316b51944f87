"""The ``kind`` backend, for machines with Docker: one kind cluster per lab cluster.

kind gives each cluster a real control plane in a container; gridaware then runs a local KWOK
controller per cluster with the same stages and fake nodes as the binary backend, so GPU
capacity and job durations behave identically, and writes the same kubeconfig layout
(contexts named after the clusters). The pure functions (``render_config``, ``commands``) are
unit-tested; ``up``/``down`` only execute them.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from gridaware.k8s import clients
from gridaware.lab import kubeconfig, local, supervisor
from gridaware.lab.errors import LabError
from gridaware.lab.model import ClusterPlan, ClusterState, LabPlan, LabState


def kind_name(cluster: str) -> str:
    return f"gridaware-{cluster}"


def load_template(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise LabError(f"cannot read kind template {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("kind") != "Cluster" or not data.get("nodes"):
        raise LabError(f"{path} is not a kind Cluster config with nodes")
    return data


def render_config(
    template: dict[str, Any], cluster: ClusterPlan, index: int, api_port: int
) -> dict[str, Any]:
    """The kind config of lab cluster number ``index``."""
    cfg = copy.deepcopy(template)
    cfg["name"] = kind_name(cluster.name)
    net = cfg.setdefault("networking", {})
    net["apiServerAddress"] = "127.0.0.1"
    net["apiServerPort"] = api_port
    net["podSubnet"] = f"10.{100 + index}.0.0/16"
    net["serviceSubnet"] = f"10.{200 + index}.0.0/16"
    labels = {}
    if cluster.region:
        labels["topology.kubernetes.io/region"] = cluster.region
    if cluster.grid_zone:
        labels["gridaware.dev/grid-zone"] = cluster.grid_zone
    for node in cfg["nodes"]:
        node["labels"] = {**(node.get("labels") or {}), **labels}
    return cfg


def commands(lab_plan: LabPlan, state_dir: Path) -> list[list[str]]:
    """The kind invocations that create the lab's clusters, in order."""
    return [
        [
            "kind",
            "create",
            "cluster",
            "--name",
            kind_name(c.name),
            "--config",
            str(state_dir / "clusters" / c.name / "kind.yaml"),
            "--kubeconfig",
            str(state_dir / "clusters" / c.name / "kubeconfig"),
            "--wait",
            "180s",
        ]
        for c in lab_plan.clusters
    ]


def delete_commands(state: LabState) -> list[list[str]]:
    return [["kind", "delete", "cluster", "--name", kind_name(c.plan.name)] for c in state.clusters]


def rename_context(config: dict[str, Any], name: str) -> dict[str, Any]:
    """kind names contexts ``kind-<cluster>``; the lab layout names them after the cluster."""
    cfg = copy.deepcopy(config)
    cfg["clusters"][0]["name"] = name
    cfg["users"][0]["name"] = f"{name}-admin"
    cfg["contexts"] = [{"name": name, "context": {"cluster": name, "user": f"{name}-admin"}}]
    cfg["current-context"] = name
    return cfg


def up(lab_plan: LabPlan, state_dir: Path, template_path: Path) -> LabState:
    for tool in ("docker", "kind"):
        if shutil.which(tool) is None:
            raise LabError(
                f"--backend kind needs '{tool}' on PATH; without Docker use the "
                "default binary backend"
            )
    if local.load_state(state_dir) is not None:
        raise LabError(f"a lab already exists at {state_dir}; run 'gridaware lab down' first")
    from gridaware.lab import binaries  # noqa: PLC0415

    bin_dir = binaries.locate(build=True)
    template = load_template(template_path)
    ports = local.allocate_ports(len(lab_plan.clusters), lab_plan.port_base)
    state_dir.mkdir(parents=True, exist_ok=True)
    state = LabState(
        backend="kind",
        state_dir=state_dir,
        bin_dir=bin_dir,
        kubeconfig=state_dir / "kubeconfig",
        clusters=[
            ClusterState(plan=c, kubeconfig=state_dir / "clusters" / c.name / "kubeconfig")
            for c in lab_plan.clusters
        ],
    )
    try:
        for i, (cluster, argv) in enumerate(
            zip(state.clusters, commands(lab_plan, state_dir), strict=True)
        ):
            cdir = state_dir / "clusters" / cluster.plan.name
            cdir.mkdir(parents=True, exist_ok=True)
            (cdir / "kind.yaml").write_text(
                yaml.safe_dump(render_config(template, cluster.plan, i, ports[i]))
            )
            subprocess.run(argv, check=True)
            raw = yaml.safe_load(cluster.kubeconfig.read_text())
            kubeconfig.write(cluster.kubeconfig, rename_context(raw, cluster.plan.name))
            cluster.api_url = f"https://127.0.0.1:{ports[i]}"
            rec = supervisor.start(
                "kwok",
                local.kwok_argv(bin_dir, cluster.kubeconfig, cdir / "kwok-stages.yaml"),
                cdir / "logs" / "kwok.log",
            )
            cluster.processes.append(rec)
            client = clients.from_kubeconfig(cluster.kubeconfig)
            local.register_nodes(client, cluster.plan)
        merged = kubeconfig.merge(
            [yaml.safe_load(c.kubeconfig.read_text()) for c in state.clusters],
            current=state.clusters[0].plan.name,
        )
        kubeconfig.write(state.kubeconfig, merged)
        state.complete = True
        (state_dir / local.STATE_FILE).write_text(state.model_dump_json(indent=2))
    except (subprocess.CalledProcessError, OSError) as exc:
        _teardown(state)
        raise LabError(f"kind backend failed: {exc}") from exc
    return state


def _teardown(state: LabState) -> None:
    supervisor.stop([p for c in state.clusters for p in c.processes])
    for argv in delete_commands(state):
        subprocess.run(argv, check=False)
    shutil.rmtree(state.state_dir, ignore_errors=True)


def down(state_dir: Path) -> None:
    state = local.load_state(state_dir)
    if state is None:
        raise LabError(f"no lab at {state_dir}: nothing to stop")
    _teardown(state)
