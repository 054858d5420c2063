"""Choosing and opening the memory: paths and URLs, DESKMIND_DB / [storage] url, the PostgreSQL
password kept in the keyring and never shown, data_version."""

from __future__ import annotations

import logging
import sys
import types

import pytest

from deskmind.core.app import Core
from deskmind.core.config.settings import load_settings
from deskmind.core.errors import StorageError, UserInputError
from deskmind.core.memory.api import Memory
from deskmind.core.memory.backend import PG_MODULE, database_password, memory_location, open_memory
from deskmind.core.memory.models import NewChunk, SourceDraft
from deskmind.core.memory.store import MemoryStore
from deskmind.core.memory.urls import keyring_key, parse_location, redact_url
from deskmind.core.secrets import NoKeyringError, SecretStore, redact
from tests.fakes.keyring import MemoryKeyring, keyring_module

PG = "postgresql://ana@db.home:5433/deskmind?sslmode=require"


def secret_store(backend) -> SecretStore:
    return SecretStore(keyring_module(backend), environ={})


def _note(uri: str) -> SourceDraft:
    return SourceDraft(uri=uri, kind="note", title="n", content_hash=uri, size=4, mtime=1.0,
                       text="tide", extractor="test", chunks=[NewChunk(text="tide", locator={})])


@pytest.mark.parametrize("form", ["path", "str", "url", "tilde"])
def test_a_path_or_a_sqlite_url_opens_the_sqlite_store(tmp_path, monkeypatch, form):
    monkeypatch.setenv("HOME", str(tmp_path))
    target = tmp_path / "m" / "memory.db"
    given = {"path": target, "str": str(target), "url": f"sqlite://{target}",
             "tilde": "~/m/memory.db"}[form]
    with open_memory(given) as store:
        assert isinstance(store, MemoryStore) and isinstance(store, Memory)
        assert store.backend == "sqlite" and store.url == f"sqlite://{target}"
        assert store.path == target and target.is_file()


def test_the_location_comes_from_the_environment_then_settings_then_the_default(tmp_path):
    cfg = tmp_path / "settings.toml"
    cfg.write_text(f'[storage]\nurl = "{PG}"\n')
    settings = load_settings(cfg)
    assert settings.storage.url == PG
    default = tmp_path / "memory.db"
    assert memory_location(default, settings, {"DESKMIND_DB": "/x/y.db"}) == "/x/y.db"
    assert memory_location(default, settings, {"DESKMIND_DB": "  "}) == PG
    assert memory_location(default, settings, {}) == PG
    assert memory_location(default, load_settings(tmp_path / "absent.toml"), {}) == default


def test_core_opens_what_DESKMIND_DB_names(deskmind_home, tmp_path, monkeypatch):
    elsewhere = tmp_path / "shared" / "memory.db"
    monkeypatch.setenv("DESKMIND_DB", f"sqlite://{elsewhere}")
    with Core() as core:
        assert core.store.url == f"sqlite://{elsewhere}"
        core.store.put_source(_note("deskmind://note/1"))
    assert elsewhere.is_file() and not (deskmind_home / "data" / "memory.db").exists()


@pytest.mark.parametrize("url", [
    "postgresql://ana:hunter2secret@db.home/deskmind",
    "postgres://ana:hunter2secret@db.home:5432/deskmind?sslmode=require",
    "postgresql://ana@db.home/deskmind?password=hunter2secret",
    "postgresql://ana@db.home/deskmind?sslmode=verify-full&PASSWORD=hunter2secret",
])
def test_a_password_in_the_url_is_refused_without_showing_it(url, tmp_path):
    with pytest.raises(UserInputError) as ei:
        open_memory(url)
    msg = str(ei.value)
    assert "hunter2secret" not in msg and "***" in msg
    assert "holds a password" in msg and "deskmind store password" in msg
    cfg = tmp_path / "settings.toml"
    cfg.write_text(f'[storage]\nurl = "{url}"\n')
    with pytest.raises(UserInputError) as ei:
        load_settings(cfg)
    assert "[storage] url" in str(ei.value) and "hunter2secret" not in str(ei.value)


@pytest.mark.parametrize("value, why", [
    ("mysql://ana@db/deskmind", "not 'mysql'"),
    ("sqlite://", "names no file"),
    ("sqlite://:memory:", "names no file"),
    ("postgresql://ana@db:port/deskmind", "not a valid PostgreSQL URL"),
    ("", "is empty"),
    ("x" * 5000, "longer than"),
])
def test_locations_that_cannot_be_used_say_why(value, why):
    with pytest.raises(UserInputError) as ei:
        parse_location(value)
    assert why in str(ei.value)


def test_postgres_without_its_backend_installed_says_so(monkeypatch):
    # None in sys.modules makes the import fail the way a missing package does.
    monkeypatch.setitem(sys.modules, PG_MODULE, None)
    with pytest.raises(StorageError) as ei:
        open_memory(PG, secrets=secret_store(MemoryKeyring()))
    msg = str(ei.value)
    assert "no PostgreSQL backend" in msg and "db.home:5433/deskmind" in msg
    assert "DESKMIND_DB" in msg  # what to do instead


