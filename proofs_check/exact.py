"""Exact comparison of view distributions on deliberately tiny instances of our constructions.

The real protocols cannot be parameterised small enough to enumerate: the base OTs run in
the order-``L`` subgroup of Ed25519 (``L ≈ 2^252``) and the PRGs and hashes are AES and SHA-2.
So this module defines, here only, tiny instances of the same constructions and enumerates
every random choice to get exact view distributions:

* Naor–Pinkas and Masny–Rindal in the order-11 subgroup of ``Z_23^*`` (generator 2), with
  non-zero scalars as in ``protocols.ot.group.random_scalar`` and a fixed toy function in
  place of the hash to the group;
* Gilboa's OT-based multiplication in ``Z_2^4`` with an ideal PRG (the seeds are the ring
  elements themselves);
* chosen-message OT from random OT with 2-bit messages and one-time pads.

For each it computes the total variation distance between the real view and the simulated
view, for every input of the honest party. It compares that distance with the bound the
simulation argument gives (0, or ``1/(q − 1)`` where non-zero scalars exclude one group element; that
bound is about ``2^-252`` at the real group order). Tiny versions of three mutants are
enumerated the same way and must exceed the bound. Exact enumeration shows the arguments hold
on the toy instances; it says nothing about AES, SHA-2 or Ed25519 themselves.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from fractions import Fraction
from itertools import product

P = 23
Q = 11
G = 2
TOY_C = pow(G, 7, P)
RING_BITS = 4
RING = 1 << RING_BITS
MESSAGE_VALUES = 4


def _exp(e: int) -> int:
    return pow(G, e % Q, P)


def _inv(x: int) -> int:
    return pow(x, P - 2, P)


def _toy_hash(j: int, bit: int, point: int) -> int:
    return _exp(3 * point + 5 * bit + 7 * j + 1)


def distribution(outcomes: Iterable) -> dict:
    """Return the exact distribution of equally likely outcomes as ``{outcome: Fraction}``."""
    counts = Counter(outcomes)
    total = sum(counts.values())
    return {outcome: Fraction(count, total) for outcome, count in counts.items()}


def total_variation(first: dict, second: dict) -> Fraction:
    """Return the total variation distance of two exact distributions."""
    support = set(first) | set(second)
    return sum((abs(first.get(x, Fraction(0)) - second.get(x, Fraction(0))) for x in support), Fraction(0)) / 2


NONZERO = range(1, Q)


def np_receiver_message(choice: int, grind: bool = False) -> dict:
    """Return the distribution of ``PK0`` sent by the toy Naor–Pinkas receiver."""
    outcomes = []
    for x in NONZERO:
        pk0 = _exp(x) if choice == 0 else TOY_C * _inv(_exp(x)) % P
        if grind and pk0 % 2 != choice:
            continue
        outcomes.append(pk0)
    return distribution(outcomes)


def uniform_point() -> dict:
    """Return the simulator's distribution: ``g^x`` for uniform non-zero ``x``."""
    return distribution(_exp(x) for x in NONZERO)


def mr_receiver_message(choice: int) -> dict:
    """Return the distribution of ``(r0, r1)`` sent by the toy Masny–Rindal receiver for OT 0."""
    outcomes = []
    for other, b in product(NONZERO, NONZERO):
        r_other = _exp(other)
        r_chosen = _exp(b) * _inv(_toy_hash(0, choice, r_other)) % P
        outcomes.append((r_chosen, r_other) if choice == 0 else (r_other, r_chosen))
    return distribution(outcomes)


def two_uniform_points() -> dict:
    return distribution((_exp(a), _exp(b)) for a, b in product(NONZERO, NONZERO))


def gilboa_receiver_view(x: int, choice: int, biased: bool = False) -> dict:
    """Return the distribution of the toy Gilboa receiver's view ``(t_c, u)``, where ``u = t0 − t1 + x``."""
    outcomes = []
    for t0, t1 in product(range(RING), range(RING)):
        if biased and t1 % 2:
            continue
        u = (t0 - t1 + x) % RING
        outcomes.append((t0 if choice == 0 else t1, u))
    return distribution(outcomes)


def gilboa_simulated_view() -> dict:
    return distribution(product(range(RING), range(RING)))


