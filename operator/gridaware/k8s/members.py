"""Member clusters: the Jobs gridaware creates there, their watch, and capacity probes.

Member Jobs carry everything needed to rebuild state after a restart: the label
``gridaware.dev/job`` (owner, for selection) and annotations with the owner's UID and name.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from gridaware.api.v1alpha1 import (
    CLUSTER_LABEL,
    JOB_LABEL,
    OWNER_ANNOTATION,
    OWNER_UID_ANNOTATION,
    TTL_ANNOTATION,
    GridAwareJobSpec,
    MemberJobState,
    Resources,
    job_label_value,
)
from gridaware.core import quantity
from gridaware.k8s.clients import DEFAULT_TIMEOUT, request_json, watch_json


def _with_env(job_spec: dict[str, Any], env: dict[str, str], label: str) -> None:
    """Add ``env`` to every container of a JobSpec's pods and label the pods (in place)."""
    for container in ((job_spec.get("template") or {}).get("spec") or {}).get("containers") or []:
        existing = [e for e in container.get("env") or [] if e.get("name") not in env]
        container["env"] = existing + [{"name": k, "value": v} for k, v in env.items()]
        if not container["env"]:
            del container["env"]
    pod_meta = job_spec.setdefault("template", {}).setdefault("metadata", {})
    pod_meta.setdefault("labels", {})[JOB_LABEL] = label


def workload_manifest(
    namespace: str,
    name: str,
    owner_uid: str,
    cluster: str,
    spec: GridAwareJobSpec,
    env: dict[str, str] | None = None,
    member_namespace: str | None = None,
) -> dict[str, Any]:
    """The member workload of a GridAwareJob in hub ``namespace`` (pure): a Job, or a JobSet
    whose every pod gets ``env`` and the job label; created in ``member_namespace`` (default:
    the same name)."""
    if spec.job_set is None:
        out = job_manifest(namespace, name, owner_uid, cluster, spec.template or {}, env)
        out["metadata"]["namespace"] = member_namespace or namespace
        return out
    body = copy.deepcopy(spec.job_set)
    label = job_label_value(namespace, name)
    for rj in body.get("replicatedJobs") or []:
        _with_env(rj.setdefault("template", {}).setdefault("spec", {}), env or {}, label)
    annotations = {OWNER_UID_ANNOTATION: owner_uid, OWNER_ANNOTATION: f"{namespace}/{name}"}
    ttl = body.pop("ttlSecondsAfterFinished", None)
    if ttl is not None:
        annotations[TTL_ANNOTATION] = str(int(ttl))
    return {
        "apiVersion": f"{JOBSET_GROUP}/{JOBSET_VERSION}",
        "kind": "JobSet",
        "metadata": _member_meta(member_namespace or namespace, name, cluster, label, annotations),
        "spec": body,
    }


def _member_meta(
    namespace: str, name: str, cluster: str, label: str, annotations: dict[str, str]
) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": {
            JOB_LABEL: label,
            CLUSTER_LABEL: cluster,
            "app.kubernetes.io/managed-by": "gridaware",
        },
        "annotations": annotations,
    }


