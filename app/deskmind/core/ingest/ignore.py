"""What indexing never reads: a default ignore list plus .gitignore-style files.

Defaults are checked with set lookups (a re-scan of thousands of unchanged files must stay
cheap); user patterns (``.gitignore``, ``.deskmindignore`` in any folder, and
``settings.ingest.ignore``) go through pathspec, which implements Git's wildmatch rules.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import pathspec

log = logging.getLogger(__name__)

IGNORE_FILES = (".gitignore", ".deskmindignore")

# Version control, dependency and build output, caches, app config folders.
IGNORED_DIRS = frozenset({
    ".git", ".hg", ".svn", ".bzr", "_darcs", "CVS", "node_modules", "bower_components",
    "__pycache__", ".venv", "venv", ".tox", ".nox", ".mypy_cache", ".pytest_cache",
    ".ruff_cache", ".cache", "build", "dist", "target", ".gradle", ".next", ".nuxt",
    ".idea", ".vscode", ".eggs", "site-packages", ".terraform", ".obsidian", ".trash",
    ".Trash", ".ssh", ".gnupg", ".aws", ".kube", ".docker", ".password-store",
})
# Secrets: never read, whatever their extension says.
SECRET_NAMES = frozenset({
    ".env", ".envrc", ".netrc", ".pgpass", ".npmrc", ".pypirc", ".git-credentials",
    ".htpasswd", "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "credentials",
    "credentials.json", "secrets.json", "secrets.yaml", "secrets.yml", "known_hosts",
    "authorized_keys",
})
SECRET_SUFFIXES = frozenset({
    ".pem", ".key", ".p12", ".pfx", ".jks", ".keystore", ".kdbx", ".gpg", ".asc", ".ppk",
    ".crt", ".cer", ".der", ".csr",
})
# Binary formats no extractor reads: ignored quietly rather than reported one by one.
BINARY_SUFFIXES = frozenset({
    ".exe", ".dll", ".so", ".dylib", ".o", ".a", ".lib", ".obj", ".pyc", ".pyo", ".class",
    ".jar", ".war", ".whl", ".egg", ".zip", ".tar", ".tgz", ".bz2", ".xz", ".zst", ".7z",
    ".rar", ".iso", ".dmg", ".img", ".bin", ".dat", ".db", ".sqlite", ".sqlite3", ".db-wal",
    ".db-shm", ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".ico", ".icns",
    ".webp", ".heic", ".psd", ".ttf", ".otf", ".woff", ".woff2", ".eot", ".mo", ".pack",
    ".idx", ".npy", ".npz", ".pkl", ".pickle", ".onnx", ".pt", ".gguf", ".safetensors",
    ".swp", ".swo", ".lock", ".DS_Store",
})


# Bookkeeping files of tools, not anyone's material.
TOOL_FILES = frozenset({".gitignore", ".deskmindignore", ".gitattributes", ".gitmodules",
                        ".ds_store", "thumbs.db", "desktop.ini", ".directory"})


def default_reason(name: str) -> str | None:
    """Why a file is ignored by the defaults, or None."""
    low = name.lower()
    if low in TOOL_FILES:
        return "tool bookkeeping file"
    if low in SECRET_NAMES or low.startswith(".env.") or low.startswith("id_rsa"):
        return "secret (credentials or key file)"
    dot = low.rfind(".")
    suffix = low[dot:] if dot >= 0 else ""
    if suffix in SECRET_SUFFIXES:
        return "secret (key or certificate file)"
    if suffix in BINARY_SUFFIXES or low.endswith("~"):
        return "binary or temporary file"
    return None


@dataclass
class IgnoreRules:
    """Ignore rules for one folder tree; ``child()`` adds the ignore files found deeper down."""

    root: Path
    extra: list[str] = field(default_factory=list)
    _specs: list[tuple[Path, pathspec.PathSpec]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.extra and not self._specs:
            self._specs = [(self.root, pathspec.GitIgnoreSpec.from_lines(self.extra))]

    def child(self, folder: Path, names: Iterable[str]) -> "IgnoreRules":
        """Rules for ``folder``, given the names it holds (so no extra stat is needed)."""
        specs = self._specs
        for fname in IGNORE_FILES:
            if fname in names:
                try:
                    lines = (folder / fname).read_text(encoding="utf-8", errors="replace").splitlines()
                except OSError as exc:
                    log.warning("cannot read %s: %s", folder / fname, exc)
                    continue
                specs = specs + [(folder, pathspec.GitIgnoreSpec.from_lines(lines))]
        if specs is self._specs:
            return self
        return IgnoreRules(self.root, self.extra, specs)

    def dir_ignored(self, path: Path) -> bool:
        if path.name in IGNORED_DIRS:
            return True
        return self._match(path, is_dir=True)

    def file_reason(self, path: Path) -> str | None:
        reason = default_reason(path.name)
        if reason:
            return reason
        if self._match(path, is_dir=False):
            return "matched an ignore rule"
        return None

    def _match(self, path: Path, is_dir: bool) -> bool:
        # As Git does: ignore files from the root down to the file's folder, the last pattern
        # that matches deciding, so `!keep.log` in a sub-folder re-includes what a parent's
        # `*.log` excluded (and a deeper `*.log` excludes what a parent re-included).
        ignored = False
        for base, spec in self._specs:
            try:
                rel = path.relative_to(base).as_posix()
            except ValueError:
                continue
            verdict = spec.check_file(rel + "/" if is_dir else rel).include
            if verdict is not None:
                ignored = verdict
        return ignored


def rules_for(path: Path, stop: Path | None = None, extra: Iterable[str] = ()) -> IgnoreRules:
    """Rules for a single file or folder, reading ignore files from ``stop`` (or the
    filesystem root) down to it: used when a watcher reports one changed path."""
    chain: list[Path] = []
    p = path.parent if not path.is_dir() else path
    while True:
        chain.append(p)
        if p == stop or p.parent == p:
            break
        p = p.parent
    rules = IgnoreRules(chain[-1], list(extra))
    for folder in reversed(chain):
        try:
            names = {n for n in IGNORE_FILES if (folder / n).is_file()}
        except OSError:
            names = set()
        rules = rules.child(folder, names)
    return rules


def ignored_by_path(path: Path, root: Path | None = None, extra: Iterable[str] = ()) -> str | None:
    """Why ``path`` (under ``root``) is ignored, or None; checks every folder on the way."""
    base = root or Path(path.anchor)
    try:
        parts = path.relative_to(base).parts
    except ValueError:
        parts = path.parts
    if any(p in IGNORED_DIRS for p in parts[:-1]):
        return "inside an ignored folder"
    rules = rules_for(path, root, extra)
    if path.is_dir():
        return "matched an ignore rule" if rules.dir_ignored(path) else None
    return rules.file_reason(path)
