"""Nothing secret in the operator's log, in Events or in statuses, on the lab.

One lifecycle that handles every kind of credential gridaware touches, with the operator at
debug level (what an admin turns on to troubleshoot): members joined and one rotated with
``gridaware member join`` (ServiceAccount tokens), a job placed and run through the rotation,
feed providers whose keys are refused or echoed back in error bodies (a header key, a query
token, Basic credentials and the bearer token a login returns, one provider unreachable), and
member kubeconfig Secrets the operator must refuse (an exec plugin, client-key-data that is not
base64, another cluster's admin certificate, a token the member does not know). Then the
operator's whole log, every Event of every lab cluster, every GridCluster and GridAwareJob
(statuses and conditions) and the CLI's output are searched for every credential: as is,
percent-encoded and in base64 (alone or inside longer base64 text).

The lifecycle is checked to have happened (the provider errors and refused kubeconfigs are in
the statuses, masked; the rotation revoked the old token; the job ran), so the search is over
text that had every chance to leak.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import yaml

from gridaware.lab import local
from gridaware.lab.model import ClusterState
from tests.conftest import STATIC_SIGNALS, Lab, Operator, cluster_ready, kubectl, wait_for
from tests.e2e.test_operator import apply, condition, gaj, status
from tests.feedserver import Answer, FeedServer

pytestmark = pytest.mark.slow

SECRETS_NAMESPACE = "gridaware-system"
ROTATED = "eu-central"  # the member the job runs in (greenest): rotated while it runs
REJOINED = "us-east"  # joined again; its zone's feeds all fail
BROKEN = {  # GridCluster -> the Reachable reasons its kubeconfig Secret may earn
    "leak-exec": {"KubeconfigInvalid"},
    "leak-bad-key": {"KubeconfigInvalid"},
    "leak-foreign-cert": {"Unauthorized"},  # the member answers 401
    "leak-unknown-token": {"Unauthorized"},
}


@dataclass
class Credentials:
    """Every credential of the run, by what it is."""

    values: dict[str, str] = field(default_factory=dict)

    def add(self, what: str, value: str) -> str:
        assert len(value) >= 16, f"{what}: too short to search for"
        self.values[what] = value
        return value

    def needles(self) -> dict[str, str]:
        """Text to search for -> what it gives away."""
        found: dict[str, str] = {}
        for what, value in self.values.items():
            for how, text in encodings(value).items():
                found[text] = f"{what} ({how})"
        return found


def encodings(value: str) -> dict[str, str]:
    """``value`` as is, percent-encoded and in base64 (standard and URL-safe; at each byte
    offset inside longer base64 text, the characters that only ``value`` determines)."""
    raw = value.encode()
    out = {"as is": value, "percent-encoded": quote(value, safe=""), "form": quote_plus(value)}
    for offset in range(3):
        for name, enc in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            text = enc(bytes(offset) + raw).decode()
            out[f"{name} at offset {offset}"] = text[4:-4] if offset else text.rstrip("=")
    return out


def leaks(sources: dict[str, str], creds: Credentials) -> dict[str, list[str]]:
    """Source -> what of ``creds`` it contains."""
    needles = creds.needles()
    return {
        name: sorted({what for needle, what in needles.items() if needle in text})
        for name, text in sources.items()
        if any(needle in text for needle in needles)
    }


# ---- the feeds: providers that refuse the key and echo it back -----------------------------


def feed_routes(server: FeedServer, creds: Credentials) -> None:
    key, token = creds.values["electricitymaps key"], creds.values["entsoe token"]
    bearer, password = creds.values["watttime bearer"], creds.values["watttime password"]
    echo = f'{{"error": "key {key} is not valid for zone US-MIDA-PJM"}}'
    server.route("/em/carbon-intensity/latest", Answer(400, echo))
    server.route("/em/carbon-intensity/forecast", Answer(401, echo))
    server.route("/em/carbon-intensity/history", Answer(401, echo))
    basic = base64.b64encode(f"gridaware:{password}".encode()).decode()
    server.route("/wt/login", Answer(200, {"token": bearer, "echo": f"Basic {basic}"}))
    scope = {"message": f"Invalid scope: token {bearer} has no access to this region"}
    for path in ("/wt/v3/forecast", "/wt/v3/historical"):
        server.route(path, Answer(403, scope))
    server.route("/entsoe/api", Answer(400, f"<html>bad request: securityToken={token}</html>"))


PJM_EIC = "10Y1001A1001A82H"  # any EIC code: ENTSO-E has none for PJM, the server answers


def feeds_config(server: FeedServer, files: Path) -> dict[str, Any]:
    """Every zone answered by the static table except us-east's, whose providers all fail,
    and eu-central's, which falls back to it after failing ones."""
    return {
        "providers": {
            "emaps": {
                "type": "electricitymaps",
                "url": f"{server.url}/em",
                "token": {"env": "GRIDAWARE_E2E_EMAPS_KEY"},
            },
            "wt": {
                "type": "watttime",
                "url": f"{server.url}/wt",
                "username": {"env": "GRIDAWARE_E2E_WATTTIME_USER"},
                "password": {"file": str(files / "watttime-password")},
            },
            "entsoe": {
                "type": "entsoe",
                "url": f"{server.url}/entsoe/api",
                "token": {"file": str(files / "entsoe-token")},
                "zone_map": {"US-MIDA-PJM": PJM_EIC},
            },
            "entsoe-down": {
                "type": "entsoe",
                "url": f"http://127.0.0.1:{local.allocate_ports(1, None)[0]}/api",
                "token": {"file": str(files / "entsoe-token")},
                "zone_map": {"US-MIDA-PJM": PJM_EIC},
            },
            "static": {"type": "static", "options": {"values": STATIC_SIGNALS}},
        },
        "default": {"carbon": ["static"], "price": ["static"]},
        "zones": {
            "US-MIDA-PJM": {"carbon": ["emaps", "wt"], "price": ["entsoe", "entsoe-down"]},
            "DE-LU": {"carbon": ["wt", "static"], "price": ["entsoe", "static"]},
        },
    }


