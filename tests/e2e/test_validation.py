"""Bad input: the real API server rejects invalid manifests with messages that say what must
change, and the operator survives every object that passes the schema."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridaware.k8s import hub
from tests.conftest import Lab, Operator, kubectl, wait_for

pytestmark = pytest.mark.slow

JOB: dict[str, Any] = {
    "apiVersion": "gridaware.dev/v1alpha1",
    "kind": "GridAwareJob",
    "metadata": {"name": "ok"},
    "spec": {
        "template": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "example/x:1"}],
                }
            }
        }
    },
}
CLUSTER: dict[str, Any] = {
    "apiVersion": "gridaware.dev/v1alpha1",
    "kind": "GridCluster",
    "metadata": {"name": "bad-cluster"},
    "spec": {
        "region": "us-west",
        "gridZone": "US-CAL-CISO",
        "kubeconfigSecretRef": {"namespace": "gridaware-system", "name": "x"},
    },
}


def edit(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    node = doc
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[k]
    if value is DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return doc


DELETE = object()
T = "spec.template.template.spec"

INVALID = [
    (edit(JOB, "spec", DELETE), "spec: Required value"),
    (
        edit(JOB, "spec.template", DELETE),
        "set exactly one of spec.template (a batch/v1 JobSpec) and spec.jobSet",
    ),
    (edit(JOB, "spec.template.template", DELETE), "spec.template.template: Required value"),
    (edit(JOB, f"{T}.containers", DELETE), "spec.template.template.spec.containers: Required"),
    (edit(JOB, f"{T}.containers", []), "should have at least 1 items"),
    (edit(JOB, f"{T}.containers", [{"name": "x"}]), "containers[0].image: Required value"),
    (edit(JOB, f"{T}.restartPolicy", "Always"), 'Unsupported value: "Always"'),
    (edit(JOB, "spec.template.suspend", True), "spec.template.suspend must not be set"),
    (
        edit(JOB, "spec.template.selector", {"matchLabels": {"a": "b"}}),
        "selector and manualSelector must not be set",
    ),
    (edit(JOB, "spec.template.parallelism", 0), "greater than or equal to 1"),
    (edit(JOB, "spec.template.backoffLimit", -1), "greater than or equal to 0"),
    (
        edit(JOB, "spec.energy", {"wattsPerReplica": 100, "wattsPerGpu": 300}),
        "set either energy.wattsPerReplica or energy.wattsPerCpu/wattsPerGpu, not both",
    ),
    (edit(JOB, "spec.energy", {"wattsPerReplica": -5}), "should be greater than 0"),
    (
        edit(JOB, "spec.objective", {"carbonWeight": 0, "priceWeight": 0}),
        "objective.carbonWeight and objective.priceWeight must not both be 0",
    ),
    (edit(JOB, "spec.objective", {"carbonWeight": -1}), "greater than or equal to 0"),
    (edit(JOB, "spec.objective", {"carbonWeight": "high"}), "must be of type number"),
    (edit(JOB, "spec.objective", {"carbonCeiling": 0}), "should be greater than 0"),
    (edit(JOB, "spec.objective", {"carbonCeiling": 5000}), "less than or equal to 2000"),
    (edit(JOB, "spec.placement", {"clusters": ["a", "a"]}), "Duplicate value"),
    (edit(JOB, "spec.placement", {"clusters": "us-west"}), "must be of type array"),
    (
        edit(
            JOB,
            "spec.placement",
            {"clusterSelector": {"matchExpressions": [{"key": "k", "operator": "Near"}]}},
        ),
        'Unsupported value: "Near"',
    ),
    (edit(JOB, "metadata.name", "x" * 70), "metadata.name must be at most 63 characters"),
    (edit(CLUSTER, "spec.gridZone", DELETE), "spec.gridZone: Required value"),
    (
        edit(CLUSTER, "spec.gridZone", "germany"),
        "gridZone must be a zone code such as DE-LU, GB or US-CAL-CISO",
    ),
    (edit(CLUSTER, "spec.region", "US_West"), "region must be lower-case letters"),
    (edit(CLUSTER, "spec.pue", 0.5), "greater than or equal to 1"),
    (edit(CLUSTER, "spec.kubeconfigSecretRef", DELETE), "kubeconfigSecretRef: Required value"),
    (
        edit(CLUSTER, "spec.kubeconfigSecretRef", {"namespace": "a"}),
        "kubeconfigSecretRef.name: Required value",
    ),
]


@pytest.mark.parametrize(
    ("doc", "message"), INVALID, ids=[f"{i:02d}-{m[:40]}" for i, (_, m) in enumerate(INVALID)]
)
def test_invalid_manifests_are_rejected_with_clear_messages(
    lab: Lab, operator: Operator, namespace: str, doc: dict[str, Any], message: str
) -> None:
    result = kubectl(
        lab, "-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump(doc), check=False
    )
    assert result.returncode != 0, f"accepted: {doc}"
    assert message in result.stderr, result.stderr


def test_at_least_twenty_invalid_cases() -> None:
    assert len(INVALID) >= 20


quantities = st.one_of(
    st.sampled_from(["1", "500m", "2Gi", "0", "64", "1e3", "100Ti"]), st.integers(0, 10**6).map(str)
)
specs = st.fixed_dictionaries(
    {
        "template": st.fixed_dictionaries(
            {
                "template": st.fixed_dictionaries(
                    {
                        "spec": st.fixed_dictionaries(
                            {
                                "restartPolicy": st.sampled_from(["Never", "OnFailure"]),
                                "containers": st.lists(
                                    st.fixed_dictionaries(
                                        {
                                            "name": st.sampled_from(["a", "b", "c"]),
                                            "image": st.just("x:1"),
                                            "resources": st.fixed_dictionaries(
                                                {},
                                                optional={
                                                    "requests": st.dictionaries(
                                                        st.sampled_from(
                                                            ["cpu", "memory", "nvidia.com/gpu"]
                                                        ),
                                                        quantities,
                                                        max_size=3,
                                                    ),
                                                    "limits": st.dictionaries(
                                                        st.sampled_from(["nvidia.com/gpu", "cpu"]),
                                                        quantities,
                                                        max_size=2,
                                                    ),
                                                },
                                            ),
                                        }
                                    ),
                                    min_size=1,
                                    max_size=2,
                                    unique_by=lambda c: c["name"],
                                ),
                            }
                        )
                    }
                )
            },
            optional={"parallelism": st.integers(1, 50)},
        ),
    },
    optional={
        "placement": st.fixed_dictionaries(
            {},
            optional={
                "clusters": st.lists(
                    st.sampled_from(["us-west", "eu-central", "us-east", "nowhere"]),
                    unique=True,
                    max_size=3,
                ),
                "excludedZones": st.lists(
                    st.sampled_from(["DE-LU", "GB", "US-CAL-CISO"]), unique=True, max_size=2
                ),
                "clusterSelector": st.fixed_dictionaries(
                    {},
                    optional={
                        "matchLabels": st.dictionaries(
                            st.sampled_from(["topology.kubernetes.io/region", "tier"]),
                            st.sampled_from(["us-west", "gold"]),
                            max_size=2,
                        )
                    },
                ),
            },
        ),
        "objective": st.fixed_dictionaries(
            {},
            optional={
                "carbonWeight": st.floats(0.1, 1000),
                "priceWeight": st.floats(0, 1000),
                "carbonCeiling": st.floats(1, 2000),
            },
        ),
        "energy": st.one_of(
            st.fixed_dictionaries({"wattsPerReplica": st.floats(1, 100000)}),
            st.fixed_dictionaries(
                {},
                optional={"wattsPerCpu": st.floats(1, 10000), "wattsPerGpu": st.floats(1, 10000)},
            ),
        ),
    },
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=specs)
def test_operator_survives_any_object_that_passes_the_schema(
    lab: Lab, operator: Operator, namespace: str, spec: dict[str, Any]
) -> None:
    name = f"h-{uuid.uuid4().hex[:8]}"
    for c in spec["template"]["template"]["spec"]["containers"]:
        c.setdefault("resources", {})
    doc = {
        "apiVersion": "gridaware.dev/v1alpha1",
        "kind": "GridAwareJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
    result = kubectl(
        lab, "-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump(doc), check=False
    )
    if result.returncode != 0:
        return  # the schema said no: nothing reaches the operator

    def decided() -> bool:
        body = hub.get_job(lab.client("hub"), namespace, name) or {}
        conds = (body.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Scheduled" for c in conds)

    wait_for(decided, f"a Scheduled condition on {name}", timeout=60)
    assert operator.alive(), "the operator died"
    kubectl(lab, "-n", namespace, "delete", "gaj", name, "--wait=false")
