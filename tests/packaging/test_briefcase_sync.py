"""briefcase.toml and pyproject.toml's [tool.briefcase] agree, and the config is usable."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "packaging"))

import sync_briefcase  # noqa: E402


def test_pyproject_matches_briefcase_toml():
    assert sync_briefcase.current() == sync_briefcase.wanted(), \
        "run: python packaging/sync_briefcase.py"


def test_sync_rewrites_only_the_briefcase_tables(tmp_path):
    shutil.copy(ROOT / "briefcase.toml", tmp_path / "briefcase.toml")
    original = (ROOT / "pyproject.toml").read_text()
    stale = original.replace('formal_name = "Deskmind"', 'formal_name = "Old name"', 1)
    (tmp_path / "pyproject.toml").write_text(stale)
    assert sync_briefcase.sync(tmp_path)
    assert sync_briefcase.current(tmp_path) == sync_briefcase.wanted(tmp_path)
    after = tomllib.loads((tmp_path / "pyproject.toml").read_text())
    before = tomllib.loads(original)
    assert after["project"] == before["project"]                   # nothing else touched
    assert not sync_briefcase.sync(tmp_path)                        # idempotent


def test_briefcase_requirements_cover_the_runtime_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    app = sync_briefcase.wanted()["app"]["deskmind"]
    name = lambda spec: spec.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
    missing = {name(d) for d in project["project"]["dependencies"]} - {name(r) for r in app["requires"]}
    assert not missing, f"add to briefcase.toml requires: {sorted(missing)}"
    icon = ROOT / (app["icon"] + "-256.png")
    assert icon.exists()


def test_desktop_file_is_valid():
    desktop = ROOT / "packaging" / "linux" / "org.deskmind.Deskmind.desktop"
    text = desktop.read_text()
    assert text.startswith("[Desktop Entry]") and "Exec=deskmind" in text
    if shutil.which("desktop-file-validate"):
        out = subprocess.run(["desktop-file-validate", str(desktop)], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
