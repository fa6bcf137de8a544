"""Distinguishers, flow checks, exact enumeration, runner, mutants and the command line."""

from __future__ import annotations

import json
import secrets

import numpy as np
import pytest

from proofs_check import features, stats
from proofs_check.__main__ import main
from proofs_check.checks import load_specs
from proofs_check.checks import ot_base as base_checks
from proofs_check.exact import run_exact
from proofs_check.flow import check_flow
from proofs_check.mutants import catalogue
from proofs_check.mutants.wrappers import with_fixed_randomness
from proofs_check.runner import run_check
from testbed.runners.memory import run_in_memory
from testbed.transcript import ViewEntry


def test_holm_matches_hand_computation():
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([0.5]) == [0.5]


def test_holm_is_monotone_and_capped():
    adjusted = stats.holm([0.2, 0.9, 0.001, 0.6])
    assert max(adjusted) <= 1.0
    assert adjusted[2] == pytest.approx(0.004)


def test_bit_positions_equal_constants_pass():
    x = np.zeros((50, 16), dtype=np.uint8)
    assert stats.bit_position_test("t", x, x.copy()).p_value == 1.0


def test_bit_positions_flag_constant_bit():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (100, 64), dtype=np.uint8)
    y = rng.integers(0, 2, (100, 64), dtype=np.uint8)
    y[:, 5] = 1
    result = stats.bit_position_test("t", x, y)
    assert result.p_value < 1e-10
    assert "bit 5" in result.detail


def test_bit_positions_false_alarms_near_level():
    rng = np.random.default_rng(1)
    rejections = 0
    for _ in range(200):
        x = rng.integers(0, 2, (60, 128), dtype=np.uint8)
        y = rng.integers(0, 2, (60, 128), dtype=np.uint8)
        rejections += stats.bit_position_test("t", x, y).p_value < 0.05
    assert rejections <= 20


def test_byte_histogram_flags_biased_bytes():
    rng = np.random.default_rng(2)
    uniform = rng.integers(0, 256, 20000, dtype=np.uint8)
    biased = rng.integers(0, 256, 20000, dtype=np.uint8) & np.uint8(0x7F)
    assert stats.byte_histogram_test("t", uniform, biased).p_value < 1e-10
    assert stats.byte_histogram_test("t", uniform, rng.integers(0, 256, 20000, dtype=np.uint8)).p_value > 1e-4


def test_shape_test_flags_extra_message():
    short = [(("a", "p", 10),)] * 40
    long = [(("a", "p", 10), ("a", "p", 1))] * 40
    assert stats.shape_test("t", short, short).p_value == 1.0
    assert stats.shape_test("t", short, long).p_value < 1e-10


def test_collision_test_flags_repeats():
    fresh = [[secrets.token_bytes(16)] for _ in range(50)]
    repeated = [[b"x" * 16] for _ in range(50)]
    assert stats.collision_test("t", fresh, [[secrets.token_bytes(16)] for _ in range(50)]).p_value == 1.0
    assert stats.collision_test("t", fresh, repeated).p_value < 1e-10


def test_classifier_finds_planted_feature():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 2, (200, 32)).astype(float)
    y = rng.integers(0, 2, (200, 32)).astype(float)
    y[:, 7] = 1
    result = stats.classifier_test("t", x, y, rng)
    assert result.test.p_value < 1e-6
    estimate, low, high = stats.advantage_interval(result.correct, result.held_out)
    assert low > 0.3
    assert low <= estimate <= high


def test_classifier_stays_near_chance_on_same_distribution():
    rng = np.random.default_rng(4)
    x = rng.integers(0, 2, (200, 32)).astype(float)
    y = rng.integers(0, 2, (200, 32)).astype(float)
    result = stats.classifier_test("t", x, y, rng)
    assert result.test.p_value > 1e-3


def test_wilson_interval_contains_proportion():
    low, high = stats.wilson_interval(30, 100)
    assert low < 0.3 < high
    assert stats.clopper_pearson(0, 100)[1] == pytest.approx(0.0362, abs=1e-3)


def test_aligned_bytes_align_messages():
    views = [[ViewEntry("a", "p", b"\x01\x02"), ViewEntry("a", "p", b"\x03")], [ViewEntry("a", "p", b"\x04")]]
    matrix = features.aligned_bytes(views)
    assert matrix.tolist() == [[1, 2, 3], [4, 0, 0]]


def test_default_relations_expose_reused_pad():
    pad = secrets.token_bytes(32)
    view = [ViewEntry("a", "p", bytes(a ^ b for a, b in zip(pad, bytes(32))))]
    relations = features.default_relations(view)
    assert relations == bytes(a ^ b for a, b in zip(pad[16:], pad[:16]))


