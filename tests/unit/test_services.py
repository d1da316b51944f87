"""Service scenarios in memory: every known way to lose, duplicate or stall a job, each a test
that fails without its fix (issue "A control loop admins can trust"). The same scenarios that
touch the API run on the lab in tests/e2e/test_control_loop.py."""

from __future__ import annotations

from typing import Any

import pytest

from gridaware.api.v1alpha1 import MigrationState, Resources, rfc3339
from gridaware.services.placement import RetryLaterError
from gridaware.services.ports import Settings
from gridaware.services.statuses import Statuses
from tests.fakes import T0, World, job_spec

KEY = "team-a/train"


def place(world: World, spec: dict[str, Any] | None = None, key: str = KEY) -> None:
    ns, name = key.split("/")
    if key not in world.hub.jobs:
        world.hub.add_job(ns, name, spec or job_spec())
    world.services.placement.place(world.hub.body(key))


def try_place(world: World, spec: dict[str, Any] | None = None, key: str = KEY) -> str | None:
    try:
        place(world, spec, key)
    except RetryLaterError as exc:
        return str(exc)
    return None


def condition(world: World, key: str, type_: str) -> dict[str, Any]:
    conds = world.status(key).get("conditions", [])
    return next((c for c in conds if c["type"] == type_), {})


def run(world: World, cluster: str, key: str = KEY) -> None:
    """The member's pods start running; the watch reports it."""
    job = world.members[cluster].jobs[key]
    job.state, job.started = "Running", world.clock.t
    world.sync()


# --- 1. capacity -------------------------------------------------------------------------


def test_overcommitted_member_does_not_stop_placement() -> None:
    world = World.make()
    # cordoned nodes still hold pods: requests exceed what ready nodes offer
    world.members["eu-central"].other = Resources(cpu=100, memory=1e12, gpu=10)
    world.connect("eu-central")
    snapshot = {c.name: c for c in world.services.cache.snapshot()}
    assert snapshot["eu-central"].free == Resources()
    place(world)
    assert world.status(KEY)["cluster"] == "us-east"  # greenest one with room
    assert world.copies(KEY) == ["us-east"]


def test_racing_placements_never_overbook_the_last_cpus() -> None:
    world = World.make()
    for name in ("us-west", "us-east"):
        world.members[name].down = True
        world.connect(name)
    world.members["eu-central"].allocatable = Resources(cpu=4, memory=1e10)
    world.connect("eu-central")
    assert try_place(world, job_spec(cpu="3"), "team-a/a") is None
    # the watch has not seen a's Job yet: the reservation must still count
    waited = try_place(world, job_spec(cpu="3"), "team-a/b")
    assert waited is not None and "not enough free capacity" in waited
    assert world.copies("team-a/b") == []


# --- 2. migration into a cluster holding a same-name Job ----------------------------------


def _migrating(world: World, step: str, target: str) -> None:
    place(world, job_spec(migration={"policy": "Checkpoint"}))
    source = world.status(KEY)["cluster"]
    run(world, source)
    rec = world.services.statuses.get(KEY)
    assert rec is not None
    state = MigrationState(
        step=step, source=source, target=target, reason="test", decided=rfc3339(T0, ms=True)
    )
    world.services.statuses.update(rec, lambda s: s.model_copy(update={"migration": state}))


def test_migration_target_taken_goes_back_to_the_source() -> None:
    world = World.make()
    _migrating(world, "Stopping", "us-west")
    foreign = world.hub.add_job("team-a", "other", job_spec())
    manifest = {
        "metadata": {
            "namespace": "team-a",
            "name": "train",
            "annotations": {"gridaware.dev/owner-uid": foreign["metadata"]["uid"]},
        },
        "spec": job_spec()["template"],
    }
    world.members["us-west"].create_job(manifest)
    rec = world.services.statuses.get(KEY)
    assert rec is not None
    for _ in range(4):
        world.services.migration.step(rec)
        world.sync()
    st = world.status(KEY)
    assert st["cluster"] == "eu-central"
    assert st["migration"]["target"] == "eu-central"
    assert "MigrationTargetTaken" in world.events.reasons()
    assert sorted(world.copies(KEY)) == ["eu-central", "us-west"]  # ours at home + the foreign
    assert (
        world.members["eu-central"]
        .jobs[KEY]
        .manifest["metadata"]["annotations"]["gridaware.dev/owner-uid"]
        == world.hub.jobs[KEY]["metadata"]["uid"]
    )