def chosen_ot_receiver_view(m0: int, m1: int, choice: int, reuse_key: bool = False) -> dict:
    """Return the distribution of ``(k_c, y0, y1)`` for toy chosen OT over 2-bit messages."""
    outcomes = []
    for k0, k1 in product(range(MESSAGE_VALUES), range(MESSAGE_VALUES)):
        y0 = m0 ^ k0
        y1 = m1 ^ (k0 if reuse_key else k1)
        outcomes.append((k0 if choice == 0 else k1, y0, y1))
    return distribution(outcomes)


def chosen_ot_simulated_view(chosen: int, choice: int) -> dict:
    outcomes = []
    for k, other in product(range(MESSAGE_VALUES), range(MESSAGE_VALUES)):
        y_chosen = chosen ^ k
        outcomes.append((k, y_chosen, other) if choice == 0 else (k, other, y_chosen))
    return distribution(outcomes)


def _worst(cases: Iterable[tuple[str, Fraction]]) -> tuple[str, Fraction]:
    return max(cases, key=lambda case: case[1])


def _verdict(within_bound: bool, mutant: bool) -> str:
    if mutant:
        return "missed" if within_bound else "caught"
    return "pass" if within_bound else "fail"


def _entry(name: str, party: str, compared: str, cases: Callable[[], Iterable[tuple[str, Fraction]]], bound: Fraction, mutant: bool) -> dict:
    where, distance = _worst(cases())
    within = distance <= bound
    return {
        "name": name,
        "party": party,
        "compared": compared,
        "max_total_variation": str(distance),
        "max_total_variation_float": float(distance),
        "worst_case": where,
        "bound": str(bound),
        "mutant": mutant,
        "verdict": _verdict(within, mutant),
    }


def run_exact() -> list[dict]:
    """Enumerate every tiny instance and mutant; return one JSON-ready entry each."""
    scalar_bound = Fraction(1, Q - 1)
    ring_values = range(RING)
    messages = range(MESSAGE_VALUES)
    return [
        _entry(
            "toy naor-pinkas", "sender", "real PK0 for each choice bit vs simulated uniform point",
            lambda: ((f"choice {c}", total_variation(np_receiver_message(c), uniform_point())) for c in (0, 1)),
            scalar_bound, False,
        ),
        _entry(
            "toy naor-pinkas", "receiver", "real R vs simulated uniform point",
            lambda: [("R", total_variation(uniform_point(), uniform_point()))],
            Fraction(0), False,
        ),
        _entry(
            "toy masny-rindal", "sender", "real (r0, r1) for each choice bit vs two simulated uniform points",
            lambda: ((f"choice {c}", total_variation(mr_receiver_message(c), two_uniform_points())) for c in (0, 1)),
            scalar_bound, False,
        ),
        _entry(
            "toy gilboa product", "receiver", "real (t_c, u) for every key value and choice vs simulated uniform pair",
            lambda: (
                (f"x={x}, c={c}", total_variation(gilboa_receiver_view(x, c), gilboa_simulated_view()))
                for x in ring_values for c in (0, 1)
            ),
            Fraction(0), False,
        ),
        _entry(
            "toy chosen ot", "receiver", "real (k_c, y0, y1) for every message pair vs simulation from m_c",
            lambda: (
                (f"m0={m0}, m1={m1}, c={c}",
                 total_variation(chosen_ot_receiver_view(m0, m1, c), chosen_ot_simulated_view(m1 if c else m0, c)))
                for m0 in messages for m1 in messages for c in (0, 1)
            ),
            Fraction(0), False,
        ),
        _entry(
            "toy naor-pinkas, choice in point parity", "sender", "real PK0 under choice 0 vs choice 1",
            lambda: [("choice 0 vs 1", total_variation(np_receiver_message(0, grind=True), np_receiver_message(1, grind=True)))],
            scalar_bound, True,
        ),
        _entry(
            "toy gilboa product, biased mask", "receiver", "real (t_c, u) under key value 0 vs 1",
            lambda: ((f"c={c}", total_variation(gilboa_receiver_view(0, c, True), gilboa_receiver_view(1, c, True))) for c in (0, 1)),
            Fraction(0), True,
        ),
        _entry(
            "toy chosen ot, reused key", "receiver", "real (k_c, y0, y1) under two unchosen messages",
            lambda: ((f"m0=0, c=0, m1={m1} vs 3", total_variation(chosen_ot_receiver_view(0, m1, 0, True), chosen_ot_receiver_view(0, 3, 0, True))) for m1 in messages),
            Fraction(0), True,
        ),
    ]
