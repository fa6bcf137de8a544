"""Flow checks: the real message-flow graph, bytes and rounds against the protocol's specification.

The flow graph of a transcript is a ``networkx.DiGraph`` on the parties with one edge per
direction that carried messages; the edge's ``messages`` attribute maps each phase to the
number of messages sent in that direction during it. :func:`check_flow` compares that graph
with the one the specification predicts (``nx.utils.graphs_equal``, attributes included),
and compares bytes per direction and the round count (longest causal chain of messages) with
the documented formulas.
"""

from __future__ import annotations

from collections import defaultdict

import networkx as nx

from testbed.transcript import Transcript

from proofs_check.spec import Flow


def flow_graph(messages: dict[tuple[str, str, str], int]) -> nx.DiGraph:
    """Return the party graph of ``(src, dst, phase) -> count``."""
    per_edge: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for (src, dst, phase), count in messages.items():
        if count:
            per_edge[(src, dst)][phase] = count
    graph = nx.DiGraph()
    for (src, dst), phases in per_edge.items():
        graph.add_edge(src, dst, messages=dict(sorted(phases.items())))
    return graph


def measured_flow(transcript: Transcript) -> Flow:
    """Return the flow a real transcript shows."""
    messages: dict[tuple[str, str, str], int] = defaultdict(int)
    for record in transcript.records:
        messages[(record.src, record.dst, record.phase)] += 1
    return Flow(dict(messages), transcript.bytes_by_direction(), transcript.rounds())


def check_flow(expected: Flow, transcript: Transcript) -> dict:
    """Compare a transcript with its specified flow; return the findings as a JSON-ready dict."""
    measured = measured_flow(transcript)
    graph_ok = nx.utils.graphs_equal(flow_graph(expected.messages), flow_graph(measured.messages))
    bytes_ok = expected.bytes_by_direction == measured.bytes_by_direction
    rounds_ok = expected.rounds == measured.rounds
    return {
        "ok": bool(graph_ok and bytes_ok and rounds_ok),
        "graph_ok": bool(graph_ok),
        "bytes_ok": bool(bytes_ok),
        "rounds_ok": bool(rounds_ok),
        "expected": _flow_json(expected),
        "measured": _flow_json(measured),
    }


def _flow_json(flow: Flow) -> dict:
    return {
        "messages": {f"{src}->{dst} [{phase}]": n for (src, dst, phase), n in sorted(flow.messages.items())},
        "bytes": dict(sorted(flow.bytes_by_direction.items())),
        "rounds": flow.rounds,
    }
