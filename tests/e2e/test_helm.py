"""The Helm chart with the real helm binary: lint, rendered manifests (security settings, CRDs
as templates, HA, bind addresses, NetworkPolicy), install, upgrade and uninstall on the lab hub,
an upgrade from the last released chart that must carry new CRD fields, and the chart's RBAC
proven sufficient (a full job lifecycle with the ServiceAccount's token) and not excessive
(other actions are denied)."""

from __future__ import annotations

import base64
import functools
import json
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
import yaml

from gridaware.api import crd
from gridaware.cli import build_parser
from gridaware.k8s import archive, clients
from gridaware.lab import binaries, local
from gridaware.lab.model import NodePool, plan
from tests.conftest import REPO, Lab, Operator, kubectl, wait_for
from tests.e2e.test_operator import apply, gaj, status

pytestmark = pytest.mark.slow
CHART = REPO / "helm" / "gridaware"
NS = "gridaware"
CRD_FILES = CHART / "files" / "crds"  # `gridaware crds` output, rendered by templates/crds.yaml


@functools.cache
def _helm_binary() -> Path:
    """Located once: locating checks every lab binary's checksum."""
    return binaries.locate(build=False) / "helm"


def helm_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The lab's helm binary (no cluster needed for lint and template)."""
    result = subprocess.run(
        [str(_helm_binary()), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if check and result.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed: {result.stderr}")
    return result


def helm(lab: Lab, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    kube = ("--kubeconfig", str(lab.state.kubeconfig), "--kube-context", "hub")
    return helm_cli(*kube, *args, check=check)


def rendered(*sets: str) -> list[dict[str, Any]]:
    out = helm_cli("template", "gw", str(CHART), "--namespace", NS, *sets).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def kinds(docs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    return by_kind


def operator_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = kinds(docs)["Deployment"][0]
    return dict(deployment["spec"]["template"]["spec"]["containers"][0])


def test_lint_strict() -> None:
    for sets in ([], ["--set", "ha.enabled=true", "--set", "replicaCount=3"]):
        result = helm_cli("lint", "--strict", str(CHART), *sets)
        assert "0 chart(s) failed" in result.stdout


def test_rendered_deployment_is_hardened_and_rbac_is_minimal() -> None:
    docs = rendered(
        "--set",
        "ha.enabled=true",
        "--set",
        "grafanaDashboard.enabled=true",
        "--set",
        "metrics.serviceMonitor.enabled=true",
    )
    by_kind = kinds(docs)
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
    args = build_parser().parse_args(container["args"])  # every flag the chart passes exists
    assert (args.workers, args.probe_interval, args.retry_delay) == (16, 15.0, 10.0)
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
        pytest.param("replicaCount=2", "/replicaCount", id="two-replicas-without-ha"),
        pytest.param("health.bindAddress=127.0.0.1", "/health/bindAddress", id="health-loopback"),
        pytest.param("health.bindAddress=::1", "/health/bindAddress", id="health-loopback-v6"),
        pytest.param("metrics.bindAddress=any", "/metrics/bindAddress", id="metrics-not-an-ip"),
        pytest.param("crds.enabled=yes", "/crds/enabled", id="crds-enabled-not-a-bool"),
        pytest.param("operator.workers=0", "/operator/workers", id="no-workers"),
        pytest.param(
            "networkPolicy.egress.feeds.cidrs={10.0.0.1}",
            "/networkPolicy/egress/feeds/cidrs/0",
            id="cidr-without-prefix",
        ),
        pytest.param(
            "networkPolicy.egress.apiServers.ports={0}",
            "/networkPolicy/egress/apiServers/ports/0",
            id="port-zero",
        ),
        pytest.param("networkPolicy.metrics.from[0].pods=x", "invalid propertyName", id="peer"),
    ],
)
def test_values_schema_rejects_bad_values(flag: str, message: str) -> None:
    result = helm_cli("template", "gw", str(CHART), "--set", flag, check=False)
    assert result.returncode != 0 and message in result.stderr


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        pytest.param(["replicaCount=3"], "needs ha.enabled=true", id="replicas-without-ha"),
        pytest.param(
            ["ha.enabled=true", "replicaCount=2", "ha.podDisruptionBudget.minAvailable=2"],
            "must be below replicaCount",
            id="pdb-blocks-every-drain",
        ),
        pytest.param(
            ["metrics.bindAddress=127.0.0.1", "metrics.serviceMonitor.enabled=true"],
            "could not scrape it",
            id="servicemonitor-on-loopback-metrics",
        ),
    ],
)
def test_templates_refuse_what_the_schema_cannot_express(sets: list[str], message: str) -> None:
    """The template checks hold even with --skip-schema-validation."""
    flags = [arg for s in sets for arg in ("--set", s)]
    result = helm_cli("template", "gw", str(CHART), "--skip-schema-validation", *flags, check=False)
    assert result.returncode != 0 and message in result.stderr


