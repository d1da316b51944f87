"""Building API clients from kubeconfigs, one per cluster, and probing their health.

The operator talks to several clusters at once, so clients are explicit objects built from a
kubeconfig (file or in-memory dict) and a context, never the process-wide default config.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import kubernetes.config
import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from gridaware.core.redact import redact

# Short timeouts: a member cluster that does not answer within seconds is unreachable for us.
DEFAULT_TIMEOUT = (3.0, 10.0)


class ClusterUnreachableError(RuntimeError):
    """The API server did not answer, or answered that it is not ready."""


class KubeconfigError(RuntimeError):
    """A kubeconfig that cannot be loaded; the message says which and what to do."""


class UnsafeKubeconfigError(KubeconfigError):
    """An in-memory kubeconfig (a member's, from a Secret) that would run a program or read a
    file inside the operator's pod; the message names every refused field and what to use."""


# Fields of a kubeconfig from a Secret that make the client run a program or read a file of
# the operator's pod: whoever can write that Secret could otherwise run code as the operator
# or read its own credentials. Each maps to what to use instead.
REFUSED_USER_FIELDS = {
    "exec": "a token (gridaware member join creates one)",
    "auth-provider": "a token (gridaware member join creates one)",
    "tokenFile": "token",
    "client-certificate": "client-certificate-data",
    "client-key": "client-key-data",
}
REFUSED_CLUSTER_FIELDS = {"certificate-authority": "certificate-authority-data"}
# Fields of a kubeconfig user that hold a credential inline.
INLINE_CREDENTIALS = ("token", "password", "client-key-data", "client-certificate-data")


# What callers above this layer catch: an API error answer, or no answer at all.
ApiError = ApiException
FAILURES = (ApiException, urllib3.exceptions.HTTPError, OSError, ClusterUnreachableError)
NETWORK_ERRORS = (urllib3.exceptions.HTTPError, OSError, ClusterUnreachableError)


def unsafe_fields(kubeconfig: dict[str, Any]) -> list[str]:
    """What an in-memory kubeconfig must change before gridaware uses it (pure); [] if none.

    A file the user chose on their own machine may use exec plugins; a kubeconfig that arrives
    in a Secret may not."""
    problems: list[str] = []
    sections = (
        ("users", "user", REFUSED_USER_FIELDS),
        ("clusters", "cluster", REFUSED_CLUSTER_FIELDS),
    )
    for section, key, refused in sections:
        entries = kubeconfig.get(section)
        for entry in entries if isinstance(entries, list) else []:
            body = entry.get(key) if isinstance(entry, dict) else None
            if not isinstance(body, dict):
                continue
            name = entry.get("name", "?")
            problems.extend(
                f"{key} '{name}' uses {field}: replace it with {instead}"
                for field, instead in refused.items()
                if body.get(field) not in (None, "", {})
            )
    return problems


def check_inline(kubeconfig: dict[str, Any]) -> None:
    """Raise UnsafeKubeconfigError when ``kubeconfig`` would run programs or read files."""
    problems = unsafe_fields(kubeconfig)
    if problems:
        raise UnsafeKubeconfigError(
            "kubeconfig refused (exec plugins, auth providers and file paths are not allowed "
            "in a member kubeconfig Secret): " + "; ".join(problems)
        )


def from_kubeconfig(
    kubeconfig: Path | dict[str, Any], context: str | None = None
) -> kubernetes.client.ApiClient:
    """An ApiClient for ``context`` of ``kubeconfig`` (a path or a parsed kubeconfig).

    A parsed kubeconfig comes from a Secret, so it is checked first (``check_inline``):
    UnsafeKubeconfigError when it has exec, auth-provider, tokenFile or file paths."""
    configuration = kubernetes.client.Configuration()
    if not isinstance(kubeconfig, Path):
        check_inline(kubeconfig)
    if isinstance(kubeconfig, Path):
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig),
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
    else:
        try:
            kubernetes.config.load_kube_config_from_dict(  # type: ignore[no-untyped-call]
                kubeconfig,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        except (ConfigException, ValueError, TypeError, AttributeError) as exc:
            # e.g. client-key-data that is not base64: say so without quoting the Secret
            detail = redact(str(exc), inline_credentials(kubeconfig))[:200]
            raise KubeconfigError(
                f"kubeconfig cannot be loaded ({exc.__class__.__name__}: {detail}); "
                "re-run gridaware member join to write a fresh one"
            ) from None
    return client_for(configuration)


def inline_credentials(kubeconfig: dict[str, Any]) -> list[str]:
    """The credentials a kubeconfig carries (tokens, passwords, client keys and certificates,
    as given and base64-decoded), to be masked in any message about it."""
    found: list[str] = []
    for entry in kubeconfig.get("users") or []:
        user = entry.get("user") if isinstance(entry, dict) else None
        for field in INLINE_CREDENTIALS:
            value = user.get(field) if isinstance(user, dict) else None
            if isinstance(value, str) and value:
                found.append(value)
                found.extend(_decoded(value) if field.endswith("-data") else [])
    return found


def _decoded(value: str) -> list[str]:
    """A base64 field decoded, and each long line of it (a PEM's body lines)."""
    try:
        text = base64.b64decode(value, validate=True).decode("utf-8", "replace")
    except ValueError:
        return []
    lines = text.splitlines()
    return [text, *(ln for ln in lines if len(ln) >= 16 and not ln.startswith("-----"))]


def rejection(exc: BaseException) -> str | None:
    """The API server's message when it refused a request as invalid (400/422), else None."""
    if not isinstance(exc, ApiException) or exc.status not in (400, 422):
        return None
    try:
        body = json.loads(exc.body or "{}")
    except ValueError:
        return str(exc.body or exc.reason)
    return str(body.get("message") or exc.reason)


def raw_get(client: kubernetes.client.ApiClient, path: str) -> tuple[int, str]:
    """GET a non-resource path such as ``/readyz``; returns status and body."""
    method, url, headers, body, post = client.param_serialize(
        "GET", path, auth_settings=["BearerToken"]
    )
    try:
        response = client.call_api(
            method, url, headers, body, post, _request_timeout=DEFAULT_TIMEOUT
        )
        data = response.read()  # type: ignore[no-untyped-call]
    except ApiException as exc:
        return int(exc.status or 0), str(exc.body or exc.reason)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ClusterUnreachableError(str(exc)) from exc
    return int(response.status), bytes(data or b"").decode("utf-8", "replace")


MERGE_PATCH = "application/merge-patch+json"


def request_json(
    client: kubernetes.client.ApiClient,
    method: str,
    path: str,
    body: object = None,
    query: list[tuple[str, str]] | None = None,
    content_type: str = "application/json",
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    answer: bool = True,
) -> dict[str, Any]:
    """One API request with a plain JSON body and answer (``{}`` when ``answer`` is False).

    The hot paths (member Job create, list and watch, status patches, Events) skip the
    client's typed models: building and validating them cost more CPU than the request
    itself. A refusal raises the ``ApiException`` the typed call would have raised."""
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    method, url, headers, payload, _ = client.param_serialize(
        method,
        path,
        query_params=query,
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    response = client.call_api(method, url, headers, payload, _request_timeout=timeout)
    data = bytes(response.read() or b"")  # type: ignore[no-untyped-call]
    if not 200 <= response.status <= 299:
        raise ApiException.from_response(  # (it raises the status's own subclass)
            http_resp=response, body=data.decode("utf-8", "replace"), data=None
        )
    if not answer:
        return {}
    try:
        out = json.loads(data)
    except ValueError:
        raise ApiException(status=0, reason=f"{method} {path}: the answer is not JSON") from None
    return out if isinstance(out, dict) else {}


def watch_json(
    client: kubernetes.client.ApiClient,
    path: str,
    query: list[tuple[str, str]],
    timeout_seconds: int,
) -> Iterator[dict[str, Any]]:
    """The events of a watch on ``path`` as JSON dicts (``{"type", "object"}``), until the
    server ends it after ``timeout_seconds``; plain JSON for the same reason as
    ``request_json``."""
    query = [*query, ("watch", "true"), ("timeoutSeconds", str(timeout_seconds))]
    method, url, headers, _, _ = client.param_serialize(
        "GET",
        path,
        query_params=query,
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
    )
    response = client.call_api(method, url, headers, _request_timeout=(3.0, timeout_seconds + 10))
    raw, ended = response.response, False
    try:
        if not 200 <= response.status <= 299:
            data = bytes(response.read() or b"")  # type: ignore[no-untyped-call]
            raise ApiException.from_response(
                http_resp=response, body=data.decode("utf-8", "replace"), data=None
            )
        buffer = bytearray()
        for chunk in raw.stream(amt=None, decode_content=False):
            buffer.extend(chunk)
            end = buffer.rfind(b"\n")
            if end < 0:
                continue
            lines, buffer = bytes(buffer[:end]), buffer[end + 1 :]
            for line in lines.split(b"\n"):
                if line.strip():
                    yield _event(line)
        ended = True
    finally:
        if not ended:  # left early: unread data must not go back to the pool
            raw.close()
        raw.release_conn()


def _event(line: bytes) -> dict[str, Any]:
    try:
        out = json.loads(line)
    except ValueError:
        raise ApiException(status=0, reason="a watch event is not JSON") from None
    return out if isinstance(out, dict) else {}


def is_ready(client: kubernetes.client.ApiClient) -> bool:
    """True when the API server answers ``/readyz`` with 200."""
    try:
        status, _ = raw_get(client, "/readyz")
    except ClusterUnreachableError:
        return False
    return status == 200


def server_version(client: kubernetes.client.ApiClient) -> str:
    """The API server's gitVersion, e.g. ``v1.37.2``; ClusterUnreachableError without an
    answer. An answer that refuses (a 401 for a credential the member does not know) is
    raised as the ApiException it is, for the caller to tell "refused" from "unreachable"
    (and not to quote the whole error dump as the reason)."""
    try:
        info = kubernetes.client.VersionApi(client).get_code(_request_timeout=DEFAULT_TIMEOUT)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ClusterUnreachableError(str(exc)) from exc
    return str(info.git_version)


def hub_configuration(
    kubeconfig: Path | None, context: str | None
) -> kubernetes.client.Configuration:
    """Client configuration for the hub: a kubeconfig (file, ``KUBECONFIG`` or the default
    path) or, inside a pod, the service account."""
    configuration = kubernetes.client.Configuration()
    try:
        if kubeconfig is None and context is None and _in_cluster():
            kubernetes.config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
        else:
            kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(kubeconfig) if kubeconfig else None,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
    except (ConfigException, OSError) as exc:
        where = kubeconfig or "KUBECONFIG or ~/.kube/config"
        ctx = f" (context {context})" if context else ""
        raise KubeconfigError(
            f"cannot use kubeconfig {where}{ctx}: {str(exc).strip()}; "
            "pass --kubeconfig and --context, or set KUBECONFIG"
        ) from None
    return configuration


def _in_cluster() -> bool:
    import os  # noqa: PLC0415

    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and not os.environ.get("KUBECONFIG")


def connection_params(configuration: kubernetes.client.Configuration) -> dict[str, Any]:
    """What Kopf's ConnectionInfo needs, from a client configuration."""
    token = None
    auth = (configuration.api_key or {}).get("authorization") or (configuration.api_key or {}).get(
        "BearerToken"
    )
    if auth:
        token = auth.split(" ", 1)[1] if auth.lower().startswith("bearer ") else auth
    return {
        "server": configuration.host,
        "ca_path": configuration.ssl_ca_cert,
        "insecure": not configuration.verify_ssl,
        "certificate_path": configuration.cert_file,
        "private_key_path": configuration.key_file,
        "scheme": "Bearer" if token else None,
        "token": token,
    }


def client_for(configuration: kubernetes.client.Configuration) -> kubernetes.client.ApiClient:
    """A client that fails fast (no hidden retries) and keeps enough connections open for the
    operator's worker threads (the default pool of 10 would re-handshake TLS under load)."""
    configuration.retries = urllib3.Retry(total=0)
    configuration.connection_pool_maxsize = 48
    return kubernetes.client.ApiClient(configuration)