def test_postgres_gets_the_password_from_the_keyring(monkeypatch):
    opened = []

    class PgMemoryStore:  # stands in for the PostgreSQL backend's entry point
        def __init__(self, url, *, password, machine=None):
            opened.append((url, password))

    monkeypatch.setitem(sys.modules, PG_MODULE, types.SimpleNamespace(PgMemoryStore=PgMemoryStore))
    kr = MemoryKeyring()
    secrets = secret_store(kr)
    secrets.set_database_password("db:ana@db.home:5433/deskmind", "hunter2secret\n")
    assert kr.data == {("deskmind", "db:ana@db.home:5433/deskmind"): "hunter2secret"}
    open_memory(PG, secrets=secrets)
    assert opened == [(PG, "hunter2secret")]
    # A password read once is scrubbed from anything logged afterwards.
    assert redact("connect failed for hunter2secret") == "connect failed for [redacted]"
    open_memory("postgresql://bob@db.home/deskmind", secrets=secrets)
    assert opened[-1] == ("postgresql://bob@db.home/deskmind", None)


def test_no_keyring_means_no_password_not_a_crash(caplog):
    from keyring.backends import null

    loc = parse_location(PG)
    with caplog.at_level(logging.WARNING):
        assert database_password(loc, secret_store(null.Keyring())) is None
    with pytest.raises(NoKeyringError, match="no OS keyring"):
        secret_store(null.Keyring()).set_database_password(loc.keyring_key, "pw-value")
    with pytest.raises(UserInputError, match="not a database key"):
        secret_store(MemoryKeyring()).set_database_password("openai", "pw-value")


def test_a_server_on_a_unix_socket_folder_keeps_its_password_in_the_keyring():
    loc = parse_location("postgresql://bob@/mind?host=/run/postgresql")
    assert loc.keyring_key == "db:bob@/run/postgresql:5432/mind"
    kr = MemoryKeyring()
    secret_store(kr).set_database_password(loc.keyring_key, "sock-pw")
    assert database_password(loc, secret_store(kr)) == "sock-pw"


def test_keyring_keys_fill_in_libpq_defaults(monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "osuser")
    assert keyring_key(PG) == "db:ana@db.home:5433/deskmind"
    assert keyring_key("postgresql://db.home/deskmind") == "db:osuser@db.home:5432/deskmind"
    assert keyring_key("postgresql:///deskmind?host=/run/pg&port=6000&user=u") == \
        "db:u@/run/pg:6000/deskmind"
    assert keyring_key("postgres://") == "db:osuser@localhost:5432/osuser"


def test_a_password_for_a_unix_socket_server_is_kept_and_found(monkeypatch):
    # libpq's host=/run/postgresql: the key's host holds slashes.
    monkeypatch.setattr("getpass.getuser", lambda: "osuser")
    loc = parse_location("postgresql:///deskmind?host=/run/postgresql")
    assert loc.keyring_key == "db:osuser@/run/postgresql:5432/deskmind"
    secrets = secret_store(MemoryKeyring())
    secrets.set_database_password(loc.keyring_key, "sock-pw-1")
    assert database_password(loc, secrets) == "sock-pw-1"


def test_redact_url_removes_every_password():
    assert redact_url("postgresql://ana:s3cr3t@h:5/db?sslmode=require") == \
        "postgresql://ana:***@h:5/db?sslmode=require"
    assert redact_url("postgresql://a@h/db?sslpassword=s3cr3t&sslmode=verify-full") == \
        "postgresql://a@h/db?sslpassword=***&sslmode=verify-full"
    assert redact_url("postgresql://ana:p%40ss@[::1]:5432/db") == "postgresql://ana:***@[::1]:5432/db"
    assert redact_url("postgresql://ana@h/db") == "postgresql://ana@h/db"
    assert redact_url("sqlite:///home/ana/memory.db") == "sqlite:///home/ana/memory.db"
    assert redact_url("/home/ana/memory.db") == "/home/ana/memory.db"
    assert "s3cr3t" not in redact_url("postgresql://ana:s3cr3t@h:notaport/db")


def test_data_version_changes_when_anyone_writes(tmp_path):
    path = tmp_path / "memory.db"
    with open_memory(path) as one, open_memory(path) as other:
        v0 = one.data_version()
        assert one.data_version() == v0  # nothing written: the same number
        one.put_source(_note("deskmind://note/a"))  # this process's own writer
        v1 = one.data_version()
        assert v1 != v0
        other.put_source(_note("deskmind://note/b"))  # another writer on the same file
        v2 = one.data_version()
        assert v2 != v1 and one.data_version() == v2
        one.forget("deskmind://note/b")
        assert one.data_version() != v2


def test_a_server_on_a_unix_socket_has_a_keyring_entry_too():
    key = keyring_key("postgresql:///deskmind?host=/run/postgresql&user=ana")
    assert key == "db:ana@/run/postgresql:5432/deskmind"
    store = secret_store(MemoryKeyring())
    store.set_database_password(key, "pw-value")
    assert store.database_password(key) == "pw-value"
