"""core.namespaces: the hub -> member namespace mapping never lands in kube-*, default or the
operator's own namespace, whatever the admin maps."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridaware.core.namespaces import (
    NamespaceMapping,
    NamespaceRefusedError,
    member_namespace,
    refused_reason,
    validate,
)

CONFIG = NamespaceMapping(
    operator_namespace="gridaware",
    mapping={"ingress-nginx": "tenant-ingress", "ml": "kube-ml", "ops": "gridaware"},
)


@pytest.mark.parametrize(
    ("hub", "config", "member"),
    [
        pytest.param("team-a", NamespaceMapping(), "team-a", id="default-is-one-to-one"),
        pytest.param("ingress-nginx", CONFIG, "tenant-ingress", id="admin-mapping"),
        pytest.param(
            "default",
            NamespaceMapping(mapping={"default": "shared"}),
            "shared",
            id="default-mapped-away",
        ),
        pytest.param(
            "kube-system",
            NamespaceMapping(mapping={"kube-system": "sys-jobs"}),
            "sys-jobs",
            id="system-namespace-mapped-away",
        ),
    ],
)
def test_mapped(hub: str, config: NamespaceMapping, member: str) -> None:
    assert member_namespace(hub, config) == member


@pytest.mark.parametrize(
    ("hub", "config", "words"),
    [
        pytest.param("kube-system", NamespaceMapping(), "kube-*", id="kube-system"),
        pytest.param("kube-public", NamespaceMapping(), "system namespace", id="kube-public"),
        pytest.param("default", NamespaceMapping(), "shared", id="default"),
        pytest.param("gridaware-system", NamespaceMapping(), "gridaware's own", id="operator-ns"),
        pytest.param("ml", CONFIG, "(mapped from ml)", id="mapped-to-kube"),
        pytest.param("ops", CONFIG, "gridaware's own", id="mapped-to-operator-ns"),
        pytest.param(
            "team-b",
            NamespaceMapping(identity_default=False),
            "not mapped",
            id="unmapped-without-identity",
        ),
    ],
)
def test_refused(hub: str, config: NamespaceMapping, words: str) -> None:
    with pytest.raises(NamespaceRefusedError, match="ask an admin") as err:
        member_namespace(hub, config)
    assert words in str(err.value)


def test_validate_names_bad_targets() -> None:
    assert validate(CONFIG) == [
        "mapping ml -> kube-ml: 'kube-ml' is a Kubernetes system namespace (kube-*)",
        "mapping ops -> gridaware: 'gridaware' is gridaware's own namespace",
    ]


names = st.sampled_from(["team-a", "ml", "kube-system", "default", "gw", "ingress-nginx", "x-1"])


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    names,
    st.dictionaries(names, names | st.sampled_from(["default", "kube-x", "gw"])),
    st.booleans(),
)
def test_never_a_refused_namespace(hub: str, mapping: dict[str, str], identity: bool) -> None:
    config = NamespaceMapping(operator_namespace="gw", mapping=mapping, identity_default=identity)
    try:
        target = member_namespace(hub, config)
    except NamespaceRefusedError:
        return
    assert refused_reason(target, "gw") is None
    assert target not in ("default", "gw") and not target.startswith("kube-")