# --- 3. deleting a job during a migration -------------------------------------------------


@pytest.mark.parametrize("step", ["Stopping", "WaitingForStop", "Starting", "Started"])
def test_delete_during_migration_leaves_no_job(step: str) -> None:
    world = World.make()
    _migrating(world, step, "us-west")
    if step in ("Starting", "Started"):  # the target's Job may exist already
        world.members["us-west"].create_job(world.members["eu-central"].jobs[KEY].manifest)
    world.sync()
    world.services.placement.delete(world.hub.body(KEY))
    assert world.copies(KEY) == []


# --- 4. a member Job deleted out of band -------------------------------------------------


def test_member_job_deleted_out_of_band_is_placed_again() -> None:
    world = World.make()
    place(world)
    run(world, "eu-central")
    assert world.status(KEY)["phase"] == "Running"
    del world.members["eu-central"].jobs[KEY]  # kubectl delete job, or a TTL while we were down
    world.sync()
    assert world.status(KEY)["phase"] == "Pending"
    assert "MemberJobLost" in world.events.reasons()
    world.services.tick()
    world.services.queue.run_due()
    assert world.copies(KEY) == ["eu-central"]
    assert world.status(KEY)["runSegments"][0]["cluster"] == "eu-central"


def test_member_job_deleted_before_its_pods_ran_is_noticed() -> None:
    """The member Job's uid is written only with the Running transition; a Job that the watch
    saw and then saw deleted is lost all the same."""
    world = World.make()
    place(world)
    world.sync()  # the watch reports the new Job (no status write for it)
    assert world.status(KEY)["memberJob"].get("uid") is None
    del world.members["eu-central"].jobs[KEY]
    world.sync()
    assert "MemberJobLost" in world.events.reasons()
    world.services.tick()
    world.services.queue.run_due()
    assert world.copies(KEY) == ["eu-central"]


def test_finished_job_with_ttl_is_kept_until_recorded() -> None:
    world = World.make()
    place(
        world, {**job_spec(), "template": {**job_spec()["template"], "ttlSecondsAfterFinished": 0}}
    )
    job = world.members["eu-central"].jobs[KEY]
    assert "ttlSecondsAfterFinished" not in job.manifest["spec"]  # the member never deletes it
    job.state, job.started, job.finished = "Complete", T0, T0 + 60
    world.connect("eu-central")  # watch + probe: outcome recorded, then the sweep deletes it
    assert world.status(KEY)["phase"] == "Succeeded"
    world.clock.advance(120)
    world.connect("eu-central")
    assert world.copies(KEY) == []


# --- 5. restart between recording and creating -------------------------------------------


def test_restart_with_recorded_placement_waits_for_that_cluster() -> None:
    world = World.make()
    world.members["eu-central"].down = True
    world.connect("eu-central")
    body = world.hub.add_job("team-a", "train", job_spec())
    body["status"] = {
        "phase": "Scheduled",
        "cluster": "eu-central",
        "memberJob": {"cluster": "eu-central", "namespace": "team-a", "name": "train"},
    }
    waited = try_place(world)
    assert waited is not None and "eu-central" in waited
    assert world.copies(KEY) == []  # never a copy elsewhere
    world.members["eu-central"].down = False
    world.connect("eu-central")
    assert try_place(world) is None
    assert world.copies(KEY) == ["eu-central"]
    assert world.members["eu-central"].creates == 1


