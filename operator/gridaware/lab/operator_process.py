"""``gridaware run`` as a child process against a lab's hub: the one way tests, benchmarks and
the lab start an operator (feeds configuration, replayed grid time, HA peering, kill/stop).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gridaware.lab.model import LabState


def static_feeds(values: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A feeds configuration answering every zone from a static table."""
    return {
        "providers": {"static": {"type": "static", "options": {"values": values}}},
        "default": {"carbon": ["static"], "price": ["static"]},
    }


def replay_feeds(directory: Path, zones: list[str], price: float = 50.0) -> dict[str, Any]:
    """Carbon replayed from recorded traces in ``directory``; a flat price per zone."""
    return {
        "providers": {
            "replay": {"type": "replay", "options": {"directory": str(directory)}},
            "static": {
                "type": "static",
                "options": {"values": {z: {"price": price, "currency": "USD"} for z in zones}},
            },
        },
        "default": {"carbon": ["replay"], "price": ["static"]},
    }


@dataclass
class OperatorProcess:
    state: LabState
    workdir: Path
    feeds: dict[str, Any] | None = None
    args: list[str] = field(default_factory=list)  # e.g. --replay-start, --speedup, --peering
    name: str = "operator"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def argv(self) -> list[str]:
        argv = [
            str(Path(sys.executable).parent / "gridaware"),
            "run",
            "--kubeconfig",
            str(self.state.kubeconfig),
            "--context",
            "hub",
            *self.args,
        ]
        if self.feeds is not None:
            path = self.workdir / f"{self.name}-feeds.yaml"
            path.write_text(yaml.safe_dump(self.feeds))
            argv += ["--feeds-config", str(path)]
        return argv

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv(), stdout=out, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid
