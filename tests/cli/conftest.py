"""Running the real ``deskmind`` command in a subprocess, and mounting small filesystems."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest


def run_deskmind(*args: str, timeout: float = 180, prefix: tuple[str, ...] = (),
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``deskmind ARGS`` with this interpreter, in the test's DESKMIND_HOME."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "deskmind", *args],
        capture_output=True, text=True, timeout=timeout, env=env or dict(os.environ),
    )


def spawn_deskmind(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "deskmind", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str, code: int | None = None) -> str:
    """A non-zero exit with exactly one line on stderr, no traceback, containing ``fragments``."""
    err = proc.stderr
    assert proc.returncode != 0, (proc.stdout, err)
    if code is not None:
        assert proc.returncode == code, (proc.returncode, err)
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


@pytest.fixture(scope="session")
def shared_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-model-cache")


@pytest.fixture(autouse=True)
def _reuse_optimised_model(deskmind_home: Path, shared_model_cache: Path) -> None:
    # Every command on a fresh home would re-optimise the ONNX graph; share that cache file.
    (deskmind_home / "cache").mkdir(exist_ok=True)
    (deskmind_home / "cache" / "models").symlink_to(shared_model_cache, target_is_directory=True)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """``tmpfs(name, size="2m")`` mounts a fresh tmpfs; all are unmounted at teardown.

    Skips the test when mounting is not permitted (not root, no CAP_SYS_ADMIN).
    """
    mounted: list[Path] = []

    def mount(name: str, size: str = "2m") -> Path:
        d = tmp_path / name
        d.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(d)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or r.returncode}); "
                        "this fault needs a small real filesystem")
        mounted.append(d)
        return d

    yield mount
    for d in reversed(mounted):
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def remount(path: Path, options: str) -> None:
    r = subprocess.run(["mount", "-o", f"remount,{options}", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot remount {path} {options}: {r.stderr.strip()}")