def write_credentials(creds: Credentials, files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials where the feeds configuration says (files and environment variables)."""
    (files / "entsoe-token").write_text(creds.values["entsoe token"] + "\n")
    (files / "watttime-password").write_text(creds.values["watttime password"])
    monkeypatch.setenv("GRIDAWARE_E2E_EMAPS_KEY", creds.values["electricitymaps key"])
    monkeypatch.setenv("GRIDAWARE_E2E_WATTTIME_USER", "gridaware")


# ---- members: join, rotate, and kubeconfig Secrets to refuse ------------------------------


def member_join(lab: Lab, member: str, *extra: str) -> str:
    """``gridaware member join`` as an admin runs it; its output (stdout and stderr)."""
    cluster = lab.state.cluster(member)
    kube = str(lab.state.kubeconfig)
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "gridaware"),
            "member",
            "join",
            *("--member-kubeconfig", kube, "--member-context", member),
            *("--hub-kubeconfig", kube, "--hub-context", "hub"),
            *("--name", member, "--region", cluster.plan.region or member),
            *("--server", cluster.api_url, "--label", "gridaware.dev/lab=true"),
            *extra,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def hub_token(lab: Lab, member: str) -> str:
    """The member token the hub stores (the operator's credential for ``member``)."""
    out = kubectl(
        lab, "-n", SECRETS_NAMESPACE, "get", "secret", f"{member}-kubeconfig", "-o", "json"
    ).stdout
    config = yaml.safe_load(base64.b64decode(json.loads(out)["data"]["kubeconfig"]))
    return str(config["users"][0]["user"]["token"])


def kubeconfig(server: str, user: dict[str, Any], ca: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "m", "cluster": {"server": server, "certificate-authority-data": ca}}
        ],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "m", "context": {"cluster": "m", "user": "u"}}],
        "current-context": "m",
    }


