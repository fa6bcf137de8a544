"""Traces: what each party computed and did, in order, so a run can be replayed on any network.

A trace holds, per party, the measured compute time before each effect and the effect itself
(with message sizes, not contents). Replaying it needs no cryptography: see ``testbed.replay``.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path

from testbed.effects import Effect, Phase, Receive, Send

TRACE_FORMAT = 1


@dataclass(frozen=True, slots=True)
class TraceStep:
    """Compute seconds spent before an effect, then the effect: ``send``, ``recv`` or ``phase``."""

    compute_s: float
    kind: str
    peer: str = ""
    nbytes: int = 0
    phase: str = ""

    @classmethod
    def of(cls, compute_s: float, effect: Effect) -> "TraceStep":
        if isinstance(effect, Send):
            return cls(compute_s, "send", effect.peer, len(effect.payload))
        if isinstance(effect, Receive):
            return cls(compute_s, "recv", effect.peer)
        return cls(compute_s, "phase", phase=effect.name)


@dataclass(slots=True)
class PartyTrace:
    """The steps of one party and the compute it spent after its last effect."""

    steps: list[TraceStep]
    final_compute_s: float = 0.0

    def compute_total_s(self) -> float:
        return sum(s.compute_s for s in self.steps) + self.final_compute_s


@dataclass
class Trace:
    """Per-party traces of one run, with the scenario settings they came from."""

    parties: dict[str, PartyTrace]
    meta: dict = field(default_factory=dict)

    def message_count(self) -> int:
        return sum(1 for t in self.parties.values() for s in t.steps if s.kind == "send")

    def to_json(self) -> dict:
        return {
            "format": TRACE_FORMAT,
            "meta": self.meta,
            "parties": {
                name: {
                    "final_compute_s": t.final_compute_s,
                    # Compact rows: [compute_s, kind, peer, nbytes, phase].
                    "steps": [[s.compute_s, s.kind, s.peer, s.nbytes, s.phase] for s in t.steps],
                }
                for name, t in self.parties.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict) -> "Trace":
        if data.get("format") != TRACE_FORMAT:
            raise ValueError(f"unsupported trace format {data.get('format')!r}: expected {TRACE_FORMAT}")
        parties = {}
        for name, body in data["parties"].items():
            steps = [TraceStep(float(c), str(k), str(p), int(n), str(ph)) for c, k, p, n, ph in body["steps"]]
            for step in steps:
                if step.kind not in ("send", "recv", "phase"):
                    raise ValueError(f"invalid trace step kind {step.kind!r} for party {name!r}")
            parties[name] = PartyTrace(steps, float(body["final_compute_s"]))
        return cls(parties, dict(data.get("meta", {})))

    def save(self, path: Path) -> None:
        """Write the trace as gzip-compressed JSON (the caller makes the write atomic)."""
        with gzip.open(path, "wt", encoding="utf-8") as out:
            json.dump(self.to_json(), out)

    @classmethod
    def load(cls, path: Path) -> "Trace":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"trace file {str(path)!r} not found: pass the trace.json.gz of a run")
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as src:
            return cls.from_json(json.load(src))
