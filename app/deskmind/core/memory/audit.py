"""The audit logs: calls made by gateway clients (``gateway_audit``) and tool calls made by
agents (``agent_audit``)."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Callable

from deskmind.core.memory.sql import SqlRunner

# ts, client, surface, action, args, decision, detail, result_size, items (JSON text)
GatewayRow = tuple[float, str, str, str, str, str, str | None, int, str]
# at, agent, tool, args_summary, decision, reason, result_bytes
AgentRow = tuple[float, str, str, str, str, str, int]


class GatewayAuditLog:
    def __init__(self, sql: SqlRunner) -> None:
        self.sql = sql

    def submit(self, row: GatewayRow, also: Callable[[], Any] | None = None) -> "Future[None]":
        """Queue one entry without waiting. ``also`` runs in the same transaction (an entry
        in the agents' log written with it)."""

        def write(tx: Any) -> None:
            tx.execute(
                "INSERT INTO gateway_audit(ts, client, surface, action, args, decision, detail, "
                "result_size, items) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
            if also is not None:
                also()

        return self.sql.submit(write)

    def entries(self, *, client: str | None = None, since: float | None = None,
                limit: int = 200) -> list[tuple]:
        """Rows ``(id, *GatewayRow)``, newest first."""
        where, args = [], []
        if client:
            where.append("client = ?")
            args.append(client)
        if since is not None:
            where.append("ts >= ?")
            args.append(since)
        sql = ("SELECT id, ts, client, surface, action, args, decision, detail, result_size, items "
               "FROM gateway_audit")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        return self.sql.query(sql, (*args, int(limit)))


class AgentAuditLog:
    def __init__(self, sql: SqlRunner) -> None:
        self.sql = sql

    def add(self, row: AgentRow) -> int:
        """Write one entry and return its id."""
        return self.sql.write(lambda tx: tx.execute(
            "INSERT INTO agent_audit(at, agent, tool, args_summary, decision, reason, result_bytes) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id", row).fetchone()[0])

    def entries(self, limit: int = 1000, agent: str | None = None) -> list[tuple]:
        """Rows ``(id, *AgentRow)``, newest first."""
        sql = ("SELECT id, at, agent, tool, args_summary, decision, reason, result_bytes "
               "FROM agent_audit")
        args: list[Any] = []
        if agent:
            sql += " WHERE agent = ?"
            args.append(agent)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(int(limit))
        return self.sql.query(sql, args)


