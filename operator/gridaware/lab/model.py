"""What a lab is made of (the plan) and what is running (the state, persisted as JSON).

The state file is the lab's only memory: ``lab status`` and ``lab down`` read it, and it is
written after every process start so that even an interrupted ``lab up`` can be torn down.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from gridaware.api import regions

HUB = "hub"
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")


class NodePool(BaseModel):
    """Fake nodes per member cluster and the capacity of each."""

    count: int = Field(default=2, ge=1, le=500)
    cpu: str = "32"
    memory: str = "128Gi"
    gpus: int = Field(default=4, ge=0, le=64)
    pods: int = Field(default=110, ge=1, le=10000)

    @field_validator("cpu", "memory")
    @classmethod
    def _quantity(cls, value: str) -> str:
        if not _QUANTITY.match(value):
            raise ValueError(f"'{value}' is not a Kubernetes quantity such as 32, 500m or 128Gi")
        return value

    def capacity(self) -> dict[str, str]:
        cap = {"cpu": self.cpu, "memory": self.memory, "pods": str(self.pods)}
        if self.gpus:
            cap["nvidia.com/gpu"] = str(self.gpus)
        return cap


class ClusterPlan(BaseModel):
    """One cluster of the lab: the hub, or a member named after its region."""

    name: str
    role: Literal["hub", "member"]
    region: str | None = None
    grid_zone: str | None = None
    price_zone: str | None = None
    nodes: NodePool
    # client-side request rate of the cluster's controller-manager and scheduler (the
    # Kubernetes default, 20/s, starts a few hundred pods a minute; benchmarks raise it)
    controller_qps: int = Field(default=20, ge=1)


class LabPlan(BaseModel):
    """Everything ``lab up`` needs to know."""

    backend: Literal["binary", "kind"] = "binary"
    clusters: list[ClusterPlan]
    port_base: int | None = Field(default=None, ge=1024, le=65000)

    @property
    def members(self) -> list[ClusterPlan]:
        return [c for c in self.clusters if c.role == "member"]


def plan(
    region_names: list[str],
    nodes: NodePool | None = None,
    hub_nodes: NodePool | None = None,
    backend: Literal["binary", "kind"] = "binary",
    port_base: int | None = None,
    controller_qps: int = 20,
) -> LabPlan:
    """A hub plus one member per region; raises UnknownRegionError or ValueError."""
    if len(set(region_names)) != len(region_names):
        raise ValueError("each region may appear only once in --regions")
    if not region_names:
        raise ValueError("a lab needs at least one member region")
    nodes = nodes or NodePool()
    clusters = [ClusterPlan(name=HUB, role="hub", nodes=hub_nodes or NodePool(count=1, gpus=0))]
    for name in region_names:
        region = regions.lookup(name)
        clusters.append(
            ClusterPlan(
                name=region.name,
                role="member",
                region=region.name,
                grid_zone=region.grid_zone,
                price_zone=region.price_zone,
                nodes=nodes,
                controller_qps=controller_qps,
            )
        )
    return LabPlan(backend=backend, clusters=clusters, port_base=port_base)


class ProcessRecord(BaseModel):
    """A process the lab started; (pid, create_time) identifies it even after pid reuse."""

    component: str
    pid: int
    create_time: float
    log: Path
    argv: list[str]


class ClusterState(BaseModel):
    plan: ClusterPlan
    api_url: str = ""
    kubeconfig: Path
    ports: dict[str, int] = Field(default_factory=dict)
    processes: list[ProcessRecord] = Field(default_factory=list)


class LabState(BaseModel):
    version: Literal[1] = 1
    backend: Literal["binary", "kind"]
    state_dir: Path
    bin_dir: Path | None = None
    kubeconfig: Path
    complete: bool = False
    clusters: list[ClusterState]

    def cluster(self, name: str) -> ClusterState:
        for c in self.clusters:
            if c.plan.name == name:
                return c
        raise KeyError(name)
