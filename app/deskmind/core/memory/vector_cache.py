"""In-memory copies of one vector index, kept current by cheap incremental reads.

Two kinds, chosen by :class:`~deskmind.core.memory.vectors.VectorSearcher` from the index size:

:class:`FloatCache`
    every float vector (small indexes): exact search is one matrix-vector product.
    384-d float32: 1.5 kB a chunk, so 30 MB at 20k chunks.
:class:`BitCache`
    only the sign bits (large indexes): 48 bytes a chunk for 384-d (plus 8 for its id), so
    ~5.6 MB at 100k chunks and ~56 MB at 1M. Stored column-major as 64-bit words so that the
    Hamming distance to every chunk is a handful of vectorised XOR + popcount passes.

Neither copy is ever the truth: it is refreshed from SQLite whenever another connection has
committed (``PRAGMA data_version``), and results are always re-checked against the float table,
so a deleted chunk can never be returned.

The bit vectors are read from the sqlite-vec ``vec0`` table's storage (``<t>_chunks`` holds
validity bitmaps and rowids per block of vectors, ``<t>_vector_chunks00`` the packed vectors).
Going through the ``vec0`` virtual table instead scans every row for any ``rowid > ?`` filter
(0.8 s for 100k vectors here, against ~30 ms for the block reads). The layout is that of
sqlite-vec 0.1.x; anything else falls back to the slow public read.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


# Row v: the 8 bits of byte value v, least significant first (vec_quantize_binary's order).
_BYTE_BITS = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1, bitorder="little").astype(np.float32)


# Rows read at a time when a copy is filled from SQLite.
READ_BLOCK = 512


class LayoutUnknown(Exception):
    """The vec0 table's storage is not the sqlite-vec 0.1.x layout this module reads."""


