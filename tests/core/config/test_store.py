"""settings.toml has one writer: locked, atomic, checked, and it notifies subscribers."""

from __future__ import annotations

import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import pytest

from deskmind.core.config.settings import load_settings
from deskmind.core.config.store import SettingsStore
from deskmind.core.errors import UserInputError

ROUNDS = 150

# One writer: sets ``[table] key`` to 1..ROUNDS, one read-modify-write each time.
# It starts writing when the test says so (a line on stdin), so both really run at once.
WRITER = """
import sys
from pathlib import Path
from deskmind.core.config.store import SettingsStore
store = SettingsStore(Path(sys.argv[1]))
table, key, rounds = sys.argv[2], sys.argv[3], int(sys.argv[4])
print("ready", flush=True)
sys.stdin.readline()
for i in range(1, rounds + 1):
    store.update(table, {key: i})
"""


def _values(path: Path) -> tuple[int, int]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return data["speech"]["beam_size"], data["gateway"]["workers"]


def test_two_threads_writing_different_keys_lose_nothing(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text("# kept\n[ingest]\nmax_file_mb = 10\n", encoding="utf-8")
    # Two stores, as two parts of one process that each hold their own (the tray's speech page
    # and the gateway switch): the file lock, not a shared object, keeps them apart.
    stores = [SettingsStore(path), SettingsStore(path)]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def write(store: SettingsStore, table: str, key: str) -> None:
        start.wait()
        try:
            for i in range(1, ROUNDS + 1):
                store.update(table, {key: i})
        except BaseException as exc:  # reported below, with the values
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(stores[0], "speech", "beam_size")),
               threading.Thread(target=write, args=(stores[1], "gateway", "workers"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert _values(path) == (ROUNDS, ROUNDS)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# kept\n") and "max_file_mb = 10" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["settings.toml", "settings.toml.lock"]


def test_two_processes_writing_different_keys_lose_nothing(tmp_path):
    path = tmp_path / "settings.toml"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), table, key, str(ROUNDS)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
             for table, key in (("speech", "beam_size"), ("gateway", "workers"))]
    for p in procs:
        assert p.stdout.readline() == "ready\n", p.stderr.read()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert _values(path) == (ROUNDS, ROUNDS)


INVALID = [
    ('[speech]\nbeam_size = "two"\n', "[speech] beam_size must be a whole number, not 'two'"),
    ('[gateway]\nport = 8765\ntray_serves = "yes"\n', "[gateway] tray_serves must be true or false, not 'yes'"),
    ('[gateway]\nport = 70000\n', "[gateway] port must be between 0 and 65535, not 70000"),
    ('[speech]\ndevice = "gpu"\n', "[speech] device must be auto, cpu or cuda, not 'gpu'"),
    ('[speech]\nvocabulary = ["Deskmind", 3]\n', "[speech] vocabulary must be a list of text, not ['Deskmind', 3]"),
    ('[embedder]\nthreads = 2.5\n', "[embedder] threads must be a whole number, not 2.5"),
    ("speech = 3\n", "[speech] must be a table of settings, not 3"),
    ("[speech]\ninput_device = true\n", "[speech] input_device must be text or a whole number, not True"),
    ("schema_version = 9\n", " was written by a newer Deskmind (schema 9); upgrade to use it"),
]


@pytest.mark.parametrize("text, message", INVALID)
def test_a_hand_written_invalid_file_is_refused_with_where_and_what(tmp_path, text, message):
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserInputError) as err:
        load_settings(path)
    assert str(err.value) == f"{path}{'' if message.startswith(' ') else ' '}{message}"


def test_a_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text("# mine\n[speech\nmodel = 1\n", encoding="utf-8")
    with pytest.raises(UserInputError, match=r"\(at line 2, column 8\)"):
        load_settings(path)


