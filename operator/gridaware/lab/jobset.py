"""The real JobSet controller (sigs.k8s.io/jobset) in every lab member, as a lab process.

Users run multi-node training as JobSets, so the members run the upstream controller-manager,
built from its Go module by ``tools/build.sh`` (group ``jobset``), with the CRD from the same
module version (its ``config/components/crd/bases`` in the Go module cache).

Webhooks: the manager has no flag to run without its webhook server (``main.go`` always
registers the JobSet defaulting/validating and pod mutating/validating webhooks, and its
readiness check waits for that server). In a real install its internal cert management writes a
self-signed certificate into a Secret and patches a Service-backed webhook configuration; the lab
has no Service network to reach a local process, so instead the lab turns internal cert
management off (``internalCertManagement.enable: false`` in the manager's config file), issues
the webhook server a loopback serving certificate from the member's own CA, and registers the
upstream webhook configurations (same paths, rules, object selectors and failure policy) with a
``url: https://127.0.0.1:<port>/...`` client config and that CA as ``caBundle``. JobSets are
therefore defaulted and validated exactly as in a real cluster. Metrics serving is off
(``bindAddress: "0"``); the health endpoint on loopback tells the lab when the webhook is up.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from gridaware.k8s import kubectl as kubectl_cli
from gridaware.lab.errors import LabError

CRD_NAME = "jobsets.jobset.x-k8s.io"
CRD_RELPATH = Path("config/components/crd/bases/jobset.x-k8s.io_jobsets.yaml")
MODULE = "sigs.k8s.io/jobset"
PORT_NAMES = ("jobset-webhook", "jobset-health")
_API = "jobset.x-k8s.io"
_JOBSET_LABEL = "jobset.sigs.k8s.io/jobset-name"


def crd_file(tools_dir: Path | None) -> Path:
    """The JobSet CRD of the pinned module version.

    ``GRIDAWARE_JOBSET_CRD`` names the file directly (with ``GRIDAWARE_BIN_DIR``, on machines
    without Go); otherwise ``go mod download`` in ``tools/jobset`` locates the module (a no-op
    when the binary was built, since the build downloaded it)."""
    explicit = os.environ.get("GRIDAWARE_JOBSET_CRD")
    if explicit:
        path = Path(explicit)
    else:
        if tools_dir is None:
            raise LabError("cannot find tools/jobset: set GRIDAWARE_JOBSET_CRD to the JobSet CRD")
        result = subprocess.run(
            ["go", "mod", "download", "-json", MODULE],
            cwd=tools_dir / "jobset",
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise LabError(f"go mod download {MODULE} failed: {result.stderr.strip()}")
        path = Path(json.loads(result.stdout)["Dir"]) / CRD_RELPATH
    if not path.is_file():
        raise LabError(f"JobSet CRD {path} is missing")
    return path


def config(webhook_port: int, health_port: int, cert_dir: Path) -> dict[str, Any]:
    """The manager's configuration file (config.jobset.x-k8s.io/v1alpha1)."""
    return {
        "apiVersion": "config.jobset.x-k8s.io/v1alpha1",
        "kind": "Configuration",
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": False},
        "webhook": {"port": webhook_port, "host": "127.0.0.1", "certDir": str(cert_dir)},
        "metrics": {"bindAddress": "0"},
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health_port}"},
        "clientConnection": {"qps": 50, "burst": 100},
    }


def argv(bin_dir: Path, kubeconfig: Path, config_file: Path) -> list[str]:
    return [
        str(bin_dir / "jobset"),
        f"--kubeconfig={kubeconfig}",
        f"--config={config_file}",
        "--zap-log-level=info",
        "--zap-devel=false",
    ]


def _hook(name: str, path: str, url: str, ca: str, group: str, resource: str) -> dict[str, Any]:
    pods = resource == "pods"
    ops = ["CREATE"] if pods or name.startswith("m") else ["CREATE", "UPDATE"]
    hook: dict[str, Any] = {
        "name": name,
        "admissionReviewVersions": ["v1"],
        "clientConfig": {"url": f"{url}{path}", "caBundle": ca},
        "failurePolicy": "Fail",
        "sideEffects": "None",
        "rules": [
            {
                "apiGroups": [group],
                "apiVersions": ["v1" if pods else "v1alpha2"],
                "operations": ops,
                "resources": [resource],
            }
        ],
    }
    if pods:
        hook["objectSelector"] = {
            "matchExpressions": [{"key": _JOBSET_LABEL, "operator": "Exists"}]
        }
    return hook


def webhook_configurations(webhook_port: int, ca_cert: bytes) -> list[dict[str, Any]]:
    """Upstream's webhook configurations (config/components/webhook with its patches), pointed
    at the loopback webhook server."""
    url = f"https://127.0.0.1:{webhook_port}"
    ca = base64.b64encode(ca_cert).decode()
    meta = {"labels": {"app.kubernetes.io/part-of": "gridaware-lab"}}
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "jobset-mutating-webhook-configuration", **meta},
            "webhooks": [
                _hook(
                    "mjobset.kb.io",
                    "/mutate-jobset-x-k8s-io-v1alpha2-jobset",
                    url,
                    ca,
                    _API,
                    "jobsets",
                ),
                _hook("mpod.kb.io", "/mutate--v1-pod", url, ca, "", "pods"),
            ],
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "jobset-validating-webhook-configuration", **meta},
            "webhooks": [
                _hook(
                    "vjobset.kb.io",
                    "/validate-jobset-x-k8s-io-v1alpha2-jobset",
                    url,
                    ca,
                    _API,
                    "jobsets",
                ),
                _hook("vpod.kb.io", "/validate--v1-pod", url, ca, "", "pods"),
            ],
        },
    ]


def _established(kubectl: Path, kubeconfig: Path, context: str) -> bool:
    out = kubectl_cli.run(
        kubectl,
        kubeconfig,
        context,
        "get",
        f"crd/{CRD_NAME}",
        "-o",
        "jsonpath={.status.conditions}",
    ).strip()
    conditions = (json.loads(out) if out else None) or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def install_crd(kubectl: Path, kubeconfig: Path, context: str, crd: Path) -> None:
    """Server-side apply (the CRD is too large for the last-applied annotation), then wait
    until it is established (``kubectl wait`` fails while the CRD has no conditions yet)."""
    try:
        kubectl_cli.run(
            kubectl,
            kubeconfig,
            context,
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            str(crd),
        )
        deadline = time.monotonic() + 60
        while not _established(kubectl, kubeconfig, context):
            if time.monotonic() > deadline:
                raise LabError(f"the JobSet CRD in {context} was not established within 60s")
            time.sleep(0.2)
    except kubectl_cli.KubectlError as exc:
        raise LabError(f"installing the JobSet CRD in {context}: {exc}") from exc


def install_webhooks(
    kubectl: Path, kubeconfig: Path, context: str, webhook_port: int, ca_cert: bytes
) -> None:
    docs = webhook_configurations(webhook_port, ca_cert)
    try:
        kubectl_cli.run(
            kubectl, kubeconfig, context, "apply", "-f", "-", stdin=yaml.safe_dump_all(docs)
        )
    except kubectl_cli.KubectlError as exc:
        raise LabError(f"registering the JobSet webhooks in {context}: {exc}") from exc
