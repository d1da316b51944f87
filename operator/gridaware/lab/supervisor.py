"""Starting, probing and stopping the lab's processes without a resident supervisor.

Processes run detached (own session, output to a log file) so that the lab outlives the
``gridaware lab up`` command. Each is identified by pid *and* start time, so ``lab down``
never signals an unrelated process that happens to reuse a pid, and a component that died is
reported with the tail of its log instead of being silently restarted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

import psutil

from gridaware.lab.model import ProcessRecord

# Popen objects of processes started by this Python process, so they can be reaped (a
# long-lived caller such as a test session would otherwise collect zombies).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def start(
    component: str, argv: list[str], log: Path, env: Mapping[str, str] | None = None
) -> ProcessRecord:
    """Start ``argv`` detached, appending its output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env={**os.environ, **(env or {})},
        )
    _CHILDREN[proc.pid] = proc
    try:
        create_time = psutil.Process(proc.pid).create_time()
    except psutil.NoSuchProcess:
        create_time = 0.0
    return ProcessRecord(
        component=component, pid=proc.pid, create_time=create_time, log=log, argv=argv
    )


def _process(rec: ProcessRecord) -> psutil.Process | None:
    try:
        proc = psutil.Process(rec.pid)
        if abs(proc.create_time() - rec.create_time) > 0.5:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return proc


def alive(rec: ProcessRecord) -> bool:
    """True while the recorded process (not a pid reuser) is running."""
    return _process(rec) is not None


def log_tail(rec: ProcessRecord, lines: int = 5) -> str:
    """The last lines of a component's log, for error messages."""
    try:
        text = rec.log.read_text(errors="replace").rstrip().splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def rss_bytes(records: Iterable[ProcessRecord]) -> int:
    """Resident memory of the live recorded processes, summed."""
    total = 0
    for rec in records:
        proc = _process(rec)
        if proc is not None:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
    return total


def stop(records: Iterable[ProcessRecord], grace: float = 5.0) -> None:
    """SIGTERM every live process, wait up to ``grace`` seconds, then SIGKILL the rest
    (at once when ``grace`` is 0)."""
    procs = [p for p in (_process(r) for r in records) if p is not None]
    remaining = procs
    if grace > 0:
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                proc.terminate()
        _, remaining = psutil.wait_procs(procs, timeout=grace)
    for proc in remaining:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
    psutil.wait_procs(remaining, timeout=5)
    for proc in procs:
        child = _CHILDREN.pop(proc.pid, None)
        if child is not None:
            child.poll()
