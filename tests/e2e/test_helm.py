"""The Helm chart with the real helm binary: lint, rendered security settings, install,
upgrade and uninstall on the lab hub, and the chart's RBAC proven sufficient (a full job
lifecycle with the ServiceAccount's token) and not excessive (other actions are denied)."""

from __future__ import annotations

import base64
import socket
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
import yaml

from gridaware.api import crd
from gridaware.k8s import clients
from tests.conftest import REPO, Lab, Operator, kubectl, wait_for
from tests.e2e.test_operator import apply, gaj, status

pytestmark = pytest.mark.slow
CHART = REPO / "helm" / "gridaware"
NS = "gridaware"
CRD_FILES = CHART / "files" / "crds"  # `gridaware crds` output, rendered by templates/crds.yaml


def helm(lab: Lab, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [
            str(Path(str(lab.state.bin_dir)) / "helm"),
            "--kubeconfig",
            str(lab.state.kubeconfig),
            "--kube-context",
            "hub",
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if check and result.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed: {result.stderr}")
    return result


def rendered(lab: Lab, *sets: str) -> list[dict[str, Any]]:
    out = helm(lab, "template", "gw", str(CHART), "--namespace", NS, *sets).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_lint_strict(lab: Lab) -> None:
    result = helm(lab, "lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in result.stdout


def test_rendered_deployment_is_hardened_and_rbac_is_minimal(lab: Lab) -> None:
    docs = rendered(
        lab,
        "--set",
        "ha.enabled=true",
        "--set",
        "grafanaDashboard.enabled=true",
        "--set",
        "metrics.serviceMonitor.enabled=true",
    )
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    pod = by_kind["Deployment"][0]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert "memory" in container["resources"]["limits"]
    assert "--peering=gridaware" in container["args"]
    cluster_rules = by_kind["ClusterRole"][0]["rules"]
    for rule in cluster_rules:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]
        assert "secrets" not in rule["resources"], "Secrets only in the secrets namespace"
        assert "delete" not in rule["verbs"]
    role = by_kind["Role"][0]
    assert role["metadata"]["namespace"] == "gridaware-system"
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    assert {"ServiceMonitor", "ConfigMap", "Service", "ClusterKopfPeering"} <= set(by_kind)


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("metrics.port=80", "/metrics/port"),
        ("replicaCount=-1", "/replicaCount"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("feeds.providers.x.type=magic", "/feeds/providers/x/type"),
        ("unknownValue=1", "unknownValue"),
    ],
)
def test_values_schema_rejects_bad_values(lab: Lab, flag: str, message: str) -> None:
    result = helm(lab, "template", "gw", str(CHART), "--set", flag, check=False)
    assert result.returncode != 0 and message in result.stderr


def test_chart_ships_the_generated_crds() -> None:
    generated = crd.render()
    for name, text in generated.items():
        assert (CRD_FILES / name).read_text() == text, f"{name}: run `gridaware crds`"
    assert {p.name for p in CRD_FILES.glob("*.yaml")} == set(generated)
    # Helm never upgrades crds/: only Kopf's peering CRD (which never changes) may live there
    assert [p.name for p in (CHART / "crds").iterdir()] == ["clusterkopfpeerings.kopf.dev.yaml"]


def _sa_kubeconfig(lab: Lab, tmp: Path) -> Path:
    token = (
        kubernetes.client.CoreV1Api(lab.client("hub"))
        .create_namespaced_service_account_token(
            "gridaware",
            NS,
            kubernetes.client.AuthenticationV1TokenRequest.model_validate(
                {"spec": {"expirationSeconds": 3600}}
            ),
        )
        .status.token
    )  # type: ignore[union-attr]
    hub = lab.state.cluster("hub")
    ca = base64.b64encode(
        (lab.state.state_dir / "clusters" / "hub" / "pki" / "ca.crt").read_bytes()
    ).decode()
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "hub",
        "clusters": [
            {
                "name": "hub",
                "cluster": {
                    "server": hub.api_url,
                    "certificate-authority-data": ca,
                },
            }
        ],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "hub", "context": {"cluster": "hub", "user": "sa"}}],
    }
    path = tmp / "sa-kubeconfig"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_install_rbac_metrics_upgrade_uninstall(
    lab: Lab, operator: Operator, namespace: str, tmp_path: Path
) -> None:
    # the lab registration already created the secrets namespace, as an admin may have
    helm(
        lab,
        "install",
        "gridaware",
        str(CHART),
        "--namespace",
        NS,
        "--create-namespace",
        "--set",
        "createSecretsNamespace=false",
        "--wait",
        "--timeout",
        "120s",
    )
    try:
        for crd_name in ("gridawarejobs.gridaware.dev", "gridclusters.gridaware.dev"):
            cond = kubectl(
                lab,
                "get",
                "crd",
                crd_name,
                "-o",
                'jsonpath={.status.conditions[?(@.type=="Established")].status}',
            )
            assert cond.stdout == "True"
        names = kubectl(lab, "-n", NS, "get", "deploy,sa,svc,cm", "-o", "name").stdout
        for expected in (
            "deployment.apps/gridaware",
            "serviceaccount/gridaware",
            "service/gridaware-metrics",
            "configmap/gridaware-feeds",
        ):
            assert expected in names
        assert "gridaware" in kubectl(lab, "get", "clusterrole", "gridaware", "-o", "name").stdout

        # the operator with nothing but the chart's ServiceAccount token
        sa_config = _sa_kubeconfig(lab, tmp_path)
        sa_client = clients.from_kubeconfig(sa_config)
        core = kubernetes.client.CoreV1Api(sa_client)
        with pytest.raises(kubernetes.client.exceptions.ApiException) as denied:
            core.list_namespaced_secret("kube-system")
        assert denied.value.status == 403
        with pytest.raises(kubernetes.client.exceptions.ApiException) as denied:
            core.delete_namespace(namespace)
        assert denied.value.status == 403
        with pytest.raises(kubernetes.client.exceptions.ApiException) as denied:
            kubernetes.client.BatchV1Api(sa_client).list_job_for_all_namespaces()
        assert denied.value.status == 403

        port = _free_port()
        operator.stop()
        sa_op = subprocess.Popen(
            [
                str(Path(operator.proc.args[0])),
                "run",
                "--kubeconfig",
                str(sa_config),  # type: ignore[union-attr,index]
                "--feeds-config",
                str(operator.feeds),
                "--probe-interval",
                "2",
                "--retry-delay",
                "2",
                "--metrics-port",
                str(port),
            ],
            stdout=(tmp_path / "sa-operator.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        try:
            apply(lab, namespace, gaj("rbac-proof", run="2s"))
            wait_for(
                lambda: status(lab, namespace, "rbac-proof").get("phase") == "Succeeded",
                "a full lifecycle under the chart's RBAC",
                timeout=90,
            )
            kubectl(lab, "-n", namespace, "delete", "gaj", "rbac-proof", "--timeout=60s")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                text = resp.read().decode()
            for family in (
                "gridaware_jobs",
                "gridaware_placements_total",
                "gridaware_deferrals_total",
                "gridaware_migrations_total",
                "gridaware_migration_takeover_seconds",
                "gridaware_carbon_grams_total",
                "gridaware_carbon_saved_grams_total",
                "gridaware_signal_value",
                "gridaware_signal_age_seconds",
                "gridaware_signal_fetch_errors_total",
                "gridaware_reconcile_errors_total",
                "gridaware_reconcile_seconds",
                "gridaware_cluster_reachable",
            ):
                assert f"# TYPE {family}" in text, family
            assert 'gridaware_placements_total{cluster="eu-central",reason="Placed"}' in text
            assert 'gridaware_signal_value{signal="carbon",source="static"' in text.replace(
                'zone="DE-LU",', ""
            )
            log = (tmp_path / "sa-operator.log").read_text()
            assert "403" not in log and "Forbidden" not in log, log[-2000:]
        finally:
            sa_op.terminate()
            sa_op.wait(15)
            operator.start()

        helm(
            lab,
            "upgrade",
            "gridaware",
            str(CHART),
            "--namespace",
            NS,
            "--reuse-values",
            "--set",
            "operator.probeInterval=7",
            "--wait",
            "--timeout",
            "120s",
        )
        args = kubectl(
            lab,
            "-n",
            NS,
            "get",
            "deploy",
            "gridaware",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].args}",
        ).stdout
        assert "--probe-interval=7" in args
    finally:
        helm(lab, "uninstall", "gridaware", "--namespace", NS, "--wait", check=False)
    left = kubectl(lab, "-n", NS, "get", "deploy,sa,svc,cm", "-o", "name", check=False).stdout
    assert "gridaware" not in left.replace("kube-root-ca.crt", "")
    assert kubectl(lab, "get", "clusterrole", "gridaware", check=False).returncode != 0
