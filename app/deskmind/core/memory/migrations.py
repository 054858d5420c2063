"""Named, ordered schema migrations.

Each migration is a function; its name is recorded in ``migrations`` when it has run, in the
same transaction as its changes. Opening an older database runs the missing ones in order.
Never edit a migration that has shipped: add a new one.
"""

from __future__ import annotations

import inspect
import logging
import re
import time
from typing import Any, Callable

log = logging.getLogger(__name__)

Migration = Callable[..., None]
MIGRATIONS: list[tuple[str, Migration]] = []
# Migrations that rebuild a table others refer to: they run with foreign keys off (a DROP of
# the old table would otherwise cascade), and foreign_key_check must pass before the commit.
_REBUILDS: set[str] = set()


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append((fn.__name__, fn))
    return fn


def rebuilds_tables(fn: Migration) -> Migration:
    _REBUILDS.add(fn.__name__)
    return fn


def wants_machine(fn: Migration) -> bool:
    """A migration that takes a second argument is given this machine's id (a callable, so
    that an empty database never needs one)."""
    return len(inspect.signature(fn).parameters) > 1


@migration
def m001_sources_documents_chunks(conn: Any) -> None:
    conn.execute(
        """
        CREATE TABLE sources (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            uri TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            title TEXT,
            content_hash TEXT,
            size INTEGER,
            mtime REAL,
            privacy TEXT NOT NULL DEFAULT 'private',
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'indexed', 'skipped', 'failed', 'queued')),
            error TEXT,
            collection TEXT,
            parent_id INTEGER REFERENCES sources(id) ON DELETE CASCADE,
            metadata TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            indexed_at REAL
        )
        """
    )
    conn.execute("CREATE INDEX sources_kind ON sources(kind)")
    conn.execute("CREATE INDEX sources_parent ON sources(parent_id)")
    conn.execute("CREATE INDEX sources_collection ON sources(collection)")
    # The extracted text, kept apart from the raw source and from the chunks derived from it.
    conn.execute(
        """
        CREATE TABLE documents (
            source_id INTEGER PRIMARY KEY REFERENCES sources(id) ON DELETE CASCADE,
            text TEXT NOT NULL,
            extractor TEXT NOT NULL
        )
        """
    )
    # AUTOINCREMENT: chunk ids never come back after a delete, so a re-embed can walk them
    # in id order with a watermark and still see every chunk added during the walk.
    conn.execute(
        """
        CREATE TABLE chunks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
            ord INTEGER NOT NULL,
            text TEXT NOT NULL,
            locator TEXT NOT NULL DEFAULT '{}',
            text_hash TEXT NOT NULL,
            created_at REAL NOT NULL,
            UNIQUE (source_id, ord)
        )
        """
    )
    conn.execute("CREATE INDEX chunks_text_hash ON chunks(text_hash)")
    conn.execute(
        """
        CREATE VIRTUAL TABLE chunks_fts USING fts5(
            text, content='chunks', content_rowid='id',
            tokenize='porter unicode61 remove_diacritics 2'
        )
        """
    )
    conn.execute(
        """
        CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
            INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text);
        END
        """
    )
    conn.execute(
        """
        CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
            INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
        END
        """
    )
    conn.execute(
        """
        CREATE TRIGGER chunks_fts_update AFTER UPDATE OF text ON chunks BEGIN
            INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
            INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text);
        END
        """
    )


@migration
def m002_vector_indexes(conn: Any) -> None:
    # One row per vector index; its vectors live in vec0 tables named after its id.
    conn.execute(
        """
        CREATE TABLE vector_indexes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            model_id TEXT NOT NULL,
            dim INTEGER NOT NULL CHECK (dim > 0),
            status TEXT NOT NULL CHECK (status IN ('building', 'active')),
            watermark INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            activated_at REAL
        )
        """
    )
    conn.execute(
        "CREATE UNIQUE INDEX vector_indexes_one_active ON vector_indexes(status) "
        "WHERE status = 'active'"
    )


@migration
def m003_source_derivations(conn: Any) -> None:
    # A source made from several others (a saved conversation from the sources it cited).
    # ``sources.parent_id`` holds one parent; this holds any number. Forgetting a parent
    # forgets what was derived from it, as with parent_id.
    conn.execute(
        """
        CREATE TABLE source_derivations (
            source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
            parent_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
            PRIMARY KEY (source_id, parent_id)
        ) WITHOUT ROWID
        """
    )
    conn.execute("CREATE INDEX source_derivations_parent ON source_derivations(parent_id)")


# --- ingestion: links between sources, collections (m01x) ---


