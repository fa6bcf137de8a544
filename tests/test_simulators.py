"""Ideal functionalities and simulators: outputs, view formats and input validation."""

from __future__ import annotations

import numpy as np
import pytest

from protocols.matching.fixed_point import FixedPointParams, reference_match
from protocols.ot import group, one_of_n
from protocols.ot.codec import HEADER_BYTES, Kind, parse
from proofs_check.checks import matching as matching_checks
from proofs_check.checks import one_of_n as one_of_n_checks
from proofs_check.checks import ot_base as base_checks
from proofs_check.checks import ot_extension as extension_checks
from proofs_check.features import shape
from simulators import ideal
from simulators import matching as matching_simulator
from simulators import one_of_n as one_of_n_simulator
from simulators import ot_base
from testbed.runners.memory import run_in_memory


def test_random_ot_gives_receiver_chosen_keys():
    choices = np.array([0, 1, 1, 0], dtype=np.uint8)
    outputs = ideal.random_ot(choices)
    k0, k1 = outputs["sender"]
    assert np.array_equal(outputs["receiver"][1], k1[1])
    assert np.array_equal(outputs["receiver"][0], k0[0])
    assert ideal.random_ot_consistent(choices, (k0, k1), outputs["receiver"])
    assert not ideal.random_ot_consistent(1 - choices, (k0, k1), outputs["receiver"])


def test_chosen_ot_selects_by_choice():
    outputs = ideal.chosen_ot([b"a", b"b"], [b"A", b"B"], np.array([1, 0]))
    assert outputs["receiver"] == [b"A", b"b"]
    assert outputs["sender"] is None


def test_chosen_ot_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="messages"):
        ideal.chosen_ot([b"a"], [b"A", b"B"], np.array([1, 0]))


def test_one_of_n_returns_entry():
    assert ideal.one_of_n_ot([b"x", b"y", b"z"], 2)["receiver"] == b"z"


def test_one_of_n_rejects_bad_index():
    with pytest.raises(ValueError, match="invalid index 3"):
        ideal.one_of_n_ot([b"x", b"y", b"z"], 3)


def test_matching_equals_reference():
    rng = np.random.default_rng(3)
    params = FixedPointParams(dim=4, query_frac_bits=3, key_frac_bits=3)
    for threshold in (None, 0.5, 0.99):
        query = matching_checks._unit(rng, (4,))
        keys = matching_checks._unit(rng, (5, 4))
        expected = reference_match(query, keys, threshold, params)
        assert ideal.matching(query, keys, threshold, params)["sp"] == expected
        assert ideal.matching(query, keys, threshold, params)["mri"] is None


def test_sure_repair_applies_matched_fix():
    keys = np.eye(3)
    fixes = [np.full((2, 2), float(i)) for i in range(3)]
    weights = np.ones((2, 2))
    params = FixedPointParams(dim=3, query_frac_bits=4, key_frac_bits=4)
    outputs = ideal.sure_repair(np.array([0.0, 1.0, 0.0]), keys, fixes, weights, None, lambda w, f: w @ f, params)
    assert np.array_equal(outputs["sp"], weights @ fixes[1])
    assert outputs["mri"] is None


def test_sure_repair_keeps_weights_without_match():
    keys = np.eye(3)
    weights = np.ones((2, 2))
    params = FixedPointParams(dim=3, query_frac_bits=4, key_frac_bits=4)
    query = np.array([-1.0, 0.0, 0.0])
    outputs = ideal.sure_repair(query, keys, [None] * 3, weights, 0.5, lambda w, f: w @ f, params)
    assert outputs["sp"] is weights


def test_base_ot_simulated_points_are_valid():
    view = ot_base.sender_view("receiver", 5, phase="p")
    body = parse(view[0].payload, Kind.NP_RECEIVER_POINTS, 0, 32 * 5)
    for j in range(5):
        assert group.is_valid(bytes(body[32 * j : 32 * (j + 1)]))
    malicious = ot_base.sender_view("receiver", 5, malicious=True, phase="p")
    parse(malicious[0].payload, Kind.MR_RECEIVER_POINTS, 0, 64 * 5)


