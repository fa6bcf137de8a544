"""Scenario loading: defaults, overrides, and clear errors for bad input."""

import json

import pytest

from testbed import scenario as scenarios
from testbed.build import build_network
from testbed.errors import ScenarioError


def write(tmp_path, text, name="s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_scenarios_load():
    for path in sorted(scenarios.SCENARIO_DIR.glob("*.toml")):
        loaded = scenarios.load(path)
        assert loaded.name


def test_default_scenario_loads_without_arguments():
    assert scenarios.load().path == scenarios.DEFAULT_SCENARIO


def test_scenario_name_resolves_in_scenario_dir():
    assert scenarios.load("calibration")["calibration.message_bytes"] == 100_000_000


def test_override_changes_value():
    loaded = scenarios.load("calibration", ["network.latency_s=0.02", "scenario.name=\"x\""])
    assert loaded["network.latency_s"] == 0.02
    assert loaded.name == "x"


def test_override_plain_string_value():
    assert scenarios.load("pingpong", ["network.profile=mobile"])["network.profile"] == "mobile"


BAD_INPUTS = [
    ("[network]\nbandwith_bps = 1e9\n", "unknown key network.bandwith_bps: valid keys of [network]"),
    ("[netwrk]\nprofile = 'lan-1g'\n", "unknown section [netwrk]"),
    ("[network]\nbandwidth_bps = '10 Gb'\n", "invalid network.bandwidth_bps = '10 Gb': expected a number"),
    ("[network]\nbandwidth_bps = 0\n", "invalid network.bandwidth_bps = 0.0: must be greater than 0"),
    ("[network]\nbandwidth_bps = -5e6\n", "must be greater than 0"),
    ("[network]\nlatency_s = -0.01\n", "invalid network.latency_s = -0.01: must be at least 0"),
    ("[network]\nloss_rate = 1.5\n", "invalid network.loss_rate = 1.5: must be at most"),
    ("[network]\nprofile = 'satellite'\n", "invalid network.profile = 'satellite': use one of loopback"),
    ("[topology]\nfile = 'missing.json'\n", "invalid topology.file = 'missing.json': file"),
    ("[pingpong]\nexchanges = 2.5\n", "invalid pingpong.exchanges = 2.5: expected an integer"),
    ("[output]\nkeep_payloads = 'yes'\n", "expected true or false"),
    ("[scenario]\nworkload = 'nothing'\n", "invalid scenario.workload = 'nothing': use one of"),
    ("[network\nprofile = 1\n", "invalid TOML"),
    ("network = 3\n", "invalid [network] = 3: expected a table"),
]


@pytest.mark.parametrize("text, message", BAD_INPUTS)
def test_bad_scenario_gives_clear_error(tmp_path, text, message):
    with pytest.raises(ScenarioError, match=_escape(message)):
        scenarios.load(write(tmp_path, text))


def _escape(text):
    import re

    return re.escape(text)


def test_missing_scenario_file_names_it(tmp_path):
    with pytest.raises(ScenarioError, match="scenario file .*nope.toml.* not found"):
        scenarios.load(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    "override, message",
    [
        ("network.bandwidth_bps=0", "must be greater than 0"),
        ("network.latency=1", "unknown key network.latency"),
        ("latency_s=1", "use section.key"),
        ("network.latency_s", "use KEY=VALUE"),
        ("nosuch.key=1", "unknown section in override"),
    ],
)
def test_bad_override_gives_clear_error(override, message):
    with pytest.raises(ScenarioError, match=_escape(message)):
        scenarios.load("calibration", [override])


def test_topology_links_build_a_graph(tmp_path):
    path = write(
        tmp_path,
        """
[topology]
links = [
  {a = "ping", b = "router", profile = "lan-1g"},
  {a = "pong", b = "router", bandwidth_bps = 1e6, latency_s = 0.5},
]
""",
    )
    net = build_network(scenarios.load(path), ["ping", "pong"])
    assert net.path("ping", "pong") == ["ping", "router", "pong"]
    assert net.graph.edges["pong", "router"]["link"].bandwidth_bps == 1e6


def test_topology_file_is_loaded(tmp_path):
    graph = {
        "directed": False, "multigraph": False, "graph": {},
        "nodes": [{"id": "ping"}, {"id": "pong"}],
        "links": [{"source": "ping", "target": "pong", "latency_s": 0.25}],
    }
    (tmp_path / "topo.json").write_text(json.dumps(graph))
    path = write(tmp_path, "[topology]\nfile = 'topo.json'\n")
    net = build_network(scenarios.load(path), ["ping", "pong"])
    assert net.graph.edges["ping", "pong"]["link"].latency_s == 0.25


def test_topology_missing_party_is_rejected(tmp_path):
    path = write(tmp_path, '[topology]\nlinks = [{a = "ping", b = "router"}]\n')
    with pytest.raises(ScenarioError, match=r"parties \['pong'\] are not nodes"):
        build_network(scenarios.load(path), ["ping", "pong"])


def test_topology_link_with_bad_value_is_rejected(tmp_path):
    path = write(tmp_path, '[topology]\nlinks = [{a = "ping", b = "pong", bandwidth_bps = -1}]\n')
    with pytest.raises(ScenarioError, match=r"invalid topology.links\[0\]: invalid bandwidth_bps"):
        build_network(scenarios.load(path), ["ping", "pong"])


def test_override_of_workload_section():
    loaded = scenarios.load(None, ["utility.enabled=false", "database.entries=64"])
    assert loaded["utility.enabled"] is False
    assert loaded["database.entries"] == 64
