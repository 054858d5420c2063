"""Trust zones: machine (loopback, in-process), home (hosts the person lists), cloud (the rest)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

ZONES = ("machine", "home", "cloud")


def zone_rank(zone: str) -> int:
    return ZONES.index(zone)


def derive_zone(url: str, home_hosts: list[str]) -> str:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return "machine"
    try:
        if ipaddress.ip_address(host).is_loopback:
            return "machine"
    except ValueError:
        pass
    if host in {h.lower() for h in home_hosts}:
        return "home"
    return "cloud"
