"""TIME and UCE closed-form fixes of cross-attention projections, with dense and low-rank encodings.

TIME (Orgad, Kawar and Belinkov, "Editing Implicit Assumptions in Text-to-Image Diffusion Models",
ICCV 2023) edits every cross-attention key or value projection ``W`` (shape out x d) by solving

    min_W'  sum_i ||W' c_i - W c*_i||^2  +  lam ||W' - W||_F^2

where ``c_i`` are token embeddings of the source prompt and ``c*_i`` the aligned tokens of the
destination prompt. UCE (Gandikota et al., "Unified Concept Editing in Diffusion Models", WACV 2024)
adds preservation terms ``sum_j ||W' c_j - W c_j||^2``. Setting the gradient to zero gives

    W' (lam I + C C^T + P P^T) = W (lam I + C* C^T + P P^T)

with C = [c_i], C* = [c*_i] and P = [c_j] as columns, so W' = W W_fix and

    W_fix = (lam I + C* C^T + P P^T) M^-1,   M = lam I + C C^T + P P^T.

``W_fix`` depends on text embeddings only, so one fix serves every projection of the model. Writing
the left factor as M + (C* - C) C^T gives the exact low-rank form

    W_fix = I + (C* - C) C^T M^-1 = I + U V^T,   U = C* - C,   V = M^-1 C   (M is symmetric),

of rank at most k, the number of edited tokens, whatever the size of P. ``M`` is symmetric positive
definite when lam > 0; with lam = 0 it is invertible only if C and P together span R^d, and a
singular M raises :class:`SingularSystemError`. Everything is computed in float64; the encodings
are cast to float32 or float16 on request.

Token alignment follows TIME's rule, or extends it for bidirectional text encoders; see
:func:`align_tokens`.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from protocols.repair.errors import (
    AlignmentError,
    FixDecodeError,
    NonFiniteError,
    RepairError,
    SingularSystemError,
    TruncatedFix,
)

logger = logging.getLogger(__name__)

DENSE = "dense"
LOW_RANK = "low-rank"
ENCODINGS = (DENSE, LOW_RANK)

_MAGIC = b"SUREFIX\x01"
_HEADER = struct.Struct("<8sBBHII")  # magic, encoding, dtype, reserved, dim, rank
_ENCODING_CODES = {DENSE: 1, LOW_RANK: 2}
_DTYPE_CODES = {"float16": 1, "float32": 2, "float64": 3}

ALIGN_MODES = ("time", "insert", "all")

# TIME's prompt augmentations: the fix is also fitted on these rephrasings of each prompt pair.
DEFAULT_AUGMENTATIONS = ("a photo of {}", "an image of {}")

# The smallest eigenvalue of M, relative to its largest, below which M counts as singular.
SINGULAR_RCOND = 1e-12


def _dtype_name(dtype) -> str:
    name = np.dtype(dtype).name
    if name not in _DTYPE_CODES:
        raise RepairError(f"unsupported fix dtype {name!r}: use float16, float32 or float64")
    return name


@dataclass(frozen=True)
class Fix:
    """A cross-attention fix ``W_fix`` (d x d), stored as ``I + U V^T`` or as a dense matrix.

    A fix from :func:`compute_fix` contains ``u`` and ``v`` (d x k, float64) and no ``matrix``. A
    fix decoded from a dense encoding contains only ``matrix``. ``edited_tokens`` is k for computed
    fixes.
    """

    dim: int
    u: np.ndarray | None = None
    v: np.ndarray | None = None
    matrix: np.ndarray | None = None
    lam: float | None = None
    edited_tokens: int | None = None
    preserved_tokens: int | None = None
    metadata: dict = field(default_factory=dict, compare=False)

    @property
    def rank(self) -> int | None:
        """Columns of ``U`` and ``V``; None for a dense-only fix."""
        return None if self.u is None else self.u.shape[1]

    def dense(self, dtype=np.float32) -> np.ndarray:
        """Return ``W_fix`` as a d x d array of ``dtype``."""
        name = _dtype_name(dtype)
        if self.matrix is not None:
            return self.matrix.astype(name)
        matrix = np.eye(self.dim) + self.u.astype(np.float64) @ self.v.astype(np.float64).T
        return matrix.astype(name)

    def low_rank(self, dtype=np.float32, rank: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(U, V)`` of ``dtype`` with ``W_fix = I + U V^T``, each d x ``rank``.

        Without ``rank`` the fix's own k columns are returned. A larger ``rank`` appends zero
        columns, which changes nothing, so that every entry of a database has the same size. A
        smaller one, or a dense-only fix, goes through an SVD of ``W_fix - I`` and raises
        :class:`RepairError` if that matrix has more than ``rank`` significant singular values.
        """
        name = _dtype_name(dtype)
        if self.u is not None and (rank is None or rank >= self.u.shape[1]):
            u, v = self.u, self.v
        else:
            u, v = _factor(self.dense(np.float64) - np.eye(self.dim), rank)
        target = u.shape[1] if rank is None else rank
        if target < u.shape[1]:
            raise RepairError(f"fix has rank {u.shape[1]}, more than the requested rank {target}")
        pad = np.zeros((self.dim, target - u.shape[1]))
        return np.hstack([u, pad]).astype(name), np.hstack([v, pad]).astype(name)

    def to_bytes(self, encoding: str = LOW_RANK, dtype="float32", rank: int | None = None) -> bytes:
        """Serialise to the fixed-size fix encoding (see :func:`encoded_size`)."""
        name = _dtype_name(dtype)
        if encoding == DENSE:
            body = self.dense(name)
            rank_field = 0
        elif encoding == LOW_RANK:
            u, v = self.low_rank(name, rank)
            body = np.concatenate([u.ravel(), v.ravel()])
            rank_field = u.shape[1]
        else:
            raise RepairError(f"unknown fix encoding {encoding!r}: use {DENSE!r} or {LOW_RANK!r}")
        if not np.all(np.isfinite(body)):
            raise NonFiniteError(f"fix is not finite in {name}: its values overflow that dtype")
        header = _HEADER.pack(_MAGIC, _ENCODING_CODES[encoding], _DTYPE_CODES[name], 0, self.dim, rank_field)
        return header + body.astype(np.dtype(name).newbyteorder("<")).tobytes()

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        dim: int | None = None,
        encoding: str | None = None,
        dtype: str | None = None,
        rank: int | None = None,
    ) -> "Fix":
        """Parse a fix encoding, checking its header against the expected values given.

        Raises :class:`TruncatedFix` for bytes shorter than their header states and
        :class:`FixDecodeError` for any other wrong header, length, or a NaN or infinity.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise FixDecodeError(f"fix encoding must be bytes, got {type(data).__name__}")
        data = bytes(data)
        if len(data) < _HEADER.size:
            raise TruncatedFix(f"fix encoding has {len(data)} bytes, fewer than its {_HEADER.size}-byte header")
        magic, encoding_code, dtype_code, reserved, found_dim, found_rank = _HEADER.unpack_from(data)
        if magic != _MAGIC or reserved != 0:
            raise FixDecodeError("fix encoding has a wrong magic or reserved field: not a fix of this format")
        found_encoding = {code: name for name, code in _ENCODING_CODES.items()}.get(encoding_code)
        found_dtype = {code: name for name, code in _DTYPE_CODES.items()}.get(dtype_code)
        if found_encoding is None or found_dtype is None:
            raise FixDecodeError(f"fix encoding has unknown encoding code {encoding_code} or dtype code {dtype_code}")
        expectations = (("width", dim, found_dim), ("encoding", encoding, found_encoding),
                        ("dtype", None if dtype is None else _dtype_name(dtype), found_dtype),
                        ("rank", rank, found_rank))
        for label, expected, found in expectations:
            if expected is not None and expected != found:
                raise FixDecodeError(f"fix {label} is {found!r} but {expected!r} was expected")
        if found_dim == 0 or (found_encoding == DENSE and found_rank != 0):
            raise FixDecodeError(f"fix header is inconsistent: width {found_dim}, rank {found_rank}")
        count = found_dim * found_dim if found_encoding == DENSE else 2 * found_dim * found_rank
        expected_length = _HEADER.size + count * np.dtype(found_dtype).itemsize
        if len(data) < expected_length:
            raise TruncatedFix(f"fix encoding has {len(data)} bytes but its header states {expected_length}")
        if len(data) > expected_length:
            raise FixDecodeError(f"fix encoding has {len(data)} bytes, more than the {expected_length} its header states")
        values = np.frombuffer(data, dtype=np.dtype(found_dtype).newbyteorder("<"), offset=_HEADER.size)
        if not np.all(np.isfinite(values)):
            raise FixDecodeError("fix encoding contains NaN or infinity")
        values = values.astype(np.float64)
        if found_encoding == DENSE:
            return cls(dim=found_dim, matrix=values.reshape(found_dim, found_dim))
        half = found_dim * found_rank
        u = values[:half].reshape(found_dim, found_rank)
        v = values[half:].reshape(found_dim, found_rank)
        return cls(dim=found_dim, u=u, v=v)


def encoded_size(encoding: str, dtype: str, dim: int, rank: int = 0) -> int:
    """Return the byte length of a fix encoding: a 20-byte header plus the array values."""
    itemsize = np.dtype(_dtype_name(dtype)).itemsize
    if encoding == DENSE:
        return _HEADER.size + dim * dim * itemsize
    if encoding == LOW_RANK:
        return _HEADER.size + 2 * dim * rank * itemsize
    raise RepairError(f"unknown fix encoding {encoding!r}: use {DENSE!r} or {LOW_RANK!r}")


def _factor(delta: np.ndarray, rank: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Factor ``delta`` as ``U V^T`` by SVD, keeping the significant singular values."""
    left, singular, right = np.linalg.svd(delta)
    tolerance = max(delta.shape) * np.finfo(np.float64).eps * (singular[0] if singular.size else 0.0)
    significant = int(np.sum(singular > tolerance))
    if rank is not None and significant > rank:
        raise RepairError(f"fix has {significant} significant singular values, more than the requested rank {rank}")
    return left[:, :significant] * singular[:significant], right[:significant].T


