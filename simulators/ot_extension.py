"""Simulators for IKNP/KOS OT extension (``protocols.ot.extension``): random, correlated, chosen OT.

Simulation arguments (one corrupted party; Ishai, Kilian, Nissim, Petrank, "Extending
Oblivious Transfers Efficiently", CRYPTO 2003; Keller, Orsini, Scholl, "Actively
Secure OT Extension with Optimal Overhead", CRYPTO 2015; Asharov, Lindell,
Schneider, Zohner, "More Efficient Oblivious Transfer and Extensions for Faster Secure
Computation", CCS 2013, for correlated OT):

* Corrupted **sender**. It is the receiver of the ``kappa`` base OTs (roles swapped), so its
  view opens with the base-OT sender's point, simulated as in :mod:`simulators.ot_base`. Each
  matrix column ``u_j = G(k0_j) ⊕ G(k1_j) ⊕ r`` contains ``G(k_{1−s_j}, j)``, a PRG output on
  a seed the sender never sees, so the columns are pseudo-random: the simulator sends uniform
  bytes. In KOS, the response ``(x, t)`` is masked by the ``kappa + sigma`` extra random rows
  and the receiver's random ``t_i``: the simulator sends 32 uniform bytes. The sender's random
  OT outputs are ideal random keys; in correlated and chosen OT it has no output to match.
* Corrupted **receiver**. It is the sender of the base OTs, so its view opens with the base-OT
  receiver's points, simulated as uniform points. In KOS it then receives a uniform 16-byte
  challenge seed. For chosen OT, ``y_{r_i}`` equals ``m_{r_i} ⊕ P(i, t_i)`` and ``y_{1−r_i}``
  is masked by ``P(i, t_i ⊕ s)``, pseudo-random because ``s`` is hidden by the base OTs (the
  correlation-robust hash of Guo, Katz, Wang, Yu, S&P 2020): the simulator writes the chosen
  message under a fresh pad and a uniform string in the other slot. For correlated OT each
  ``y_i`` contains ``H(i, q_i ⊕ s)``, so it is uniform. For random OT nothing follows.

The view compared is the received messages; the simulator's pad stands for ``P(i, t_i)``,
which a full simulation would tie to the receiver's random tape (see
:mod:`simulators.ot_base`).
"""

from __future__ import annotations

import secrets

import numpy as np

from testbed.transcript import ViewEntry

from protocols.ot.codec import Kind, frame, header
from protocols.ot.extension import CHUNK_ROWS, KAPPA, ciphertext_rows_per_message, padded_rows
from simulators import ot_base

RANDOM, CORRELATED, CHOSEN = "random", "correlated", "chosen"


def _chunks(total: int, size: int):
    for seq, start in enumerate(range(0, total, size)):
        yield seq, start, min(total, start + size)


def sender_view(receiver: str, count: int, *, malicious: bool = False, phase: str) -> list[ViewEntry]:
    """Return a simulated view of the extension sender for ``count`` OTs of any kind.

    The sender's messages and its input (``delta`` or the messages) shape nothing it receives,
    so the view depends on ``count`` and ``malicious`` only.
    """
    if count == 0:
        return []
    view = ot_base.receiver_view(receiver, KAPPA, malicious=malicious, phase=phase)
    rows = padded_rows(count, malicious)
    for seq, start, stop in _chunks(rows, CHUNK_ROWS):
        nbytes = (stop - start) // 8
        view.append(ViewEntry(receiver, phase, header(Kind.EXT_MATRIX, seq) + secrets.token_bytes(KAPPA * nbytes)))
    if malicious:
        view.append(ViewEntry(receiver, phase, frame(Kind.KOS_RESPONSE, secrets.token_bytes(32))))
    return view


def receiver_view(
    sender: str,
    choices: np.ndarray,
    output: np.ndarray | None = None,
    *,
    kind: str = RANDOM,
    malicious: bool = False,
    phase: str,
) -> list[ViewEntry]:
    """Return a simulated view of the extension receiver with ``choices`` and ideal ``output``.

    ``output`` is the chosen messages, uint8 ``(count, L)``, for ``kind == "chosen"`` and is
    unused otherwise.
    """
    bits = np.asarray(choices, dtype=np.uint8)
    count = len(bits)
    if count == 0:
        return []
    view = ot_base.sender_view(sender, KAPPA, malicious=malicious, phase=phase)
    if malicious:
        view.append(ViewEntry(sender, phase, frame(Kind.KOS_CHALLENGE, secrets.token_bytes(16))))
    if kind == CORRELATED:
        for seq, start, stop in _chunks(count, CHUNK_ROWS):
            body = secrets.token_bytes(16 * (stop - start))
            view.append(ViewEntry(sender, phase, header(Kind.EXT_CORRECTIONS, seq) + body))
    elif kind == CHOSEN:
        chosen = np.asarray(output, dtype=np.uint8)
        length = chosen.shape[1]
        for seq, start, stop in _chunks(count, ciphertext_rows_per_message(length)):
            size = stop - start
            ciphertexts = np.frombuffer(secrets.token_bytes(2 * length * size), dtype=np.uint8).reshape(size, 2, length).copy()
            pads = np.frombuffer(secrets.token_bytes(length * size), dtype=np.uint8).reshape(size, length)
            ciphertexts[np.arange(size), bits[start:stop]] = chosen[start:stop] ^ pads
            view.append(ViewEntry(sender, phase, header(Kind.EXT_CIPHERTEXTS, seq) + ciphertexts.tobytes()))
    elif kind != RANDOM:
        raise ValueError(f"invalid OT kind {kind!r}: use random, correlated or chosen")
    return view
