"""The lab's pure observability and JobSet parts: the energy meter's counters (Kepler and DCGM
shapes, GPU assignment, monotonicity), the Prometheus configuration, and the JobSet
controller's configuration and webhook registrations."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridaware.k8s.pods import ContainerDemand, RunningPod
from gridaware.lab import jobset, prometheus
from gridaware.lab.energy import DCGM, KEPLER, EnergyMeter


def _pod(name: str, cpu: float = 2.0, gpus: int = 0, node: str = "n0") -> RunningPod:
    uid = f"uid-{name}"
    return RunningPod(
        "ml", name, uid, node, (ContainerDemand("main", f"lab://{uid}/main", cpu, gpus),)
    )


def _series(text: str, metric: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith(metric + "{"):
            labels, value = line[len(metric) :].rsplit(" ", 1)
            out[labels] = float(value)
    return out


def test_cpu_and_gpu_power_integrate_into_kepler_joules_and_dcgm_millijoules() -> None:
    meter = EnergyMeter(watts_per_cpu=10, watts_per_gpu=300, gpus_per_node=4)
    pods = [_pod("train-a", cpu=2, gpus=2), _pod("etl-b", cpu=1)]
    meter.advance(pods, 100.0)
    meter.advance(pods, 110.0)
    text = meter.exposition()
    kepler = _series(text, KEPLER)
    train = next(v for k, v in kepler.items() if 'pod_name="train-a"' in k)
    etl = next(v for k, v in kepler.items() if 'pod_name="etl-b"' in k)
    assert (train, etl) == (pytest.approx(200.0), pytest.approx(100.0))  # 2*10 W, 1*10 W, 10 s
    dcgm = _series(text, DCGM)
    held = {k: v for k, v in dcgm.items() if 'pod="train-a"' in k}
    assert len(held) == 2 and all(v == pytest.approx(3_000_000.0) for v in held.values())
    assert all('namespace="ml"' in k and 'container="main"' in k for k in held)
    assert f"# TYPE {DCGM} counter" in text and f"# TYPE {KEPLER} counter" in text


def test_gpu_released_by_a_finished_pod_keeps_its_counter_without_pod_labels() -> None:
    meter = EnergyMeter(watts_per_cpu=10, watts_per_gpu=100, gpus_per_node=1)
    meter.advance([_pod("a", gpus=1)], 0.0)
    meter.advance([_pod("a", gpus=1)], 5.0)
    meter.advance([], 6.0)
    meter.advance([_pod("b", gpus=1)], 7.0)
    meter.advance([_pod("b", gpus=1)], 9.0)
    (labels, value), *_ = _series(meter.exposition(), DCGM).items()
    # each interval is charged to the pods seen at its end: a 0-5 s, nothing 5-6 s, b 6-9 s
    assert 'pod="b"' in labels and value == pytest.approx(800_000.0)
    meter.advance([], 10.0)
    (labels, value), *_ = _series(meter.exposition(), DCGM).items()
    assert "pod=" not in labels and value == pytest.approx(800_000.0)


def test_gpus_beyond_the_node_are_not_invented() -> None:
    meter = EnergyMeter(watts_per_cpu=10, watts_per_gpu=100, gpus_per_node=2)
    meter.advance([_pod("a", gpus=3)], 0.0)
    assert len(_series(meter.exposition(), DCGM)) == 2


@given(
    st.lists(
        st.tuples(st.floats(min_value=0, max_value=100), st.sets(st.sampled_from("abcd"))),
        min_size=1,
        max_size=25,
    )
)
def test_counters_never_decrease(steps: list[tuple[float, set[str]]]) -> None:
    meter = EnergyMeter(watts_per_cpu=7, watts_per_gpu=50, gpus_per_node=2)
    now = 0.0
    seen: dict[str, float] = {}
    for dt_, names in steps:
        now += dt_
        meter.advance([_pod(n, gpus=1) for n in sorted(names)], now)
        text = meter.exposition()
        current = {**_series(text, KEPLER), **_series(text, DCGM)}
        for k, v in current.items():
            assert v >= seen.get(k, 0.0) - 1e-9
        seen.update(current)


def test_label_values_are_escaped() -> None:
    meter = EnergyMeter(watts_per_cpu=1, watts_per_gpu=1, gpus_per_node=0)
    pod = RunningPod("ml", "p", "u", "n", (ContainerDemand('we"ird\\', "id", 1, 0),))
    meter.advance([pod], 0.0)
    assert 'container_name="we\\"ird\\\\"' in meter.exposition()


@pytest.mark.parametrize(
    ("operator_port", "jobs"),
    [
        pytest.param(None, ["energy"], id="exporters-only"),
        pytest.param(9464, ["gridaware-operator", "energy"], id="with-operator"),
    ],
)
def test_prometheus_config_scrapes_loopback_targets(
    operator_port: int | None, jobs: list[str]
) -> None:
    settings = prometheus.Settings(
        operator_metrics_port=operator_port, rules=(Path("/r.yaml"),), scrape_interval=2
    )
    cfg = prometheus.config(settings, {"us-west": 4001, "eu-central": 4002})
    assert [j["job_name"] for j in cfg["scrape_configs"]] == jobs
    assert cfg["global"] == {"scrape_interval": "2s", "evaluation_interval": "2s"}
    assert cfg["rule_files"] == ["/r.yaml"]
    energy = cfg["scrape_configs"][-1]
    assert energy["honor_labels"] is True
    assert {c["labels"]["cluster"]: c["targets"] for c in energy["static_configs"]} == {
        "eu-central": ["127.0.0.1:4002"],
        "us-west": ["127.0.0.1:4001"],
    }
    targets = [t for j in cfg["scrape_configs"] for c in j["static_configs"] for t in c["targets"]]
    assert all(t.startswith("127.0.0.1:") for t in targets)


def test_chart_rules_are_found_from_the_checkout() -> None:
    (rules,) = prometheus.default_rules()
    assert rules.name == "gridaware.rules.yaml" and rules.is_file()


def test_jobset_config_disables_cert_management_and_binds_loopback(tmp_path: Path) -> None:
    cfg = jobset.config(9443, 8081, tmp_path)
    assert cfg["internalCertManagement"] == {"enable": False}
    assert cfg["leaderElection"] == {"leaderElect": False}
    assert cfg["webhook"] == {"port": 9443, "host": "127.0.0.1", "certDir": str(tmp_path)}
    assert cfg["metrics"] == {"bindAddress": "0"}
    assert cfg["health"]["healthProbeBindAddress"] == "127.0.0.1:8081"


def test_jobset_webhooks_are_upstreams_pointed_at_loopback() -> None:
    mutating, validating = jobset.webhook_configurations(9443, b"CA")
    hooks = {h["name"]: h for doc in (mutating, validating) for h in doc["webhooks"]}
    assert set(hooks) == {"mjobset.kb.io", "mpod.kb.io", "vjobset.kb.io", "vpod.kb.io"}
    for hook in hooks.values():
        assert re.fullmatch(r"https://127\.0\.0\.1:9443/[a-z0-9-]+", hook["clientConfig"]["url"])
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == b"CA"
        assert hook["failurePolicy"] == "Fail"
    assert hooks["vjobset.kb.io"]["rules"][0]["operations"] == ["CREATE", "UPDATE"]
    assert hooks["mjobset.kb.io"]["rules"][0]["operations"] == ["CREATE"]
    for pod_hook in ("mpod.kb.io", "vpod.kb.io"):
        selector = hooks[pod_hook]["objectSelector"]["matchExpressions"]
        assert selector == [{"key": "jobset.sigs.k8s.io/jobset-name", "operator": "Exists"}]


def test_jobset_crd_comes_from_the_pinned_module(monkeypatch: pytest.MonkeyPatch) -> None:
    from gridaware.lab import binaries  # noqa: PLC0415

    monkeypatch.delenv("GRIDAWARE_JOBSET_CRD", raising=False)
    tools = binaries.tools_dir()
    if tools is None or not (tools / "jobset" / "go.mod").is_file():
        pytest.skip("no checkout tools/ directory")
    path = jobset.crd_file(tools)
    assert "sigs.k8s.io/jobset@v0.10.1" in str(path)
    assert path.name == "jobset.x-k8s.io_jobsets.yaml"
