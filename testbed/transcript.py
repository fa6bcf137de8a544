"""Message transcripts, party views and the round count of a run."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path


def top_phase(phase: str) -> str:
    """Return the top-level phase of a phase name: ``"matching"`` for ``"matching.argmax"``."""
    return phase.split(".", 1)[0]


def in_phase(record_phase: str, phase: str) -> bool:
    """Tell whether a message of ``record_phase`` belongs to ``phase`` or one of its sub-phases."""
    return record_phase == phase or record_phase.startswith(phase + ".")


def payload_digest(payload: bytes) -> str:
    """SHA-256 of a payload, hex, truncated to 128 bits: enough to tell messages apart in a log."""
    return hashlib.sha256(payload).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One message as it crossed the network.

    ``depth`` is the length of the longest causal chain of messages that ends with this one:
    1 for a message sent before its sender received anything, else one more than the deepest
    message the sender had received when it sent this one. ``phase_depth`` is the same count
    over the messages of this message's top-level phase only (sub-phases such as
    ``matching.argmax`` count as part of ``matching``).
    """

    seq: int
    phase: str
    src: str
    dst: str
    nbytes: int
    sim_send_s: float
    sim_recv_s: float
    digest: str
    depth: int
    phase_depth: int
    payload: bytes | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict:
        return {
            "seq": self.seq,
            "phase": self.phase,
            "src": self.src,
            "dst": self.dst,
            "bytes": self.nbytes,
            "sim_send_s": self.sim_send_s,
            "sim_recv_s": self.sim_recv_s,
            "digest": self.digest,
            "depth": self.depth,
            "phase_depth": self.phase_depth,
        }


@dataclass(frozen=True, slots=True)
class ViewEntry:
    """One message in a party's view: who sent it, in which phase, and its bytes."""

    src: str
    phase: str
    payload: bytes


class Transcript:
    """Every message of a run in the order the runner delivered it to the network."""

    def __init__(self, records: Iterable[MessageRecord] = (), payloads_kept: bool = False) -> None:
        self.records: list[MessageRecord] = list(records)
        self.payloads_kept = payloads_kept

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def view(self, party: str) -> list[ViewEntry]:
        """Return what ``party`` received, in the order it arrived (by simulated receive time).

        Raises ``ValueError`` when the run did not keep payloads (``keep_payloads=False``).
        """
        if not self.payloads_kept:
            raise ValueError("this transcript has no payloads: run with keep_payloads=True to take views")
        received = [r for r in self.records if r.dst == party]
        received.sort(key=lambda r: (r.sim_recv_s, r.seq))
        return [ViewEntry(r.src, r.phase, r.payload) for r in received]  # type: ignore[arg-type]

    def rounds(self, phase: str | None = None) -> int:
        """Return the longest causal chain of messages, over the whole run or within one top-level phase."""
        if phase is None:
            return max((r.depth for r in self.records), default=0)
        return max((r.phase_depth for r in self.records if in_phase(r.phase, phase)), default=0)

    def bytes_by_direction(self, phase: str | None = None) -> dict[str, int]:
        """Return payload bytes per ``"src->dst"``, optionally for one phase and its sub-phases."""
        totals: dict[str, int] = defaultdict(int)
        for r in self.records:
            if phase is None or in_phase(r.phase, phase):
                totals[f"{r.src}->{r.dst}"] += r.nbytes
        return dict(totals)

    def phases(self) -> list[str]:
        """Return the phase names in order of first appearance."""
        return list(dict.fromkeys(r.phase for r in self.records))

    def write_jsonl(self, path: Path) -> None:
        with open(path, "w", encoding="utf-8") as out:
            for r in self.records:
                out.write(json.dumps(r.to_json()) + "\n")
