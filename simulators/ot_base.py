"""Simulators for base 1-out-of-2 random OT (Naor–Pinkas and Masny–Rindal, ``protocols.ot.base``).

Each simulator builds the view of one corrupted party, in the format of
``Transcript.view(party)``: the messages the party receives, with their sender and phase.

Simulation arguments (semi-honest corruption of one party):

* Corrupted **sender**, Naor–Pinkas (Naor and Pinkas, "Efficient Oblivious Transfer
  Protocols", SODA 2001). The receiver's message holds ``PK0_j = x_j G`` when
  ``c_j = 0`` and ``PK0_j = C − x_j G`` when ``c_j = 1``. For a uniform non-zero scalar
  ``x_j`` both are uniform over the subgroup minus one point (the identity, or ``C``), so
  the simulator sends uniform non-identity points; the statistical distance per OT is at
  most ``1/(L − 1)`` with ``L ≈ 2^252`` the subgroup order. The sender's output keys are
  fresh random-oracle values in both worlds.
* Corrupted **receiver**, Naor–Pinkas. The sender's message is ``R = r G`` for a uniform
  non-zero ``r``: the simulator sends a uniform non-identity point. In the random-oracle
  model the simulator programs ``H(j, c_j, R, PK0_j, x_j R)`` to the receiver's output key;
  the key ``k_{1−c_j}`` stays hidden under CDH.
* Corrupted **sender**, Masny–Rindal ("Endemic Oblivious Transfer", CCS 2019, its
  Diffie–Hellman instantiation). ``r_{1−c}`` is a uniform point and ``r_c = b G −
  H(j, c, r_{1−c})`` is uniform because ``b`` is, so the pair is two independent uniform
  points whatever the choice bit; the simulator sends two uniform points per OT.
* Corrupted **receiver**, Masny–Rindal. The sender's message ``A = a G`` is uniform; the
  simulator sends a uniform point and, in the random-oracle model, programs the key
  derivation at the receiver's chosen key.

The view compared here is the received messages. The corrupted party's random tape is not
part of it, so the random-oracle programming that ties the view to the output is stated,
not checked; ``proofs_check`` checks it through the output-consistency test instead.
"""

from __future__ import annotations

from testbed.transcript import ViewEntry

from protocols.ot import group
from protocols.ot.codec import Kind, frame


def sender_view(receiver: str, count: int, *, malicious: bool = False, phase: str) -> list[ViewEntry]:
    """Return a simulated view of the base-OT sender: the receiver's points for ``count`` OTs.

    The sender's input is ``count`` alone and its output is random, so nothing else is needed.
    """
    if count == 0:
        return []
    if malicious:
        body = b"".join(group.random_point() + group.random_point() for _ in range(count))
        return [ViewEntry(receiver, phase, frame(Kind.MR_RECEIVER_POINTS, body))]
    body = b"".join(group.random_point() for _ in range(count))
    return [ViewEntry(receiver, phase, frame(Kind.NP_RECEIVER_POINTS, body))]


def receiver_view(sender: str, count: int, *, malicious: bool = False, phase: str) -> list[ViewEntry]:
    """Return a simulated view of the base-OT receiver: the sender's single point.

    The receiver's output keys are not needed: the random oracle is programmed to them.
    """
    if count == 0:
        return []
    kind = Kind.MR_SENDER_POINT if malicious else Kind.NP_SENDER_POINT
    return [ViewEntry(sender, phase, frame(kind, group.random_point()))]
