"""Run the real-versus-simulated comparison for one protocol and one corrupted party.

A check collects, with fresh protocol randomness in every run:

1. ``samples`` real views from real runs on inputs drawn by ``spec.sample_inputs`` (varied
   honest inputs), and as many simulated views built from the corrupted party's input and
   its ideal output on independent draws of the same input distribution;
2. ``samples`` real views under honest input A and ``samples`` under honest input B, where A
   and B give the corrupted party the same input and output (``spec.input_pair``).

It compares family 1 (real against simulated) and family 2 (input A against input B) with
every distinguisher of ``proofs_check.stats``, adjusts all p-values of the check together
with Holm's method, and checks the outputs of every real run against the ideal functionality
and the first runs' message flow against the specification. The check fails when any
adjusted p-value is below ``alpha``, any output is inconsistent, or the flow differs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from testbed.transcript import ViewEntry

from proofs_check import features, stats
from proofs_check.flow import check_flow
from proofs_check.spec import CheckSpec

logger = logging.getLogger(__name__)

DEFAULT_ALPHA = 1e-3
# Flow checks run on this many of the real runs.
FLOW_RUNS = 3
# Columns given to the classifier from the aligned bytes and from the relations, in bits.
CLASSIFIER_BITS = 4096
RELATION_BITS = 2048


@dataclass
class Samples:
    """Views of one sample, with the outputs that go with them."""

    views: list[list[ViewEntry]] = field(default_factory=list)
    outputs: list[object] = field(default_factory=list)


def collect(spec: CheckSpec, samples: int, rng: np.random.Generator) -> dict:
    """Run the real protocol and the simulator; return the samples and the run-level findings."""
    real, simulated, pair_a, pair_b = Samples(), Samples(), Samples(), Samples()
    inconsistent = 0
    flows = []
    for i in range(samples):
        inputs = spec.sample_inputs(rng)
        run = spec.run_real(inputs)
        real.views.append(run.view)
        real.outputs.append(run.output)
        if not spec.consistent(inputs, run.outputs):
            inconsistent += 1
        if spec.flow is not None and i < FLOW_RUNS:
            flows.append(check_flow(spec.flow(inputs), run.transcript))
        # Independent inputs for the simulated sample: pairing a simulated view with the real
        # run on the same inputs would let the classifier memorise shared outputs.
        view, output = spec.run_simulated(spec.sample_inputs(rng))
        simulated.views.append(view)
        simulated.outputs.append(output)

    inputs_a, inputs_b = spec.input_pair(rng)
    for target, inputs in ((pair_a, inputs_a), (pair_b, inputs_b)):
        for _ in range(samples):
            run = spec.run_real(inputs)
            target.views.append(run.view)
            target.outputs.append(run.output)
            if not spec.consistent(inputs, run.outputs):
                inconsistent += 1
    return {
        "real": real,
        "simulated": simulated,
        "pair_a": pair_a,
        "pair_b": pair_b,
        "inconsistent": inconsistent,
        "runs": 3 * samples,
        "flows": flows,
    }


def compare(
    spec: CheckSpec, x: Samples, y: Samples, family: str, rng: np.random.Generator, with_outputs: bool
) -> tuple[list[stats.TestResult], stats.ClassifierResult]:
    """Run every distinguisher on two samples of views; return the tests and the classifier result."""
    relate = spec.relations or features.default_relations
    results = [
        stats.shape_test(f"{family}: message flow", [features.shape(v) for v in x.views], [features.shape(v) for v in y.views]),
        stats.byte_histogram_test(
            f"{family}: byte values",
            np.concatenate([features.payload_bytes(v) for v in x.views] or [np.zeros(0, np.uint8)]),
            np.concatenate([features.payload_bytes(v) for v in y.views] or [np.zeros(0, np.uint8)]),
        ),
    ]
    aligned_x = features.aligned_bytes(x.views, y.views)
    aligned_y = features.aligned_bytes(y.views, x.views)
    bits_x, bits_y = features.to_bits(aligned_x), features.to_bits(aligned_y)
    results.append(stats.bit_position_test(f"{family}: bit positions", bits_x, bits_y))

    relations_x = features.relation_matrix([relate(v) for v in x.views])
    relations_y = features.relation_matrix([relate(v) for v in y.views])
    width = max(relations_x.shape[1], relations_y.shape[1])
    relations_x = np.pad(relations_x, ((0, 0), (0, width - relations_x.shape[1])))
    relations_y = np.pad(relations_y, ((0, 0), (0, width - relations_y.shape[1])))
    relation_bits_x, relation_bits_y = features.to_bits(relations_x), features.to_bits(relations_y)
    results.append(stats.bit_position_test(f"{family}: relations", relation_bits_x, relation_bits_y))

    results.append(
        stats.collision_test(
            f"{family}: repeated messages",
            [[e.payload for e in v] for v in x.views],
            [[e.payload for e in v] for v in y.views],
        )
    )
    if spec.elements is not None:
        results.append(
            stats.ks_test(
                f"{family}: group elements",
                np.concatenate([spec.elements(v) for v in x.views] or [np.zeros(0)]),
                np.concatenate([spec.elements(v) for v in y.views] or [np.zeros(0)]),
            )
        )

    matrix_x = [
        _select_varying(bits_x, bits_y, CLASSIFIER_BITS)[0],
        _select_varying(relation_bits_x, relation_bits_y, RELATION_BITS)[0],
        _lengths(x.views),
    ]
    matrix_y = [
        _select_varying(bits_x, bits_y, CLASSIFIER_BITS)[1],
        _select_varying(relation_bits_x, relation_bits_y, RELATION_BITS)[1],
        _lengths(y.views),
    ]
    if with_outputs and spec.output_features is not None:
        matrix_x.append(np.vstack([spec.output_features(o) for o in x.outputs]))
        matrix_y.append(np.vstack([spec.output_features(o) for o in y.outputs]))
    lengths = max(m.shape[1] for m in matrix_x[2:3] + matrix_y[2:3])
    matrix_x[2] = np.pad(matrix_x[2], ((0, 0), (0, lengths - matrix_x[2].shape[1])))
    matrix_y[2] = np.pad(matrix_y[2], ((0, 0), (0, lengths - matrix_y[2].shape[1])))
    classifier = stats.classifier_test(
        f"{family}: classifier", np.hstack(matrix_x), np.hstack(matrix_y), rng
    )
    results.append(classifier.test)
    return results, classifier


def _select_varying(x: np.ndarray, y: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    both = np.vstack([x, y])
    varying = np.flatnonzero(both.max(axis=0) != both.min(axis=0))[:limit]
    return x[:, varying], y[:, varying]


def _lengths(views: Sequence[Sequence[ViewEntry]]) -> np.ndarray:
    width = min(features.MAX_MESSAGES, max((len(v) for v in views), default=0))
    matrix = np.zeros((len(views), width + 1), dtype=np.float32)
    for row, view in enumerate(views):
        matrix[row, 0] = len(view)
        for i, entry in enumerate(view[:width]):
            matrix[row, i + 1] = np.log1p(len(entry.payload))
    return matrix


def run_check(spec: CheckSpec, samples: int, rng: np.random.Generator, alpha: float = DEFAULT_ALPHA) -> dict:
    """Run one full check and return its findings as a JSON-ready dict with a ``verdict``."""
    started = time.perf_counter()
    collected = collect(spec, samples, rng)
    tests_real, classifier_real = compare(
        spec, collected["real"], collected["simulated"], "real vs simulated", rng, with_outputs=True
    )
    tests_pair, classifier_pair = compare(
        spec, collected["pair_a"], collected["pair_b"], "input A vs input B", rng, with_outputs=False
    )
    tests = tests_real + tests_pair
    adjusted = stats.holm([t.p_value for t in tests])
    rejected = [t.name for t, p in zip(tests, adjusted) if p < alpha]
    flow_ok = all(f["ok"] for f in collected["flows"])
    consistent = collected["inconsistent"] == 0
    verdict = "pass" if not rejected and flow_ok and consistent else "fail"

    flagged_by = list(rejected)
    if not flow_ok:
        flagged_by.append("flow")
    if not consistent:
        flagged_by.append("output consistency")
    return {
        "protocol": spec.protocol,
        "party": spec.party,
        "description": spec.description,
        "samples": samples,
        "real_runs": collected["runs"],
        "alpha": alpha,
        "tests": [
            {"name": t.name, "p_value": t.p_value, "p_holm": p, "statistic": t.statistic, "detail": t.detail}
            for t, p in zip(tests, adjusted)
        ],
        "advantage": _advantage(classifier_real),
        "advantage_input": _advantage(classifier_pair),
        "outputs_inconsistent": collected["inconsistent"],
        "flow": collected["flows"][0] if collected["flows"] else None,
        "flow_ok": flow_ok,
        "flagged_by": flagged_by,
        "verdict": verdict,
        "seconds": time.perf_counter() - started,
    }


def _advantage(result: stats.ClassifierResult) -> dict:
    estimate, low, high = stats.advantage_interval(result.correct, result.held_out)
    return {"estimate": estimate, "low": low, "high": high, "confidence": 0.95, "held_out": result.held_out}