@migration
def m010_ingest_links_collections(conn: Any) -> None:
    # Edges between sources: Markdown links (target = absolute path) and wikilinks
    # (target = note name, resolved inside the source's collection when read, so a note
    # created later still catches the links that were waiting for it).
    conn.execute(
        """
        CREATE TABLE source_links (
            source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('link', 'wikilink', 'embed')),
            target TEXT NOT NULL,
            text TEXT,
            locator TEXT NOT NULL DEFAULT '{}'
        )
        """
    )
    conn.execute("CREATE INDEX source_links_source ON source_links(source_id)")
    conn.execute("CREATE INDEX source_links_target ON source_links(target)")
    # A folder indexed as one whole (an Obsidian vault); sources name it in sources.collection.
    conn.execute(
        """
        CREATE TABLE collections (
            name TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            root TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL
        )
        """
    )


# --- runtimes, routing, agents: egress ledger, audit log (m02x) ---


@migration
def m020_egress_ledger(conn: Any) -> None:
    # One row per request that left the machine zone, written before it was sent.
    conn.execute(
        """
        CREATE TABLE egress_ledger (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            provider TEXT NOT NULL,
            host TEXT NOT NULL,
            zone TEXT NOT NULL,
            model TEXT NOT NULL DEFAULT '',
            rule TEXT NOT NULL DEFAULT '',
            bytes_out INTEGER NOT NULL,
            bytes_in INTEGER,
            body_sha256 TEXT NOT NULL,
            item_ids TEXT NOT NULL DEFAULT '[]',
            status TEXT NOT NULL DEFAULT 'sending'
        )
        """
    )
    conn.execute("CREATE INDEX egress_ledger_at ON egress_ledger(at)")


