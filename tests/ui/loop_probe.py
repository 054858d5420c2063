"""A control for the GUI watchdog: an idle Qt process ticking a 5 ms timer, nothing else.

Run as ``python -m tests.ui.loop_probe``; it records every gap over 20 ms between ticks as
(start, end) wall-clock times and prints them as JSON when its stdin closes. On a busy
machine even this process stalls; the watchdog test excuses our own stalls only where this
control stalled at the same moment.
"""

from __future__ import annotations

import json
import sys
import threading
import time

from PySide6.QtCore import QCoreApplication, Qt, QTimer


def main() -> int:
    app = QCoreApplication(sys.argv[:1])
    gaps: list[tuple[float, float]] = []
    last = [0.0]

    done = threading.Event()

    def tick() -> None:
        if done.is_set():
            app.quit()
            return
        now = time.time()
        if last[0] and now - last[0] > 0.02:
            gaps.append((last[0], now))
        last[0] = now

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(5)
    timer.timeout.connect(tick)
    timer.start()
    # stdin closing (the test finished, or died) ends the probe; the timer thread notices.
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    print("ready", flush=True)
    app.exec()
    print(json.dumps(gaps), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