def admin_user(cluster: ClusterState) -> dict[str, Any]:
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    return dict(config["users"][0]["user"])


def broken_kubeconfigs(lab: Lab, creds: Credentials) -> dict[str, dict[str, Any]]:
    """GridCluster name -> a kubeconfig the operator must refuse, all for member us-east."""
    target = lab.state.cluster(REJOINED)
    config = yaml.safe_load(target.kubeconfig.read_text())
    server = target.api_url
    ca = str(config["clusters"][0]["cluster"]["certificate-authority-data"])
    foreign = admin_user(lab.state.cluster("us-west"))  # another cluster's system:masters
    creds.add("us-west admin client key", str(foreign["client-key-data"]))
    creds.add("us-west admin client certificate", str(foreign["client-certificate-data"]))
    exec_secret = creds.add("exec plugin secret", secrets.token_urlsafe(24))
    # 4n+1 base64 characters: never decodes (a random urlsafe value sometimes would)
    bad_key = creds.add("undecodable client key", secrets.token_hex(24) + "Z")
    unknown = creds.add("unknown token", secrets.token_urlsafe(32))
    plugin = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": "sh",
        "args": ["-c", f"echo {exec_secret}"],
        "env": [{"name": "API_KEY", "value": exec_secret}],
    }
    return {
        "leak-exec": kubeconfig(server, {"exec": plugin}, ca),
        "leak-bad-key": kubeconfig(
            server,
            {
                "client-certificate-data": foreign["client-certificate-data"],
                "client-key-data": bad_key,
            },
            ca,
        ),
        "leak-foreign-cert": kubeconfig(server, foreign, ca),
        "leak-unknown-token": kubeconfig(server, {"token": unknown}, ca),
    }


def register_broken(lab: Lab, configs: dict[str, dict[str, Any]]) -> None:
    docs: list[dict[str, Any]] = []
    for name, config in configs.items():
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": SECRETS_NAMESPACE},
                "stringData": {"kubeconfig": yaml.safe_dump(config)},
            }
        )
        docs.append(
            {
                "apiVersion": "gridaware.dev/v1alpha1",
                "kind": "GridCluster",
                "metadata": {"name": name},
                "spec": {
                    "region": REJOINED,
                    "gridZone": "US-MIDA-PJM",
                    "kubeconfigSecretRef": {
                        "namespace": SECRETS_NAMESPACE,
                        "name": name,
                        "key": "kubeconfig",
                    },
                },
            }
        )
    kubectl(lab, "apply", "-f", "-", stdin=yaml.safe_dump_all(docs))


def unregister_broken(lab: Lab) -> None:
    names = list(BROKEN)
    kubectl(lab, "delete", "gridcluster", "--ignore-not-found", "--wait=false", *names, check=False)
    kubectl(
        lab, "-n", SECRETS_NAMESPACE, "delete", "secret", "--ignore-not-found", *names, check=False
    )


def gridclusters_left(lab: Lab) -> bool:
    out = kubectl(lab, "get", "gridclusters", "-o", "name", check=False).stdout
    return any(f"gridcluster.gridaware.dev/{name}" in out.split() for name in BROKEN)


def cluster_condition(lab: Lab, name: str, type_: str) -> dict[str, Any]:
    out = kubectl(lab, "get", "gridcluster", name, "-o", "json", check=False).stdout
    st = json.loads(out or "{}").get("status") or {}
    return condition(st, type_)


# ---- what the operator said, and where -----------------------------------------------------


def everything_said(lab: Lab, op: Operator, cli: str) -> dict[str, str]:
    """Source -> its text: the operator's log, Events of every cluster, hub objects, CLI."""
    said = {"operator log": op.log.read_text(errors="replace"), "member join output": cli}
    for cluster in lab.names:
        said[f"Events in {cluster}"] = kubectl(
            lab, "get", "events", "-A", "-o", "json", context=cluster
        ).stdout
    said["GridClusters"] = kubectl(lab, "get", "gridclusters", "-o", "json").stdout
    said["GridAwareJobs"] = kubectl(lab, "get", "gridawarejobs", "-A", "-o", "json").stdout
    return said


