"""Copying a whole memory into another database: SQLite to PostgreSQL, back, or any pair.

Every table moves with its ids (so provenance, links, derivations and the audit trail stay
valid), and the vectors of every vector index with it, in batches. Each batch lands in one
transaction together with a checkpoint row (``copy_progress``, migration m051), so a copy
stopped at any moment, even by SIGKILL, resumes after the last batch that landed and never
writes a row twice. A target that already holds a memory is refused unless it holds an
unfinished copy of this very source. At the end the copy is verified: rows per table, vectors
per index, and a sample of searches that must give the same top hits on both sides.

Columns move by name: a column only one side has is left to its default (or, if it holds data
the target has no place for, the copy is refused before it starts). Tables are read in key
order and written through each backend's bulk path (:mod:`deskmind.core.memory.bulk`,
:mod:`deskmind.core.memory.pg.bulk`). Blocking; call from a worker thread or the CLI.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from deskmind.core.errors import StorageError, UserInputError
from deskmind.core.memory.api import Memory
from deskmind.core.memory.search import SearchFilters, content_words
from deskmind.core.memory.urls import redact_url
from deskmind.core.memory.vectors import VectorIndex

log = logging.getLogger(__name__)

RUN = "run"              # the checkpoint row naming the source of the copy
PARENTS = "source_parents"
DEFAULT_BATCH = 1000
MAX_BATCH = 100_000
# Documents hold whole extracted files (a book's text is megabytes): fewer per batch.
DOCUMENTS_BATCH = 50
SEARCH_SAMPLES = 8


@dataclass(frozen=True)
class TableSpec:
    """A table copied in order of ``key``. A key that is not unique (links have none) is
    read a whole group of equal keys at a time, so a checkpoint never splits one."""

    name: str
    key: tuple[str, ...]
    unique: bool = True


# In an order that keeps every foreign key satisfied (parent_id of sources is set afterwards,
# as a parent may have a larger id than its child).
TABLES: tuple[TableSpec, ...] = (
    TableSpec("machines", ("id",)),
    TableSpec("sources", ("id",)),
    TableSpec("documents", ("source_id",)),
    TableSpec("chunks", ("id",)),
    TableSpec("source_derivations", ("source_id", "parent_id")),
    TableSpec("source_links", ("source_id",), unique=False),
    TableSpec("collections", ("name",)),
    TableSpec("vector_indexes", ("id",)),
    TableSpec("egress_ledger", ("id",)),
    TableSpec("agent_audit", ("id",)),
    TableSpec("gateway_clients", ("name",)),
    TableSpec("gateway_audit", ("id",)),
)
# Tables whose ids come from a counter that never hands one out twice.
IDENTITY_TABLES = ("sources", "chunks", "vector_indexes", "egress_ledger", "agent_audit",
                   "gateway_audit")
# Bookkeeping and engine-private tables: each backend keeps its own (staged chunks belong to an
# indexing run under way, published or dropped where they are).
_INTERNAL = re.compile(
    r"^(migrations|schema_migrations|changes|copy_progress|staged_sources|staged_chunks"
    r"|sqlite_\w+|chunks_fts\w*"
    r"|vecbits_\d+\w*|vectors_\d+)$")

ProgressFn = Callable[[str, int, "int | None"], None]


class CopyRefused(UserInputError):
    """The copy cannot start as asked; nothing was written."""


class CopyMismatch(StorageError):
    """The copy finished but the two memories differ (see the message)."""


@dataclass
class CopyReceipt:
    source: str
    target: str
    resumed: bool
    tables: dict[str, int] = field(default_factory=dict)
    vectors: dict[str, int] = field(default_factory=dict)   # "index id (model)" -> vectors
    searches: int = 0
    same_top_hits: int = 0
    text_hits_found: int = 0
    nul_replaced: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def bulk_for(memory: Memory) -> Any:
    if memory.backend == "postgres":
        from deskmind.core.memory.pg.bulk import PgBulk

        return PgBulk(memory)  # type: ignore[arg-type]
    from deskmind.core.memory.bulk import SqliteBulk

    return SqliteBulk(memory)  # type: ignore[arg-type]


def check_batch(batch: int) -> int:
    if not 1 <= int(batch) <= MAX_BATCH:
        raise UserInputError(f"--batch must be between 1 and {MAX_BATCH} rows, not {batch}")
    return int(batch)


class MemoryCopy:
    """Copy everything in ``source`` into ``target`` (see the module's docstring)."""

    def __init__(self, source: Memory, target: Memory, *, batch: int = DEFAULT_BATCH,
                 samples: int = SEARCH_SAMPLES, on_progress: ProgressFn | None = None) -> None:
        self.source, self.target = source, target
        self.src, self.dst = bulk_for(source), bulk_for(target)
        self.batch = check_batch(batch)
        self.samples = samples
        self.on_progress = on_progress or (lambda step, done, total: None)
        self.source_name = _name(source)
        self.target_name = _name(target)
        self._nul = 0

    # -- the whole run -------------------------------------------------------------------

    def run(self, *, resume: bool = False) -> CopyReceipt:
        t0 = time.perf_counter()
        if self.source_name == self.target_name:
            raise CopyRefused(f"the source and the target are the same memory ({self.source_name})")
        specs = self._plan()
        progress = self._progress()
        resumed = self._check_target(progress, resume)
        for spec in specs:
            self._copy_table(spec, progress)
            if spec.name == "sources":
                self._copy_parents(progress)
        indexes = self._indexes()
        for idx in indexes:
            self._copy_vectors(idx, progress)
        for table in IDENTITY_TABLES:
            self.dst.raise_high_water(table, self.src.high_water(table))
        self.dst.finish(indexes, lambda what: self.on_progress(what, 0, None))
        receipt = CopyReceipt(source=self.source_name, target=self.target_name, resumed=resumed)
        self._verify(specs, indexes, receipt)
        self.target.sql.write(lambda tx: _save(tx, RUN, self.source_name, "", 0, True))
        receipt.nul_replaced = self._nul
        receipt.seconds = round(time.perf_counter() - t0, 2)
        return receipt

    # -- before anything is written ------------------------------------------------------

    def _plan(self) -> list[TableSpec]:
        """The tables to copy, checked: every table of the source that holds rows must have a
        place in the target, and so must every column that holds data."""
        src_tables = self.src.table_names()
        dst_tables = self.dst.table_names()
        received = copy_state(self.source)
        if received is not None and not received["finished"]:
            raise CopyRefused(f"{self.source_name} holds an unfinished copy of another memory: "
                              "finish that copy (--resume) before copying from it")
        known = {s.name for s in TABLES}
        specs = [s for s in TABLES if s.name in src_tables]
        for name in sorted(src_tables - known):
            if _INTERNAL.match(name) or not self._has_rows(self.source, name):
                continue
            key = tuple(self.src.primary_key(name))
            if name not in dst_tables or not key:
                raise CopyRefused(
                    f"the table '{name}' of {self.source_name} holds rows this copy cannot place "
                    f"in {self.target_name} ({'no such table there' if name not in dst_tables else 'it has no primary key'}): "
                    "upgrade Deskmind on both sides first; nothing was copied")
            specs.append(TableSpec(name, key))
        for spec in specs:
            if spec.name not in dst_tables:
                if self._has_rows(self.source, spec.name):
                    raise CopyRefused(f"{self.target_name} has no table '{spec.name}': upgrade "
                                      "Deskmind there first; nothing was copied")
                continue
            missing = [c for c in self.src.columns(spec.name)
                       if c not in set(self.dst.columns(spec.name))]
            for col in missing:
                n = self.source.sql.query_one(
                    f"SELECT count(*) FROM {spec.name} WHERE {col} IS NOT NULL")[0]
                if n:
                    raise CopyRefused(
                        f"{self.target_name} has no column {spec.name}.{col}, which holds data in "
                        f"{n} rows of {self.source_name}: upgrade Deskmind on the target first "
                        "(open it once with the newer version); nothing was copied")
        return [s for s in specs if s.name in dst_tables]

    def _progress(self) -> dict[str, tuple[str, str, int, bool]]:
        return {r[0]: (r[1], r[2], int(r[3]), bool(r[4])) for r in self.target.sql.query(
            "SELECT step, source, last_key, copied, done FROM copy_progress")}

    def _check_target(self, progress: dict[str, tuple[str, str, int, bool]], resume: bool) -> bool:
        """Whether this run resumes an earlier one; refuses a target it may not write."""
        run = progress.get(RUN)
        if run is None:
            busy = [s.name for s in TABLES
                    if s.name in self.dst.table_names() and self._has_rows(self.target, s.name)]
            if busy:
                raise CopyRefused(
                    f"{self.target_name} already holds a memory (rows in {', '.join(busy)}); a "
                    "copy goes into an empty database: a new file, or a new PostgreSQL database "
                    "(createdb). Nothing was changed")
            self.target.sql.write(lambda tx: _save(tx, RUN, self.source_name, "", 0, False))
            return False
        if run[0] != self.source_name:
            raise CopyRefused(
                f"{self.target_name} holds a copy of another memory ({run[0]}); nothing was "
                "changed. Copy into an empty database instead")
        if not resume:
            state = "a finished" if run[3] else "an unfinished"
            raise CopyRefused(
                f"{self.target_name} holds {state} copy of {self.source_name}: run the same "
                "command with --resume to continue (or verify) it; nothing was changed")
        return True

    def _has_rows(self, memory: Memory, table: str) -> bool:
        return memory.sql.query_one(f"SELECT 1 FROM {table} LIMIT 1") is not None

    # -- tables --------------------------------------------------------------------------

    def _copy_table(self, spec: TableSpec, progress: dict) -> None:
        state = progress.get(spec.name)
        if state is not None and state[3]:
            return
        dst_cols = set(self.dst.columns(spec.name))
        cols = [c for c in self.src.columns(spec.name) if c in dst_cols]
        keypos = [cols.index(k) for k in spec.key]
        last = tuple(json.loads(state[1])) if state and state[1] else None
        copied = state[2] if state else 0
        total = self.source.sql.query_one(f"SELECT count(*) FROM {spec.name}")[0]
        parent = cols.index("parent_id") if spec.name == "sources" and "parent_id" in cols else None
        self.dst.before_table(spec.name)
        self.on_progress(spec.name, copied, total)
        while True:
            rows = self._read(spec, cols, last)
            if not rows:
                break
            last = tuple(rows[-1][i] for i in keypos)
            if parent is not None:
                rows = [r[:parent] + (None,) + r[parent + 1:] for r in rows]
            copied += len(rows)
            self._nul += self.target.sql.write(
                lambda tx, rows=rows, last=last, copied=copied: self._land(
                    tx, spec, cols, rows, last, copied))
            self.on_progress(spec.name, copied, total)
        self.target.sql.write(lambda tx: _save(tx, spec.name, self.source_name,
                                               json.dumps(last) if last else "", copied, True))

    def _land(self, tx: Any, spec: TableSpec, cols: list[str], rows: list[tuple],
              last: tuple, copied: int) -> int:
        cleaned = self.dst.insert(tx, spec.name, cols, rows)
        if spec.name == "vector_indexes":
            for row in rows:
                self.dst.create_vector_storage(tx, _index(dict(zip(cols, row))))
        _save(tx, spec.name, self.source_name, json.dumps(list(last)), copied, False)
        return cleaned

    def _read(self, spec: TableSpec, cols: list[str], last: tuple | None) -> list[tuple]:
        select = f"SELECT {', '.join(cols)} FROM {spec.name}"
        order = ", ".join(spec.key)
        size = min(self.batch, DOCUMENTS_BATCH) if spec.name == "documents" else self.batch
        if spec.unique:
            if last is None:
                sql, args = f"{select} ORDER BY {order} LIMIT ?", [size]
            else:
                ph = ", ".join("?" * len(spec.key))
                sql = f"{select} WHERE ({order}) > ({ph}) ORDER BY {order} LIMIT ?"
                args = [*last, size]
        else:
            (k,) = spec.key
            after = f"WHERE {k} > ?" if last is not None else ""
            first = [last[0]] if last is not None else []
            # Whole groups of one key: up to the key of the batch-th row from here.
            sql = (f"{select} {after} {'AND' if after else 'WHERE'} {k} <= (SELECT max({k}) FROM "
                   f"(SELECT {k} FROM {spec.name} {after} ORDER BY {k} LIMIT ?) AS b) "
                   f"ORDER BY {k}, {self.src.row_order}")
            args = [*first, *first, size]
        return [tuple(r) for r in self.source.sql.query(sql, args)]

    def _copy_parents(self, progress: dict) -> None:
        state = progress.get(PARENTS)
        if state is not None and state[3]:
            return
        last = int(state[1]) if state and state[1] else 0
        copied = state[2] if state else 0
        while True:
            rows = self.source.sql.query(
                "SELECT id, parent_id FROM sources WHERE parent_id IS NOT NULL AND id > ? "
                "ORDER BY id LIMIT ?", (last, self.batch))
            if not rows:
                break
            last = rows[-1][0]
            copied += len(rows)

            def _set(tx: Any, rows: list = rows, last: int = last, copied: int = copied) -> None:
                tx.executemany("UPDATE sources SET parent_id = ? WHERE id = ?",
                               [(p, i) for i, p in rows])
                _save(tx, PARENTS, self.source_name, str(last), copied, False)

            self.target.sql.write(_set)
            self.on_progress(PARENTS, copied, None)
        self.target.sql.write(lambda tx: _save(tx, PARENTS, self.source_name, str(last), copied, True))

    # -- vectors -------------------------------------------------------------------------

    def _indexes(self) -> list[VectorIndex]:
        return [_index(dict(zip(("id", "model_id", "dim", "status", "watermark"), r)))
                for r in self.source.sql.query(
                    "SELECT id, model_id, dim, status, watermark FROM vector_indexes ORDER BY id")]

    def _copy_vectors(self, idx: VectorIndex, progress: dict) -> None:
        step = idx.float_table
        state = progress.get(step)
        if state is not None and state[3]:
            return
        last = int(state[1]) if state and state[1] else 0
        copied = state[2] if state else 0
        total = self.src.count_vectors(idx)
        self.on_progress(f"vectors of index {idx.id} ({idx.model_id})", copied, total)
        while True:
            ids, mat = self.src.read_vectors(idx, last, self.batch)
            if not ids:
                break
            last = int(ids[-1])
            copied += len(ids)

            def _land(tx: Any, ids: list = ids, mat: np.ndarray = mat, last: int = last,
                      copied: int = copied) -> None:
                self.dst.write_vectors(tx, idx, ids, mat)
                _save(tx, step, self.source_name, str(last), copied, False)

            self.target.sql.write(_land)
            self.on_progress(f"vectors of index {idx.id} ({idx.model_id})", copied, total)
        self.target.sql.write(lambda tx: _save(tx, step, self.source_name, str(last), copied, True))

    # -- checking the result -------------------------------------------------------------

    def _verify(self, specs: Sequence[TableSpec], indexes: Sequence[VectorIndex],
                receipt: CopyReceipt) -> None:
        self.on_progress("verifying", 0, None)
        problems = []
        for spec in specs:
            n_src = self.source.sql.query_one(f"SELECT count(*) FROM {spec.name}")[0]
            n_dst = self.target.sql.query_one(f"SELECT count(*) FROM {spec.name}")[0]
            receipt.tables[spec.name] = n_dst
            if n_src != n_dst:
                problems.append(f"{spec.name}: {n_src} rows in the source, {n_dst} in the copy")
        for idx in indexes:
            n_src, n_dst = self.src.count_vectors(idx), self.dst.count_vectors(idx)
            receipt.vectors[f"{idx.id} ({idx.model_id})"] = n_dst
            if n_src != n_dst:
                problems.append(f"vector index {idx.id}: {n_src} vectors in the source, "
                                f"{n_dst} in the copy")
        if not problems:
            problems.extend(self._compare_searches(receipt))
        if problems:
            raise CopyMismatch(
                f"the copy of {self.source_name} in {self.target_name} differs from it: "
                + "; ".join(problems[:6])
                + ". If the source was in use meanwhile, quit Deskmind there and run the copy "
                  "again with --resume")

    def _sample_chunks(self) -> list[tuple[int, int, str]]:
        """``(chunk id, source id, text)`` of chunks spread evenly over the id range."""
        lo, hi = self.source.sql.query_one("SELECT min(id), max(id) FROM chunks")
        if lo is None:
            return []
        n = max(1, self.samples)
        probes = sorted({lo + (hi - lo) * i // max(1, n - 1) for i in range(n)})
        out: dict[int, tuple[int, int, str]] = {}
        for p in probes:
            row = self.source.sql.query_one(
                "SELECT id, source_id, text FROM chunks WHERE id >= ? ORDER BY id LIMIT 1", (p,))
            if row is not None:
                out[row[0]] = (row[0], row[1], row[2])
        return [out[k] for k in sorted(out)]

    def _compare_searches(self, receipt: CopyReceipt) -> list[str]:
        """The same questions asked of both sides: a chunk's own vector must find the same
        top hit (the chunk, or one with the same text), and its words must find it by full
        text within its source on both sides. (Full-text ranking across the whole memory is
        the engine's own, BM25 on SQLite and ts_rank on PostgreSQL, so only the vector side is
        compared rank for rank.)"""
        problems = []
        src_search, dst_search = self.source.searcher(None), self.target.searcher(None)
        active = self.source.active_index()
        for cid, sid, text in self._sample_chunks():
            receipt.searches += 1
            words = " ".join(content_words(text)[:8])
            if active is not None:
                ids, mat = self.src.read_vectors(active, cid - 1, 1)
                if ids and ids[0] == cid:
                    a = src_search.search(words, limit=3, mode="vector", query_vector=mat[0]).hits
                    b = dst_search.search(words, limit=3, mode="vector", query_vector=mat[0]).hits
                    same = bool(a) and bool(b) and (a[0].chunk_id == b[0].chunk_id
                                                     or a[0].text == b[0].text)
                    if not same:
                        problems.append(f"a search by the vector of chunk {cid} finds "
                                        f"{_top(a)} in the source and {_top(b)} in the copy")
                        continue
            if words:
                within = SearchFilters(source_ids=[sid])
                found_src = _finds(src_search.search(words, limit=10, filters=within,
                                                     mode="fts").hits, cid, text)
                found_dst = _finds(dst_search.search(words, limit=10, filters=within,
                                                     mode="fts").hits, cid, text)
                if found_src and not found_dst:
                    problems.append(f"a full-text search for chunk {cid} ('{words[:40]}') "
                                    "finds it in the source but not in the copy")
                    continue
                receipt.text_hits_found += int(found_dst)
            receipt.same_top_hits += 1
        return problems


def copy_state(memory: Memory) -> dict[str, Any] | None:
    """The copy this memory received, if it was made by one: ``{"source", "finished",
    "updated_at"}``; None for a memory that was not."""
    row = memory.sql.query_one(
        "SELECT source, done, updated_at FROM copy_progress WHERE step = ?", (RUN,))
    if row is None:
        return None
    return {"source": row[0], "finished": bool(row[1]), "updated_at": row[2]}


def _finds(hits: Sequence[Any], cid: int, text: str) -> bool:
    return any(h.chunk_id == cid or h.text == text for h in hits)


def _top(hits: Sequence[Any]) -> str:
    return f"chunk {hits[0].chunk_id}" if hits else "nothing"


def _name(memory: Memory) -> str:
    """How a memory is named in checkpoints and receipts: a SQLite file by its absolute path
    (so a copy resumes whichever way the path was written), a URL without any password."""
    path = getattr(memory, "path", None)
    if memory.backend == "sqlite" and isinstance(path, Path):
        return f"sqlite://{path.resolve()}"
    return redact_url(memory.url)


def _index(row: dict[str, Any]) -> VectorIndex:
    return VectorIndex(id=int(row["id"]), model_id=row["model_id"], dim=int(row["dim"]),
                       status=row["status"], watermark=int(row.get("watermark") or 0))


def _save(tx: Any, step: str, source: str, last_key: str, copied: int, done: bool) -> None:
    tx.execute(
        "INSERT INTO copy_progress(step, source, last_key, copied, done, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (step) DO UPDATE SET source = excluded.source, "
        "last_key = excluded.last_key, copied = excluded.copied, done = excluded.done, "
        "updated_at = excluded.updated_at",
        (step, source, last_key, int(copied), 1 if done else 0, time.time()))

