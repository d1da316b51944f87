"""JobSet-form jobs in time and space on the lab (issue "Meet users where they run"): a JobSet
is deferred to a greener window and started whole in it, and a checkpointing JobSet moves whole
to the greener region, never with two live copies. Grid time is replayed at 360x as in
tests/e2e/test_shifting.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.conftest import Lab, kubectl, wait_for
from tests.e2e.test_jobset import pods, training
from tests.e2e.test_operator import apply, status
from tests.e2e.test_shifting import (  # noqa: F401 - fixtures
    FLIP,
    TRACES,
    CopyWatch,
    ReplayOperator,
    grid,
    replay,
)

pytestmark = pytest.mark.slow


def jobsets(lab: Lab, namespace: str) -> dict[str, list[str]]:
    """Cluster -> JobSets in ``namespace`` there."""
    out = {}
    for member in lab.members:
        names = kubectl(
            lab, "-n", namespace, "get", "jobsets", "-o", "name", context=member, check=False
        ).stdout.split()
        if names:
            out[member] = sorted(n.split("/", 1)[1] for n in names)
    return out


def checkpointing(doc: dict[str, Any]) -> dict[str, Any]:
    """Every pod of the JobSet checkpoints on SIGTERM (the lab's shutdown-after)."""
    for rj in doc["spec"]["jobSet"]["replicatedJobs"]:
        meta = rj["template"]["spec"]["template"]["metadata"]
        meta["annotations"]["lab.gridaware.dev/shutdown-after"] = "2s"
    return doc


def test_a_jobset_is_deferred_to_the_green_window_and_started_whole_in_it(
    lab: Lab,
    replay: ReplayOperator,  # noqa: F811 - the fixture imported above
    namespace: str,
) -> None:
    replay.run_on(TRACES)
    doc = training(
        "later",
        "10s",
        schedule={"maxDelaySeconds": 8 * 3600, "expectedDurationSeconds": 3600},
        energy={"wattsPerReplica": 1000},
    )
    apply(lab, namespace, doc)
    wait_for(lambda: status(lab, namespace, "later").get("deferral"), "the deferral", timeout=30)
    st = status(lab, namespace, "later")
    assert st["deferral"]["cluster"] == "eu-central"
    assert grid(st["deferral"]["plannedStart"]) == dt.datetime(2023, 1, 2, 3, tzinfo=dt.UTC)
    assert jobsets(lab, namespace) == {}, "nothing runs while deferred"
    wait_for(lambda: status(lab, namespace, "later").get("cluster"), "the start", timeout=90)
    st = status(lab, namespace, "later")
    assert st["cluster"] == "eu-central" and st["carbonAtPlacement"] == 50
    assert jobsets(lab, namespace) == {"eu-central": ["later"]}
    wait_for(lambda: len(pods(lab, "eu-central", namespace, "later")) == 3, "three pods", 90)


def test_a_checkpointing_jobset_moves_whole_to_the_greener_region(
    lab: Lab,
    replay: ReplayOperator,  # noqa: F811 - the fixture imported above
    namespace: str,
) -> None:
    replay.run_on(FLIP)
    watch = CopyWatch(lab, namespace, "mover")
    doc = training(
        "mover",
        "60s",
        schedule={"maxDelaySeconds": 0, "expectedDurationSeconds": 6 * 3600},
        migration={
            "policy": "Checkpoint",
            "minDwellSeconds": 1800,
            "overheadSeconds": 0,
            "margin": 0.1,
            "gracePeriodSeconds": 2,
        },
        energy={"wattsPerReplica": 1000},
    )
    apply(lab, namespace, checkpointing(doc))
    wait_for(lambda: status(lab, namespace, "mover").get("cluster"), "placement", timeout=30)
    assert status(lab, namespace, "mover")["cluster"] == "eu-central"
    wait_for(lambda: status(lab, namespace, "mover").get("migrations"), "a migration", 120)
    record = status(lab, namespace, "mover")["migrations"][0]
    assert (record["source"], record["target"]) == ("eu-central", "us-west")
    wait_for(
        lambda: jobsets(lab, namespace) == {"us-west": ["mover"]},
        "the JobSet only in us-west",
        60,
    )
    wait_for(lambda: len(pods(lab, "us-west", namespace, "mover")) == 3, "three pods", 90)
    assert watch.stop() <= 3 and watch.samples > 20, "never two live copies (3 pods each)"