def test_rendered_crds_are_the_generated_files_kept_on_uninstall() -> None:
    files = {}
    for path in CRD_FILES.glob("*.yaml"):
        body = yaml.safe_load(path.read_text())
        files[body["metadata"]["name"]] = body
    crds = kinds(rendered())["CustomResourceDefinition"]
    assert {c["metadata"]["name"] for c in crds} == set(files)
    for c in crds:
        source = files[c["metadata"]["name"]]
        assert c["spec"] == source["spec"] and c["apiVersion"] == source["apiVersion"]
        assert c["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        assert c["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert "CustomResourceDefinition" not in kinds(rendered("--set", "crds.enabled=false"))
    for c in kinds(rendered("--set", "crds.keep=false"))["CustomResourceDefinition"]:
        assert "helm.sh/resource-policy" not in c["metadata"]["annotations"]


@pytest.mark.parametrize(
    ("sets", "replicas", "strategy", "pdb"),
    [
        pytest.param([], 1, "Recreate", False, id="single"),
        pytest.param(["ha.enabled=true"], 1, "RollingUpdate", False, id="ha-one-replica-no-pdb"),
        pytest.param(["ha.enabled=true", "replicaCount=3"], 3, "RollingUpdate", True, id="ha"),
        pytest.param(
            ["ha.enabled=true", "replicaCount=2", "ha.podDisruptionBudget.enabled=false"],
            2,
            "RollingUpdate",
            False,
            id="ha-pdb-off",
        ),
    ],
)
def test_ha_replicas_get_random_priorities_and_a_pdb(
    sets: list[str], replicas: int, strategy: str, pdb: bool
) -> None:
    docs = rendered(*[arg for s in sets for arg in ("--set", s)])
    by_kind = kinds(docs)
    deployment = by_kind["Deployment"][0]["spec"]
    assert deployment["replicas"] == replicas
    assert deployment["strategy"]["type"] == strategy
    args = operator_container(docs)["args"]
    ha = "ha.enabled=true" in sets
    assert ("--priority=random" in args) is ha and ("--peering=gridaware" in args) is ha
    assert ("ClusterKopfPeering" in by_kind) is ha
    assert ("PodDisruptionBudget" in by_kind) is pdb
    if pdb:
        budget = by_kind["PodDisruptionBudget"][0]["spec"]
        assert budget["minAvailable"] == 1
        assert budget["selector"]["matchLabels"] == deployment["selector"]["matchLabels"]
        anti = deployment["template"]["spec"]["affinity"]["podAntiAffinity"]
        assert anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"][
            "topologyKey"
        ] == ("kubernetes.io/hostname")


