"""Ideal functionalities of the protocols under test: what a trusted party would compute.

Each function takes every party's input and returns every party's output, as the trusted
party of the real/ideal paradigm would (Goldreich, "Foundations of Cryptography, Volume 2";
Lindell, "How to Simulate It", 2017). A simulator receives the
corrupted party's input and its output from here, and nothing else.

The functionalities:

* :func:`random_ot`: random 1-out-of-2 OT; the sender gets two fresh random keys per OT, the
  receiver the key selected by each choice bit;
* :func:`chosen_ot`: 1-out-of-2 OT of chosen messages;
* :func:`one_of_n_ot`: 1-out-of-n OT; the receiver gets entry ``index``, the sender nothing;
* :func:`matching`: the SP gets the index of the nearest repair key (or ``None`` below the
  threshold), the MRI nothing;
* :func:`sure_repair`: the whole SURE repair; the SP gets its repaired weights and the MRI
  nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

KEY_BYTES = 16


@dataclass(frozen=True)
class IdealOutputs:
    """Outputs the trusted party hands to each party, keyed by role."""

    outputs: dict[str, Any]

    def __getitem__(self, role: str) -> Any:
        return self.outputs[role]


def random_ot(choices: np.ndarray) -> IdealOutputs:
    """Return the outputs of ``len(choices)`` random OTs.

    The sender gets ``(k0, k1)``, uint8 ``(count, 16)``, fresh uniform keys; the receiver gets
    ``k_c``, row ``j`` equal to ``k{c_j}[j]``.
    """
    bits = np.asarray(choices, dtype=np.uint8)
    count = len(bits)
    k0 = np.frombuffer(secrets.token_bytes(KEY_BYTES * count), dtype=np.uint8).reshape(count, KEY_BYTES)
    k1 = np.frombuffer(secrets.token_bytes(KEY_BYTES * count), dtype=np.uint8).reshape(count, KEY_BYTES)
    chosen = np.where(bits[:, None] == 1, k1, k0)
    return IdealOutputs({"sender": (k0, k1), "receiver": chosen})


def random_ot_consistent(choices: np.ndarray, sender_output: Any, receiver_output: Any) -> bool:
    """Return whether real random-OT outputs satisfy the functionality: ``k_c`` is the chosen key."""
    k0, k1 = (np.asarray(k, dtype=np.uint8) for k in sender_output)
    bits = np.asarray(choices, dtype=np.uint8)
    expected = np.where(bits[:, None] == 1, k1, k0)
    return bool(np.array_equal(expected, np.asarray(receiver_output, dtype=np.uint8)))


def chosen_ot(messages0: Sequence[bytes], messages1: Sequence[bytes], choices: np.ndarray) -> IdealOutputs:
    """Return the outputs of 1-out-of-2 OT of chosen messages: the receiver gets ``m_{c_j}``."""
    bits = [int(c) for c in np.asarray(choices).reshape(-1)]
    if not len(messages0) == len(messages1) == len(bits):
        raise ValueError(
            f"invalid OT inputs: {len(messages0)} and {len(messages1)} messages for {len(bits)} choices"
        )
    chosen = [bytes(m1 if c else m0) for m0, m1, c in zip(messages0, messages1, bits)]
    return IdealOutputs({"sender": None, "receiver": chosen})


def one_of_n_ot(payloads: Sequence[bytes], index: int) -> IdealOutputs:
    """Return the outputs of 1-out-of-n OT: the receiver gets ``payloads[index]``."""
    if not 0 <= index < len(payloads):
        raise ValueError(f"invalid index {index}: the sender holds {len(payloads)} entries")
    return IdealOutputs({"sender": None, "receiver": bytes(payloads[index])})


def matching(
    query: np.ndarray, keys: np.ndarray, threshold: float | None, params: Any = None
) -> IdealOutputs:
    """Return the outputs of secure matching: the SP gets the nearest key's index or ``None``.

    The index is the argmax of the fixed-point scores, lowest index on ties, exactly as
    ``protocols.matching.fixed_point.reference_match`` defines it; the MRI gets ``None``.
    """
    from protocols.matching.fixed_point import FixedPointParams, reference_match

    if params is None:
        params = FixedPointParams(dim=len(query))
    index = reference_match(query, keys, threshold, params)
    return IdealOutputs({"sp": index, "mri": None})


def sure_repair(
    query: np.ndarray,
    keys: np.ndarray,
    fixes: Sequence[Any],
    weights: Any,
    threshold: float | None,
    apply_fix: Callable[[Any, Any], Any],
    params: Any = None,
) -> IdealOutputs:
    """Return the outputs of the whole SURE repair.

    The SP inputs its matching key ``query`` and its weights; the MRI inputs its repair
    database (``keys`` and ``fixes``) and the threshold. The SP gets ``apply_fix(weights,
    fixes[index])`` for the matched index, or its weights unchanged when nothing matches; the
    MRI gets ``None``. ``apply_fix`` is the local repair step (``W ← W · W_fix`` on every
    cross-attention key and value projection).
    """
    index = matching(query, keys, threshold, params)["sp"]
    repaired = weights if index is None else apply_fix(weights, fixes[index])
    return IdealOutputs({"sp": repaired, "mri": None})
