"""Rate budgets: a wrong, revoked or rotated-away token never spends a valid client's budget."""

from __future__ import annotations

import concurrent.futures
import secrets
import threading
import time

import httpx

from deskmind.core.gateway.clients import MIN_FORCED_RELOAD, ClientRegistry
from tests.core.gateway.conftest import grant


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _flood(url: str, token: str | None, n: int) -> list[int]:
    with httpx.Client(timeout=30) as c:
        return [c.get(url, headers=_auth(token or "dmk_" + secrets.token_urlsafe(32))).status_code
                for _ in range(n)]


def test_a_flood_with_the_old_token_after_a_rotation_leaves_the_new_token_served(core, gateway, http_server):
    old = grant(gateway, "cursor", read="public", rate=5, burst=20)
    url = http_server.url + "/v1/models"
    assert httpx.get(url, headers=_auth(old)).status_code == 200
    # The person rotates the token from the command line: another registry on the same
    # memory, so this gateway may accept the old token until its cache of grants expires.
    new = ClientRegistry(core.store).rotate_token("cursor")
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        codes = [c for batch in pool.map(lambda _i: _flood(url, old, 60), range(4)) for c in batch]
    assert 429 in codes and set(codes) <= {200, 401, 429}
    with httpx.Client(timeout=30) as c:
        served = [c.get(url, headers=_auth(new)).status_code for _ in range(15)]
    assert served == [200] * 15  # its whole burst: nothing of it was spent by the old token
    assert httpx.get(url, headers=_auth(old)).status_code in (401, 429)


def test_a_token_made_during_a_flood_of_bad_ones_is_served(core, gateway, http_server):
    grant(gateway, "cursor", read="public")
    url = http_server.url + "/v1/models"
    stop = threading.Event()
    bad_codes: list[int] = []

    def flood() -> None:
        with httpx.Client(timeout=30) as c:
            while not stop.is_set():
                bad_codes.append(c.get(url, headers=_auth("dmk_" + secrets.token_urlsafe(32))).status_code)

    flooder = threading.Thread(target=flood)
    flooder.start()
    try:
        while bad_codes.count(429) < 10:  # the budget for failures is spent
            time.sleep(0.05)
        gateway.clients.reload()  # its cache of grants is fresh: the new token is not in it
        new = ClientRegistry(core.store).rotate_token("cursor")
        time.sleep(MIN_FORCED_RELOAD)
        with httpx.Client(timeout=30) as c:
            served = [c.get(url, headers=_auth(new)).status_code for _ in range(20)]
    finally:
        stop.set()
        flooder.join()
    assert served == [200] * 20
    assert set(bad_codes) == {401, 429}


def test_wrong_tokens_never_spend_the_valid_clients_own_budget(gateway, http_server):
    good = grant(gateway, "calm", read="public", rate=0.5, burst=5)
    revoked = grant(gateway, "gone", read="public")
    gateway.clients.revoke("gone")
    url = http_server.url + "/v1/models"
    codes = [c for token in (revoked, good[:-2] + "xx", None) for c in _flood(url, token, 40)]
    assert set(codes) == {401, 429}
    # Its whole burst is still there; then its own limit applies.
    assert _flood(url, good, 6) == [200] * 5 + [429]
