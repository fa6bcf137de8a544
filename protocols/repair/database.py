"""The MRI's repair database: matching keys and fixes, stored as safetensors with a JSON manifest.

Entry ``i`` is ``(key_i, W_fix_i)``. ``key_i`` is the unit-norm sentence embedding of the text that
describes the failure, made by the same encoder the service provider uses for its query. Every fix
has the same encoding, dtype and (for low-rank) rank, so every entry encodes to the same number of
bytes, as 1-out-of-n oblivious transfer requires.

A database folder contains three files. ``manifest.json`` lists the format, encoder, shapes,
entries and the SHA-256 digests of the tensor files. ``keys.safetensors`` stores the tensor ``keys``
(n x key_dim, float32). ``fixes.safetensors`` stores, for the m real entries, ``dense`` of shape
(m, d, d) or ``u`` and ``v`` of shape (m, d, rank). Synthetic entries, which pad a database to thousands of entries for cost runs,
are marked ``synthetic`` in the manifest and their fixes are regenerated on access from the
manifest's seed and the entry index, so they take no disk space.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from protocols.repair.edit import fix_for_edit
from protocols.repair.errors import DatabaseError, RepairError
from protocols.repair.fix import DENSE, ENCODINGS, LOW_RANK, Fix, encoded_size
from protocols.repair.spec import load_spec

logger = logging.getLogger(__name__)

FORMAT = "sure-repair-database/1"
KEY_NORM_TOLERANCE = 1e-3
# Scale of the entries of synthetic U and V, so that ||U V^T|| stays of order one.
SYNTHETIC_SCALE = 0.05


@dataclass(frozen=True)
class EntryInfo:
    """Manifest record of one entry. Synthetic entries have empty prompts."""

    id: str
    key_text: str = ""
    source: str = ""
    destination: str = ""
    preserve: tuple[str, ...] = ()
    lam: float | None = None
    edited_tokens: int | None = None
    synthetic: bool = False


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class RepairDatabase:
    """Keys and fixes of a repair database, in memory.

    ``keys`` is (n, key_dim) float32 with unit rows. ``arrays`` contains the real entries' fix
    tensors (``dense``, or ``u`` and ``v``) in ``dtype``. Entries from ``real_count`` on are synthetic.
    """

    def __init__(
        self,
        keys: np.ndarray,
        arrays: dict[str, np.ndarray],
        entries: list[EntryInfo],
        *,
        encoder: str,
        fix_dim: int,
        encoding: str,
        dtype: str,
        rank: int,
        synthetic_seed: int = 0,
    ) -> None:
        self.keys = keys
        self.arrays = arrays
        self.entries = entries
        self.encoder = encoder
        self.fix_dim = fix_dim
        self.encoding = encoding
        self.dtype = dtype
        self.rank = rank
        self.synthetic_seed = synthetic_seed
        self.validate()

    # Construction

    @classmethod
    def build(
        cls,
        spec_path: Path | str,
        encoder,
        encoding: str = LOW_RANK,
        dtype: str = "float32",
        rank: int | None = None,
    ) -> "RepairDatabase":
        """Build the database of an edit-spec file with ``encoder``. Nothing is written to disk.

        The low-rank rank defaults to the largest number of edited tokens among the entries.
        """
        if encoding not in ENCODINGS:
            raise RepairError(f"unknown encoding {encoding!r}: use {DENSE!r} or {LOW_RANK!r}")
        edits = load_spec(spec_path)
        fixes = []
        keys = []
        for edit in edits:
            try:
                fixes.append(fix_for_edit(encoder, edit))
                keys.append(encoder.embed_key(edit.key))
            except (RepairError, ValueError) as exc:
                # Keep the exception type (alignment, singular system, prompt) and add where it happened.
                raise type(exc)(f"edit {edit.id!r} of {spec_path}: {exc}") from exc
        fix_dim = fixes[0].dim
        if rank is None:
            rank = max(fix.rank for fix in fixes) if encoding == LOW_RANK else 0
        arrays = cls._encode_arrays(fixes, encoding, dtype, rank)
        entries = [
            EntryInfo(
                id=edit.id, key_text=edit.key, source=edit.source, destination=edit.destination,
                preserve=tuple(edit.preserve), lam=edit.lam, edited_tokens=fix.edited_tokens,
            )
            for edit, fix in zip(edits, fixes)
        ]
        database = cls(
            np.asarray(keys, dtype=np.float32), arrays, entries, encoder=encoder.name,
            fix_dim=fix_dim, encoding=encoding, dtype=dtype, rank=rank if encoding == LOW_RANK else 0,
        )
        logger.info("built repair database: %d entries from %s", len(database), spec_path)
        return database

    @staticmethod
    def _encode_arrays(fixes: list[Fix], encoding: str, dtype: str, rank: int) -> dict[str, np.ndarray]:
        if encoding == DENSE:
            return {"dense": np.stack([fix.dense(dtype) for fix in fixes])}
        pairs = [fix.low_rank(dtype, rank) for fix in fixes]
        return {"u": np.stack([u for u, _ in pairs]), "v": np.stack([v for _, v in pairs])}

    @classmethod
    def synthetic(
        cls,
        total: int,
        *,
        key_dim: int,
        fix_dim: int,
        encoding: str = LOW_RANK,
        dtype: str = "float32",
        rank: int = 8,
        seed: int = 0,
    ) -> "RepairDatabase":
        """Return a database of ``total`` synthetic entries only, for cost runs at any width.

        Used where no text encoder of the model's width is available (SD v1.4 built with random
        weights); the entries are those :meth:`pad_synthetic` would add.
        """
        if total < 1:
            raise RepairError(f"invalid synthetic database size {total}: give at least 1 entry")
        if encoding not in ENCODINGS:
            raise RepairError(f"unknown encoding {encoding!r}: use {DENSE!r} or {LOW_RANK!r}")
        if encoding == DENSE:
            arrays = {"dense": np.zeros((0, fix_dim, fix_dim), dtype=dtype)}
        else:
            arrays = {name: np.zeros((0, fix_dim, rank), dtype=dtype) for name in ("u", "v")}
        # An empty database is valid only as the start of padding, so it skips validation.
        empty = cls.__new__(cls)
        empty.keys = np.zeros((0, key_dim), dtype=np.float32)
        empty.arrays = arrays
        empty.entries = []
        empty.encoder = "none (synthetic)"
        empty.fix_dim = fix_dim
        empty.encoding = encoding
        empty.dtype = dtype
        empty.rank = rank  # a dense synthetic fix is I + U V^T of this rank too
        empty.synthetic_seed = seed
        return empty.pad_synthetic(total, seed=seed)

    def pad_synthetic(self, total: int, seed: int = 0) -> "RepairDatabase":
        """Return a copy padded with synthetic entries to ``total`` entries.

        Synthetic keys are uniform on the unit sphere and synthetic fixes are random of this
        database's encoding, dtype and rank, drawn from a generator seeded by ``(seed, index)``
        (scenario randomness, not secret).
        """
        if total < len(self):
            raise RepairError(f"cannot pad {len(self)} entries down to {total}: give a total >= {len(self)}")
        if len(self) > self.real_count and seed != self.synthetic_seed:
            raise RepairError(f"database already has synthetic entries with seed {self.synthetic_seed}; use that seed")
        keys = [self.keys]
        entries = list(self.entries)
        for index in range(len(self), total):
            rng = np.random.default_rng([seed, index, 0])
            key = rng.normal(size=self.keys.shape[1])
            keys.append((key / np.linalg.norm(key)).astype(np.float32)[None, :])
            entries.append(EntryInfo(id=f"synthetic-{index:06d}", synthetic=True))
        padded = RepairDatabase(
            np.concatenate(keys), self.arrays, entries, encoder=self.encoder, fix_dim=self.fix_dim,
            encoding=self.encoding, dtype=self.dtype, rank=self.rank, synthetic_seed=seed,
        )
        logger.info("padded repair database to %d entries (%d synthetic)", total, total - self.real_count)
        return padded

    # Access

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def real_count(self) -> int:
        """Number of entries built from the edit spec."""
        return next(iter(self.arrays.values())).shape[0]

    @property
    def key_dim(self) -> int:
        return int(self.keys.shape[1])

    @property
    def entry_size(self) -> int:
        """Byte length of every entry encoding."""
        return encoded_size(self.encoding, self.dtype, self.fix_dim, self.rank)

    def key(self, index: int) -> np.ndarray:
        """Return the unit-norm key of entry ``index`` (float64)."""
        self._check_index(index)
        return self.keys[index].astype(np.float64)

    def fix(self, index: int) -> Fix:
        """Return the fix of entry ``index`` as stored (in this database's dtype)."""
        self._check_index(index)
        if index < self.real_count:
            if self.encoding == DENSE:
                return Fix(dim=self.fix_dim, matrix=self.arrays["dense"][index].astype(np.float64))
            return Fix(dim=self.fix_dim, u=self.arrays["u"][index].astype(np.float64),
                       v=self.arrays["v"][index].astype(np.float64))
        return self._synthetic_fix(index)

    def entry_bytes(self, index: int) -> bytes:
        """Return the fixed-size encoding of entry ``index``'s fix (see ``Fix.to_bytes``)."""
        return self.fix(index).to_bytes(self.encoding, self.dtype, self.rank or None)

    def _synthetic_fix(self, index: int) -> Fix:
        rng = np.random.default_rng([self.synthetic_seed, index, 1])
        rank = max(self.rank, 1)
        u = (rng.normal(size=(self.fix_dim, rank)) * SYNTHETIC_SCALE).astype(self.dtype).astype(np.float64)
        v = (rng.normal(size=(self.fix_dim, rank)) * SYNTHETIC_SCALE).astype(self.dtype).astype(np.float64)
        if self.encoding == DENSE:
            matrix = (np.eye(self.fix_dim) + u @ v.T).astype(self.dtype).astype(np.float64)
            return Fix(dim=self.fix_dim, matrix=matrix)
        return Fix(dim=self.fix_dim, u=u, v=v)

    def _check_index(self, index: int) -> None:
        if not isinstance(index, (int, np.integer)) or not 0 <= index < len(self):
            raise IndexError(f"entry index {index!r} out of range: the database has {len(self)} entries")

    def summary(self) -> dict:
        """Return the ``database`` object of a run report."""
        shape = [self.fix_dim, self.fix_dim] if self.encoding == DENSE else [2, self.fix_dim, self.rank]
        return {
            "entries": len(self), "real_entries": self.real_count, "key_dim": self.key_dim,
            "fix_shape": shape, "encoding": self.encoding, "dtype": self.dtype,
            "entry_bytes": self.entry_size, "encoder": self.encoder,
        }

    # Validation and storage

    def validate(self) -> None:
        """Check shapes, dtypes, finiteness, unit keys and unique ids, raising :class:`DatabaseError`."""
        if self.encoding not in ENCODINGS:
            raise DatabaseError(f"unknown encoding {self.encoding!r}: use {DENSE!r} or {LOW_RANK!r}")
        if self.dtype not in ("float16", "float32", "float64"):
            raise DatabaseError(f"unsupported dtype {self.dtype!r}: use float16, float32 or float64")

        expected_names = {"dense"} if self.encoding == DENSE else {"u", "v"}
        if set(self.arrays) != expected_names:
            raise DatabaseError(f"fix tensors {sorted(self.arrays)} do not match encoding {self.encoding!r}: expected {sorted(expected_names)}")
        count = None
        for name, array in self.arrays.items():
            expected_tail = (self.fix_dim, self.fix_dim) if name == "dense" else (self.fix_dim, self.rank)
            if array.ndim != 3 or array.shape[1:] != expected_tail:
                raise DatabaseError(f"fix tensor {name!r} has shape {array.shape}, expected (entries, {expected_tail[0]}, {expected_tail[1]})")
            if array.dtype != np.dtype(self.dtype):
                raise DatabaseError(f"fix tensor {name!r} has dtype {array.dtype}, expected {self.dtype}")
            if not np.all(np.isfinite(array)):
                raise DatabaseError(f"fix tensor {name!r} contains NaN or infinity")
            if count is not None and array.shape[0] != count:
                raise DatabaseError("fix tensors 'u' and 'v' have different entry counts")
            count = array.shape[0]
        if self.encoding == LOW_RANK and self.rank < 1:
            raise DatabaseError(f"low-rank database has rank {self.rank}: it must be >= 1")
        if count is None or (count < 1 and not self.entries):
            raise DatabaseError("database has no entries")

        if self.keys.ndim != 2 or self.keys.shape[0] != len(self.entries):
            raise DatabaseError(f"keys have shape {self.keys.shape} but the manifest lists {len(self.entries)} entries")
        if self.keys.dtype != np.float32:
            raise DatabaseError(f"keys have dtype {self.keys.dtype}, expected float32")
        if not np.all(np.isfinite(self.keys)):
            raise DatabaseError("keys contain NaN or infinity")
        norms = np.linalg.norm(self.keys.astype(np.float64), axis=1)
        if np.any(np.abs(norms - 1) > KEY_NORM_TOLERANCE):
            worst = int(np.argmax(np.abs(norms - 1)))
            raise DatabaseError(f"key of entry {worst} has norm {norms[worst]:.6f}, expected 1")

        ids = [entry.id for entry in self.entries]
        if len(set(ids)) != len(ids):
            duplicate = next(entry_id for entry_id in ids if ids.count(entry_id) > 1)
            raise DatabaseError(f"duplicate entry id {duplicate!r}")
        for index, entry in enumerate(self.entries):
            if entry.synthetic != (index >= count):
                raise DatabaseError(f"entry {index} ({entry.id!r}): real entries must come first, then synthetic ones")

    def manifest(self, digests: dict[str, str]) -> dict:
        return {
            "format": FORMAT, "encoder": self.encoder, "key_dim": self.key_dim, "fix_dim": self.fix_dim,
            "encoding": self.encoding, "dtype": self.dtype, "rank": self.rank,
            "entry_bytes": self.entry_size, "real_entries": self.real_count,
            "synthetic": {"count": len(self) - self.real_count, "seed": self.synthetic_seed},
            "sha256": digests,
            "entries": [asdict(entry) for entry in self.entries],
        }

    def save(self, folder: Path | str, overwrite: bool = False) -> Path:
        """Write the database to ``folder`` atomically: a sibling temporary folder, then a rename."""
        from safetensors.numpy import save_file

        folder = Path(folder).resolve()
        if folder.exists() and not overwrite:
            raise DatabaseError(f"{folder} exists: choose a new folder or pass overwrite=True")
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        try:
            save_file({"keys": np.ascontiguousarray(self.keys)}, str(staging / "keys.safetensors"))
            save_file({name: np.ascontiguousarray(a) for name, a in self.arrays.items()}, str(staging / "fixes.safetensors"))
            digests = {name: _sha256(staging / name) for name in ("keys.safetensors", "fixes.safetensors")}
            (staging / "manifest.json").write_text(json.dumps(self.manifest(digests), indent=1) + "\n")
            if folder.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{folder.name}-old-", dir=folder.parent))
                os.replace(folder, old / folder.name)
                os.replace(staging, folder)
                shutil.rmtree(old)
            else:
                os.replace(staging, folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        logger.info("saved repair database (%d entries) to %s", len(self), folder)
        return folder

    @classmethod
    def load(cls, folder: Path | str) -> "RepairDatabase":
        """Load and validate a database folder written by :meth:`save`."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        folder = Path(folder)
        manifest_path = folder / "manifest.json"
        if not manifest_path.is_file():
            raise DatabaseError(f"{folder} has no manifest.json: not a repair database")
        try:
            manifest = json.loads(manifest_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DatabaseError(f"{manifest_path} is not valid JSON: {exc}") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise DatabaseError(f"{manifest_path} has format {manifest.get('format') if isinstance(manifest, dict) else None!r}, expected {FORMAT!r}")
        try:
            digests = manifest["sha256"]
            for name in ("keys.safetensors", "fixes.safetensors"):
                path = folder / name
                if not path.is_file():
                    raise DatabaseError(f"{folder} is missing {name}")
                if _sha256(path) != digests[name]:
                    raise DatabaseError(f"{path} does not match the SHA-256 digest in the manifest: the file changed")
            keys = load_file(str(folder / "keys.safetensors"))["keys"]
            arrays = load_file(str(folder / "fixes.safetensors"))
            entries = [replace(EntryInfo(**entry), preserve=tuple(entry.get("preserve", ()))) for entry in manifest["entries"]]
            synthetic = manifest["synthetic"]
            database = cls(
                keys, arrays, entries, encoder=manifest["encoder"], fix_dim=int(manifest["fix_dim"]),
                encoding=manifest["encoding"], dtype=manifest["dtype"], rank=int(manifest["rank"]),
                synthetic_seed=int(synthetic["seed"]),
            )
        except (KeyError, TypeError, ValueError, SafetensorError) as exc:
            if isinstance(exc, DatabaseError):
                raise
            raise DatabaseError(f"{folder} is not a valid repair database: {type(exc).__name__}: {exc}") from exc
        if database.key_dim != manifest["key_dim"] or database.entry_size != manifest["entry_bytes"]:
            raise DatabaseError(f"{manifest_path}: key_dim or entry_bytes disagree with the stored tensors")
        if synthetic["count"] != len(database) - database.real_count:
            raise DatabaseError(f"{manifest_path}: synthetic count {synthetic['count']} disagrees with the entries")
        logger.info("loaded repair database (%d entries) from %s", len(database), folder)
        return database
