"""The GUI event loop never stalls for more than 100 ms while indexing, transcription and a
streamed answer all run at once (real indexer and embedder, real Whisper, real HTTP stream).

On a machine shared by many processes even an idle Qt process misses its timer for 100+ ms now
and then (measured here: 133 ms over a minute at load 12 on 2 cores). So a control process
(tests/ui/loop_probe.py) ticks the same timer meanwhile, and a stall of ours counts only for the
part the control did not suffer at the same moment: what remains is caused by this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import traceback
import uuid

import pytest

from PySide6.QtCore import Qt, QTimer

from tests.fakes.audio import speech_dir  # noqa: F401  (fixture)
from tests.fakes.llm_server import Faults, FakeLLMServer, Reply
from tests.ui.xharness import ROOT

pytest.importorskip("deskmind.core.ask.pipeline")

STALL_LIMIT_MS = 100.0


class LoopWatchdog:
    """A 5 ms precise timer on the GUI thread; the longest gap between its ticks is the stall.

    A sampler thread records the GUI thread's stack whenever it has not ticked for 50 ms, so a
    failure says where the loop was stuck (our code, or nowhere: the OS did not run us).
    """

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)
        self.last = 0.0
        self.worst_ms = 0.0
        self.ticks = 0
        self.stacks: list[str] = []
        self.gaps: list[tuple[float, float]] = []
        self._running = False

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.last:
            gap = now - self.last
            self.worst_ms = max(self.worst_ms, gap * 1000)
            if gap > 0.02:
                wall = time.time()
                self.gaps.append((wall - gap, wall))
        self.last = now
        self.ticks += 1

    def _sample(self) -> None:
        main = threading.main_thread().ident
        while self._running:
            time.sleep(0.01)
            if self.last and time.perf_counter() - self.last > 0.05:
                frames = sys._current_frames()
                frame = frames.get(main)
                if frame is not None:
                    others = [f"  [{t.name}] " + "".join(traceback.format_stack(frames[t.ident])[-2:]).strip()
                              for t in threading.enumerate()
                              if t.ident in frames and t.ident not in (main, threading.get_ident())
                              and "wait" not in traceback.format_stack(frames[t.ident])[-1]]
                    stack = "".join(traceback.format_stack(frame)[-9:]) + "\n  others:\n" + "\n".join(others)
                    if not self.stacks or self.stacks[-1] != stack:
                        self.stacks.append(stack)

    def start(self) -> None:
        self.last = 0.0
        self._running = True
        threading.Thread(target=self._sample, daemon=True).start()
        self.timer.start()

    def stop(self) -> None:
        self._running = False
        self.timer.stop()


def overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def unexplained_ms(ours: list[tuple[float, float]], control: list[tuple[float, float]]) -> list[float]:
    """Per stall of ours: its length minus the time the idle control was stalled too."""
    return [((e - s) - sum(overlap((s, e), c) for c in control)) * 1000 for s, e in ours]


class ControlProbe:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.ui.loop_probe"], cwd=str(ROOT),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
        assert self.proc.stdout.readline().strip() == "ready"

    def stop(self) -> list[tuple[float, float]]:
        out, _ = self.proc.communicate("", timeout=30)
        return [tuple(g) for g in json.loads(out.strip().splitlines()[-1])]


def test_event_loop_keeps_breathing_under_load(qtbot, qloop, core, tmp_path, speech_dir):
    from deskmind.core.runtimes.base import Timeouts
    from deskmind.core.secrets import SecretStore
    from deskmind.core.speech import Speech
    from deskmind.ui.app import DesktopApp
    from tests.fakes.audio import speech_wav

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(40):
        (docs / f"doc{i}.md").write_text(f"# Topic {i}\n\n" + " ".join(
            f"Paragraph {j} of document {i} talks about item {i * j} and its care." for j in range(60)))
    wav = speech_wav(speech_dir, "This is a longer recording that keeps the transcriber busy for a while. "
                                 "It talks about the weekly plan, the budget, and who does what next.")
    # As in the app: the Whisper model loads on first use, in the speech worker.
    speech = Speech(core, system_source=lambda: None)
    app = DesktopApp(core, tray_available=False, speech=speech,
                     instance_name=f"deskmind-test-{uuid.uuid4().hex[:8]}",
                     hub_kw={"targets": (), "embedded": None, "secrets": SecretStore(environ={}),
                             "timeouts": Timeouts(connect=1.0, first_token=10.0, stall=5.0, request=30.0)})
    assert app.start(hotkeys=False)
    # Steady state: the start-up warm-up (imports of native libraries) is over, as it is a few
    # seconds after Deskmind starts.
    qtbot.waitUntil(lambda: app.warmed is not None and app.warmed.done() and app.talk is not None,
                    timeout=60000)
    dog = LoopWatchdog()
    try:
        with FakeLLMServer(reply=Reply("token " * 150), faults=Faults(token_delay=0.01)) as srv:
            core.paths.config_dir.mkdir(parents=True, exist_ok=True)
            (core.paths.config_dir / "routing.toml").write_text(
                f'[defaults]\ndiscover = false\n[providers.local]\nkind = "ollama"\nurl = "{srv.url}"\n'
                '[classes]\ngeneral = ["local:fake-model:1b"]\n'
                '[[rules]]\nname = "local"\nclass = "general"\nzones = ["machine"]\n')
            finished: dict[str, object] = {}
            app.indexing.finished.connect(lambda d: finished.setdefault("index", d))
            control = ControlProbe()
            dog.start()
            only = __import__("os").environ.get("WD_ONLY", "")
            if only in ("", "index"):
                app.indexing.index([str(docs)])
            else:
                finished["index"] = {"indexed": 40}
            if only in ("", "speech"):
                app.workers.submit(lambda: speech.transcribe_file(wav), executor=app.workers.speech,
                                   done=lambda t: finished.setdefault("transcript", t))
            else:
                finished["transcript"] = type("T", (), {"text": "plan"})()
            app.palette.input.setText("what is the plan?")
            app.palette.submit()
            qtbot.waitUntil(lambda: {"index", "transcript"} <= set(finished) and app.palette.task.done(),
                            timeout=180000)
            dog.stop()
        assert finished["index"]["indexed"] == 40
        assert "plan" in finished["transcript"].text.lower()
        assert app.palette.answer.count("token") == 150
        assert dog.ticks > 100
        ours = unexplained_ms([g for g in dog.gaps if (g[1] - g[0]) * 1000 > STALL_LIMIT_MS], control_gaps)
        control_worst = max([(e - s) * 1000 for s, e in control_gaps] or [0])
        print(f"worst GUI stall: {dog.worst_ms:.1f} ms over {dog.ticks} ticks; idle control's worst "
              f"{control_worst:.1f} ms; worst not explained by the machine: {max(ours or [0]):.1f} ms")
        assert max(ours or [0]) <= STALL_LIMIT_MS, (
            f"the GUI loop stalled for {max(ours):.0f} ms more than an idle Qt process did at the same "
            "time; GUI thread seen in:\n" + "\n".join(dog.stacks[-6:]))
    finally:
        dog.stop()
        app.shutdown()
        speech.close()
        app.palette.close()
        app.tray.fallback.close()
