"""``deskmind clients``: grant, token, list, revoke, audit; tokens are stored only hashed."""

from __future__ import annotations

import json

import pytest

from deskmind.cli.main import main
from deskmind.core.app import Core
from deskmind.core.gateway.clients import ClientRegistry, hash_token


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_a_grant_without_a_token_says_it_has_none(capsys, deskmind_home):
    rc, out, _ = _run(capsys, "clients", "grant", "stdio-app", "--read", "public", "--json")
    assert rc == 0 and json.loads(out)["has_token"] is False and "token" not in json.loads(out)


@pytest.mark.usefixtures("on_both_backends")  # CI runs it on PostgreSQL too
def test_grant_token_list_revoke(capsys, deskmind_home):
    rc, out, _ = _run(capsys, "clients", "grant", "open-webui", "--read", "personal", "--ask",
                      "--ground", "--token", "--json")
    assert rc == 0
    granted = json.loads(out)
    token = granted["token"]
    assert token.startswith("dmk_") and granted["scopes"]["read"] == "personal"
    assert granted["has_token"] is True  # the token issued with the grant is reported
    assert granted["scopes"]["ask"] and granted["scopes"]["ground"] and not granted["scopes"]["write"]

    with Core() as core:
        if core.store.backend == "sqlite":  # every byte on disk, the write-ahead log included
            raw = core.store.path.read_bytes() + core.store.path.with_name("memory.db-wal").read_bytes()
        else:  # every column of every stored client, as the server returns it
            raw = repr(core.store.sql.query("SELECT * FROM gateway_clients")).encode()
        assert token.encode() not in raw and hash_token(token).encode() in raw
        assert ClientRegistry(core.store).authenticate(token).name == "open-webui"

    rc, out, _ = _run(capsys, "clients", "token", "open-webui", "--json")
    rotated = json.loads(out)["token"]
    assert rotated != token

    # A re-grant changes only what it names.
    rc, out, _ = _run(capsys, "clients", "grant", "open-webui", "--write", "--no-ground")
    assert "read<=personal, write, ask" in out

    rc, out, _ = _run(capsys, "clients", "list")
    assert "open-webui" in out and "granted" in out and "token" in out

    with Core() as core:
        reg = ClientRegistry(core.store)
        assert reg.authenticate(token) is None and reg.authenticate(rotated).name == "open-webui"

    rc, out, _ = _run(capsys, "clients", "revoke", "open-webui")
    assert rc == 0 and "revoked" in out
    with Core() as core:
        assert ClientRegistry(core.store).authenticate(rotated) is None

    rc, out, _ = _run(capsys, "clients", "list", "--json")
    assert json.loads(out)[0]["status"] == "revoked"

    rc, out, _ = _run(capsys, "clients", "remove", "open-webui")
    assert rc == 0 and "removed open-webui" in out
    rc, out, _ = _run(capsys, "clients", "list", "--json")
    assert json.loads(out) == []
    rc, _, err = _run(capsys, "clients", "remove", "open-webui")
    assert rc == 2 and "no client named" in err


def test_mistakes_are_one_clear_line(capsys, deskmind_home):
    rc, _, err = _run(capsys, "clients", "token", "nobody")
    assert rc == 2 and "not granted" in err and "Traceback" not in err
    rc, _, err = _run(capsys, "clients", "grant", "bad name!")
    assert rc == 2 and "not a usable client name" in err
    rc, _, err = _run(capsys, "clients", "grant", "x", "--read", "none", "--ground")
    assert rc == 2 and "--ground" in err
    rc, _, err = _run(capsys, "clients", "revoke", "ghost")
    assert rc == 2 and "no client named" in err