def test_flow_check_accepts_real_base_ot():
    inputs = {"choices": np.array([1, 0, 1], dtype=np.uint8)}
    result = run_in_memory(base_checks._parties(False, inputs))
    assert check_flow(base_checks._flow(False, inputs), result.transcript)["ok"]


def test_flow_check_rejects_wrong_formula():
    inputs = {"choices": np.array([1, 0, 1], dtype=np.uint8)}
    result = run_in_memory(base_checks._parties(False, inputs))
    wrong = base_checks._flow(True, inputs)
    finding = check_flow(wrong, result.transcript)
    assert not finding["ok"]
    assert not finding["bytes_ok"]
    assert finding["graph_ok"]


def test_exact_enumeration_passes_protocols_and_catches_mutants():
    entries = run_exact()
    assert all(e["verdict"] == "pass" for e in entries if not e["mutant"])
    assert all(e["verdict"] == "caught" for e in entries if e["mutant"])
    naor_pinkas = next(e for e in entries if e["name"] == "toy naor-pinkas" and e["party"] == "sender")
    assert naor_pinkas["max_total_variation"] == "1/10"


def test_fixed_randomness_restores_secrets():
    original = secrets.token_bytes

    def party():
        first = secrets.token_bytes(8)
        yield from ()
        return first

    outputs = [run_in_memory({"a": with_fixed_randomness(party(), b"s")}).outputs["a"] for _ in range(2)]
    assert outputs[0] == outputs[1]
    assert secrets.token_bytes is original


def test_naor_pinkas_sender_check_passes():
    result = run_check(base_checks.sender_spec(False), 100, np.random.default_rng(5))
    assert result["verdict"] == "pass", result["flagged_by"]
    assert result["outputs_inconsistent"] == 0
    assert result["flow_ok"]
    assert abs(result["advantage"]["estimate"]) < 0.35
    assert result["advantage"]["low"] < result["advantage"]["high"]


FAST_MUTANTS = [m for m in catalogue() if m.name.startswith(("ot.base.", "ot.one_of_n."))]
SLOW_MUTANTS = [m for m in catalogue() if not m.name.startswith(("ot.base.", "ot.one_of_n."))]


@pytest.mark.parametrize("mutant", FAST_MUTANTS, ids=lambda m: m.name)
def test_fast_mutant_is_caught(mutant):
    result = run_check(mutant.spec, 80, np.random.default_rng(6))
    assert result["verdict"] == "fail"
    statistical = [name for name in result["flagged_by"] if name not in ("flow", "output consistency")]
    assert statistical, f"{mutant.name} flagged only by {result['flagged_by']}"


@pytest.mark.slow
@pytest.mark.parametrize("mutant", SLOW_MUTANTS, ids=lambda m: m.name)
def test_slow_mutant_is_caught(mutant):
    result = run_check(mutant.spec, 40, np.random.default_rng(7))
    assert result["verdict"] == "fail"
    statistical = [name for name in result["flagged_by"] if name not in ("flow", "output consistency")]
    assert statistical, f"{mutant.name} flagged only by {result['flagged_by']}"


def test_catalogue_has_ten_distinct_mutants():
    names = [m.name for m in catalogue()]
    assert len(names) >= 10
    assert len(set(names)) == len(names)


def test_load_specs_filters_protocol_and_party():
    specs, unavailable = load_specs("ot.base.naor", "receiver")
    assert [(s.protocol, s.party) for s in specs] == [("ot.base.naor-pinkas", "receiver")]
    assert unavailable == {}


def test_cli_writes_reports(tmp_path):
    status = main(
        ["--protocol", "ot.base.naor-pinkas", "--party", "sender", "--samples", "60", "--mutant",
         "ot.base.choice-appended", "--out", str(tmp_path)]
    )
    assert status == 0
    report = json.loads((tmp_path / "checks.json").read_text())
    assert report["summary"] == {"checks_passed": 1, "checks": 1, "mutants_caught": 1, "mutants": 1}
    check = report["checks"][0]
    assert check["samples"] == 60
    assert {"estimate", "low", "high"} <= set(check["advantage"])
    assert "**pass**" in (tmp_path / "checks.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checks.json", "checks.md"]


def test_cli_requires_out(capsys):
    assert main(["--protocol", "ot.base"]) == 2
    assert "missing --out" in capsys.readouterr().err


@pytest.mark.slow
def test_sure_checks_pass():
    from proofs_check.checks import sure

    for spec in sure.specs():
        result = run_check(spec, 30, np.random.default_rng(8))
        assert result["verdict"] == "pass", (spec.key, result["flagged_by"])
        assert result["flow_ok"]
        assert result["outputs_inconsistent"] == 0
