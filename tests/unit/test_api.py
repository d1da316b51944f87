"""API models and generated CRDs: no drift, descriptions everywhere, quantities, lifecycle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gridaware.api import crd
from gridaware.api.v1alpha1 import (
    GridAwareJobStatus,
    MemberJobRef,
    MemberJobState,
    job_label_value,
)
from gridaware.core import lifecycle, quantity
from gridaware.k8s.members import job_manifest

REPO = Path(__file__).resolve().parents[2]


def test_crd_yaml_matches_the_models() -> None:
    rendered = crd.render()
    on_disk = {p.name: p.read_text() for p in (REPO / "crds").glob("*.yaml")}
    assert on_disk == rendered, "crds/ drifted from gridaware.api: run `gridaware crds`"


def _walk(schema: dict[str, Any], path: str) -> list[str]:
    missing = []
    for name, prop in (schema.get("properties") or {}).items():
        where = f"{path}.{name}"
        if name != "metadata" and not prop.get("description"):
            missing.append(where)
        missing += _walk(prop, where)
    items = schema.get("items")
    if isinstance(items, dict):
        missing += _walk(items, path + "[]")
    return missing


@pytest.mark.parametrize("make", [crd.job_crd, crd.cluster_crd], ids=["job", "cluster"])
def test_every_field_has_a_description(make: Any) -> None:
    schema = make()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _walk(schema, "") == []


def test_crds_are_structural() -> None:
    text = yaml.safe_dump([crd.job_crd(), crd.cluster_crd()])
    for forbidden in ("$ref", "anyOf", "title:", "$defs"):
        assert forbidden not in text


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", 0.5),
        ("2", 2.0),
        ("1Gi", 2**30),
        ("128974848", 128974848.0),
        ("1e3", 1000.0),
        ("1.5", 1.5),
        ("100M", 1e8),
        (3, 3.0),
    ],
)
def test_quantities(text: Any, value: float) -> None:
    assert quantity.parse(text) == pytest.approx(value)


@pytest.mark.parametrize("bad", ["lots", "1.2.3", "Gi", "", True])
def test_bad_quantities(bad: Any) -> None:
    with pytest.raises(ValueError, match="quantity"):
        quantity.parse(bad)


def test_job_requests_sum_containers_times_parallelism() -> None:
    spec = {
        "parallelism": 4,
        "completions": 2,
        "template": {
            "spec": {
                "containers": [
                    {
                        "resources": {
                            "requests": {"cpu": "500m", "memory": "1Gi"},
                            "limits": {"nvidia.com/gpu": "1"},
                        }
                    },
                    {"resources": {"requests": {"cpu": "1"}}},
                ],
                "initContainers": [{"resources": {"requests": {"cpu": "4"}}}],
            }
        },
    }
    total, parallelism = quantity.job_requests(spec)
    assert parallelism == 2
    assert (total.cpu, total.memory, total.gpu) == (8.0, 2 * 2**30, 2.0)


def test_label_value_stays_a_valid_label() -> None:
    assert job_label_value("ml", "train") == "ml.train"
    long = job_label_value("n" * 63, "j" * 63)
    assert len(long) <= 63 and long[-1].isalnum()
    assert long != job_label_value("n" * 63, "j" * 62)


def test_member_manifest_is_labelled_and_annotated() -> None:
    m = job_manifest("ml", "train", "uid-1", "us-west", {"template": {"spec": {}}})
    assert m["metadata"]["labels"]["gridaware.dev/job"] == "ml.train"
    assert m["metadata"]["annotations"]["gridaware.dev/owner-uid"] == "uid-1"
    assert m["spec"]["template"]["metadata"]["labels"]["gridaware.dev/job"] == "ml.train"


def _member(**kw: Any) -> MemberJobState:
    return MemberJobState(**{"cluster": "c", "namespace": "n", "name": "j", "uid": "u", **kw})


@pytest.mark.parametrize(
    ("member", "phase", "condition"),
    [
        pytest.param(_member(active=1, ready=1), "Running", ("Running", "True")),
        pytest.param(_member(active=1, ready=0), "Scheduled", None),
        pytest.param(_member(complete=True, succeeded=1), "Succeeded", ("Succeeded", "True")),
        pytest.param(
            _member(failed_condition=True, message="BackoffLimitExceeded"),
            "Failed",
            ("Failed", "True"),
        ),
    ],
)
def test_mirror(member: MemberJobState, phase: str, condition: tuple[str, str] | None) -> None:
    start = GridAwareJobStatus(
        phase="Scheduled", member_job=MemberJobRef(cluster="c", namespace="n", name="j")
    )
    s = lifecycle.mirror(start, member, 1, "2026-01-01T00:00:00Z")
    assert s.phase == phase
    if condition:
        c = lifecycle.condition(s, condition[0])
        assert c is not None and c.status == condition[1]


@pytest.mark.parametrize(
    ("member", "uid"),
    [
        pytest.param(_member(), None, id="created-no-write"),
        pytest.param(_member(active=1, ready=0), None, id="pods-pending-no-write"),
        pytest.param(_member(active=1, ready=1), "u", id="uid-with-running"),
        pytest.param(_member(complete=True, succeeded=1), "u", id="uid-with-succeeded"),
    ],
)
def test_the_member_uid_waits_for_a_transition(member: MemberJobState, uid: str | None) -> None:
    """A placed job's status is written once when placed and once when it runs: the member
    Job's uid alone is no reason for a third write (the Job's owner annotation identifies it)."""
    start = GridAwareJobStatus(
        phase="Scheduled", member_job=MemberJobRef(cluster="c", namespace="n", name="j")
    )
    s = lifecycle.mirror(start, member, 1, "2026-01-01T00:00:00Z")
    assert s.member_job is not None and s.member_job.uid == uid
    assert (s is start) == (uid is None)


def test_terminal_status_never_changes_again() -> None:
    done = GridAwareJobStatus(phase="Succeeded")
    assert lifecycle.mirror(done, _member(active=1, ready=1), 1, "t") is done


def test_condition_transition_time_changes_only_with_status() -> None:
    c1 = lifecycle.set_condition([], "Running", "True", "A", "m", 1, "t1")
    c2 = lifecycle.set_condition(c1, "Running", "True", "B", "m2", 1, "t2")
    c3 = lifecycle.set_condition(c2, "Running", "False", "C", "m3", 1, "t3")
    assert [c.last_transition_time for c in (c1[0], c2[0], c3[0])] == ["t1", "t1", "t3"]


def test_patch_is_none_when_nothing_changed() -> None:
    s = GridAwareJobStatus(phase="Running", cluster="a")
    raw = s.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert lifecycle.patch(raw, s) is None
    assert lifecycle.patch(raw, s.model_copy(update={"phase": "Succeeded"})) == {
        "phase": "Succeeded"
    }
