"""The prime-order subgroup of Ed25519, through libsodium (PyNaCl bindings).

PyNaCl 1.6 exposes Ed25519 point and scalar operations but not ristretto255, so we work in
the subgroup of prime order ``L = 2^252 + 27742317777372353535851937790883648493`` of the
Ed25519 curve, whose full group has order ``8 L``. The cofactor 8 is handled explicitly:

* every point received from a peer goes through :func:`decode_point`, which accepts only
  canonical encodings of points in the order-``L`` subgroup (libsodium's
  ``crypto_core_ed25519_is_valid_point``). It rejects the identity, the 8 points of small
  order and every point with a torsion component;
* scalars are reduced modulo ``L`` and multiplied without clamping (``*_noclamp``), so
  ``(a b) P = a (b P)`` holds exactly in the subgroup;
* :func:`hash_to_point` adds two Elligator 2 encodings (libsodium's
  ``crypto_core_ed25519_from_uniform``, which clears the cofactor), so its outputs lie in the
  subgroup. Adding two encodings is the structure of the random-oracle encoding of RFC 9380
  for edwards25519, but the field elements come from SHA-512 halves, so the outputs are not
  byte-compatible with RFC 9380 test vectors.

The discrete-logarithm and computational Diffie–Hellman problems are assumed hard in this
subgroup; the base OTs built on it are proven in the random-oracle model.
"""

from __future__ import annotations

import hashlib
import secrets

import nacl.bindings as sodium
import nacl.exceptions

from protocols.ot.errors import InvalidPoint

POINT_BYTES = 32
SCALAR_BYTES = 32
IDENTITY = bytes([1]) + bytes(31)


def random_scalar() -> bytes:
    """Return a uniformly random non-zero scalar modulo ``L`` (32 bytes, little-endian)."""
    while True:
        scalar = sodium.crypto_core_ed25519_scalar_reduce(secrets.token_bytes(64))
        if any(scalar):
            return scalar


def base_mult(scalar: bytes) -> bytes:
    """Return ``scalar * G`` for the standard generator ``G`` of the subgroup."""
    return sodium.crypto_scalarmult_ed25519_base_noclamp(scalar)


def mult(scalar: bytes, point: bytes) -> bytes:
    """Return ``scalar * point``; ``point`` must already be a validated subgroup point.

    Raises ``InvalidPoint`` when libsodium rejects the point or the product is the identity.
    """
    try:
        return sodium.crypto_scalarmult_ed25519_noclamp(scalar, point)
    except nacl.exceptions.RuntimeError as exc:
        raise InvalidPoint(f"scalar multiplication rejected point {point.hex()}") from exc


def add(left: bytes, right: bytes) -> bytes:
    """Return ``left + right``; the result may be the identity."""
    return sodium.crypto_core_ed25519_add(left, right)


def sub(left: bytes, right: bytes) -> bytes:
    """Return ``left - right``; the result may be the identity."""
    return sodium.crypto_core_ed25519_sub(left, right)


def is_valid(point: bytes) -> bool:
    """Return whether ``point`` encodes a non-identity element of the prime-order subgroup."""
    return len(point) == POINT_BYTES and bool(sodium.crypto_core_ed25519_is_valid_point(point))


def decode_point(encoded: bytes | memoryview, description: str = "point") -> bytes:
    """Return ``encoded`` as bytes after checking it is a valid subgroup point.

    Raises ``InvalidPoint`` (a ``MalformedMessage``) for wrong lengths, encodings off the
    curve or non-canonical, the identity, small-order points and points outside the subgroup.
    """
    point = bytes(encoded)
    if len(point) != POINT_BYTES:
        raise InvalidPoint(f"invalid {description}: {len(point)} bytes, expected {POINT_BYTES}")
    if not sodium.crypto_core_ed25519_is_valid_point(point):
        raise InvalidPoint(
            f"invalid {description} {point.hex()}: not a point of the prime-order subgroup of Ed25519 "
            "(off the curve, non-canonical, identity, small order or with a torsion component)"
        )
    return point


def random_point() -> bytes:
    """Return a uniformly random point of the subgroup (``s * G`` for a random scalar ``s``)."""
    return base_mult(random_scalar())


def hash_to_point(domain: bytes, data: bytes) -> bytes:
    """Hash ``data`` to a point of the subgroup, as a random oracle separated by ``domain``.

    SHA-512 of the length-prefixed domain and data gives 64 bytes; each half goes through
    Elligator 2 (with cofactor clearing) and the two points are added.
    """
    digest = hashlib.sha512(len(domain).to_bytes(2, "big") + domain + data).digest()
    first = sodium.crypto_core_ed25519_from_uniform(digest[:32])
    second = sodium.crypto_core_ed25519_from_uniform(digest[32:])
    return add(first, second)
