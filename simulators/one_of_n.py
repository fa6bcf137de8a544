"""Simulators for 1-out-of-n OT from a Naor–Pinkas key tree (``protocols.ot.one_of_n``).

Simulation arguments (Naor and Pinkas, "Oblivious Transfer and Polynomial Evaluation", STOC
1999, with ``l = ceil(log2 n)`` base OTs):

* Corrupted **sender**. Its only incoming message is the base-OT receiver's message for the
  ``l`` index bits, simulated as in :mod:`simulators.ot_base` without the index.
* Corrupted **receiver**. Its ideal output is entry ``index``; the functionality also leaks
  ``n`` and every payload length, as the module documents. The simulator sends the base-OT
  sender's point, then entry ``index`` masked by a fresh pad (standing for
  ``AES-CTR(k_index)``) and uniform strings of the right lengths for every other entry: for
  ``i ≠ index`` the key ``k_i`` contains ``AES(K_j^{1−b_j}, i)`` under a base-OT key the
  receiver never holds, so with AES a pseudo-random function the masked entry is
  pseudo-random. With ``n = 1`` no base OT runs and the single entry travels under the
  all-zero key, which the simulator reproduces exactly.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from testbed.transcript import ViewEntry

from protocols.ot.codec import Kind, header
from protocols.ot.one_of_n import LENGTH, levels
from simulators import ot_base

_ZERO_NONCE = bytes(16)


def sender_view(receiver: str, n: int, *, malicious: bool = False, phase: str) -> list[ViewEntry]:
    """Return a simulated view of the 1-out-of-n sender: the base-OT message for ``l`` bits."""
    return ot_base.sender_view(receiver, levels(n), malicious=malicious, phase=phase)


def receiver_view(
    sender: str, index: int, output: bytes, lengths: Sequence[int], *, malicious: bool = False, phase: str
) -> list[ViewEntry]:
    """Return a simulated view of the receiver of entry ``index`` with ideal ``output``.

    ``lengths`` are the payload lengths, which the protocol leaks by design.
    """
    n = len(lengths)
    if len(output) != lengths[index]:
        raise ValueError(f"output has {len(output)} bytes but entry {index} has {lengths[index]}")
    view = ot_base.receiver_view(sender, levels(n), malicious=malicious, phase=phase)
    for i, size in enumerate(lengths):
        if n == 1:
            encryptor = Cipher(algorithms.AES(bytes(16)), modes.CTR(_ZERO_NONCE)).encryptor()
            masked = encryptor.update(output) + encryptor.finalize()
        elif i == index:
            pad = secrets.token_bytes(size)
            masked = bytes(a ^ b for a, b in zip(output, pad))
        else:
            masked = secrets.token_bytes(size)
        view.append(ViewEntry(sender, phase, header(Kind.ONE_OF_N_ENTRY, i) + LENGTH.pack(size) + masked))
    return view
