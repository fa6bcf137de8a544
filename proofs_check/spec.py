"""What a security check needs to know about one protocol and one corrupted party.

A :class:`CheckSpec` ties together a protocol's real party coroutines, its ideal
functionality and the simulator for one corrupted party. ``proofs_check.runner`` draws
honest inputs from ``sample_inputs``, runs the real protocol, takes the corrupted party's output
from the ideal functionality, runs the simulator on that party's input and output alone, and
compares the two collections of views.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from testbed.runners.memory import run_in_memory
from testbed.transcript import Transcript, ViewEntry


@dataclass(frozen=True)
class RealRun:
    """One real execution: the corrupted party's view and output, and every output."""

    view: list[ViewEntry]
    output: Any
    outputs: dict[str, Any]
    transcript: Transcript


@dataclass(frozen=True)
class Flow:
    """The specified message flow of one run: messages per ``(src, dst, phase)``, bytes, rounds."""

    messages: dict[tuple[str, str, str], int]
    bytes_by_direction: dict[str, int]
    rounds: int


@dataclass(frozen=True)
class CheckSpec:
    """One protocol and one corrupted party, with everything a real-versus-simulated check needs.

    Fields:

    * ``parties(inputs)`` returns the party coroutines of one real run, keyed by party name;
    * ``sample_inputs(rng)`` draws every party's input; ``rng`` picks inputs only, never
      protocol randomness;
    * ``input_pair(rng)`` returns two inputs that give the corrupted party the same input and
      the same ideal output but differ as much as possible in the honest party's input;
    * ``corrupted_input(inputs)`` extracts what the simulator may see of the inputs;
    * ``ideal(inputs)`` returns the corrupted party's ideal output;
    * ``simulate(corrupted_input, output)`` builds a view from that party's input and output;
    * ``consistent(inputs, outputs)`` checks the real outputs against the functionality;
    * ``flow(inputs)`` is the specified message flow, bytes and rounds, or ``None``;
    * ``relations(view)`` derives bytes that expose relations between parts of a view
      (for example the XOR of the two ciphertexts of each OT), or ``None`` for the default;
    * ``elements(view)`` maps the group elements of a view to floats in ``[0, 1)`` for a
      Kolmogorov–Smirnov test, or ``None`` when the view has none;
    * ``output_features(output)`` turns the corrupted party's output into a feature vector;
    * ``samples`` is the default number of views per sample, sized to the cost of one run.
    """

    protocol: str
    party: str
    description: str
    parties: Callable[[Any], dict[str, Any]]
    sample_inputs: Callable[[np.random.Generator], Any]
    input_pair: Callable[[np.random.Generator], tuple[Any, Any]]
    corrupted_input: Callable[[Any], Any]
    ideal: Callable[[Any], Any]
    simulate: Callable[[Any, Any], list[ViewEntry]]
    consistent: Callable[[Any, dict[str, Any]], bool]
    flow: Callable[[Any], Flow] | None = None
    relations: Callable[[list[ViewEntry]], bytes] | None = None
    elements: Callable[[list[ViewEntry]], np.ndarray] | None = None
    output_features: Callable[[Any], np.ndarray] | None = None
    samples: int = 200

    @property
    def key(self) -> str:
        return f"{self.protocol}/{self.party}"

    def run_real(self, inputs: Any) -> RealRun:
        """Run the real protocol on ``inputs`` in memory, keeping payloads."""
        result = run_in_memory(self.parties(inputs), keep_payloads=True)
        return RealRun(
            view=result.transcript.view(self.party),
            output=result.outputs[self.party],
            outputs=dict(result.outputs),
            transcript=result.transcript,
        )

    def run_simulated(self, inputs: Any) -> tuple[list[ViewEntry], Any]:
        """Return a simulated view and the ideal output it was built from."""
        output = self.ideal(inputs)
        return self.simulate(self.corrupted_input(inputs), output), output

    def with_parties(self, parties: Callable[[Any], dict[str, Any]], **changes: Any) -> CheckSpec:
        """Return a copy running other party coroutines, as the mutants do."""
        return replace(self, parties=parties, **changes)


@dataclass(frozen=True)
class Mutant:
    """A deliberately leaky variant of a protocol that the checks must flag."""

    name: str
    description: str
    leak: str
    spec: CheckSpec
