"""Garbled argmax: half-gates garbling and evaluation against the plaintext circuit."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.matching import garbled


def garble_and_evaluate(circuit, inputs: list[np.ndarray], bits: int):
    """Garble ``circuit`` over fresh zero labels and evaluate it on ``inputs`` (each (m,) ints).

    Returns the garbler's output zero labels, the evaluator's output labels, and the garbler.
    """
    delta = garbled.random_delta()
    garbler = garbled.Garbler(delta)
    zeros = [garbled.random_labels(bits * len(v)).reshape(bits, len(v), 2) for v in inputs]
    out_zero = circuit(garbler, *zeros)
    tables = np.concatenate(garbler.tables) if garbler.tables else np.empty((0, 2, 2), np.uint64)
    evaluator = garbled.Evaluator(tables)
    active = [garbled.bundle_from_ints(z, np.asarray(v), bits, delta) for z, v in zip(zeros, inputs)]
    out_active = circuit(evaluator, *active)
    assert evaluator.gates == garbler.gates
    return out_zero, out_active, garbler


def decode(out_zero: np.ndarray, out_active: np.ndarray) -> np.ndarray:
    return garbled.permute_bits(out_active) ^ garbled.permute_bits(out_zero)


def run_matching(a: np.ndarray, b: np.ndarray, threshold: int, bits: int) -> tuple[int, int]:
    zero_wire = garbled.random_labels(1)[0]

    def circuit(backend, za, zb, zt):
        return garbled.matching_circuit(backend, za, zb, zt, zero_wire)

    out_zero, out_active, garbler = garble_and_evaluate(circuit, [a, b, np.array([threshold])], bits)
    return garbled.bits_to_int(decode(out_zero, out_active)), garbler.gates


def test_half_gates_and_truth_table():
    for x, y in itertools.product([0, 1], repeat=2):
        out_zero, out_active, _ = garble_and_evaluate(
            lambda backend, a, b: backend.and_gates(a[0], b[0]), [np.array([x]), np.array([y])], 1
        )
        assert decode(out_zero, out_active)[0] == (x & y)


def test_greater_than_exhaustive_four_bits():
    values = np.arange(16)
    x, y = (v.reshape(-1) for v in np.meshgrid(values, values))
    out_zero, out_active, _ = garble_and_evaluate(garbled.greater_than_circuit, [x, y], 4)
    assert np.array_equal(decode(out_zero, out_active), (x > y).astype(np.uint8))


@settings(max_examples=40, deadline=None)
@given(data=st.data(), bits=st.integers(1, 12))
def test_adder_mod_power_of_two(data, bits):
    m = data.draw(st.integers(1, 20))
    a = np.array(data.draw(st.lists(st.integers(0, 2**bits - 1), min_size=m, max_size=m)))
    b = np.array(data.draw(st.lists(st.integers(0, 2**bits - 1), min_size=m, max_size=m)))
    out_zero, out_active, garbler = garble_and_evaluate(garbled.add_circuit, [a, b], bits)
    sums = decode(out_zero, out_active)
    weights = (1 << np.arange(bits))[:, None]
    assert np.array_equal((sums * weights).sum(axis=0), (a + b) % 2**bits)
    assert garbler.gates == m * (bits - 1)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), bits=st.integers(2, 10))
def test_matching_circuit_matches_plaintext(data, bits):
    n = data.draw(st.integers(1, 40))
    values = st.integers(0, 2**bits - 1)
    a = np.array(data.draw(st.lists(values, min_size=n, max_size=n)))
    b = np.array(data.draw(st.lists(values, min_size=n, max_size=n)))
    threshold = data.draw(values)
    if data.draw(st.booleans()):
        a[:] = a[0]
        b[:] = b[0]
    index, gates = run_matching(a, b, threshold, bits)
    candidates = np.append((a + b) % 2**bits, threshold)
    assert index == int(np.argmax(candidates))
    assert gates == garbled.count_and_gates(n, bits)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 31, 32, 33, 100])
def test_matching_circuit_ties_go_to_lowest_index(n):
    bits = 6
    a = np.full(n, 7)
    b = np.full(n, 3)
    index, _ = run_matching(a, b, 10, bits)
    assert index == 0
    index, _ = run_matching(a, b, 11, bits)
    assert index == n


def test_and_gate_count_formula_width_30():
    # 3000 adders of 29 ANDs, 3000 comparisons, 2999 value multiplexers, and at level L
    # each of the pairs_L comparisons multiplexes L index bits: sum_L L * pairs_L = 2993.
    assert garbled.count_and_gates(3000, 30) == 3000 * 29 + 3000 * 30 + 2999 * 30 + 2993
    assert garbled.index_bits(3001) == 12
    assert garbled.index_bits(2) == 1


def test_non_output_wires_have_random_permute_bits():
    # The same inputs garbled 200 times: a sum wire's permute bit must look like a coin flip,
    # so without decoding bits the evaluator learns nothing about the sums it carries.
    a = np.array([5, 9, 1])
    b = np.array([2, 2, 14])
    ones = np.zeros((4, 3))
    for _ in range(200):
        _, out_active, _ = garble_and_evaluate(garbled.add_circuit, [a, b], 4)
        ones += garbled.permute_bits(out_active)
    frequency = ones / 200
    assert np.all(frequency > 0.3)
    assert np.all(frequency < 0.7)


def test_evaluator_rejects_short_table():
    evaluator = garbled.Evaluator(np.zeros((2, 2, 2), np.uint64))
    labels = garbled.random_labels(3)
    with pytest.raises(ValueError, match="AND gates"):
        evaluator.and_gates(labels, labels)


def test_fixed_key_hash_depends_on_tweak():
    hasher = garbled.FixedKeyHash()
    block = garbled.random_labels(2)
    first = hasher.hash(block, np.array([0, 1], dtype=np.uint64))
    again = hasher.hash(block, np.array([0, 1], dtype=np.uint64))
    other = hasher.hash(block, np.array([1, 0], dtype=np.uint64))
    assert np.array_equal(first, again)
    assert not np.array_equal(first[0], other[0])


def test_delta_has_permute_bit_set():
    for _ in range(20):
        assert garbled.permute_bits(garbled.random_delta()) == 1