@pytest.fixture
def secret_operator(
    lab: Lab, operator: Operator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Operator, Credentials, FeedServer]]:
    """The operator at debug level on failing, echoing feeds (instead of the session one)."""
    creds = Credentials()
    creds.add("electricitymaps key", secrets.token_urlsafe(24))
    creds.add("entsoe token", str(uuid.uuid4()))
    creds.add("watttime password", secrets.token_urlsafe(18))
    creds.add("watttime bearer", "wt." + secrets.token_urlsafe(32))
    server = FeedServer()
    feed_routes(server, creds)
    config = feeds_config(server, tmp_path)
    write_credentials(creds, tmp_path, monkeypatch)
    args = ["--verbose", "--probe-interval", "2", "--retry-delay", "2"]
    op = Operator(lab, tmp_path, feeds=config, args=args, name="secrets")
    operator.stop()
    try:
        op.start()
        yield op, creds, server
    finally:
        unregister_broken(lab)  # while this operator runs, which finalizes them
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and gridclusters_left(lab):
            time.sleep(0.5)
        op.stop()
        server.close()
        operator.start()
        for member in lab.members:
            wait_for(lambda m=member: cluster_ready(lab, m), f"{member} Ready again", timeout=90)


def test_no_credential_in_logs_events_or_statuses(
    lab: Lab, secret_operator: tuple[Operator, Credentials, FeedServer], namespace: str
) -> None:
    op, creds, server = secret_operator
    for member in lab.members:
        creds.add(f"{member} token before rotation", hub_token(lab, member))
    cli = member_join(lab, REJOINED)
    wait_for(lambda: cluster_ready(lab, ROTATED), f"{ROTATED} Ready", timeout=90)
    apply(lab, namespace, gaj("carry", run="25s"))
    wait_for(lambda: status(lab, namespace, "carry").get("phase") == "Running", "job running")
    assert status(lab, namespace, "carry")["cluster"] == ROTATED
    cli += member_join(lab, ROTATED, "--rotate")
    creds.add(f"{ROTATED} token after rotation", hub_token(lab, ROTATED))
    register_broken(lab, broken_kubeconfigs(lab, creds))
    for name in BROKEN:
        wait_for(
            lambda n=name: cluster_condition(lab, n, "Reachable").get("status") == "False",
            f"GridCluster {name} Reachable=False",
        )
    refused = {n: cluster_condition(lab, n, "Reachable") for n in BROKEN}
    seen = [f"{n}: {c['reason']}: {c['message']}" for n, c in refused.items()]
    assert all(c["reason"] in BROKEN[n] for n, c in refused.items()), "\n".join(seen)
    assert not [w for w in seen if "HTTP response headers" in w], "an API error dump quoted"
    wait_for(
        lambda: status(lab, namespace, "carry").get("phase") == "Succeeded",
        "the job to finish after the rotation",
        timeout=90,
    )
    wait_for(
        lambda: "[redacted]" in cluster_condition(lab, REJOINED, "Ready").get("message", ""),
        f"{REJOINED}'s provider errors, masked, in its Ready condition",
    )
    unavailable = cluster_condition(lab, REJOINED, "Ready")
    wait_for(
        lambda: cluster_condition(lab, ROTATED, "Ready").get("status") == "True",
        f"{ROTATED} Ready with its new token",
    )
    # the lifecycle happened: the providers were asked and their echoes reached the status
    for path in ("/em/carbon-intensity/latest", "/wt/login", "/wt/v3/forecast", "/entsoe/api"):
        assert server.hits(path), f"no request to {path}"
    assert unavailable["reason"] == "SignalsUnavailable", unavailable
    for member in lab.members:
        creds.add(f"{member} token at the end", hub_token(lab, member))
    found = leaks(everything_said(lab, op, cli), creds)
    assert found == {}, f"credentials given away: {found}"
