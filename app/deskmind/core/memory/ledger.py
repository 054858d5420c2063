"""The egress ledger's rows (table ``egress_ledger``)."""

from __future__ import annotations

from deskmind.core.memory.sql import SqlRunner

# at, provider, host, zone, model, rule, bytes_out, body_sha256, item_ids (JSON text)
EgressRow = tuple[float, str, str, str, str, str, int, str, str]


class EgressLedgerStore:
    def __init__(self, sql: SqlRunner) -> None:
        self.sql = sql

    def add(self, row: EgressRow) -> int:
        """Record a request about to be sent (committed before returning); its id."""
        return self.sql.write(lambda tx: tx.execute(
            "INSERT INTO egress_ledger(at, provider, host, zone, model, rule, bytes_out, "
            "body_sha256, item_ids) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            row).fetchone()[0])

    def finish(self, entry_id: int, *, bytes_in: int, status: str) -> None:
        self.sql.write(lambda tx: tx.execute(
            "UPDATE egress_ledger SET bytes_in = ?, status = ? WHERE id = ?",
            (bytes_in, status, entry_id)))

    def entries(self, limit: int = 1000, since: float | None = None) -> list[tuple]:
        """``(id, at, provider, host, zone, model, rule, bytes_out, bytes_in, body_sha256,
        item_ids, status)``, newest first."""
        return self.sql.query(
            "SELECT id, at, provider, host, zone, model, rule, bytes_out, bytes_in, body_sha256, "
            "item_ids, status FROM egress_ledger WHERE at >= ? ORDER BY id DESC LIMIT ?",
            (since or 0, int(limit)))

    def count(self) -> int:
        return self.sql.query_one("SELECT count(*) FROM egress_ledger")[0]
