"""Base 1-out-of-2 random OT over the prime-order subgroup of Ed25519.

Two constructions, both producing *random* OT: the sender outputs two 16-byte keys
``(k0_j, k1_j)`` per OT and the receiver outputs ``k_{c_j, j}`` for its choice bit ``c_j``.
Random OT is what OT extension and the 1-out-of-n key tree consume, and it needs no third
message.

Semi-honest: Naor–Pinkas, "Efficient Oblivious Transfer Protocols" (SODA 2001), in the
variant where the point ``C`` is a hash to the group of a fixed label, so no party knows its
discrete logarithm. The sender sends ``R = r G``; the receiver sends ``PK0_j`` with
``PK_{c_j} = x_j G`` and ``PK_{1-c_j} = C - PK_{c_j}``; keys are ``H(j, b, R, PK0_j, r PK_b)``
and the receiver computes its key from ``x_j R``. Secure against semi-honest adversaries
under CDH in the random-oracle model; ``PK0_j`` is a uniformly random point whatever the
choice, so the sender's view does not depend on the choices.

Malicious: Masny–Rindal, "Endemic Oblivious Transfer" (CCS 2019), instantiated with
Diffie–Hellman key agreement and the random-oracle programmable-once function. The sender
sends ``A = a G``. For each OT the receiver picks ``b_j``, a uniformly random point
``r_{1-c}`` and sets ``r_c = b_j G - H(j, c, r_{1-c})``, then sends ``(r_0, r_1)``. The sender
evaluates ``B_i = r_i + H(j, i, r_{1-i})`` and outputs ``k_i = KDF(j, i, A, r_0, r_1, a B_i)``; the
receiver outputs ``KDF(j, c, A, r_0, r_1, b_j A)``. Masny and Rindal prove it an endemic OT
against malicious adversaries under CDH in the random-oracle model: a corrupt party may fix
its own outputs, which costs nothing when the outputs serve as keys or extension seeds.

Messages, rounds and bytes (``count`` OTs, 5-byte header ``h``, 32-byte points):

==============  ==========================  ==========================  ======
construction    sender -> receiver          receiver -> sender          rounds
==============  ==========================  ==========================  ======
Naor–Pinkas     one message, ``h + 32``     one message, ``h + 32 count``   1
Masny–Rindal    one message, ``h + 32``     one message, ``h + 64 count``   1
==============  ==========================  ==========================  ======

The two messages do not depend on each other, so both travel in the same round. With
``count == 0`` no message is sent. Compute per OT: Naor–Pinkas costs the sender one scalar
multiplication and the receiver two. Masny–Rindal costs the sender two scalar multiplications
and two hashes to the group, and the receiver three scalar multiplications (two of them of
the generator) and one hash to the group.
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np

from testbed.effects import Party, Phase, Receive, Send

from protocols.ot import group
from protocols.ot.codec import Kind, frame, parse
from protocols.ot.errors import InvalidPoint

KEY_BYTES = 16
NP_LABEL = b"sure-testbed/ot/naor-pinkas"
MR_LABEL = b"sure-testbed/ot/masny-rindal"
NP_POINT_C = group.hash_to_point(NP_LABEL + b"/C", b"")


def choice_bits(choices: np.ndarray | list[int] | list[bool], name: str = "choices") -> np.ndarray:
    """Return ``choices`` as a one-dimensional uint8 array of 0s and 1s.

    Raises ``ValueError`` unless the input is one-dimensional with every entry 0, 1,
    ``False`` or ``True``.
    """
    array = np.asarray(choices)
    if array.ndim != 1:
        raise ValueError(f"invalid {name}: shape {array.shape}, expected a one-dimensional array of bits")
    if array.dtype == np.bool_:
        return array.astype(np.uint8)
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"invalid {name}: dtype {array.dtype}, expected bool or an integer type")
    if array.size and (array.min() < 0 or array.max() > 1):
        raise ValueError(f"invalid {name}: entries must be 0 or 1")
    return array.astype(np.uint8)


def _index(j: int, bit: int) -> bytes:
    return struct.pack(">IB", j, bit)


def _derive_key(label: bytes, j: int, bit: int, transcript: bytes, shared: bytes) -> bytes:
    return hashlib.sha256(label + b"/key" + _index(j, bit) + transcript + shared).digest()[:KEY_BYTES]


def base_ot_sender(
    peer: str, count: int, *, malicious: bool = False, phase: str | None = None
) -> Party[tuple[np.ndarray, np.ndarray]]:
    """Run ``count`` base random OTs as the sender; return ``(k0, k1)``, uint8 ``(count, 16)``.

    ``malicious`` selects Masny–Rindal over Naor–Pinkas. Raises ``InvalidPoint`` when the
    receiver sends a point outside the prime-order subgroup or one that evaluates to the
    identity, and the ``parse`` aborts for malformed messages.
    """
    if count < 0:
        raise ValueError(f"invalid count {count}: expected a non-negative number of OTs")
    if phase is not None:
        yield Phase(phase)
    keys0 = np.zeros((count, KEY_BYTES), dtype=np.uint8)
    keys1 = np.zeros((count, KEY_BYTES), dtype=np.uint8)
    if count == 0:
        return keys0, keys1

    secret = group.random_scalar()
    own_point = group.base_mult(secret)
    if malicious:
        yield Send(peer, frame(Kind.MR_SENDER_POINT, own_point))
        body = parse((yield Receive(peer)), Kind.MR_RECEIVER_POINTS, 0, 2 * group.POINT_BYTES * count)
        for j in range(count):
            offset = 2 * group.POINT_BYTES * j
            pair = bytes(body[offset : offset + 2 * group.POINT_BYTES])
            r0 = group.decode_point(pair[:32], f"Masny-Rindal r0 of OT {j}")
            r1 = group.decode_point(pair[32:], f"Masny-Rindal r1 of OT {j}")
            evaluated = (
                group.add(r0, group.hash_to_point(MR_LABEL, _index(j, 0) + r1)),
                group.add(r1, group.hash_to_point(MR_LABEL, _index(j, 1) + r0)),
            )
            transcript = own_point + pair
            for bit, point in enumerate(evaluated):
                if point == group.IDENTITY:
                    raise InvalidPoint(f"Masny-Rindal pair of OT {j} evaluates to the identity for bit {bit}")
                key = _derive_key(MR_LABEL, j, bit, transcript, group.mult(secret, point))
                (keys0 if bit == 0 else keys1)[j] = np.frombuffer(key, dtype=np.uint8)
        return keys0, keys1

    yield Send(peer, frame(Kind.NP_SENDER_POINT, own_point))
    body = parse((yield Receive(peer)), Kind.NP_RECEIVER_POINTS, 0, group.POINT_BYTES * count)
    secret_c = group.mult(secret, NP_POINT_C)
    for j in range(count):
        pk0 = group.decode_point(body[32 * j : 32 * (j + 1)], f"Naor-Pinkas public key of OT {j}")
        if group.sub(NP_POINT_C, pk0) == group.IDENTITY:
            raise InvalidPoint(f"Naor-Pinkas public key of OT {j} equals C, so PK1 is the identity")
        shared0 = group.mult(secret, pk0)
        shared1 = group.sub(secret_c, shared0)
        transcript = own_point + pk0
        keys0[j] = np.frombuffer(_derive_key(NP_LABEL, j, 0, transcript, shared0), dtype=np.uint8)
        keys1[j] = np.frombuffer(_derive_key(NP_LABEL, j, 1, transcript, shared1), dtype=np.uint8)
    return keys0, keys1


def base_ot_receiver(
    peer: str, choices: np.ndarray, *, malicious: bool = False, phase: str | None = None
) -> Party[np.ndarray]:
    """Run base random OTs as the receiver with choice bits ``choices``; return ``k_c``.

    The output is uint8 ``(count, 16)``, row ``j`` equal to the sender's ``k{c_j}[j]``.
    Raises ``InvalidPoint`` when the sender's point is outside the prime-order subgroup.
    """
    bits = choice_bits(choices)
    count = len(bits)
    if phase is not None:
        yield Phase(phase)
    keys = np.zeros((count, KEY_BYTES), dtype=np.uint8)
    if count == 0:
        return keys

    secrets_ = [group.random_scalar() for _ in range(count)]
    if malicious:
        pairs = []
        for j in range(count):
            choice = int(bits[j])
            other = group.random_point()
            chosen = group.sub(
                group.base_mult(secrets_[j]), group.hash_to_point(MR_LABEL, _index(j, choice) + other)
            )
            pairs.append(chosen + other if choice == 0 else other + chosen)
        yield Send(peer, frame(Kind.MR_RECEIVER_POINTS, b"".join(pairs)))
        body = parse((yield Receive(peer)), Kind.MR_SENDER_POINT, 0, group.POINT_BYTES)
        sender_point = group.decode_point(body, "Masny-Rindal sender point A")
        for j in range(count):
            shared = group.mult(secrets_[j], sender_point)
            key = _derive_key(MR_LABEL, j, int(bits[j]), sender_point + pairs[j], shared)
            keys[j] = np.frombuffer(key, dtype=np.uint8)
        return keys

    public_keys = []
    for j in range(count):
        own = group.base_mult(secrets_[j])
        public_keys.append(own if bits[j] == 0 else group.sub(NP_POINT_C, own))
    yield Send(peer, frame(Kind.NP_RECEIVER_POINTS, b"".join(public_keys)))
    body = parse((yield Receive(peer)), Kind.NP_SENDER_POINT, 0, group.POINT_BYTES)
    sender_point = group.decode_point(body, "Naor-Pinkas sender point R")
    for j in range(count):
        shared = group.mult(secrets_[j], sender_point)
        key = _derive_key(NP_LABEL, j, int(bits[j]), sender_point + public_keys[j], shared)
        keys[j] = np.frombuffer(key, dtype=np.uint8)
    return keys