def job_manifest(
    namespace: str,
    name: str,
    owner_uid: str,
    cluster: str,
    template: dict[str, Any],
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The member Job for a GridAwareJob (pure); ``env`` is added to every container."""
    spec = copy.deepcopy(template)
    label = job_label_value(namespace, name)
    _with_env(spec, env or {}, label)
    annotations = {OWNER_UID_ANNOTATION: owner_uid, OWNER_ANNOTATION: f"{namespace}/{name}"}
    ttl = spec.pop("ttlSecondsAfterFinished", None)
    if ttl is not None:  # gridaware deletes it once the outcome is recorded on the hub
        annotations[TTL_ANNOTATION] = str(int(ttl))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _member_meta(namespace, name, cluster, label, annotations),
        "spec": spec,
    }


def state_of(cluster: str, job: dict[str, Any]) -> MemberJobState:
    """What the operator keeps of a member Job (its JSON body)."""
    meta, status = job.get("metadata") or {}, job.get("status") or {}
    annotations = meta.get("annotations") or {}
    complete = failed = False
    message = ""
    for c in status.get("conditions") or []:
        if c.get("status") != "True":
            continue
        if c.get("type") == "Complete":
            complete = True
        elif c.get("type") == "Failed":
            failed = True
            message = f"{c.get('reason') or 'Failed'}: {c.get('message') or ''}".strip(": ")
    return MemberJobState(
        cluster=cluster,
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        owner_uid=annotations.get(OWNER_UID_ANNOTATION),
        owner=annotations.get(OWNER_ANNOTATION),
        active=int(status.get("active") or 0),
        ready=int(status.get("ready") or 0),
        succeeded=int(status.get("succeeded") or 0),
        failed=int(status.get("failed") or 0),
        complete=complete,
        failed_condition=failed,
        message=message,
        start_time=status.get("startTime"),
        completion_time=status.get("completionTime"),
        resource_version=meta.get("resourceVersion", ""),
        requests=quantity.job_requests(job.get("spec") or {})[0],
        ttl_after_finished=_int(annotations.get(TTL_ANNOTATION)),
    )


def _int(text: str | None) -> int | None:
    try:
        return None if text is None else int(text)
    except ValueError:
        return None


def _jobs_path(namespace: str | None = None, name: str | None = None) -> str:
    path = f"/apis/batch/v1/namespaces/{namespace}/jobs" if namespace else "/apis/batch/v1/jobs"
    return f"{path}/{name}" if name else path


def create_job(
    client: kubernetes.client.ApiClient,
    manifest: dict[str, Any],
    namespace_labels: dict[str, str] | None = None,
) -> tuple[str, bool]:
    """Create the member Job; (uid, created). An existing Job of the same owner is adopted;
    one of another owner is a conflict (ValueError)."""
    ns, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]

    def create() -> str:
        out = request_json(client, "POST", _jobs_path(ns), manifest)
        return str((out.get("metadata") or {}).get("uid", ""))

    try:
        return create(), True
    except ApiException as exc:
        if exc.status == 404:  # namespace missing
            ensure_namespace(client, ns, namespace_labels)
            return create(), True
        if exc.status != 409:
            raise
    meta = request_json(client, "GET", _jobs_path(ns, name)).get("metadata") or {}
    owner = (meta.get("annotations") or {}).get(OWNER_UID_ANNOTATION)
    if owner != manifest["metadata"]["annotations"][OWNER_UID_ANNOTATION]:
        raise ValueError(f"a Job {ns}/{name} not created by this GridAwareJob already exists")
    return str(meta.get("uid", "")), False


def ensure_namespace(
    client: kubernetes.client.ApiClient, name: str, labels: dict[str, str] | None = None
) -> None:
    """Create a member namespace on first use, labelled (e.g. with the Pod Security level
    that the member's own admission then enforces on the workload's pods)."""
    body = kubernetes.client.V1Namespace.model_validate(
        {
            "metadata": {
                "name": name,
                "labels": {"app.kubernetes.io/managed-by": "gridaware", **(labels or {})},
            }
        }
    )
    try:
        kubernetes.client.CoreV1Api(client).create_namespace(body, _request_timeout=DEFAULT_TIMEOUT)
    except ApiException as exc:
        if exc.status != 409:
            raise


def delete_job(
    client: kubernetes.client.ApiClient, namespace: str, name: str, grace_seconds: int | None = None
) -> bool:
    """Delete a member Job and its pods; False when it was already gone."""
    body = kubernetes.client.V1DeleteOptions(
        propagation_policy="Background", grace_period_seconds=grace_seconds
    )
    try:
        kubernetes.client.BatchV1Api(client).delete_namespaced_job(
            name, namespace, body=body, _request_timeout=DEFAULT_TIMEOUT
        )
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def set_suspended(
    client: kubernetes.client.ApiClient, namespace: str, name: str, suspended: bool
) -> None:
    """Suspend (the Job controller stops its pods, each with its grace period) or resume a
    Job (new pods start; Kubernetes resets the Job's startTime)."""
    kubernetes.client.BatchV1Api(client).patch_namespaced_job(
        name, namespace, {"spec": {"suspend": suspended}}, _request_timeout=DEFAULT_TIMEOUT
    )


def list_jobs(
    client: kubernetes.client.ApiClient, cluster: str
) -> tuple[list[MemberJobState], str]:
    """Every gridaware Job in the member and the list's resourceVersion (to watch from)."""
    out = request_json(
        client, "GET", _jobs_path(), query=[("labelSelector", JOB_LABEL)], timeout=(3.0, 60.0)
    )
    rv = (out.get("metadata") or {}).get("resourceVersion", "")
    return [state_of(cluster, j) for j in out.get("items") or []], str(rv or "")


def watch_jobs(
    client: kubernetes.client.ApiClient, cluster: str, resource_version: str, timeout_seconds: int
) -> Iterator[tuple[str, MemberJobState]]:
    """Events (ADDED, MODIFIED, DELETED) of gridaware Jobs from ``resource_version`` on."""
    query = [("labelSelector", JOB_LABEL), ("resourceVersion", resource_version)]
    for event in watch_json(client, _jobs_path(), query, timeout_seconds):
        if event.get("type") == "ERROR":  # a Status: 410 when the version is too old
            status = event.get("object") or {}
            why = f"{status.get('reason', '')}: {status.get('message', '')}".strip(": ")
            raise ApiException(status=int(status.get("code") or 410), reason=why or "watch ended")
        yield str(event.get("type")), state_of(cluster, event.get("object") or {})


def capacity(client: kubernetes.client.ApiClient) -> tuple[Resources, Resources]:
    """(allocatable of ready nodes, requests of running pods that gridaware did not create)."""
    allocatable = Resources()
    for node in request_json(client, "GET", "/api/v1/nodes").get("items") or []:
        status = node.get("status") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        if not ready or (node.get("spec") or {}).get("unschedulable") or not status:
            continue
        alloc = status.get("allocatable") or {}
        allocatable = allocatable.plus(
            Resources(
                cpu=quantity.parse(alloc.get("cpu", 0)),
                memory=quantity.parse(alloc.get("memory", 0)),
                gpu=quantity.parse(alloc.get("nvidia.com/gpu", 0)),
            )
        )
    requested = Resources()
    # gridaware's own pods are accounted from their Jobs: list only the others
    pods = request_json(
        client,
        "GET",
        "/api/v1/pods",
        query=[
            ("fieldSelector", "status.phase!=Succeeded,status.phase!=Failed"),
            ("labelSelector", f"!{JOB_LABEL}"),
        ],
        timeout=(3.0, 60.0),
    )
    for pod in pods.get("items") or []:
        spec = pod.get("spec") or {}
        if spec.get("nodeName"):
            requested = requested.plus(quantity.pod_requests(spec))
    return allocatable, requested


def remaining_pods(client: kubernetes.client.ApiClient, namespace: str, owner_label: str) -> int:
    """Pods of a gridaware job that still exist in a member (terminating ones included)."""
    pods = kubernetes.client.CoreV1Api(client).list_namespaced_pod(
        namespace, label_selector=f"{JOB_LABEL}={owner_label}", _request_timeout=DEFAULT_TIMEOUT
    )
    return len(pods.items)


JOBSET_GROUP = "jobset.x-k8s.io"
JOBSET_VERSION = "v1alpha2"


def _jobsets(client: kubernetes.client.ApiClient) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(client)


def create_jobset(
    client: kubernetes.client.ApiClient,
    manifest: dict[str, Any],
    namespace_labels: dict[str, str] | None = None,
) -> tuple[str, bool]:
    """Create the member JobSet; like ``create_job`` (namespace on demand, ours adopted,
    another owner's a conflict)."""
    api = _jobsets(client)
    ns, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]

    def create() -> dict[str, Any]:
        return _obj(
            api.create_namespaced_custom_object(
                JOBSET_GROUP,
                JOBSET_VERSION,
                ns,
                "jobsets",
                manifest,
                _request_timeout=DEFAULT_TIMEOUT,
            )
        )

    try:
        return str(create()["metadata"]["uid"]), True
    except ApiException as exc:
        if exc.status == 404 and "jobsets" not in str(exc.body or ""):
            ensure_namespace(client, ns, namespace_labels)
            return str(create()["metadata"]["uid"]), True
        if exc.status != 409:
            raise
    existing = _obj(
        api.get_namespaced_custom_object(
            JOBSET_GROUP, JOBSET_VERSION, ns, "jobsets", name, _request_timeout=DEFAULT_TIMEOUT
        )
    )
    owner = (existing["metadata"].get("annotations") or {}).get(OWNER_UID_ANNOTATION)
    if owner != manifest["metadata"]["annotations"][OWNER_UID_ANNOTATION]:
        raise ValueError(f"a JobSet {ns}/{name} not created by this GridAwareJob already exists")
    return str(existing["metadata"]["uid"]), False


def delete_jobset(
    client: kubernetes.client.ApiClient, namespace: str, name: str, grace_seconds: int | None = None
) -> bool:
    body = kubernetes.client.V1DeleteOptions(
        propagation_policy="Background", grace_period_seconds=grace_seconds
    )
    try:
        _jobsets(client).delete_namespaced_custom_object(
            JOBSET_GROUP,
            JOBSET_VERSION,
            namespace,
            "jobsets",
            name,
            body=body,
            _request_timeout=DEFAULT_TIMEOUT,
        )
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def set_jobset_suspended(
    client: kubernetes.client.ApiClient, namespace: str, name: str, suspended: bool
) -> None:
    _jobsets(client).patch_namespaced_custom_object(
        JOBSET_GROUP,
        JOBSET_VERSION,
        namespace,
        "jobsets",
        name,
        {"spec": {"suspend": suspended}},
        _request_timeout=DEFAULT_TIMEOUT,
    )


def jobset_state(cluster: str, body: dict[str, Any]) -> MemberJobState:
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    annotations = meta.get("annotations") or {}
    conds = {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}
    jobs = status.get("replicatedJobsStatus") or []
    failed = conds.get("Failed")
    done = conds.get("Completed") or failed
    return MemberJobState(
        cluster=cluster,
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        owner_uid=annotations.get(OWNER_UID_ANNOTATION),
        owner=annotations.get(OWNER_ANNOTATION),
        active=sum(int(j.get("active") or 0) for j in jobs),
        ready=sum(int(j.get("ready") or 0) for j in jobs),
        succeeded=sum(int(j.get("succeeded") or 0) for j in jobs),
        failed=sum(int(j.get("failed") or 0) for j in jobs),
        complete="Completed" in conds,
        failed_condition=failed is not None,
        message=f"{failed.get('reason', 'Failed')}: {failed.get('message', '')}" if failed else "",
        start_time=None,  # a JobSet has none: the operator notes when its pods first run
        completion_time=(done or {}).get("lastTransitionTime"),
        resource_version=meta.get("resourceVersion", ""),
        requests=quantity.jobset_requests(body.get("spec") or {})[0],
        ttl_after_finished=_int(annotations.get(TTL_ANNOTATION)),
        kind="JobSet",
    )


def list_jobsets(client: kubernetes.client.ApiClient, cluster: str) -> list[MemberJobState]:
    """Every gridaware JobSet in the member; none where the JobSet API is not installed."""
    try:
        out = _jobsets(client).list_cluster_custom_object(
            JOBSET_GROUP,
            JOBSET_VERSION,
            "jobsets",
            label_selector=JOB_LABEL,
            _request_timeout=(3.0, 60.0),
        )
    except ApiException as exc:
        if exc.status == 404:
            return []
        raise
    return [jobset_state(cluster, item) for item in _obj(out).get("items", [])]


def _obj(out: object) -> dict[str, Any]:
    """A custom-object answer as a dict (the client types them as ``object``)."""
    return out if isinstance(out, dict) else {}
