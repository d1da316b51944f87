"""Kubeconfig files for lab clusters: one per cluster and a merged one, credentials inlined."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def entry(name: str, server: str, ca: Path, cert: Path, key: Path) -> dict[str, Any]:
    """A single-context kubeconfig (as a dict) for cluster ``name``."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": name, "cluster": {"server": server, "certificate-authority-data": _b64(ca)}}
        ],
        "users": [
            {
                "name": f"{name}-admin",
                "user": {"client-certificate-data": _b64(cert), "client-key-data": _b64(key)},
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-admin"}}],
        "current-context": name,
        "preferences": {},
    }


def merge(configs: list[dict[str, Any]], current: str) -> dict[str, Any]:
    """One kubeconfig holding every cluster, user and context of ``configs``."""
    merged: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [],
        "users": [],
        "contexts": [],
        "current-context": current,
        "preferences": {},
    }
    for cfg in configs:
        for key in ("clusters", "users", "contexts"):
            merged[key].extend(cfg[key])
    return merged


def write(path: Path, config: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