@migration
def m021_agent_audit(conn: Any) -> None:
    # Every tool call an agent asked for, allowed or not.
    conn.execute(
        """
        CREATE TABLE agent_audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            agent TEXT NOT NULL,
            tool TEXT NOT NULL,
            args_summary TEXT NOT NULL,
            decision TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            result_bytes INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    conn.execute("CREATE INDEX agent_audit_at ON agent_audit(at)")


# --- speech: meetings, recordings (m03x) ---

# --- gateway: clients, tokens (m04x) ---


@migration
def m040_gateway_clients_audit(conn: Any) -> None:
    # Each outside client (an MCP host, an OpenAI-API caller) is an agent with its own scopes.
    # Only a hash of its bearer token is kept; 'pending' clients asked but were never granted.
    conn.execute(
        """
        CREATE TABLE gateway_clients (
            name TEXT PRIMARY KEY,
            status TEXT NOT NULL CHECK (status IN ('granted', 'pending', 'revoked')),
            token_hash TEXT UNIQUE,
            scopes TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            last_seen_at REAL
        )
        """
    )
    # Every call a client makes and every memory item it was shown ("what did it read?").
    conn.execute(
        """
        CREATE TABLE gateway_audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts REAL NOT NULL,
            client TEXT NOT NULL,
            surface TEXT NOT NULL,
            action TEXT NOT NULL,
            args TEXT NOT NULL DEFAULT '',
            decision TEXT NOT NULL CHECK (decision IN ('allowed', 'denied', 'failed')),
            detail TEXT,
            result_size INTEGER NOT NULL DEFAULT 0,
            items TEXT NOT NULL DEFAULT '[]'
        )
        """
    )
    conn.execute("CREATE INDEX gateway_audit_client_ts ON gateway_audit(client, ts)")


# --- several machines on one memory (m05x) ---


@migration
@rebuilds_tables
def m050_sources_per_machine(conn: Any, machine_id: Callable[[], str]) -> None:
    # A file path names a file on one machine only: sources become unique by (uri, machine),
    # with machine '' for what every machine shares (notes, meetings, conversations). Existing
    # file sources were indexed here. SQLite cannot drop a UNIQUE constraint, so the table is
    # rebuilt from its own definition (columns other migrations added come along).
    ddl = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'sources'").fetchone()[0]
    body = re.sub(r"\buri\s+TEXT\s+NOT\s+NULL\s+UNIQUE\b", "uri TEXT NOT NULL", ddl, count=1,
                  flags=re.IGNORECASE)
    if body == ddl:
        raise RuntimeError(f"m050: unexpected definition of sources: {ddl}")
    _, _, tail = body.partition("(")
    body = tail[:tail.rstrip().rfind(")")]
    new_ddl = (f"CREATE TABLE sources_m050 ({body.rstrip()},\n"
               "            machine TEXT NOT NULL DEFAULT '',\n"
               "            UNIQUE (uri, machine)\n        )")
    cols = [r[1] for r in conn.execute("PRAGMA table_info(sources)")]
    extras = conn.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'sources' AND type IN ('index', 'trigger') "
        "AND sql IS NOT NULL").fetchall()
    seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'sources'").fetchone()
    conn.execute(new_ddl)
    col_list = ", ".join(cols)
    # A path, or a file:// uri (a path whose name is not UTF-8): a file of this machine.
    is_file = "(instr(uri, '://') = 0 OR substr(uri, 1, 7) = 'file://')"
    local = conn.execute(f"SELECT 1 FROM sources WHERE {is_file} LIMIT 1").fetchone()
    here = machine_id() if local else ""
    conn.execute(
        f"INSERT INTO sources_m050({col_list}, machine) SELECT {col_list}, "
        f"CASE WHEN {is_file} THEN ? ELSE '' END FROM sources", (here,))
    conn.execute("DROP TABLE sources")
    conn.execute("ALTER TABLE sources_m050 RENAME TO sources")
    for (sql,) in extras:
        conn.execute(sql)
    if seq is not None:
        # Ids are never handed out twice: keep the old high-water mark.
        conn.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'sources'",
                     (seq[0],))
    conn.execute("CREATE INDEX sources_machine ON sources(machine)")
    # The machines that index into this memory, named for people.
    conn.execute(
        """
        CREATE TABLE machines (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL
        )
        """
    )


# --- storage: copying a whole memory between backends (m05x) ---


@migration
def m051_copy_progress(conn: Any) -> None:
    # Where a copy of a whole memory into this database has got to: one row per step (a
    # table, the vectors of an index), written in the same transaction as each batch, so a
    # copy that was stopped resumes after the last batch that landed. The row of step 'run'
    # names the memory copied from.
    conn.execute(
        """
        CREATE TABLE copy_progress (
            step TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            last_key TEXT NOT NULL DEFAULT '',
            copied INTEGER NOT NULL DEFAULT 0,
            done INTEGER NOT NULL DEFAULT 0,
            updated_at REAL NOT NULL
        )
        """
    )


# --- ingest: large sources staged in batches (m05x) ---


@migration
def m052_staged_chunks(conn: Any) -> None:
    # A large source's chunks (and their vectors) written batch by batch while it is embedded,
    # then moved into ``chunks`` by one short transaction: memory stays that of one batch, and a
    # source is whole or absent. A crash leaves only rows here; ``owner`` (host:pid) and
    # ``touched_at`` tell whether the process that staged them is gone.
    conn.execute(
        """
        CREATE TABLE staged_sources (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            uri TEXT NOT NULL,
            owner TEXT NOT NULL,
            index_id INTEGER,
            started_at REAL NOT NULL,
            touched_at REAL NOT NULL
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE staged_chunks (
            stage_id INTEGER NOT NULL REFERENCES staged_sources(id) ON DELETE CASCADE,
            ord INTEGER NOT NULL,
            text TEXT NOT NULL,
            locator TEXT NOT NULL DEFAULT '{}',
            text_hash TEXT NOT NULL,
            embedding BLOB,
            PRIMARY KEY (stage_id, ord)
        )
        """
    )
    conn.execute("CREATE INDEX staged_chunks_hash ON staged_chunks(stage_id, text_hash)")



def applied(conn: Any) -> list[str]:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    return [r[0] for r in conn.execute("SELECT name FROM migrations ORDER BY rowid")]


def migrate(conn: Any, machine_id: Callable[[], str] | None = None) -> list[str]:
    """Run every migration not yet recorded, in order. Returns the names that ran.

    Must be called on the writer connection (it writes). ``machine_id`` gives this machine's
    id to a migration that assigns existing file sources to it (default: the data folder's).
    """
    if machine_id is None:
        from deskmind.core.memory.machine import this_machine

        machine_id = lambda: this_machine().id  # noqa: E731
    from deskmind.core.errors import StorageError

    tables = {r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
    if tables and "migrations" not in tables:
        # Some other program's SQLite database: adding Deskmind's tables to it would be wrong.
        raise StorageError(
            "this file is a SQLite database but not a Deskmind memory database "
            f"(it has tables {', '.join(sorted(tables)[:5])}); nothing was changed. "
            "Move it aside or set DESKMIND_HOME to another folder")
    done = set(applied(conn))
    known = [name for name, _ in MIGRATIONS]
    unknown = done - set(known)
    if unknown:
        raise StorageError(
            "this memory database was written by a newer Deskmind "
            f"(it has migrations {sorted(unknown)}): upgrade Deskmind to open it"
        )
    ran = []
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        rebuild = name in _REBUILDS
        if rebuild:
            conn.execute("PRAGMA foreign_keys = OFF")  # a no-op inside a transaction
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another connection (the tray app and a command opening a new database at once)
            # may have run it since ``done`` was read: check again under the write lock.
            if conn.execute("SELECT 1 FROM migrations WHERE name = ?", (name,)).fetchone():
                conn.execute("COMMIT")
                continue
            if wants_machine(fn):
                fn(conn, machine_id)
            else:
                fn(conn)
            if rebuild:
                broken = conn.execute("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise StorageError(
                        f"migration {name} would leave {len(broken)} rows pointing at rows "
                        f"that do not exist (first: {tuple(broken[0])}); nothing was changed")
            conn.execute(
                "INSERT INTO migrations(name, applied_at) VALUES (?, ?)", (name, time.time())
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            if rebuild:
                conn.execute("PRAGMA foreign_keys = ON")
        log.info("memory database migrated: %s", name)
        ran.append(name)
    return ran
