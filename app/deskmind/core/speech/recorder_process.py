"""A meeting recorder that outlives the command that started it.

``deskmind meeting start`` spawns a detached ``deskmind meeting _record`` process and returns;
that process records, and writes its state (pid, meeting id, status, result) to a small JSON
file in the data folder. ``meeting stop`` sends it SIGTERM (on Windows, CTRL_BREAK) and waits
for it to save the meeting; ``meeting status`` reads the state file and the meeting manifest.
If the process dies without saving, its meeting folder stays behind and ``meeting recover``
(or the next ``meeting start``) finds it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from deskmind.core.errors import DeskmindError, UserInputError
from deskmind.core.speech.meeting import _pid_alive
from deskmind.core.speech.segments import write_json_atomic

log = logging.getLogger(__name__)

STATE_NAME = "meeting-recorder.json"


class RecorderState:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / STATE_NAME

    def read(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as exc:
            log.warning("unreadable recorder state %s: %s", self.path, exc)
            return None

    def write(self, **data: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, {**(self.read() or {}), **data, "updated_at": time.time()})

    def live(self) -> dict[str, Any] | None:
        """The state of a recorder process that is still running, else None."""
        st = self.read()
        if st and st.get("status") in ("starting", "recording", "stopping") and _pid_alive(int(st.get("pid", 0))):
            return st
        return None


def spawn_recorder(data_dir: Path, log_dir: Path, *, title: str | None, timeout: float = 60.0,
                   argv_prefix: list[str] | None = None) -> dict[str, Any]:
    """Start the detached recorder and wait until it records (or fails). Returns its state."""
    state = RecorderState(data_dir)
    live = state.live()
    if live:
        raise UserInputError(f"a meeting is already being recorded (process {live['pid']}); "
                             "'deskmind meeting stop' ends it")
    log_dir.mkdir(parents=True, exist_ok=True)
    cmd = (argv_prefix or [sys.executable, "-m", "deskmind"]) + ["meeting", "_record"]
    if title:
        cmd += ["--title", title]
    token = f"{os.getpid()}-{time.time()}"
    cmd += ["--token", token]
    kw: dict[str, Any] = {}
    if sys.platform == "win32":
        kw["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS
    else:
        kw["start_new_session"] = True
    with open(log_dir / "meeting-recorder.log", "ab") as errlog:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=errlog, close_fds=True, **kw)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = state.read() or {}
        if st.get("token") == token:
            if st.get("status") == "recording":
                return st
            if st.get("status") == "failed":
                proc.wait(timeout=10)
                raise DeskmindError(st.get("error") or "the meeting recorder could not start")
        if proc.poll() is not None:
            st = state.read() or {}
            msg = st.get("error") if st.get("token") == token else None
            raise DeskmindError(msg or f"the meeting recorder exited at once (code {proc.returncode}); "
                                f"see {log_dir / 'meeting-recorder.log'}")
        time.sleep(0.05)
    proc.terminate()
    raise DeskmindError(f"the meeting recorder did not start within {timeout:.0f} s")


def stop_recorder(data_dir: Path, *, timeout: float = 600.0,
                  on_wait: Callable[[float], None] | None = None) -> dict[str, Any]:
    """Ask the recorder to stop and wait until it has saved the meeting. Returns its final state."""
    state = RecorderState(data_dir)
    live = state.live()
    if not live:
        last = state.read() or {}
        if last.get("stopped_by") == "error" and not last.get("acknowledged"):
            state.write(acknowledged=True)
            return last  # it stopped by itself (disk full, microphone gone) and saved
        raise UserInputError("no meeting is being recorded")
    pid = int(live["pid"])
    os.kill(pid, signal.CTRL_BREAK_EVENT if sys.platform == "win32" else signal.SIGTERM)
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        st = state.read() or {}
        if st.get("status") in ("saved", "failed"):
            return st
        if not _pid_alive(pid):
            st = state.read() or {}
            if st.get("status") in ("saved", "failed"):
                return st
            raise DeskmindError("the meeting recorder stopped without saving; "
                                "'deskmind meeting recover' saves what it recorded")
        if on_wait:
            on_wait(time.monotonic() - t0)
        time.sleep(0.1)
    raise DeskmindError(f"the meeting recorder did not finish within {timeout:.0f} s; it is still "
                        f"running (process {pid})")


def run_recorder(speech: Any, data_dir: Path, *, title: str | None, token: str) -> int:
    """The body of the detached process: record until SIGTERM/SIGINT (or a fatal capture error),
    then save. Runs on the process's main thread."""
    state = RecorderState(data_dir)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT) + ((signal.SIGBREAK,) if hasattr(signal, "SIGBREAK") else ()):
        signal.signal(sig, on_signal)
    state.write(pid=os.getpid(), token=token, status="starting", started_at=time.time(),
                meeting_id=None, folder=None, error=None, result=None)
    why: list[str] = []
    rec = speech.meeting_recorder(on_error=lambda exc: (why.append(str(exc)), stop.set()))
    try:
        meeting_id = rec.start(title)
    except DeskmindError as exc:
        state.write(status="failed", error=str(exc))
        return exc.exit_code
    assert rec.folder is not None
    state.write(status="recording", meeting_id=meeting_id, folder=str(rec.folder.path),
                warnings=list(rec.folder.data.get("warnings", [])))
    while not stop.wait(0.2):
        pass
    state.write(status="stopping")
    try:
        result = rec.stop()
    except DeskmindError as exc:
        state.write(status="failed", error=str(exc))
        return exc.exit_code
    d = result.to_dict()
    d.pop("segments")
    d["transcript_segments"] = len(result.segments)
    # stopped_by "error": nobody asked; `meeting stop`/`status` tell the person what happened.
    state.write(status="saved", result=d, stopped_by="error" if why else "request",
                stop_reason=why[0] if why else None, acknowledged=not why)
    return 0
