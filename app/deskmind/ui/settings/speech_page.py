"""Speech: Whisper model, microphone, vocabulary. Saved to settings.toml [speech] through the
settings store, applied live by whoever subscribes to it."""

from __future__ import annotations

import logging
from typing import Any, Callable

from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QLabel, QLineEdit, QPushButton,
                               QVBoxLayout, QWidget)

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
        self.preroll = QCheckBox("Keep the microphone open while the talk keys are armed (pre-roll)")
        self.preroll.setObjectName("speechPreroll")
        self.preroll.setChecked(s.preroll if s else True)
        form.addRow("", self.preroll)
        preroll_help = QLabel(
            "So the first word is never cut off, the microphone stays open while the push-to-talk "
            "and dictate keys are armed, and your system's microphone indicator shows it. Only the "
            "last fraction of a second is kept, in memory, and dropped continuously; nothing is "
            "written or sent anywhere until you press a talk key. Off: the microphone opens when "
            "the key goes down, and the first ~0.1 s may be lost.")
        preroll_help.setObjectName("speechPrerollHelp")
        preroll_help.setWordWrap(True)
        form.addRow("", preroll_help)
        self.dictate_note = QCheckBox("Also save dictated text as a voice note")
        self.dictate_note.setObjectName("speechDictateNote")
        self.dictate_note.setChecked(s.dictate_save_note if s else True)
        form.addRow("Dictation", self.dictate_note)
        self.dictate_clean = QCheckBox("Clean up dictated text with the local model (punctuation, "
                                       "filler words; never used if it drops or adds content)")
        self.dictate_clean.setObjectName("speechDictateCleanUp")
        self.dictate_clean.setChecked(s.dictate_clean_up if s else False)
        form.addRow("", self.dictate_clean)
        lay.addLayout(form)
        self.save_btn = QPushButton("Apply")
        self.save_btn.setObjectName("speechApply")
        self.save_btn.clicked.connect(self.save)
        lay.addWidget(self.save_btn)
        self.status = QLabel("" if sp is not None else "The speech engine is not installed here.")
        self.status.setObjectName("speechStatus")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.cleanup_state = QLabel("")
        self.cleanup_state.setObjectName("speechCleanupState")
        self.cleanup_state.setWordWrap(True)
        self.cleanup_retry = QPushButton("Try note clean-up again")
        self.cleanup_retry.setObjectName("speechCleanupRetry")
        self.cleanup_retry.clicked.connect(self.retry_cleanup)
        lay.addWidget(self.cleanup_state)
        lay.addWidget(self.cleanup_retry)
        self.show_cleanup_state()
        lay.addStretch(1)
        if s is not None and s.input_device:
            self.mic.addItem(str(s.input_device))
            self.mic.setCurrentText(str(s.input_device))

    def showEvent(self, event: Any) -> None:  # noqa: N802 (Qt's name)
        self.show_cleanup_state()  # a model may have been switched off since the page was built
        super().showEvent(event)

    def _cleanup_record(self) -> Any:
        sp = self._speech()
        return getattr(sp, "cleanup_record", None) if sp is not None else None

    def show_cleanup_state(self) -> None:
        """Which models note clean-up is off for, and why (their clean-ups kept being unused)."""
        rec = self._cleanup_record()
        off = {m: r for m, r in (rec.state() if rec is not None else {}).items() if r.get("off")}
        lines = [f"Note clean-up is off for {m}: its last {r.get('rejected_in_a_row', 0)} clean-ups "
                 f"were not used ({r.get('last_reason', 'no reason kept')}). Notes are saved as "
                 "transcribed." for m, r in sorted(off.items())]
        self.cleanup_state.setText("\n".join(lines))
        self.cleanup_state.setVisible(bool(lines))
        self.cleanup_retry.setVisible(bool(lines))

    def retry_cleanup(self) -> None:
        rec = self._cleanup_record()
        if rec is not None:
            rec.turn_on()  # a small JSON file: quick enough for the GUI thread
        self.show_cleanup_state()
        self.status.setText("Note clean-up will be tried again with every model")

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
                "input_device": None if mic == "system default" else mic, "vocabulary": vocab,
                "preroll": self.preroll.isChecked(), "dictate_save_note": self.dictate_note.isChecked(),
                "dictate_clean_up": self.dictate_clean.isChecked()}

    def save(self) -> bool:
        try:
            self.status.setText(self._apply(self.values()))
            return True
        except Exception as exc:
            self.status.setText(f"Not applied: {exc}")
            return False
