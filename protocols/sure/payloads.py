"""The MRI's encoded fixes as one flat file, so retrieval streams them at disk-cache speed.

Encoding a synthetic dense 768 x 768 fix takes milliseconds, far longer than masking it, and a
real MRI keeps its database encoded. ``PayloadStore`` therefore encodes every entry once,
offline and before the protocol, into a cache file keyed by the database's content. It serves
``payload(i)`` with one ``preadv`` from the page cache into a reused buffer. Mapping the file
instead costs a page fault per 4 KiB, which made retrieval several times slower.
Entry ``i`` of a padded database does not depend on the padded size, so databases that differ
only in size share one file, which grows to the largest size asked for.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


def database_fingerprint(database) -> str:
    """Return a digest of everything that determines the database's encoded entries."""
    digest = hashlib.sha256()
    digest.update(repr((database.fix_dim, database.encoding, database.dtype,
                        database.rank, database.synthetic_seed, database.real_count)).encode())
    for name in sorted(database.arrays):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(database.arrays[name]).tobytes())
    return digest.hexdigest()[:24]


class PayloadStore:
    """Encoded entries of a repair database, ``entry_size`` bytes each, in entry order."""

    def __init__(self, database, cache_dir: Path) -> None:
        self.count = len(database)
        self.entry_size = database.entry_size
        cache_dir = Path(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)
        self.path = cache_dir / f"payloads-{database_fingerprint(database)}.bin"
        stored = self.path.stat().st_size // self.entry_size if self.path.is_file() else 0
        if stored < self.count:
            self._extend(database, stored)
        self._file = open(self.path, "rb", buffering=0)
        self._buffer = bytearray(self.entry_size)

    def _extend(self, database, stored: int) -> None:
        """Encode entries ``stored .. count-1`` and append them, replacing the file atomically."""
        logger.info("encoding entries %d to %d (%d bytes each) into %s", stored, self.count - 1, self.entry_size, self.path)
        handle, staging = tempfile.mkstemp(prefix=".payloads-", dir=self.path.parent)
        try:
            with os.fdopen(handle, "wb") as out:
                if stored:
                    with open(self.path, "rb") as previous:
                        shutil.copyfileobj(previous, out, 1 << 24)
                for index in range(stored, self.count):
                    encoded = database.entry_bytes(index)
                    if len(encoded) != self.entry_size:
                        raise ValueError(
                            f"entry {index} encodes to {len(encoded)} bytes, not the database's {self.entry_size}"
                        )
                    out.write(encoded)
            os.replace(staging, self.path)
        except BaseException:
            Path(staging).unlink(missing_ok=True)
            raise

    def __len__(self) -> int:
        return self.count

    def __call__(self, index: int) -> memoryview:
        """Return entry ``index``'s encoded fix; the view is valid until the next call."""
        if not 0 <= index < self.count:
            raise IndexError(f"entry index {index} out of range: the database has {self.count} entries")
        read = os.preadv(self._file.fileno(), [self._buffer], index * self.entry_size)
        if read != self.entry_size:
            raise OSError(f"{self.path} is truncated: entry {index} has {read} of {self.entry_size} bytes")
        return memoryview(self._buffer)

    def close(self) -> None:
        self._file.close()