def test_simulators_send_nothing_for_zero_ots():
    assert ot_base.sender_view("receiver", 0, phase="p") == []
    assert ot_base.receiver_view("sender", 0, phase="p") == []


SPECS = (
    base_checks.specs()
    + [s for s in extension_checks.specs() if "kos" not in s.protocol]
    + one_of_n_checks.specs()
    + matching_checks.specs()
)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.key)
def test_simulated_view_has_real_shape(spec):
    rng = np.random.default_rng(7)
    inputs = spec.sample_inputs(rng)
    real = spec.run_real(inputs)
    simulated, _ = spec.run_simulated(inputs)
    assert shape(simulated) == shape(real.view)
    for sim_entry, real_entry in zip(simulated, real.view):
        assert sim_entry.payload[:1] == real_entry.payload[:1]


@pytest.mark.slow
@pytest.mark.parametrize("spec", [s for s in extension_checks.specs() if "kos" in s.protocol], ids=lambda s: s.key)
def test_kos_simulated_view_has_real_shape(spec):
    inputs = spec.sample_inputs(np.random.default_rng(8))
    simulated, _ = spec.run_simulated(inputs)
    assert shape(simulated) == shape(spec.run_real(inputs).view)


def test_one_of_n_single_entry_simulation_is_exact():
    payload = b"0123456789abcdef"
    real = run_in_memory(
        {
            "sender": one_of_n.one_of_n_sender("receiver", 1, lambda i: payload, phase="p"),
            "receiver": one_of_n.one_of_n_receiver("sender", 1, 0, phase="p"),
        }
    )
    simulated = one_of_n_simulator.receiver_view("sender", 0, payload, [len(payload)], phase="p")
    assert simulated == real.transcript.view("receiver")


def test_one_of_n_simulator_rejects_wrong_output_length():
    with pytest.raises(ValueError, match="output has 3 bytes"):
        one_of_n_simulator.receiver_view("sender", 0, b"abc", [4, 4], phase="p")


def test_matching_simulator_rejects_bad_index():
    with pytest.raises(ValueError, match="invalid output index 3"):
        matching_simulator.sp_view("mri", 3, matching_checks.PARAMS, 3)


def test_one_of_n_entry_header_carries_length():
    view = one_of_n_simulator.receiver_view("sender", 1, b"xy", [5, 2, 7], phase="p")
    entries = view[1:]
    assert [len(e.payload) - HEADER_BYTES - 8 for e in entries] == [5, 2, 7]
    assert one_of_n.LENGTH.unpack_from(entries[2].payload, HEADER_BYTES)[0] == 7


def test_sure_simulated_views_have_real_shape():
    from protocols.sure.protocol import FixFormat, sure_mri, sure_sp
    from simulators import sure

    rng = np.random.default_rng(9)
    params = matching_checks.PARAMS
    query = matching_checks._unit(rng, (params.dim,))
    keys = matching_checks._unit(rng, (3, params.dim))
    fixes = [bytes([i]) * 24 for i in range(3)]
    # A threshold above every similarity gives "no match", so the SP never touches a model.
    result = run_in_memory(
        {
            "sp": sure_sp("mri", query, 3, FixFormat(params.dim, "dense", "float32", None), None, params=params),
            "mri": sure_mri("sp", keys, fixes.__getitem__, 1.5, params=params),
        }
    )
    assert result.outputs["sp"].index is None
    assert shape(sure.mri_view("sp", 3, params)) == shape(result.transcript.view("mri"))
    simulated = sure.sp_view("mri", params, None, None, [24, 24, 24])
    assert shape(simulated) == shape(result.transcript.view("sp"))
