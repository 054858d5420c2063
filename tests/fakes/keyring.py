"""Keyrings for tests: a real keyring backend kept in a dict, and a real Secret Service
(gnome-keyring in a private D-Bus session) for end-to-end runs of the command."""

from __future__ import annotations

import os
import shutil
import subprocess
import types
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

SECRET_SERVICE_TOOLS = ("dbus-run-session", "gnome-keyring-daemon", "secret-tool")


class MemoryKeyring(KeyringBackend):
    """A real keyring backend that keeps passwords in a dict."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.data.get((service, username))

    def set_password(self, service, username, password):
        self.data[(service, username)] = password

    def delete_password(self, service, username):
        if (service, username) not in self.data:
            raise PasswordDeleteError("not found")
        del self.data[(service, username)]


def keyring_module(backend: KeyringBackend) -> types.SimpleNamespace:
    """What SecretStore needs of the ``keyring`` module, bound to one backend."""
    return types.SimpleNamespace(get_keyring=lambda: backend, get_password=backend.get_password,
                                 set_password=backend.set_password,
                                 delete_password=backend.delete_password)


def have_secret_service() -> bool:
    return all(shutil.which(b) for b in SECRET_SERVICE_TOOLS)


def run_with_secret_service(script: str, tmp_path: Path, deskmind_home: Path,
                            timeout: float = 60) -> subprocess.CompletedProcess:
    """``sh -c script`` in a private D-Bus session whose unlocked gnome-keyring is the Secret
    Service; HOME and the keyring's files are under ``tmp_path``."""
    script = ("set -e\n"
              "printf %s testpass | gnome-keyring-daemon --unlock --components=secrets >/dev/null\n"
              + script)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "PYTHON_KEYRING_BACKEND")}
    env.update(DESKMIND_HOME=str(deskmind_home), HOME=str(tmp_path),
               XDG_DATA_HOME=str(tmp_path / "xdg"))
    return subprocess.run(["dbus-run-session", "--", "sh", "-c", script], env=env,
                          capture_output=True, text=True, timeout=timeout)