def _grow(arr: np.ndarray, need: int, axis: int = 0) -> np.ndarray:
    """``arr`` with room for ``need`` entries along ``axis``: exactly ``need`` on a first load,
    then by a quarter at a time (bounded slack, few copies), never shrinking."""
    have = arr.shape[axis]
    if need <= have:
        return arr
    shape = list(arr.shape)
    shape[axis] = need if have == 0 else max(need, have + have // 4)
    out = np.zeros(shape, dtype=arr.dtype)
    sl = [slice(None)] * arr.ndim
    sl[axis] = slice(0, have)
    out[tuple(sl)] = arr
    return out


class Vec0Storage:
    """Reads a ``vec0`` table's blocks of vectors directly (sqlite-vec 0.1.x layout)."""

    def __init__(self, conn: Any, table: str, nbytes: int) -> None:
        self.table = table
        self.nbytes = nbytes
        try:
            info = dict(conn.execute(f'SELECT key, value FROM "{table}_info"').fetchall())
            cols = {
                t: [r[1] for r in conn.execute(f'PRAGMA table_info("{table}{t}")')]
                for t in ("_chunks", "_rowids", "_vector_chunks00")
            }
        except Exception as exc:
            raise LayoutUnknown(str(exc)) from exc
        if (info.get("CREATE_VERSION_MAJOR"), info.get("CREATE_VERSION_MINOR")) != (0, 1) or \
                cols["_chunks"][:4] != ["chunk_id", "size", "validity", "rowids"] or \
                cols["_rowids"][:4] != ["rowid", "id", "chunk_id", "chunk_offset"] or \
                cols["_vector_chunks00"][:2] != ["rowid", "vectors"]:
            raise LayoutUnknown(f"{table}: unexpected vec0 storage {info} {cols}")

    def count(self, conn: Any) -> int:
        """Live vectors: one ``_rowids`` row each, a small table unlike the float table."""
        return conn.execute(f'SELECT count(*) FROM "{self.table}_rowids"').fetchone()[0]

    def validity(self, conn: Any) -> list[tuple[int, bytes]]:
        return conn.execute(
            f'SELECT chunk_id, validity FROM "{self.table}_chunks" ORDER BY chunk_id').fetchall()

    def blocks(self, conn: Any, chunk_ids: list[int]) -> list[tuple[int, bytes, np.ndarray, np.ndarray]]:
        """``(chunk_id, validity, rowids, bits)`` for these blocks; deleted slots get rowid 0."""
        if not chunk_ids:
            return []
        marks = ",".join("?" * len(chunk_ids))
        rows = conn.execute(
            f'SELECT c.chunk_id, c.size, c.validity, c.rowids, v.vectors FROM "{self.table}_chunks" c '
            f'JOIN "{self.table}_vector_chunks00" v ON v.rowid = c.chunk_id '
            f"WHERE c.chunk_id IN ({marks}) ORDER BY c.chunk_id", chunk_ids).fetchall()
        out = []
        for cid, size, validity, rowids, vecs in rows:
            if len(rowids) != size * 8 or len(vecs) != size * self.nbytes or len(validity) * 8 < size:
                raise LayoutUnknown(f"{self.table}: block {cid} has unexpected sizes")
            ids = np.frombuffer(rowids, dtype="<i8").astype(np.int64)
            valid = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")[:size]
            ids[valid == 0] = 0
            out.append((cid, validity, ids, np.frombuffer(vecs, dtype=np.uint8).reshape(size, self.nbytes)))
        return out


class FloatCache:
    """All float vectors of a small index, in chunk-id order."""

    kind = "float"

    def __init__(self, idx: Any) -> None:
        self.idx = idx
        self._ids = np.zeros(0, dtype=np.int64)
        self._floats = np.zeros((0, idx.dim), dtype=np.float32)
        self.n = 0

    @property
    def ids(self) -> np.ndarray:
        return self._ids[: self.n]

    @property
    def floats(self) -> np.ndarray:
        return self._floats[: self.n]

    def nbytes(self) -> int:
        return self._ids.nbytes + self._floats.nbytes

    def refresh(self, conn: Any, live: int) -> None:
        """Bring the copy up to date; ``live`` is the index's current vector count."""
        t = self.idx.float_table
        top = int(self.ids[-1]) if self.n else 0
        # Sized once from the count, then filled a block of rows at a time: reading every row
        # first (bytes objects, then a joined copy) took twice the copy's size on the heap at
        # the first load, 30 MB at 10k chunks, which the allocator kept from then on.
        new = conn.execute(f"SELECT count(*) FROM {t} WHERE chunk_id > ?", (top,)).fetchone()[0]
        if new:
            self._ids = _grow(self._ids, self.n + new)
            self._floats = _grow(self._floats, self.n + new)
            cur = conn.execute(
                f"SELECT chunk_id, embedding FROM {t} WHERE chunk_id > ? ORDER BY chunk_id", (top,))
            while rows := cur.fetchmany(READ_BLOCK):
                k = min(len(rows), len(self._ids) - self.n)  # one snapshot: count and rows agree
                self._ids[self.n:self.n + k] = [r[0] for r in rows[:k]]
                self._floats[self.n:self.n + k] = np.frombuffer(
                    b"".join(r[1] for r in rows[:k]), dtype="<f4").reshape(k, self.idx.dim)
                self.n += k
        if self.n != live:  # some chunks were deleted: keep only those still there
            alive = np.fromiter((r[0] for r in conn.execute(f"SELECT chunk_id FROM {t}")),
                                dtype=np.int64)
            keep = np.isin(self.ids, alive, assume_unique=True)
            m = int(keep.sum())
            self._ids[:m] = self.ids[keep]
            self._floats[:m] = self.floats[keep]
            self.n = m


class BitCache:
    """The sign bits of every vector of an index, as 64-bit words, column-major.

    Slots follow the vec0 blocks: block ``b`` (in chunk_id order) owns slots
    ``[start_b, start_b + size_b)``. A slot whose chunk is gone has id 0 and is never a
    candidate. Only the newest block of a vec0 table ever receives new vectors (deleted slots
    of older blocks are not reused), so a refresh re-reads the blocks from the newest one it
    knows, and only the validity bitmaps of the others.
    """

    kind = "bits"

    def __init__(self, idx: Any, storage: Vec0Storage | None) -> None:
        self.idx = idx
        self.storage = storage
        self.nbytes_vec = (idx.dim + 7) // 8
        self.words = (self.nbytes_vec + 7) // 8
        self._bits = np.zeros((self.words, 0), dtype=np.uint64)
        self._ids = np.zeros(0, dtype=np.int64)
        self.n = 0
        self.dead = np.zeros(0, dtype=np.int64)  # slots without a live chunk
        self._blocks: dict[int, tuple[int, int, bytes]] = {}  # chunk_id -> (start, size, validity)
        self._last_block = 0

    @property
    def ids(self) -> np.ndarray:
        return self._ids[: self.n]

    @property
    def live(self) -> int:
        return self.n - len(self.dead)

    def nbytes(self) -> int:
        return self._bits.nbytes + self._ids.nbytes + self.dead.nbytes

    def refresh(self, conn: Any) -> None:
        if self.storage is None:
            self._refresh_public(conn)
        else:
            self._refresh_blocks(conn)
        self.dead = np.flatnonzero(self.ids == 0)

    def _put(self, start: int, ids: np.ndarray, bits: np.ndarray) -> None:
        end = start + len(ids)
        self._ids = _grow(self._ids, end)
        self._bits = _grow(self._bits, end, axis=1)
        self._ids[start:end] = ids
        padded = np.zeros((len(ids), self.words * 8), dtype=np.uint8)
        padded[:, : bits.shape[1]] = bits
        self._bits[:, start:end] = padded.view("<u8").T
        self.n = max(self.n, end)

    def _refresh_blocks(self, conn: Any) -> None:
        assert self.storage is not None
        reread = [
            cid for cid, validity in self.storage.validity(conn)
            if cid >= self._last_block or cid not in self._blocks or self._blocks[cid][2] != validity
        ]
        got = self.storage.blocks(conn, reread)
        need = self.n + sum(len(ids) for cid, _, ids, _ in got if cid not in self._blocks)
        self._ids = _grow(self._ids, need)
        self._bits = _grow(self._bits, need, axis=1)
        for cid, validity, ids, bits in got:
            known = self._blocks.get(cid)
            if known is not None and known[1] != len(ids):
                raise LayoutUnknown(f"{self.storage.table}: block {cid} changed size")
            start = known[0] if known is not None else self.n
            self._put(start, ids, bits)
            self._blocks[cid] = (start, len(ids), validity)
            self._last_block = max(self._last_block, cid)

    def _refresh_public(self, conn: Any) -> None:
        """Slow path for an unknown vec0 layout: re-read everything through the vec0 table."""
        rows = conn.execute(
            f"SELECT rowid, embedding FROM {self.idx.bits_table} ORDER BY rowid").fetchall()
        self.n = 0
        if rows:
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            bits = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.uint8).reshape(len(rows), -1)
            self._put(0, ids, bits)

    def hamming(self, qbits: np.ndarray) -> np.ndarray:
        """Hamming distance from packed query bits to every slot (dead slots: the maximum)."""
        padded = np.zeros(self.words * 8, dtype=np.uint8)
        padded[: len(qbits)] = qbits
        q = padded.view("<u8")
        n = self.n
        dist = np.zeros(n, dtype=np.uint16)
        buf = np.empty(n, dtype=np.uint64)
        cnt = np.empty(n, dtype=np.uint8)
        for w in range(self.words):
            np.bitwise_xor(self._bits[w, :n], q[w], out=buf)
            np.add(dist, np.bitwise_count(buf, out=cnt), out=dist)
        dist[self.dead] = np.iinfo(np.uint16).max
        return dist

    def rows(self, slots: np.ndarray) -> np.ndarray:
        """The packed bits of these slots, one row of bytes each (vec_quantize_binary order)."""
        words = np.ascontiguousarray(self._bits[:, slots].T)
        return words.view(np.uint8)[:, : self.nbytes_vec]

    def rescore(self, q: np.ndarray, slots: np.ndarray, c: int) -> np.ndarray:
        """The ``c`` of ``slots`` whose sign bits best agree with the float query.

        Asymmetric: the query keeps its floats, each chunk is its signs (+1/-1), so the score
        is ``2 * sum(q[i] for set bits) - sum(q)``; ranking needs only the first term, which a
        256-entry table per byte turns into 48 look-ups a chunk for 384 dimensions. Much closer
        to the cosine than the Hamming distance, at a few microseconds per thousand chunks.
        """
        if len(slots) <= c:
            return slots
        dim8 = self.nbytes_vec * 8
        qq = np.zeros(dim8, dtype=np.float32)
        qq[: min(len(q), dim8)] = q[:dim8]
        table = np.einsum("jb,vb->jv", qq.reshape(-1, 8), _BYTE_BITS)  # (bytes, 256)
        score = table[np.arange(self.nbytes_vec), self.rows(slots)].sum(axis=1)
        return slots[np.argpartition(-score, c - 1)[:c]]

    def nearest_slots(self, qbits: np.ndarray, c: int) -> np.ndarray:
        """Slots of (at least) the ``c`` live chunks nearest in Hamming distance; ties kept."""
        dist = self.hamming(qbits)
        if c >= self.live:
            return np.flatnonzero(dist != np.iinfo(np.uint16).max)
        # A histogram of distances finds the cut-off faster than a partition over all slots.
        counts = np.cumsum(np.bincount(dist, minlength=self.words * 64 + 1)[: self.words * 64 + 1])
        cut = int(np.searchsorted(counts, c))
        slots = np.flatnonzero(dist <= cut)
        if len(slots) > 2 * c:  # a crowded last distance: keep the c nearest, ties by slot
            slots = slots[np.argsort(dist[slots], kind="stable")[:c]]
        return slots