def test_restart_adopts_the_job_created_just_before_the_crash() -> None:
    world = World.make()
    world.hub.add_job("team-a", "train", job_spec())
    uid = world.hub.jobs[KEY]["metadata"]["uid"]
    manifest = {  # created by an operator that died before it could record anything
        "metadata": {
            "namespace": "team-a",
            "name": "train",
            "annotations": {"gridaware.dev/owner-uid": uid, "gridaware.dev/owner": KEY},
        },
        "spec": job_spec()["template"],
    }
    world.members["us-west"].create_job(manifest)
    world = world.restart()
    place(world)
    assert world.copies(KEY) == ["us-west"]
    assert condition(world, KEY, "Scheduled")["reason"] == "Adopted"


# --- 6. a forged Job never takes a job over ---------------------------------------------


def test_labelled_job_of_someone_else_is_not_mirrored() -> None:
    world = World.make()
    place(world)
    mine = world.members["eu-central"].jobs[KEY]
    del world.members["eu-central"].jobs[KEY]
    forged = dict(mine.manifest)
    forged["metadata"] = {
        **mine.manifest["metadata"],
        "annotations": {
            **mine.manifest["metadata"]["annotations"],
            "gridaware.dev/owner-uid": "someone-else",
        },
    }
    world.members["eu-central"].create_job(forged)
    world.members["eu-central"].jobs[KEY].state = "Complete"
    world.sync()
    assert world.status(KEY).get("phase") != "Succeeded"


# --- 8. no signal at the latest start -------------------------------------------------------


def test_deadline_wins_over_a_feed_outage() -> None:
    world = World.make(carbon={"US-CAL-CISO": None, "DE-LU": None, "US-MIDA-PJM": None})
    deadline = rfc3339(T0 + 3600 + 60)
    spec = job_spec(schedule={"deadline": deadline, "expectedDurationSeconds": 3600})
    assert try_place(world, spec) is None
    assert world.status(KEY)["phase"] == "Scheduled"
    assert "no more slack" in condition(world, KEY, "Scheduled")["message"]


def test_without_signals_before_the_deadline_the_job_waits() -> None:
    world = World.make(carbon={"US-CAL-CISO": None, "DE-LU": None, "US-MIDA-PJM": None})
    spec = job_spec(schedule={"maxDelaySeconds": 86400, "expectedDurationSeconds": 3600})
    assert try_place(world, spec) is not None
    assert condition(world, KEY, "Scheduled")["reason"] == "SignalsUnavailable"


# --- 12. credentials and cluster removal --------------------------------------------------


def test_rotated_kubeconfig_secret_is_reloaded() -> None:
    world = World.make()
    before = world.hub.connects.count("eu-central-kubeconfig")
    world.connect("eu-central")
    assert world.hub.connects.count("eu-central-kubeconfig") == before
    world.hub.secrets["eu-central-kubeconfig"] = "2"
    world.connect("eu-central")
    assert world.hub.connects.count("eu-central-kubeconfig") == before + 1


def test_deleting_a_gridcluster_waits_for_its_jobs() -> None:
    world = World.make()
    place(world)
    with pytest.raises(RetryLaterError, match="unfinished jobs run in eu-central"):
        world.services.members.unregister("eu-central")
    assert try_place(world, job_spec(), "team-a/next") is None
    assert world.status("team-a/next")["cluster"] == "us-east"  # draining: no new work
    world.members["eu-central"].jobs[KEY].state = "Complete"
    world.sync()
    world.services.members.unregister("eu-central")
    assert world.services.cache.member("eu-central") is None


# --- 14. bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        pytest.param({"schedule": {"deadline": "tomorrow morning"}}, "RFC 3339", id="deadline"),
        pytest.param({"objective": {"carbonWeight": 0}}, "must not both be 0", id="no-weight"),
    ],
)
def test_bad_input_sets_a_condition_and_an_event(extra: dict[str, Any], says: str) -> None:
    world = World.make()
    assert try_place(world, job_spec(**extra)) is None  # no endless retries
    cond = condition(world, KEY, "Scheduled")
    assert cond["reason"] == "InvalidSpec" and says in cond["message"]
    assert "InvalidSpec" in world.events.reasons()
    assert world.copies(KEY) == []


