"""A small file is replaced whole, even when several threads replace it at once."""

from __future__ import annotations

import threading

import pytest

from deskmind.core.config.files import atomic_write_text


def test_concurrent_replacements_never_collide_or_leave_half_a_file(tmp_path):
    path = tmp_path / "routing.toml"
    texts = [f"# writer {w}\n" + f"line = {w}\n" * 2000 for w in range(6)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(texts))

    def write(text: str) -> None:
        start.wait()
        try:
            for _ in range(30):
                atomic_write_text(path, text)
        except BaseException as exc:  # collected: every writer must succeed
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert path.read_text(encoding="utf-8") in texts           # one writer's text, whole
    assert [p.name for p in tmp_path.iterdir()] == ["routing.toml"]  # no temporary file left


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text("old = 1\n", encoding="utf-8")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(path, "new = \ud800\n")   # cannot be encoded: fails mid-write
    assert path.read_text(encoding="utf-8") == "old = 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["settings.toml"]
