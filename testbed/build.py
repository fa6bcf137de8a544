"""Build a run's network and faults from a validated scenario."""

from __future__ import annotations

import json
from dataclasses import replace

import networkx as nx

from testbed.errors import ScenarioError
from testbed.network import LinkSpec, Network, profile
from testbed.runners.simulated import Fault
from testbed.scenario import Scenario

_LINK_KEYS = ("bandwidth_bps", "latency_s", "jitter_s", "loss_rate")


def base_link(scenario: Scenario) -> tuple[LinkSpec, int]:
    """Return the scenario's default link (its profile with ``network.*`` overrides) and overhead."""
    net = scenario.values["network"]
    chosen = profile(net["profile"])
    changes = {key: net[key] for key in _LINK_KEYS if net[key] is not None}
    try:
        link = replace(chosen.link, **changes)
    except ValueError as exc:
        raise ScenarioError(f"invalid [network] settings: {exc}") from None
    overhead = chosen.overhead_bytes if net["overhead_bytes"] is None else net["overhead_bytes"]
    return link, overhead


def _link_from_table(table: dict, default: LinkSpec, where: str) -> LinkSpec:
    unknown = set(table) - {"a", "b", "profile", *_LINK_KEYS}
    if unknown:
        raise ScenarioError(f"unknown keys {sorted(unknown)} in {where}: use a, b, profile, {', '.join(_LINK_KEYS)}")
    link = default
    if "profile" in table:
        try:
            link = profile(table["profile"]).link
        except ValueError as exc:
            raise ScenarioError(f"invalid {where}: {exc}") from None
    changes = {key: float(table[key]) for key in _LINK_KEYS if key in table}
    try:
        return replace(link, **changes)
    except (ValueError, TypeError) as exc:
        raise ScenarioError(f"invalid {where}: {exc}") from None


def build_network(scenario: Scenario, parties: list[str]) -> Network:
    """Return the scenario's topology: a full mesh of the default link unless ``[topology]`` gives one."""
    link, overhead = base_link(scenario)
    seed = scenario.values["scenario"]["seed"]
    topo = scenario.values["topology"]
    if topo["file"] is None and not topo["links"]:
        return Network.full_mesh(parties, link, overhead_bytes=overhead, seed=seed)
    graph = nx.Graph()
    if topo["file"] is not None:
        try:
            data = json.loads(topo["file"].read_text(encoding="utf-8"))
            loaded = nx.node_link_graph(data, edges="links")
        except (ValueError, KeyError, TypeError) as exc:
            raise ScenarioError(
                f"invalid topology.file = {str(topo['file'])!r}: not a networkx node-link JSON graph ({exc})"
            ) from None
        for a, b, attrs in loaded.edges(data=True):
            graph.add_edge(a, b, link=_link_from_table(dict(attrs), link, f"topology.file edge {a}-{b}"))
    for i, table in enumerate(topo["links"]):
        where = f"topology.links[{i}]"
        if not isinstance(table, dict) or "a" not in table or "b" not in table:
            raise ScenarioError(f"invalid {where} = {table!r}: use a table with at least a and b, e.g. {{a = \"sp\", b = \"router\"}}")
        graph.add_edge(str(table["a"]), str(table["b"]), link=_link_from_table(table, link, where))
    missing = [p for p in parties if p not in graph]
    if missing:
        raise ScenarioError(f"invalid [topology]: parties {missing} are not nodes; nodes are {sorted(graph)}")
    return Network(graph, overhead_bytes=overhead, seed=seed)


def build_faults(scenario: Scenario) -> list[Fault]:
    """Return the faults that ``[faults]`` asks for."""
    spec = scenario.values["faults"]
    faults = []
    if spec["stop_party"]:
        faults.append(Fault("stop_party", spec["at_s"], party=spec["stop_party"]))
    if spec["cut_link"]:
        if len(spec["cut_link"]) != 2 or not all(isinstance(n, str) for n in spec["cut_link"]):
            raise ScenarioError(f"invalid faults.cut_link = {spec['cut_link']!r}: use two node names, e.g. [\"sp\", \"mri\"]")
        a, b = spec["cut_link"]
        faults.append(Fault("cut_link", spec["at_s"], a=a, b=b))
    return faults