# --- 15. scale -----------------------------------------------------------------------------


def test_migration_round_skips_jobs_within_their_dwell_time() -> None:
    world = World.make(settings=Settings(retry_delay=1))
    spec = job_spec(
        cpu="100m",
        migration={"policy": "Checkpoint", "minDwellSeconds": 3600},
        schedule={"expectedDurationSeconds": 7200},
    )
    for i in range(200):
        key = f"team-a/j{i}"
        place(world, spec, key)
        job = world.members[world.status(key)["cluster"]].jobs[key]
        job.state, job.started = "Running", T0
    world.sync()
    before = world.feeds.forecasts
    world.services.tick()
    assert world.feeds.forecasts == before  # no forecast read while every job dwells
    world.clock.advance(3700)
    world.services.tick()
    assert world.feeds.forecasts > before


def test_status_written_only_when_it_changed() -> None:
    world = World.make()
    place(world)
    world.sync()  # the watch sees the Job: its uid is recorded
    patches = world.hub.patches
    place(world)  # a resume after a restart, and repeated watch events
    world.sync()
    world.sync()
    assert world.hub.patches == patches


def test_a_deferred_job_is_rewritten_only_when_its_plan_changes() -> None:
    world = World.make(carbon={"US-CAL-CISO": 400.0, "DE-LU": 400.0, "US-MIDA-PJM": 400.0})
    world.feeds.hourly["DE-LU"] = [400.0] * 3 + [50.0] * 3 + [400.0] * 20
    spec = job_spec(schedule={"maxDelaySeconds": 8 * 3600, "expectedDurationSeconds": 3600})
    assert try_place(world, spec) is not None
    patches = world.hub.patches
    for minute in (20, 95, 150, 175):  # the "now" figure drifts; the plan stays 03:00
        world.clock.t = T0 + minute * 60
        assert try_place(world, spec) is not None
    assert world.hub.patches == patches
    world.feeds.hourly["DE-LU"][3] = 100.0  # a new forecast: another expected figure
    assert try_place(world, spec) is not None
    assert world.hub.patches == patches + 1


def test_the_last_seconds_before_a_planned_start_are_waited_for() -> None:
    world = World.make(carbon={"US-CAL-CISO": 400.0, "DE-LU": 400.0, "US-MIDA-PJM": 400.0})
    world.feeds.hourly["DE-LU"] = [400.0] * 3 + [50.0] * 3 + [400.0] * 20
    spec = job_spec(schedule={"maxDelaySeconds": 8 * 3600, "expectedDurationSeconds": 3600})
    world.clock.t = T0 + 3 * 3600 - 5  # starting now would cost 1 % more, for a 5 s wait
    assert try_place(world, spec) is not None
    assert world.copies(KEY) == []
    world.clock.t = T0 + 3 * 3600
    assert try_place(world, spec) is None
    assert world.copies(KEY) == ["eu-central"]


# --- deletion without a finalizer: copies deleted at once, orphans swept -------------------


def test_deleted_job_copies_go_and_orphans_are_swept() -> None:
    world = World.make()
    place(world)
    place(world, job_spec(), "team-a/other")
    world.members["eu-central"].down = True
    world.connect("eu-central")
    with pytest.raises(RetryLaterError, match="unreachable"):
        world.services.placement.delete(world.hub.body(KEY))
    del world.hub.jobs[KEY]
    world.members["eu-central"].down = False
    world = world.restart()  # the operator stopped before it could delete the copy
    assert world.copies(KEY) == ["eu-central"]  # not yet: records load after a restart
    world.clock.advance(120)  # past the start-up grace
    world.connect("eu-central")
    assert world.copies(KEY) == []
    assert world.copies("team-a/other") == ["eu-central"]  # its GridAwareJob exists


