"""Network model: links, topologies, named profiles and the timing of one message.

Timing model (all times in seconds, sizes in bytes, rates in bit/s):

* **Framing.** A message of ``n`` payload bytes occupies ``n + overhead_bytes`` bytes on every
  link (the length prefix of our frames plus any per-message header cost a profile adds).
* **Serialisation.** Each direction of a link sends one message at a time, first come first
  served, at ``rate`` bit/s, so back-to-back messages pipeline: the second starts when the first
  has left, not when it has arrived.
* **Paths.** A message follows the lowest-latency path of the topology (a networkx graph whose
  edges carry link specs). It streams through the hops (fluid cut-through): with no competing
  traffic it arrives after ``sum(latency) + wire_bits / min(rate)``, the bottleneck setting the
  duration. A hop cannot finish a message before its last bit has arrived from the previous hop.
* **Sharing.** Concurrent flows share a link direction in FIFO order, message by message: a
  message waits until every message that reached that direction before it has been sent. This
  is how one TCP connection per party pair behaves at a bottleneck queue; it does not model
  fair-share interleaving of simultaneous large messages.
* **Jitter.** Each hop adds a delay drawn uniformly from ``[0, jitter_s]`` with a seeded
  generator (reproducible, not secret). Delivery order per direction is kept (a late message
  holds back the ones behind it, as TCP does).
* **Loss.** Loss is modelled as TCP's steady-state throughput limit (Mathis, Semke, Mahdavi,
  Ott 1997): a path with round-trip time ``rtt = 2 * sum(latency)`` and loss rate ``p > 0`` sends
  at most ``mss_bytes * 8 / rtt * sqrt(3 / 2) / sqrt(p)`` bit/s, so each of its hops runs at the
  minimum of its bandwidth and that limit. Retransmission timeouts are not modelled, so the
  model is optimistic for loss rates above a few percent. A path with zero latency has no such
  limit.
* **Faults.** A link can be cut at a simulated time; a message whose path crosses a cut link
  raises ``LinkDown``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

import networkx as nx

from testbed.errors import LinkDown

MSS_BYTES = 1460
FRAME_PREFIX_BYTES = 8


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """One link, the same in both directions: bit/s, one-way seconds, loss probability."""

    bandwidth_bps: float = math.inf
    latency_s: float = 0.0
    jitter_s: float = 0.0
    loss_rate: float = 0.0

    def __post_init__(self) -> None:
        if not self.bandwidth_bps > 0:
            raise ValueError(f"invalid bandwidth_bps {self.bandwidth_bps!r}: use bits per second > 0, e.g. 1e9")
        for name in ("latency_s", "jitter_s"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"invalid {name} {value!r}: use seconds >= 0, e.g. 0.01")
        if not 0 <= self.loss_rate < 1:
            raise ValueError(f"invalid loss_rate {self.loss_rate!r}: use a probability in [0, 1), e.g. 0.01")


@dataclass(frozen=True, slots=True)
class Profile:
    """A named network setting: the link between every pair of parties, and framing overhead."""

    name: str
    link: LinkSpec
    overhead_bytes: int
    description: str


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "loopback",
            LinkSpec(math.inf, 0.0),
            FRAME_PREFIX_BYTES,
            "no bandwidth limit and no latency: time is compute only",
        ),
        Profile(
            "lan-10g",
            LinkSpec(10e9, 50e-6),
            FRAME_PREFIX_BYTES,
            "10 Gbit/s data-centre LAN, 50 us one-way latency",
        ),
        Profile(
            "lan-1g",
            LinkSpec(1e9, 100e-6),
            FRAME_PREFIX_BYTES,
            "1 Gbit/s office LAN, 100 us one-way latency",
        ),
        Profile(
            "wan-100m",
            LinkSpec(100e6, 20e-3, jitter_s=1e-3),
            FRAME_PREFIX_BYTES,
            "100 Mbit/s WAN, 20 ms one-way latency, up to 1 ms jitter",
        ),
        Profile(
            "mobile",
            LinkSpec(20e6, 40e-3, jitter_s=10e-3, loss_rate=0.01),
            FRAME_PREFIX_BYTES,
            "20 Mbit/s lossy mobile link, 40 ms one-way latency, up to 10 ms jitter, 1% loss",
        ),
    )
}


def profile(name: str) -> Profile:
    """Return the named profile, or raise ``ValueError`` listing the known names."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown network profile {name!r}: use one of {', '.join(PROFILES)}") from None


def mathis_limit_bps(rtt_s: float, loss_rate: float) -> float:
    """Return TCP's steady-state throughput bound in bit/s for a round-trip time and loss rate."""
    if loss_rate <= 0 or rtt_s <= 0:
        return math.inf
    return MSS_BYTES * 8 / rtt_s * math.sqrt(1.5) / math.sqrt(loss_rate)


class _Direction:
    """Serialisation state of one direction of one link."""

    __slots__ = ("busy_until", "last_arrival", "spec", "key")

    def __init__(self, spec: LinkSpec, key: tuple[str, str]) -> None:
        self.spec = spec
        self.key = key
        self.busy_until = 0.0
        self.last_arrival = 0.0


