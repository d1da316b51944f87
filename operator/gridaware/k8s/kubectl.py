"""Running ``kubectl`` against a cluster, for the paths where users would run it too
(installing CRDs and registering members in the lab), so they are exercised exactly."""

from __future__ import annotations

import subprocess
from pathlib import Path


class KubectlError(RuntimeError):
    """kubectl exited non-zero; the message carries its stderr."""


def run(
    kubectl: Path,
    kubeconfig: Path,
    context: str,
    *args: str,
    stdin: str | None = None,
    timeout: float = 120,
) -> str:
    """kubectl's stdout; raises KubectlError with its stderr when it fails."""
    result = subprocess.run(
        [str(kubectl), "--kubeconfig", str(kubeconfig), "--context", context, *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise KubectlError(f"kubectl {' '.join(args[:2])} failed: {result.stderr.strip()}")
    return result.stdout