def _as_columns(name: str, values, dim: int | None) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise RepairError(f"{name} must be a (tokens, width) array, got shape {array.shape}")
    if dim is not None and array.shape[1] != dim:
        raise RepairError(f"{name} has width {array.shape[1]} but the source tokens have width {dim}")
    if not np.all(np.isfinite(array)):
        raise NonFiniteError(f"{name} contains NaN or infinity")
    return array.T


def compute_fix(
    source_tokens,
    destination_tokens,
    preserve_tokens=None,
    lam: float = 0.1,
) -> Fix:
    """Compute the TIME fix (UCE when ``preserve_tokens`` is given) from aligned token embeddings.

    ``source_tokens`` and ``destination_tokens`` are (k, d) arrays whose rows are aligned pairs
    ``(c_i, c*_i)``; ``preserve_tokens`` is a (p, d) array of embeddings to keep; ``lam`` >= 0 is
    the weight of ``||W' - W||_F^2``. Returns the fix in its exact low-rank form (float64).
    """
    if not np.isfinite(lam) or lam < 0:
        raise RepairError(f"invalid lambda {lam!r}: use a finite value >= 0")
    source = _as_columns("source tokens", source_tokens, None)
    dim = source.shape[0]
    destination = _as_columns("destination tokens", destination_tokens, dim)
    if source.shape[1] == 0:
        raise RepairError("no edited tokens: give at least one aligned source/destination pair")
    if destination.shape != source.shape:
        raise RepairError(f"{source.shape[1]} source tokens but {destination.shape[1]} destination tokens: align them first")
    preserve = np.zeros((dim, 0)) if preserve_tokens is None else _as_columns("preserve tokens", preserve_tokens, dim)
    if preserve.size == 0:
        preserve = np.zeros((dim, 0))

    normal = lam * np.eye(dim) + source @ source.T + preserve @ preserve.T
    normal = (normal + normal.T) / 2
    eigenvalues = np.linalg.eigvalsh(normal)
    if eigenvalues[-1] <= 0 or eigenvalues[0] <= SINGULAR_RCOND * eigenvalues[-1]:
        raise SingularSystemError(
            f"the system lam*I + C C^T + P P^T is singular (lambda {lam}, {source.shape[1]} edited and "
            f"{preserve.shape[1]} preserved tokens spanning rank < {dim}): use lambda > 0"
        )
    v = np.linalg.solve(normal, source)
    u = destination - source
    logger.debug("fix of width %d, %d edited and %d preserved tokens, lambda %g", dim, source.shape[1], preserve.shape[1], lam)
    return Fix(dim=dim, u=u, v=v, lam=float(lam), edited_tokens=source.shape[1], preserved_tokens=preserve.shape[1])


