"""secrets: API keys in the OS keyring (set, delete, status; a key is never shown)."""

from __future__ import annotations

import argparse
import getpass
import re
import sys

from deskmind.core.errors import UserInputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("secrets", help="API keys in the OS keyring")
    ss = p.add_subparsers(dest="secrets_cmd", metavar="ACTION", required=True)
    s = ss.add_parser("set", help="store a key (read from stdin, or asked for without echo)")
    s.add_argument("provider")
    s.set_defaults(func=cmd_secrets_set)
    s = ss.add_parser("delete", help="remove a stored key")
    s.add_argument("provider")
    s.set_defaults(func=cmd_secrets_delete)
    s = ss.add_parser("status", help="which keyring backend is in use; with PROVIDER, whether a "
                      "key is stored for it (never shown)")
    s.add_argument("provider", nargs="?")
    s.set_defaults(func=cmd_secrets_status)


def cmd_secrets_set(args: argparse.Namespace) -> int:
    from deskmind.core.secrets import SecretStore

    store = SecretStore()
    if sys.stdin.isatty():
        value = getpass.getpass(f"API key for {args.provider} (not shown): ")
    else:
        value = sys.stdin.readline()
    if not value.strip():
        raise UserInputError("no key given: nothing stored")
    store.set(args.provider, value)
    print(f"stored the key for {args.provider} in {store.describe_backend()}")
    return 0


def cmd_secrets_delete(args: argparse.Namespace) -> int:
    from deskmind.core.secrets import SecretStore

    if SecretStore().delete(args.provider):
        print(f"deleted the key for {args.provider}")
    else:
        print(f"no key was stored for {args.provider}")
    return 0


def _env(provider: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", provider).upper()


def cmd_secrets_status(args: argparse.Namespace) -> int:
    from deskmind.core.secrets import NO_BACKEND_HELP, SecretStore

    store = SecretStore()
    backend = store.describe_backend()
    provider = getattr(args, "provider", None)
    if provider is None:
        if backend == "none":
            print("keyring: " + NO_BACKEND_HELP.format(env="PROVIDER"))
            return 1
        print(f"keyring: {backend}")
        return 0
    where = store.where(provider)
    if where is not None:
        print(f"{provider}: a key is stored ({where})")
        return 0
    if backend == "none":
        print(f"{provider}: no key; " + NO_BACKEND_HELP.format(env=_env(provider)))
    else:
        print(f"{provider}: no key stored (keyring: {backend}); "
              f"add one with 'deskmind secrets set {provider}'")
    return 1
