"""The lab's pure parts: plans, ports, kubeconfigs, the kind backend's configs and commands."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from gridaware.api import regions
from gridaware.cli import main
from gridaware.cli.output import table
from gridaware.lab import kind, kubeconfig, local
from gridaware.lab.errors import LabError
from gridaware.lab.model import NodePool, plan

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("names", "zones"),
    [
        pytest.param(["us-west"], ["US-CAL-CISO"], id="one-member"),
        pytest.param(
            ["eu-north", "us-west", "eu-central"],
            ["SE-SE3", "US-CAL-CISO", "DE-LU"],
            id="issue-example",
        ),
        pytest.param(["uk-south", "ca-central"], ["GB", "CA-ON"], id="two-members"),
    ],
)
def test_plan_has_hub_then_members_labelled_with_zones(names: list[str], zones: list[str]) -> None:
    lab = plan(names)
    assert [c.name for c in lab.clusters] == ["hub", *names]
    assert lab.clusters[0].role == "hub" and lab.clusters[0].grid_zone is None
    assert [c.grid_zone for c in lab.members] == zones


@pytest.mark.parametrize(
    ("names", "message"),
    [
        pytest.param(["mars"], "unknown region 'mars'; known regions: ", id="unknown"),
        pytest.param(["us-west", "us-west"], "only once", id="duplicate"),
        pytest.param([], "at least one member", id="empty"),
    ],
)
def test_plan_rejects_bad_regions(names: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan(names)


@pytest.mark.parametrize("bad", ["lots", "32 cores", "-1", ""])
def test_node_pool_rejects_non_quantities(bad: str) -> None:
    with pytest.raises(ValueError, match="quantity"):
        NodePool(cpu=bad)


def test_node_pool_capacity_has_gpus_only_when_asked() -> None:
    assert "nvidia.com/gpu" not in NodePool(gpus=0).capacity()
    assert NodePool(gpus=8).capacity()["nvidia.com/gpu"] == "8"


def test_every_default_lab_region_has_reference_data() -> None:
    for name in regions.DEFAULT_LAB_REGIONS:
        region = regions.lookup(name)
        assert not region.synthetic_only
        assert region.price_zone is not None


def test_allocate_ports_picks_distinct_free_ports() -> None:
    ports = local.allocate_ports(20, None)
    assert len(set(ports)) == 20


def test_allocate_ports_with_busy_base_says_which_port() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(LabError, match=f"port {port} is in use"):
            local.allocate_ports(5, port)


def test_merged_kubeconfig_has_a_context_per_cluster(tmp_path: Path) -> None:
    for name in ("ca.crt", "a.crt", "a.key"):
        (tmp_path / name).write_text(name)
    parts = [
        kubeconfig.entry(
            n, f"https://127.0.0.1:{p}", tmp_path / "ca.crt", tmp_path / "a.crt", tmp_path / "a.key"
        )
        for n, p in (("hub", 1), ("us-west", 2))
    ]
    merged = kubeconfig.merge(parts, current="hub")
    assert [c["name"] for c in merged["contexts"]] == ["hub", "us-west"]
    assert merged["current-context"] == "hub"
    kubeconfig.write(tmp_path / "kc", merged)
    assert (tmp_path / "kc").stat().st_mode & 0o077 == 0


def test_kind_config_per_cluster_has_own_name_port_subnets_and_labels() -> None:
    template = kind.load_template(REPO / "kind-config.yaml")
    lab = plan(["us-west", "eu-central"])
    configs = [kind.render_config(template, c, i, 7000 + i) for i, c in enumerate(lab.clusters)]
    assert [c["name"] for c in configs] == [
        "gridaware-hub",
        "gridaware-us-west",
        "gridaware-eu-central",
    ]
    assert [c["networking"]["apiServerPort"] for c in configs] == [7000, 7001, 7002]
    assert len({c["networking"]["podSubnet"] for c in configs}) == 3
    assert len({c["networking"]["serviceSubnet"] for c in configs}) == 3
    labels = configs[1]["nodes"][0]["labels"]
    assert labels == {
        "topology.kubernetes.io/region": "us-west",
        "gridaware.dev/grid-zone": "US-CAL-CISO",
    }
    assert configs[0]["nodes"][0]["labels"] == {}
    assert template["name"] == "gridaware-CLUSTER", "rendering must not modify the template"


def test_kind_commands_write_the_lab_kubeconfig_layout(tmp_path: Path) -> None:
    lab = plan(["us-west"])
    cmds = kind.commands(lab, tmp_path)
    assert cmds[1] == [
        "kind",
        "create",
        "cluster",
        "--name",
        "gridaware-us-west",
        "--config",
        str(tmp_path / "clusters/us-west/kind.yaml"),
        "--kubeconfig",
        str(tmp_path / "clusters/us-west/kubeconfig"),
        "--wait",
        "180s",
    ]


def test_kind_context_is_renamed_after_the_cluster() -> None:
    raw = yaml.safe_load("""
clusters: [{name: kind-gridaware-hub, cluster: {server: https://127.0.0.1:1}}]
users: [{name: kind-gridaware-hub, user: {}}]
contexts: [{name: kind-gridaware-hub, context: {cluster: kind-gridaware-hub,
            user: kind-gridaware-hub}}]
current-context: kind-gridaware-hub
""")
    cfg = kind.rename_context(raw, "hub")
    assert cfg["current-context"] == "hub"
    assert cfg["contexts"][0]["context"] == {"cluster": "hub", "user": "hub-admin"}


def test_kind_template_must_be_a_cluster(tmp_path: Path) -> None:
    bad = tmp_path / "k.yaml"
    bad.write_text("kind: Pod\n")
    with pytest.raises(LabError, match="not a kind Cluster"):
        kind.load_template(bad)


def test_kind_backend_without_docker_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    rc = main(
        [
            "lab",
            "--state-dir",
            str(tmp_path / "s"),
            "up",
            "--backend",
            "kind",
            "--kind-config",
            str(REPO / "kind-config.yaml"),
        ]
    )
    err = capsys.readouterr().err
    assert rc != 0
    assert err.startswith("error: --backend kind needs 'docker' on PATH")
    assert err.count("\n") == 1
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["up", "--regions", "mars"], "error: unknown region 'mars'", id="region"),
        pytest.param(["down"], "error: no lab at", id="down-without-lab"),
        pytest.param(["status"], "error: no lab at", id="status-without-lab"),
        pytest.param(["up", "--node-cpu", "many"], "error: ", id="bad-quantity"),
    ],
)
def test_cli_errors_are_one_line_and_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    rc = main(["lab", "--state-dir", str(tmp_path / "s"), *argv])
    err = capsys.readouterr().err
    assert rc != 0
    assert err.startswith(message)
    assert err.count("\n") == 1, err
    assert not (tmp_path / "s").exists()


def test_missing_go_toolchain_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GRIDAWARE_BIN_DIR", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    rc = main(["lab", "--state-dir", str(tmp_path / "s"), "up"])
    err = capsys.readouterr().err
    assert rc != 0
    assert err.startswith("error: no Go toolchain on PATH")
    assert not (tmp_path / "s").exists()


def test_table_aligns_columns() -> None:
    out = table([{"A": "x", "BB": "yyy"}, {"A": "long", "BB": "z"}])
    assert out.splitlines() == ["A      BB", "x      yyy", "long   z"]
