"""A member kubeconfig Secret that cannot be loaded is refused with a KubeconfigError (the
GridCluster's KubeconfigInvalid condition) that never quotes the credentials it holds."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from gridaware.k8s import clients

SECRET = "s3cr3t-key-material-0123456789abcdef"
PEM = f"-----BEGIN PRIVATE KEY-----\n{SECRET}ABCDEFGH\n-----END PRIVATE KEY-----\n"
CLUSTER = {"server": "https://127.0.0.1:1", "certificate-authority-data": "Q0E="}


def config(user: Any, cluster: dict[str, Any] = CLUSTER, context: str = "x") -> dict[str, Any]:
    return {
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": context,
    }


@pytest.mark.parametrize(
    ("kubeconfig", "words"),
    [
        pytest.param(
            config({"client-certificate-data": "Q0VSVA==", "client-key-data": SECRET + "!"}),
            "Invalid base64-encoded string",
            id="client-key-data-not-base64",
        ),
        pytest.param(
            config(
                {"token": SECRET},
                {"server": "https://x", "certificate-authority-data": SECRET + "!"},
            ),
            "Invalid base64-encoded string",
            id="ca-data-not-base64",
        ),
        pytest.param(config(SECRET), "AttributeError", id="user-not-a-map"),
        pytest.param(
            config({"token": SECRET}, context=SECRET),
            "Expected object with name [redacted] in kube-config/contexts",
            id="current-context-names-the-token",
        ),
    ],
)
def test_a_kubeconfig_that_cannot_be_loaded_is_refused_without_its_secrets(
    kubeconfig: dict[str, Any], words: str
) -> None:
    with pytest.raises(clients.KubeconfigError, match="kubeconfig cannot be loaded") as err:
        clients.from_kubeconfig(kubeconfig)
    assert words in str(err.value)
    assert SECRET not in str(err.value)
    assert "re-run gridaware member join" in str(err.value)


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        pytest.param({"token": SECRET}, [SECRET], id="token"),
        pytest.param({"username": "admin", "password": SECRET}, [SECRET], id="password"),
        pytest.param(
            {"client-key-data": base64.b64encode(PEM.encode()).decode()},
            [base64.b64encode(PEM.encode()).decode(), PEM, f"{SECRET}ABCDEFGH"],
            id="client-key-data-and-its-pem-body",
        ),
        pytest.param({"client-certificate-data": "!!"}, ["!!"], id="undecodable-data-as-is"),
        pytest.param({"exec": {"command": "sh"}}, [], id="no-inline-credential"),
    ],
)
def test_inline_credentials(user: dict[str, Any], expected: list[str]) -> None:
    assert clients.inline_credentials(config(user)) == expected
