"""Finding (and if needed building) the lab's binaries.

The binaries are built from Go modules pinned in ``tools/*/go.mod`` by ``tools/build.sh``,
which caches them per version outside git. ``GRIDAWARE_BIN_DIR`` points at a directory of
ready binaries instead (for packagers, or machines without Go).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from gridaware.lab.errors import LabError

REQUIRED = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
    "jobset",
)


def _tools_dir() -> Path | None:
    explicit = os.environ.get("GRIDAWARE_TOOLS_DIR")
    if explicit:
        return Path(explicit)
    starts = [Path(__file__).resolve(), Path.cwd().resolve()]
    for start in starts:
        for parent in [start, *start.parents]:
            candidate = parent / "tools" / "build.sh"
            if candidate.is_file():
                return candidate.parent
    return None


def tools_dir() -> Path | None:
    """The checkout's ``tools/`` directory (with build.sh and the Go modules), if any."""
    return _tools_dir()


def _check(bin_dir: Path) -> Path:
    missing = [b for b in REQUIRED if not os.access(bin_dir / b, os.X_OK)]
    if missing:
        raise LabError(
            f"{bin_dir} lacks {', '.join(missing)}: rebuild with tools/build.sh "
            "or point GRIDAWARE_BIN_DIR at a complete set"
        )
    return bin_dir


def locate(build: bool = True) -> Path:
    """The directory holding every lab binary, building missing ones when ``build``."""
    explicit = os.environ.get("GRIDAWARE_BIN_DIR")
    if explicit:
        return _check(Path(explicit))
    tools = _tools_dir()
    if tools is None:
        raise LabError(
            "cannot find tools/build.sh: run from a gridaware checkout, set GRIDAWARE_TOOLS_DIR, "
            "or set GRIDAWARE_BIN_DIR to a directory with etcd, kube-apiserver, kwok, ..."
        )
    if shutil.which("go") is None:
        raise LabError(
            "no Go toolchain on PATH: install Go >= 1.26 to build the lab's binaries, "
            "or set GRIDAWARE_BIN_DIR to prebuilt ones"
        )
    args = ["bash", str(tools / "build.sh")]
    if not build:
        args.append("--check")
    # progress goes to the user's terminal (stderr); the last stdout line names the directory
    result = subprocess.run(args, stdout=subprocess.PIPE, text=True, check=False)
    if result.returncode != 0:
        what = "not built yet (run tools/build.sh)" if not build else "build failed (see above)"
        raise LabError(f"lab binaries {what}")
    for line in reversed(result.stdout.splitlines()):
        if line.startswith("BIN_DIR="):
            return _check(Path(line.removeprefix("BIN_DIR=")))
    raise LabError("tools/build.sh printed no BIN_DIR line; is the checkout complete?")
