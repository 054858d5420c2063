"""Gateway clients (table ``gateway_clients``): grants, token hashes, last seen."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from deskmind.core.memory.sql import SqlRunner

# name, status, token_hash, scopes (JSON text), created_at, updated_at, last_seen_at
ClientRow = tuple[str, str, str | None, str | None, float, float, float | None]


class ClientStore:
    def __init__(self, sql: SqlRunner) -> None:
        self.sql = sql

    def all(self) -> list[ClientRow]:
        return self.sql.query(
            "SELECT name, status, token_hash, scopes, created_at, updated_at, last_seen_at "
            "FROM gateway_clients")

    def grant(self, name: str, scopes_json: str, now: float) -> None:
        """Grant, or re-grant with new scopes, keeping the token it has."""
        self.sql.write(lambda tx: tx.execute(
            "INSERT INTO gateway_clients(name, status, scopes, created_at, updated_at) "
            "VALUES (?, 'granted', ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
            "status='granted', scopes=excluded.scopes, updated_at=excluded.updated_at",
            (name, scopes_json, now, now)))

    def set_token(self, name: str, token_hash: str, now: float) -> None:
        self.sql.write(lambda tx: tx.execute(
            "UPDATE gateway_clients SET token_hash=?, updated_at=? WHERE name=?",
            (token_hash, now, name)))

    def revoke(self, name: str, now: float) -> None:
        self.sql.write(lambda tx: tx.execute(
            "UPDATE gateway_clients SET status='revoked', token_hash=NULL, updated_at=? "
            "WHERE name=?", (now, name)))

    def remove(self, name: str) -> None:
        self.sql.write(lambda tx: tx.execute("DELETE FROM gateway_clients WHERE name=?", (name,)))

    def add_pending(self, name: str, now: float) -> None:
        """Note a client that asked to connect; one already known is left as it is."""
        self.sql.write(lambda tx: tx.execute(
            "INSERT INTO gateway_clients(name, status, created_at, updated_at) "
            "VALUES (?, 'pending', ?, ?) ON CONFLICT(name) DO NOTHING", (name, now, now)))

    def touch(self, name: str, now: float) -> "Future[Any]":
        """Record when a client was last seen, without waiting for the write."""
        return self.sql.submit(lambda tx: tx.execute(
            "UPDATE gateway_clients SET last_seen_at=? WHERE name=?", (now, name)))
