"""Simulators for two-party secure matching (``protocols.matching.protocol``).

Simulation arguments (semi-honest, one corrupted party; the composition theorem for
semi-honest protocols, Goldreich, "Foundations of Cryptography, Volume 2",
lets the random OTs be replaced by their ideal functionality, simulated by
:mod:`simulators.ot_extension`):

* Corrupted **MRI**. Its view is the OT-extension sender's view for ``d·b + n·ℓ`` random OTs
  and the choice flips ``e = bits(b_sp) ⊕ r``. The bits ``r`` are uniform and reach the MRI
  only through the OT, which hides them, so ``e`` is a uniform ``n·ℓ``-bit string (zero
  padding bits as on the wire). The MRI's output is ``None``, so the simulator needs only
  ``n``, ``d`` and the public parameters.
* Corrupted **SP**. Its view is the OT-extension receiver's view; the Gilboa corrections
  ``u_ij = G(m0) − G(m1) + K̂[:, i]`` (Gilboa, "Two party RSA key generation", CRYPTO 1999),
  uniform in ``Z_2^32`` because ``G(m_{1−c})`` is a PRG output on a seed the SP never holds,
  packed to the low ``ceil((ℓ − j)/8)`` bytes; the label corrections ``m0 ⊕ m1 ⊕ Δ``, uniform
  for the same reason; and the garbled circuit. For the garbled circuit the simulator follows
  Yao's simulator (Lindell and Pinkas, "A Proof of Security of Yao's Protocol for Two-Party
  Computation", J. Cryptology 2009) with free-XOR and half-gates (Zahur, Rosulek,
  Evans, EUROCRYPT 2015): active labels are uniform strings, every half-gates
  table row is a hash output under a label the evaluator never holds and so pseudo-random,
  and the decoding bits are the point-and-permute bits of the index wires, uniform and fixed
  by the output index only together with the evaluator's active labels.

The view compared is the received messages. The evaluator's active labels come from its OT
outputs and random choices, that is from its random tape, so the tie between the decoding
bits and the output index is part of the argument but not of the compared view.
"""

from __future__ import annotations

import secrets

import numpy as np

from testbed.transcript import ViewEntry

from protocols.matching import arithmetic, garbled
from protocols.matching import protocol as matching
from protocols.matching.fixed_point import FixedPointParams
from simulators import ot_extension


def _uniform_bits(count: int) -> bytes:
    bits = np.frombuffer(secrets.token_bytes(count), dtype=np.uint8) & np.uint8(1)
    return np.packbits(bits, bitorder="little").tobytes()


def mri_view(sp: str, n: int, params: FixedPointParams) -> list[ViewEntry]:
    """Return a simulated view of the MRI for ``n`` keys; its output is ``None``."""
    ring = params.ring_bits
    ot_count = params.dim * params.query_bits + n * ring
    view = ot_extension.sender_view(sp, ot_count, phase=matching.PHASE_OT)
    flips = bytes([matching.KIND_CHOICE_FLIPS]) + _uniform_bits(n * ring)
    view.append(ViewEntry(sp, matching.PHASE_PRODUCTS, flips))
    return view


def sp_view(mri: str, n: int, params: FixedPointParams, output: int | None) -> list[ViewEntry]:
    """Return a simulated view of the SP for ``n`` keys and ideal output ``output``.

    ``output`` is unused beyond its validation: in the compared view it shapes nothing (see
    the module docstring).
    """
    if output is not None and not 0 <= output < n:
        raise ValueError(f"invalid output index {output}: expected None or 0 <= index < {n}")
    d = params.dim
    bits_q = params.query_bits
    ring = params.ring_bits
    choices = np.zeros(d * bits_q + n * ring, dtype=np.uint8)
    view = ot_extension.receiver_view(mri, choices, phase=matching.PHASE_OT)

    widths = arithmetic.correction_widths(bits_q, ring)
    step = matching._chunk_coordinates(params, n)
    for chunk, start in enumerate(range(0, d, step)):
        stop = min(d, start + step)
        corrections = np.frombuffer(
            secrets.token_bytes(4 * (stop - start) * bits_q * n), dtype=np.uint32
        ).reshape(stop - start, bits_q, n)
        head = matching._CHUNK_HEADER.pack(
            matching.KIND_CORRECTIONS, chunk, n, d, params.query_frac_bits, params.key_frac_bits
        )
        body = arithmetic.pack_corrections(corrections, widths)
        view.append(ViewEntry(mri, matching.PHASE_PRODUCTS, head + body))
    label_corrections = bytes([matching.KIND_LABEL_CORRECTIONS]) + secrets.token_bytes(16 * n * ring)
    view.append(ViewEntry(mri, matching.PHASE_PRODUCTS, label_corrections))

    label_count = ring * (n + 1) + 1
    gates = garbled.count_and_gates(n, ring)
    width = garbled.index_bits(n + 1)
    circuit = (
        bytes([matching.KIND_GARBLED_CIRCUIT])
        + secrets.token_bytes(16 * label_count)
        + secrets.token_bytes(32 * gates)
        + _uniform_bits(width)
    )
    view.append(ViewEntry(mri, matching.PHASE_ARGMAX, circuit))
    return view