def test_a_refused_update_writes_nothing_and_tells_no_one(tmp_path):
    path = tmp_path / "settings.toml"
    original = "# mine\n[speech]\nbeam_size = 2\n"
    path.write_text(original, encoding="utf-8")
    store = SettingsStore(path)
    heard: list[frozenset[str]] = []
    store.subscribe(lambda _s, tables: heard.append(tables))
    with pytest.raises(UserInputError, match=r"\[speech\] meeting_segment_s must be more than 0"):
        store.update("speech", {"meeting_segment_s": 0})
    with pytest.raises(UserInputError, match=r"\[speech\] has no setting beam"):
        store.update("speech", {"beam": 3})
    with pytest.raises(UserInputError, match=r"settings have no \[speach\] table"):
        store.update("speach", {"beam_size": 3})
    assert path.read_text(encoding="utf-8") == original
    assert store.settings.speech.beam_size == 2 and heard == []

    # A file broken by hand is not overwritten by the next change: the person's text is kept.
    broken = "# mine\n[speech\nbeam_size = 2\n"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(UserInputError, match="nothing was changed"):
        store.update("gateway", {"tray_serves": True})
    assert path.read_text(encoding="utf-8") == broken


def test_an_oversized_file_is_refused_before_parsing(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text("# x\n" * 400_000, encoding="utf-8")
    with pytest.raises(UserInputError, match="larger than 1024 KB"):
        load_settings(path)


def test_subscribers_hear_which_tables_changed(tmp_path):
    path = tmp_path / "settings.toml"
    store = SettingsStore(path)
    heard: list[tuple[int, frozenset[str]]] = []
    seen_by_second: list[bool] = []

    def broken(_settings, _tables):
        raise RuntimeError("a listener with a bug")

    store.subscribe(broken)                       # does not stop the others or undo the write
    stop = store.subscribe(lambda s, tables: heard.append((s.speech.beam_size, tables)))
    store.subscribe(lambda s, tables: seen_by_second.append(s.gateway.tray_serves))

    store.update("speech", {"beam_size": 3})
    store.update("speech", {"beam_size": 3})      # no change, no notification
    worker = threading.Thread(target=store.update, args=("gateway", {"tray_serves": True}))
    worker.start()
    worker.join(30)
    stop()
    store.update("speech", {"beam_size": None})   # back to the default; only the others hear it

    assert heard == [(3, frozenset({"speech"})), (3, frozenset({"gateway"}))]
    assert seen_by_second == [False, True, True]
    assert store.settings.speech.beam_size == 1 and store.settings.gateway.tray_serves is True
    assert "beam_size" not in tomllib.loads(path.read_text(encoding="utf-8"))["speech"]


def test_reload_picks_up_another_process_and_notifies(tmp_path):
    path = tmp_path / "settings.toml"
    store = SettingsStore(path)
    heard: list[frozenset[str]] = []
    store.subscribe(lambda _s, tables: heard.append(tables))
    SettingsStore(path).update("speech", {"vocabulary": ["Deskmind"]})
    assert store.settings.speech.vocabulary == []
    assert store.reload().speech.vocabulary == ["Deskmind"]
    assert heard == [frozenset({"speech"})]


def test_unknown_tables_and_comments_survive_a_change(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text("# top\n[future]\nshiny = 1  # from a newer Deskmind\n\n[speech]\nmodel = \"base\"\n",
                    encoding="utf-8")
    SettingsStore(path).update("speech", {"model_path": "/models/base"})
    text = path.read_text(encoding="utf-8")
    assert "# top" in text and "shiny = 1  # from a newer Deskmind" in text
    data = tomllib.loads(text)
    assert data["speech"] == {"model": "base", "model_path": "/models/base"}


def test_values_a_person_writes_by_hand_are_taken_as_meant(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text('[speech]\ninput_device = 2\nsystem_source = ""\nmeeting_segment_s = 5\n'
                    '[gateway]\nbackup_every_hours = 12\n', encoding="utf-8")
    s = load_settings(path)
    assert s.speech.input_device == 2                        # a device index
    assert s.speech.system_source is None                    # empty means not set
    assert s.speech.meeting_segment_s == 5.0 and isinstance(s.speech.meeting_segment_s, float)
    assert s.gateway.backup_every_hours == 12.0 and s.gateway.port == 8765


def test_settings_kept_behind_a_symbolic_link_stay_there(tmp_path):
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "deskmind.toml"
    real.write_text("# mine\n", encoding="utf-8")
    link = tmp_path / "config" / "settings.toml"
    link.parent.mkdir()
    link.symlink_to(real)
    SettingsStore(link).update("speech", {"beam_size": 2})
    assert link.is_symlink() and link.resolve() == real
    assert real.read_text(encoding="utf-8").startswith("# mine\n")
    assert tomllib.loads(real.read_text(encoding="utf-8"))["speech"]["beam_size"] == 2