@pytest.mark.parametrize(
    ("sets", "expected", "absent"),
    [
        pytest.param(
            [],
            ["--liveness=http://0.0.0.0:8080/healthz", "--metrics-address=0.0.0.0"],
            [],
            id="defaults",
        ),
        pytest.param(
            ["health.bindAddress=10.1.2.3", "metrics.bindAddress=127.0.0.1", "metrics.port=9300"],
            [
                "--liveness=http://10.1.2.3:8080/healthz",
                "--metrics-address=127.0.0.1",
                "--metrics-port=9300",
            ],
            [],
            id="explicit",
        ),
        pytest.param(
            ["health.bindAddress=::", "metrics.bindAddress=::"],
            ["--liveness=http://[::]:8080/healthz", "--metrics-address=::"],
            [],
            id="ipv6-bracketed",
        ),
        pytest.param(
            ["metrics.enabled=false"],
            ["--liveness=http://0.0.0.0:8080/healthz"],
            ["--metrics-address=0.0.0.0", "--metrics-port=9090"],
            id="metrics-off",
        ),
    ],
)
def test_bind_addresses(sets: list[str], expected: list[str], absent: list[str]) -> None:
    args = operator_container(rendered(*[arg for s in sets for arg in ("--set", s)]))["args"]
    assert set(expected) <= set(args)
    assert not set(absent) & set(args)


def _policy(*sets: str) -> dict[str, Any]:
    return dict(kinds(rendered(*sets))["NetworkPolicy"][0]["spec"])


def _ports(rule: dict[str, Any]) -> set[tuple[str, int]]:
    return {(p["protocol"], p["port"]) for p in rule.get("ports", [])}


