"""Every manifest in examples/ is accepted by the API server and gets a decision."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, Lab, Operator, kubectl, wait_for
from tests.e2e.test_operator import condition, status

pytestmark = pytest.mark.slow
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_is_accepted_and_decided(
    lab: Lab, operator: Operator, namespace: str, path: Path
) -> None:
    kubectl(lab, "-n", namespace, "apply", "-f", str(path))
    name = yaml.safe_load(path.read_text())["metadata"]["name"]
    wait_for(
        lambda: condition(status(lab, namespace, name), "Scheduled"),
        f"a decision on {path.name}",
        timeout=60,
    )
    cond = condition(status(lab, namespace, name), "Scheduled")
    assert cond["reason"] in ("Placed", "Deferred"), cond