def align_tokens(
    source_tokens: Sequence[str],
    destination_tokens: Sequence[str],
    padded_length: int,
    mode: str = "time",
) -> tuple[list[int], list[int]]:
    """Pair token positions of a source and a destination prompt; return (source, destination) indices.

    Both token lists include the start and end tokens and exclude padding, and both prompts are
    padded to ``padded_length``. The two prompts must end with the same word token, the subject that
    carries the implicit assumption.

    * ``"time"`` is TIME's rule. With ``s`` and ``t`` the positions of the last word token of the
      source and of the destination, it pairs ``s + j`` with ``t + j`` for every ``j`` that keeps
      both inside the padded length. So the subject, the end token and the padding positions are
      edited, and the words before the subject are not.
    * ``"insert"`` adds the destination's inserted words (such as "blue" in "a blue square") to
      TIME's pairs. Each is paired with one of the source's last padding positions, which TIME's
      rule leaves unpaired when the destination is longer. Cross-attention has no positional
      encoding, so the source's keys and values then form the same set as the destination's. A
      causal encoder such as CLIP carries an inserted word into the later tokens, but a
      bidirectional one such as MiniLM keeps it mostly in its own token, so this mode is needed there.
    * ``"all"`` is ``"insert"`` plus every source word before the subject paired with the same
      word in the destination.

    ``"insert"`` and ``"all"`` need the source's words before the subject to appear, in order,
    among the destination's words before its subject.
    """
    if mode not in ALIGN_MODES:
        raise RepairError(f"unknown alignment mode {mode!r}: use one of {', '.join(ALIGN_MODES)}")
    for label, tokens in (("source", source_tokens), ("destination", destination_tokens)):
        if len(tokens) < 3:
            raise AlignmentError(f"{label} prompt has no word tokens: give a non-empty prompt")
        if len(tokens) > padded_length:
            raise AlignmentError(f"{label} prompt has {len(tokens)} tokens, more than the padded length {padded_length}")
    source_last = len(source_tokens) - 2
    destination_last = len(destination_tokens) - 2
    if source_tokens[source_last] != destination_tokens[destination_last]:
        raise AlignmentError(
            f"source ends with {source_tokens[source_last]!r} but destination ends with "
            f"{destination_tokens[destination_last]!r}: the destination must keep the source's last word"
        )

    farthest = max(source_last, destination_last)
    count = padded_length - farthest
    source_index = [source_last + j for j in range(count)]
    destination_index = [destination_last + j for j in range(count)]
    if mode == "time":
        return source_index, destination_index

    # Match the source's words before the subject, in order, among the destination's (the start
    # token included); the destination words left over are the inserted ones.
    prefix_source: list[int] = []
    prefix_destination: list[int] = []
    cursor = 0
    for position in range(source_last):
        token = source_tokens[position]
        while cursor < destination_last and destination_tokens[cursor] != token:
            cursor += 1
        if cursor == destination_last:
            raise AlignmentError(
                f"source token {token!r} at position {position} has no match in the destination "
                f"before its last word: the destination must contain the source's words in order"
            )
        prefix_source.append(position)
        prefix_destination.append(cursor)
        cursor += 1
    # Both counts equal destination_last - source_last, because the whole source prefix matched.
    inserted = [position for position in range(destination_last) if position not in prefix_destination]
    free = list(range(source_last + count, padded_length))
    source_index += free[:len(inserted)]
    destination_index += inserted
    if mode == "all":
        source_index = prefix_source + source_index
        destination_index = prefix_destination + destination_index
    return source_index, destination_index