# --- spec changes of a placed job ------------------------------------------------------------


def test_spec_change_of_a_placed_job_is_refused_and_lifted_when_reverted() -> None:
    world = World.make()
    place(world)
    body = world.hub.jobs[KEY]
    body["spec"] = job_spec(cpu="2")
    body["metadata"]["generation"] = 2
    place(world)
    cond = condition(world, KEY, "SpecApplied")
    assert cond["status"] == "False" and "spec.template cannot change" in cond["message"]
    assert world.members["eu-central"].creates == 1
    body["spec"] = job_spec()
    body["metadata"]["generation"] = 3
    place(world)
    assert condition(world, KEY, "SpecApplied")["status"] == "True"
    assert world.status(KEY)["observedGeneration"] == 3


# --- JobSet workloads ------------------------------------------------------------------------


def jobset_spec(**extra: Any) -> dict[str, Any]:
    worker = job_spec(cpu="4")["template"] | {"parallelism": 2, "completions": 2}
    return {
        "jobSet": {
            "replicatedJobs": [
                {"name": "leader", "replicas": 1, "template": {"spec": job_spec()["template"]}},
                {"name": "workers", "replicas": 3, "template": {"spec": worker}},
            ]
        },
        **extra,
    }


def test_a_jobset_is_sized_from_all_its_replicated_jobs_and_placed_whole() -> None:
    world = World.make()
    world.members["eu-central"].allocatable = Resources(cpu=20, memory=1e12)  # needs 25 CPUs
    world.connect("eu-central")
    place(world, jobset_spec(migration={"policy": "Checkpoint"}))
    assert world.status(KEY)["cluster"] == "us-east"
    manifest = world.members["us-east"].jobs[KEY].manifest
    assert manifest["kind"] == "JobSet"
    for rj in manifest["spec"]["replicatedJobs"]:
        pod = rj["template"]["spec"]["template"]
        assert pod["metadata"]["labels"]["gridaware.dev/job"] == "team-a.train"
        env = {e["name"] for c in pod["spec"]["containers"] for e in c.get("env", [])}
        assert "GRIDAWARE_CHECKPOINT_DIR" in env


def test_a_jobset_finishes_and_is_deleted_whole() -> None:
    world = World.make()
    place(world, jobset_spec())
    job = world.members["eu-central"].jobs[KEY]
    job.state, job.started = "Running", T0
    world.connect("eu-central")
    assert world.status(KEY)["phase"] == "Running"
    world.services.placement.delete(world.hub.body(KEY))
    assert world.copies(KEY) == []


def test_a_spec_with_both_or_no_workload_is_invalid() -> None:
    world = World.make()
    both = jobset_spec() | {"template": job_spec()["template"]}
    assert try_place(world, both) is None
    assert "exactly one of spec.template" in condition(world, KEY, "Scheduled")["message"]


def test_deadline_slack_is_a_metric() -> None:
    world = World.make(carbon={"US-CAL-CISO": None, "DE-LU": None, "US-MIDA-PJM": None})
    spec = job_spec(schedule={"maxDelaySeconds": 7200, "expectedDurationSeconds": 3600})
    assert try_place(world, spec) is not None  # no signal: waits
    world.services.tick()
    value = world.services.metrics.registry.get_sample_value(
        "gridaware_job_deadline_slack_seconds", {"namespace": "team-a", "job": "train"}
    )
    assert value == 7200 - 120  # the latest start keeps the start-up margin


# --- tenancy: the operator re-checks what the hub's admission policy enforces ----------------


