"""An energy exporter for the lab's pods: Kepler's and DCGM's counters, from a deterministic power.

KWOK pods use no CPU and have no GPU, so nothing in the lab can be measured. Platform teams read
pod energy from Kepler (``kepler_container_joules_total``) and GPU energy from NVIDIA's DCGM
exporter (``DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION``, mJ since boot, labelled with the pod that
holds the GPU by its Kubernetes mapping). This exporter serves exactly those families for one
member cluster's running pods, integrating a power that follows from the pod spec (CPU requests
x W per CPU for the container, W per GPU for each GPU it holds) into monotonic counters, so
that the operator's measured-energy path runs against a real Prometheus and its result can be
checked against the counters themselves.

Metric names and labels follow the exporters' documentation:
- Kepler (0.7 series): ``kepler_container_joules_total{container_id, container_name,
  container_namespace, pod_name, mode}`` (``mode="dynamic"``; the lab has no idle share). In
  the lab this family carries the CPU-side energy only; GPU energy is DCGM's.
- DCGM exporter: ``DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu, UUID, device, modelName, Hostname}``
  per GPU, counting from exporter start, plus ``container, namespace, pod`` while a pod holds
  the GPU (absent otherwise, as upstream's mapping does).
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from gridaware.k8s import clients, pods
from gridaware.k8s.pods import RunningPod

KEPLER = "kepler_container_joules_total"
DCGM = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"
GPU_MODEL = "gridaware lab GPU"


@dataclass
class _Gpu:
    node: str
    index: int
    millijoules: float = 0.0
    holder: tuple[str, str, str, str] | None = None  # (pod uid, namespace, pod, container)


@dataclass
class EnergyMeter:
    """Integrates per-container power over time into Kepler/DCGM-shaped counters (pure)."""

    watts_per_cpu: float
    watts_per_gpu: float
    gpus_per_node: int
    last: float | None = None
    containers: dict[tuple[str, str, str, str], float] = field(default_factory=dict)
    gpus: dict[tuple[str, int], _Gpu] = field(default_factory=dict)

    def _assign_gpus(self, running: Sequence[RunningPod]) -> None:
        live = {p.uid for p in running}
        for gpu in self.gpus.values():
            if gpu.holder is not None and gpu.holder[0] not in live:
                gpu.holder = None
        for pod in running:
            for c in pod.containers:
                held = sum(
                    1 for g in self.gpus.values() if g.holder and g.holder[::3] == (pod.uid, c.name)
                )
                for _ in range(c.gpus - held):
                    free = self._free_gpu(pod.node)
                    if free is None:
                        break
                    free.holder = (pod.uid, pod.namespace, pod.name, c.name)

    def _free_gpu(self, node: str) -> _Gpu | None:
        for index in range(self.gpus_per_node):
            gpu = self.gpus.setdefault((node, index), _Gpu(node, index))
            if gpu.holder is None:
                return gpu
        return None

    def advance(self, running: Sequence[RunningPod], now: float) -> None:
        """Account the interval since the previous call to the pods running now."""
        dt = 0.0 if self.last is None else max(0.0, now - self.last)
        self.last = now
        self._assign_gpus(running)
        for pod in running:
            for c in pod.containers:
                key = (c.container_id, c.name, pod.namespace, pod.name)
                self.containers[key] = (
                    self.containers.get(key, 0.0) + c.cpu * self.watts_per_cpu * dt
                )
        for gpu in self.gpus.values():
            if gpu.holder is not None:
                gpu.millijoules += self.watts_per_gpu * dt * 1000.0

    def exposition(self) -> str:
        """The Prometheus text format (0.0.4) of both families."""
        lines = [
            f"# HELP {KEPLER} Aggregated RAPL value in package, dram, core and uncore in joules",
            f"# TYPE {KEPLER} counter",
        ]
        for (cid, cname, ns, pod), joules in sorted(self.containers.items()):
            labels = _labels(
                container_id=cid,
                container_name=cname,
                container_namespace=ns,
                pod_name=pod,
                mode="dynamic",
            )
            lines.append(f"{KEPLER}{{{labels}}} {joules:.6f}")
        lines += [
            f"# HELP {DCGM} Total energy consumption since boot (in mJ).",
            f"# TYPE {DCGM} counter",
        ]
        for (node, index), gpu in sorted(self.gpus.items()):
            extra = {}
            if gpu.holder is not None:
                _uid, ns, pod, container = gpu.holder
                extra = {"container": container, "namespace": ns, "pod": pod}
            labels = _labels(
                gpu=str(index),
                UUID=_gpu_uuid(node, index),
                device=f"nvidia{index}",
                modelName=GPU_MODEL,
                Hostname=node,
                **extra,
            )
            lines.append(f"{DCGM}{{{labels}}} {gpu.millijoules:.3f}")
        return "\n".join(lines) + "\n"


def _gpu_uuid(node: str, index: int) -> str:
    return f"GPU-{uuid.uuid5(uuid.NAMESPACE_DNS, f'{node}.{index}.gpu.lab.gridaware.dev')}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())


class _Handler(BaseHTTPRequestHandler):
    meter: EnergyMeter
    lock: threading.Lock

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/metrics":
            self.send_error(404)
            return
        with self.lock:
            body = self.meter.exposition().encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


def serve(
    kubeconfig: Path, port: int, meter: EnergyMeter, interval: float, ticks: int | None = None
) -> None:
    """Serve /metrics on 127.0.0.1:``port`` and integrate every ``interval`` seconds."""
    lock = threading.Lock()
    handler = type("Handler", (_Handler,), {"meter": meter, "lock": lock})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = clients.from_kubeconfig(kubeconfig)
    done = 0
    while ticks is None or done < ticks:
        try:
            running = pods.running_pods(client)
        except Exception:  # an unreachable API skips a tick, as a real exporter would
            running = None
        if running is not None:
            with lock:
                meter.advance(running, time.time())
        done += 1
        time.sleep(interval)
    server.shutdown()


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gridaware lab energy-exporter")
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--watts-per-cpu", type=float, default=10.0)
    parser.add_argument("--watts-per-gpu", type=float, default=300.0)
    parser.add_argument("--gpus-per-node", type=int, default=8)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(list(argv) if argv is not None else None)
    meter = EnergyMeter(args.watts_per_cpu, args.watts_per_gpu, args.gpus_per_node)
    serve(args.kubeconfig, args.port, meter, args.interval)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
