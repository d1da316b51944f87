"""Kopf's per-event essence: GridAwareJobs (an event handler only) skip the deep copy of their
spec; GridClusters (change handlers) keep Kopf's own."""

from __future__ import annotations

import kopf
import pytest

from gridaware.handlers.operator import EssenceStorage

SPEC = {"template": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}}


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        pytest.param("GridAwareJob", {"metadata": {"generation": 3}}, id="job-generation-only"),
        pytest.param("GridCluster", {"spec": SPEC}, id="cluster-kopf-essence"),
    ],
)
def test_essence(kind: str, expected: dict[str, object]) -> None:
    body = kopf.Body(
        {
            "apiVersion": "gridaware.dev/v1alpha1",
            "kind": kind,
            "metadata": {"name": "a", "generation": 3, "resourceVersion": "7"},
            "spec": SPEC,
            "status": {"phase": "Running"},
        }
    )
    essence = EssenceStorage(prefix="gridaware.dev", key="last-handled-configuration").build(
        body=body
    )
    assert dict(essence) == expected
