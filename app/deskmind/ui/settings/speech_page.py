"""Speech: Whisper model, microphone, vocabulary. Saved to settings.toml [speech] through the
settings store, applied live by whoever subscribes to it."""

from __future__ import annotations

import logging
from typing import Any, Callable

from PySide6.QtWidgets import (QComboBox, QFormLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout,
                               QWidget)

from deskmind.ui.tasks import Workers

log = logging.getLogger(__name__)


class SpeechPage(QWidget):
    def __init__(self, core: Any, speech: Callable[[], Any], workers: Workers,
                 apply: Callable[[dict[str, Any]], str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("speechPage")
        self.core, self._speech, self.workers, self._apply = core, speech, workers, apply
        sp = speech()
        s = sp.settings if sp is not None else None
        lay = QVBoxLayout(self)
        form = QFormLayout()
        self.model = QLineEdit(s.model if s else "tiny.en")
        self.model.setObjectName("speechModel")
        self.model_path = QLineEdit((s.model_path or "") if s else "")
        self.model_path.setPlaceholderText("folder of a CTranslate2 Whisper model you already have")
        self.mic = QComboBox()
        self.mic.setObjectName("speechMic")
        self.mic.addItem("system default")
        self.mic_refresh = QPushButton("Find microphones")
        self.mic_refresh.clicked.connect(self.find_microphones)
        self.vocab = QLineEdit(", ".join(s.vocabulary) if s else "")
        self.vocab.setObjectName("speechVocabulary")
        self.vocab.setPlaceholderText("names and jargon, comma-separated: Deskmind, Kubernetes, Ana Oliveira")
        form.addRow("Whisper model", self.model)
        form.addRow("Model folder", self.model_path)
        form.addRow("Microphone", self.mic)
        form.addRow("", self.mic_refresh)
        form.addRow("Vocabulary", self.vocab)
        lay.addLayout(form)
        self.save_btn = QPushButton("Apply")
        self.save_btn.setObjectName("speechApply")
        self.save_btn.clicked.connect(self.save)
        lay.addWidget(self.save_btn)
        self.status = QLabel("" if sp is not None else "The speech engine is not installed here.")
        self.status.setObjectName("speechStatus")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        lay.addStretch(1)
        if s is not None and s.input_device:
            self.mic.addItem(str(s.input_device))
            self.mic.setCurrentText(str(s.input_device))

    def find_microphones(self) -> None:
        def names() -> list[str]:
            from deskmind.core.speech.capture import input_device_names

            return input_device_names(self._speech().sd)

        def fill(found: list[str]) -> None:
            cur = self.mic.currentText()
            self.mic.clear()
            self.mic.addItems(["system default", *found])
            self.mic.setCurrentText(cur)
            self.status.setText(f"{len(found)} microphone(s) found")

        self.workers.submit(names, done=fill, failed=lambda e: self.status.setText(str(e)))

    def values(self) -> dict[str, Any]:
        vocab = [w.strip() for w in self.vocab.text().split(",") if w.strip()]
        mic = self.mic.currentText()
        return {"model": self.model.text().strip() or "tiny.en",
                "model_path": self.model_path.text().strip() or None,
                "input_device": None if mic == "system default" else mic, "vocabulary": vocab}

    def save(self) -> bool:
        try:
            self.status.setText(self._apply(self.values()))
            return True
        except Exception as exc:
            self.status.setText(f"Not applied: {exc}")
            return False