class Network:
    """A topology with per-direction link state; ``transmit`` times one message.

    The graph's nodes are parties and routers; each edge has a ``link`` attribute holding a
    ``LinkSpec``. Build one with ``Network.full_mesh`` or ``Network.from_graph``. Call
    ``reset`` (or build a new one) before reusing it for another run.
    """

    def __init__(self, graph: nx.Graph, *, overhead_bytes: int = FRAME_PREFIX_BYTES, seed: int = 0) -> None:
        if overhead_bytes < 0:
            raise ValueError(f"invalid overhead_bytes {overhead_bytes!r}: use bytes >= 0")
        for a, b, data in graph.edges(data=True):
            if not isinstance(data.get("link"), LinkSpec):
                raise ValueError(f"edge {a!r}-{b!r} has no LinkSpec in its 'link' attribute")
        self.graph = graph
        self.overhead_bytes = overhead_bytes
        self.seed = seed
        self._paths: dict[tuple[str, str], list[tuple[_Direction, float]]] = {}
        self._cut: dict[frozenset[str], float] = {}
        self.reset()

    @classmethod
    def full_mesh(
        cls, parties: list[str], link: LinkSpec, *, overhead_bytes: int = FRAME_PREFIX_BYTES, seed: int = 0
    ) -> "Network":
        """Build a network with a direct link of the same spec between every pair of parties."""
        graph = nx.complete_graph(parties)
        nx.set_edge_attributes(graph, link, "link")
        return cls(graph, overhead_bytes=overhead_bytes, seed=seed)

    def reset(self) -> None:
        """Forget all link state so the next run starts from an idle network."""
        self._rng = random.Random(self.seed)
        self._directions: dict[tuple[str, str], _Direction] = {}
        self._paths.clear()

    def cut_link(self, a: str, b: str, at_s: float) -> None:
        """Cut the link between ``a`` and ``b`` (both directions) from simulated time ``at_s`` on."""
        if not self.graph.has_edge(a, b):
            raise ValueError(f"no link between {a!r} and {b!r} in the topology")
        self._cut[frozenset((a, b))] = at_s

    def path(self, src: str, dst: str) -> list[str]:
        """Return the lowest-latency node path from ``src`` to ``dst``."""
        for node in (src, dst):
            if node not in self.graph:
                raise ValueError(f"party {node!r} is not a node of the topology; nodes are {sorted(self.graph)}")
        try:
            return nx.shortest_path(self.graph, src, dst, weight=lambda u, v, d: d["link"].latency_s)
        except nx.NetworkXNoPath:
            raise ValueError(f"no path from {src!r} to {dst!r} in the topology") from None

    def _hops(self, src: str, dst: str) -> list[tuple[_Direction, float]]:
        hops = self._paths.get((src, dst))
        if hops is not None:
            return hops
        nodes = self.path(src, dst)
        specs = [self.graph.edges[u, v]["link"] for u, v in zip(nodes, nodes[1:])]
        rtt = 2 * sum(s.latency_s for s in specs)
        loss = 1 - math.prod(1 - s.loss_rate for s in specs)
        limit = mathis_limit_bps(rtt, loss)
        hops = []
        for (u, v), spec in zip(zip(nodes, nodes[1:]), specs):
            direction = self._directions.get((u, v))
            if direction is None:
                direction = self._directions[(u, v)] = _Direction(spec, (u, v))
            hops.append((direction, min(spec.bandwidth_bps, limit)))
        self._paths[(src, dst)] = hops
        return hops

    def transmit(self, src: str, dst: str, nbytes: int, now: float) -> float:
        """Send ``nbytes`` from ``src`` to ``dst`` at time ``now``; return the arrival time of its last bit.

        Updates the link state, so calls must come in non-decreasing ``now`` order.
        """
        wire_bits = (nbytes + self.overhead_bytes) * 8
        head = tail = now
        for direction, rate in self._hops(src, dst):
            if self._cut and self._is_cut(direction.key, head):
                raise LinkDown(
                    f"link {direction.key[0]}-{direction.key[1]} is cut; message {src}->{dst} of {nbytes} bytes lost"
                )
            start = head if head > direction.busy_until else direction.busy_until
            end = start + wire_bits / rate
            if end < tail:
                end = tail
            direction.busy_until = end
            spec = direction.spec
            latency = spec.latency_s
            if spec.jitter_s:
                latency += self._rng.uniform(0.0, spec.jitter_s)
            head = start + latency
            tail = end + latency
            if tail < direction.last_arrival:
                tail = direction.last_arrival
            direction.last_arrival = tail
            if head > tail:
                head = tail
        return tail

    def _is_cut(self, key: tuple[str, str], at: float) -> bool:
        cut_at = self._cut.get(frozenset(key))
        return cut_at is not None and at >= cut_at

    def path_is_cut(self, src: str, dst: str, at: float) -> bool:
        """Tell whether the path from ``src`` to ``dst`` crosses a link cut at or before ``at``."""
        return any(self._is_cut(d.key, at) for d, _ in self._hops(src, dst))

    def with_link(self, **changes: float) -> "Network":
        """Return a copy of this network with every link's spec changed, e.g. ``latency_s=0.01``."""
        graph = self.graph.copy()
        for a, b, data in graph.edges(data=True):
            data["link"] = replace(data["link"], **changes)
        copy = Network(graph, overhead_bytes=self.overhead_bytes, seed=self.seed)
        copy._cut = dict(self._cut)
        return copy