def test_network_policy_defaults() -> None:
    policy = _policy()
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "gridaware"
    health, metrics = policy["ingress"]
    assert _ports(health) == {("TCP", 8080)} and "from" not in health
    assert _ports(metrics) == {("TCP", 9090)}
    assert metrics["from"] == [
        {
            "namespaceSelector": {},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]
    dns, api_servers, feeds = policy["egress"]
    assert _ports(dns) == {("UDP", 53), ("TCP", 53)} and "to" not in dns
    assert _ports(api_servers) == {("TCP", 443), ("TCP", 6443)}
    assert _ports(feeds) == {("TCP", 443)}
    everywhere = [{"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}}]
    assert api_servers["to"] == everywhere and feeds["to"] == everywhere


def test_network_policy_knobs() -> None:
    extra = {
        "to": [{"podSelector": {"matchLabels": {"app": "prometheus"}}}],
        "ports": [{"port": 9090}],
    }
    policy = _policy(
        "--set", "metrics.enabled=false",
        "--set", "health.port=8181",
        "--set-json", 'networkPolicy.health.from=[{"ipBlock":{"cidr":"10.0.0.0/8"}}]',
        "--set", "networkPolicy.egress.dns=false",
        "--set-json", 'networkPolicy.egress.apiServers={"cidrs":["192.0.2.10/32"],"ports":[]}',
        "--set-json", 'networkPolicy.egress.feeds.cidrs=["198.51.100.0/24"]',
        "--set-json", f"networkPolicy.egress.extra=[{json.dumps(extra)}]",
    )  # fmt: skip
    (health,) = policy["ingress"]  # no metrics rule without metrics
    assert _ports(health) == {("TCP", 8181)}
    assert health["from"] == [{"ipBlock": {"cidr": "10.0.0.0/8"}}]
    api_servers, feeds, more = policy["egress"]
    assert api_servers == {"to": [{"ipBlock": {"cidr": "192.0.2.10/32"}}]}  # every port
    assert feeds["to"] == [{"ipBlock": {"cidr": "198.51.100.0/24"}}]
    assert more == extra
    assert "NetworkPolicy" not in kinds(rendered("--set", "networkPolicy.enabled=false"))


def test_chart_ships_the_generated_crds() -> None:
    generated = crd.render()
    for name, text in generated.items():
        assert (CRD_FILES / name).read_text() == text, f"{name}: run `gridaware crds`"
    assert {p.name for p in CRD_FILES.glob("*.yaml")} == set(generated)
    # Helm never upgrades crds/: only Kopf's peering CRD (which never changes) may live there
    assert [p.name for p in (CHART / "crds").iterdir()] == ["clusterkopfpeerings.kopf.dev.yaml"]


def _sa_kubeconfig(lab: Lab, tmp: Path) -> Path:
    granted = (
        kubernetes.client.CoreV1Api(lab.client("hub"))
        .create_namespaced_service_account_token(
            "gridaware",
            NS,
            kubernetes.client.AuthenticationV1TokenRequest.model_validate(
                {"spec": {"expirationSeconds": 3600}}
            ),
        )
        .status
    )
    assert granted is not None
    token = granted.token
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
    # the lab registration already created the secrets namespace and applied the CRDs with
    # kubectl, as an admin may have: the chart takes the CRDs over (Helm >= 3.17)
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
        "--take-ownership",
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
        names = kubectl(lab, "-n", NS, "get", "deploy,sa,svc,cm,netpol", "-o", "name").stdout
        for expected in (
            "networkpolicy.networking.k8s.io/gridaware",
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
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text(yaml.safe_dump(operator.feeds))
        tenancy = tmp_path / "tenancy.yaml"  # as the chart's Deployment mounts it
        tenancy.write_text(
            kubectl(
                lab,
                "-n",
                NS,
                "get",
                "cm",
                "gridaware-feeds",
                "-o",
                r"jsonpath={.data.tenancy\.yaml}",
            ).stdout
        )
        sa_op = subprocess.Popen(
            [
                operator.argv()[0],
                "run",
                "--kubeconfig",
                str(sa_config),
                "--feeds-config",
                str(feeds),
                "--tenancy-config",
                str(tenancy),
                "--probe-interval",
                "2",
                "--retry-delay",
                "2",
                "--metrics-port",
                str(port),
                "--metrics-address",
                "127.0.0.1",
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
    left = kubectl(
        lab,
        "-n",
        NS,
        "get",
        "deploy,sa,svc,cm,netpol",
        "-o",
        "name",
        "-l",
        f"{archive.LABEL}!=accounts",  # the account archive is data: kept, like the CRDs
        check=False,
    )
    assert "gridaware" not in left.stdout.replace("kube-root-ca.crt", "")
    assert kubectl(lab, "get", "clusterrole", "gridaware", check=False).returncode != 0
    for crd_name in crd.render():  # kept: deleting them would delete every job
        assert (
            kubectl(lab, "get", "crd", crd_name.removesuffix(".yaml"), check=False).returncode == 0
        )


# --- upgrade from the last released chart --------------------------------------------------

RELEASED = "ad8704d"  # the last released chart: CRDs in crds/, installed once, never upgraded
NEW_FIELD = "flexibility"  # a GridAwareJob spec field the released CRD does not know


def _released_chart(tmp: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", RELEASED, "helm/gridaware"],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        pytest.skip(f"no git history with {RELEASED} to take the released chart from")
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive.stdout, check=True)
    return tmp / "helm" / "gridaware"


def _served_crd(lab: Lab, name: str) -> dict[str, Any]:
    return dict(json.loads(kubectl(lab, "get", "crd", name, "-o", "json").stdout))


def _job_spec_schema(lab: Lab) -> dict[str, Any]:
    version = _served_crd(lab, "gridawarejobs.gridaware.dev")["spec"]["versions"][0]
    return dict(version["schema"]["openAPIV3Schema"]["properties"]["spec"])


def _job_with_new_field(name: str) -> dict[str, Any]:
    spec: dict[str, Any] = {NEW_FIELD: {"pausable": True, "maxPauses": 3}}
    return gaj(name, **spec)


def _read_spec(lab: Lab, namespace: str, name: str) -> dict[str, Any]:
    body = kubectl(lab, "-n", namespace, "get", "gaj", name, "-o", "json").stdout
    return dict(json.loads(body)["spec"])


@pytest.fixture
def own_lab(tmp_path: Path) -> Iterator[Lab]:
    """A lab of its own: the released chart installs CRDs from scratch, which the session lab
    (CRDs registered by `gridaware lab register`) cannot show."""
    state_dir = tmp_path / "lab"
    state = local.up(plan(["us-west"], nodes=NodePool(count=1)), state_dir, log=lambda _m: None)
    try:
        yield Lab(state)
    finally:
        local.down(state_dir)


def test_upgrade_from_the_released_chart_carries_crd_changes(own_lab: Lab, tmp_path: Path) -> None:
    lab, ns = own_lab, "team-a"
    released = _released_chart(tmp_path)
    install = ("--namespace", NS, "--create-namespace", "--wait", "--timeout", "180s")
    helm(lab, "install", "gridaware", str(released), *install)
    assert NEW_FIELD not in _job_spec_schema(lab)["properties"]
    kubectl(lab, "create", "namespace", ns)
    apply(lab, ns, gaj("before-upgrade"))
    refused = kubectl(
        lab, "-n", ns, "apply", "-f", "-", stdin=yaml.safe_dump(_job_with_new_field("early")),
        check=False,
    )  # fmt: skip
    assert f'unknown field "spec.{NEW_FIELD}"' in refused.stderr, "the released CRD lacks it"

    # CRDs that crds/ created carry no Helm ownership: the upgrade takes it (Helm >= 3.17)
    helm(lab, "upgrade", "gridaware", str(CHART), *install, "--take-ownership")
    for path in CRD_FILES.glob("*.yaml"):
        generated = yaml.safe_load(path.read_text())
        name = generated["metadata"]["name"]
        wait_for(
            lambda n=name: (
                "True"
                in kubectl(
                    lab,
                    "get",
                    "crd",
                    n,
                    "-o",
                    'jsonpath={.status.conditions[?(@.type=="Established")].status}',
                    check=False,
                ).stdout
            ),
            f"{name} established",
        )
        served = _served_crd(lab, name)
        assert served["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert served["metadata"]["annotations"]["meta.helm.sh/release-name"] == "gridaware"
        for want, got in zip(
            generated["spec"]["versions"], served["spec"]["versions"], strict=True
        ):
            assert got["schema"] == want["schema"], f"{name} {want['name']}: schema not upgraded"
            assert [c["name"] for c in got["additionalPrinterColumns"]] == [
                c["name"] for c in want["additionalPrinterColumns"]
            ]
    apply(lab, ns, _job_with_new_field("after-upgrade"))
    assert _read_spec(lab, ns, "after-upgrade")[NEW_FIELD] == {"pausable": True, "maxPauses": 3}

    helm(lab, "uninstall", "gridaware", "--namespace", NS, "--wait")
    for path in CRD_FILES.glob("*.yaml"):
        assert kubectl(lab, "get", "crd", path.stem, check=False).returncode == 0, "CRD kept"
    jobs = kubectl(lab, "-n", ns, "get", "gaj", "-o", "name").stdout.split()
    assert sorted(jobs) == [
        "gridawarejob.gridaware.dev/after-upgrade",
        "gridawarejob.gridaware.dev/before-upgrade",
    ], "jobs survive an uninstall"
    assert _read_spec(lab, ns, "after-upgrade")[NEW_FIELD]["maxPauses"] == 3

    # the kept CRDs still name this release, so installing it again adopts them as they are;
    # with HA: the peering object (its CRD from crds/ is there first), a PDB, random priorities
    ha = ("--set", "ha.enabled=true", "--set", "replicaCount=2")
    helm(lab, "install", "gridaware", str(CHART), *install, *ha)
    assert len(kubectl(lab, "-n", ns, "get", "gaj", "-o", "name").stdout.split()) == 2
    assert kubectl(lab, "get", "clusterkopfpeering", "gridaware", "-o", "name").stdout
    pdb = kubectl(lab, "-n", NS, "get", "pdb", "gridaware", "-o", "jsonpath={.spec.minAvailable}")
    assert pdb.stdout == "1"
    args = kubectl(
        lab, "-n", NS, "get", "deploy", "gridaware",
        "-o", "jsonpath={.spec.template.spec.containers[0].args}",
    ).stdout  # fmt: skip
    assert "--priority=random" in args and "--peering=gridaware" in args
    helm(lab, "uninstall", "gridaware", "--namespace", NS, "--wait")