@pytest.mark.parametrize(
    ("key", "template_patch", "says"),
    [
        pytest.param(
            KEY,
            {"containers": [{"name": "c", "image": "x", "securityContext": {"privileged": True}}]},
            "privileged",
            id="privileged",
        ),
        pytest.param(KEY, {"hostPID": True}, "hostPID", id="host-pid"),
        pytest.param(KEY, {"nodeName": "cp-0"}, "nodeName", id="node-name"),
        pytest.param(KEY, {"serviceAccountName": "admin"}, "serviceAccountName", id="foreign-sa"),
        pytest.param("default/train", {}, "default", id="default-namespace"),
        pytest.param("kube-system/train", {}, "kube-system", id="system-namespace"),
    ],
)
def test_a_job_that_breaks_pod_security_is_never_created(
    key: str, template_patch: dict[str, Any], says: str
) -> None:
    world = World.make()
    spec = job_spec()
    spec["template"]["template"]["spec"] |= template_patch
    assert try_place(world, spec, key) is None
    cond = condition(world, key, "Scheduled")
    assert cond["reason"] == "InvalidSpec" and says in cond["message"]
    assert world.copies(key) == []


def test_a_mapped_namespace_runs_the_job_there() -> None:
    from gridaware.core.namespaces import NamespaceMapping  # noqa: PLC0415

    world = World.make(
        settings=Settings(namespaces=NamespaceMapping(mapping={"team-a": "tenant-a"}))
    )
    place(world)
    assert list(world.members["eu-central"].jobs) == ["tenant-a/train"]
    assert world.status(KEY)["memberJob"]["namespace"] == "tenant-a"
    job = world.members["eu-central"].jobs["tenant-a/train"]
    job.state, job.started = "Running", T0
    world.sync()
    assert world.status(KEY)["phase"] == "Running"
    world.services.placement.delete(world.hub.body(KEY))
    assert world.members["eu-central"].jobs == {}


def test_a_member_refusal_is_not_retried_until_the_spec_changes() -> None:
    world = World.make()
    world.members["eu-central"].refuse = "spec.template.spec.containers[0]: Limit must be set"
    place(world)
    assert condition(world, KEY, "Scheduled")["reason"] == "InvalidSpec"
    for _ in range(3):  # the status write comes back as an event: no loop of attempts
        place(world)
    assert world.members["eu-central"].creates == 1
    world.members["eu-central"].refuse = None
    world.hub.jobs[KEY]["spec"] = job_spec(cpu="2")
    world.hub.jobs[KEY]["metadata"]["generation"] = 2
    place(world)
    assert condition(world, KEY, "Scheduled")["reason"] == "Placed"
    assert world.copies(KEY) == ["eu-central"]


def test_gridclusters_are_known_before_the_first_job_after_a_restart() -> None:
    world = World.make()
    world.hub.add_job("team-a", "train", job_spec())
    services = world.restart().services  # preloads the hub's GridClusters, probes none yet
    for m in services.cache.members.values():
        m.settled = False
    assert sorted(services.cache.members) == sorted(world.members)
    key = services.placement.watched(world.hub.body(KEY))
    assert services.placement.reconcile(key) == 1.0  # waits for the probes, writes nothing
    assert world.status(KEY) == {}


def test_placement_waits_for_every_member_s_first_probe_without_writing() -> None:
    world = World.make()
    m = world.services.cache.member("eu-central")
    assert m is not None
    m.settled = False  # as right after a start, before the member's loop has probed it
    world.hub.add_job("team-a", "train", job_spec())
    waited = try_place(world)
    assert waited is not None and "first probe of eu-central" in waited
    assert world.status(KEY) == {} and world.copies(KEY) == []
    world.connect("eu-central")
    assert try_place(world) is None
    assert world.copies(KEY) != []


def test_a_standby_replica_follows_the_statuses_the_active_one_writes() -> None:
    world = World.make()
    place(world)  # this replica wrote the placement
    hub, body = world.hub, world.hub.body(KEY)
    standby = Statuses(hub, writing=lambda: False)
    active = Statuses(hub)
    for statuses in (standby, active):
        statuses.seed(body)
    newer = {**body, "status": {**body["status"], "phase": "Succeeded"}}
    assert standby.seed(newer).status.phase == "Succeeded"  # taken from the hub
    assert active.seed(newer).status.phase != "Succeeded"  # its own write wins over an echo
