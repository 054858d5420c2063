"""Indexing: what reading one file may cost. Saved to settings.toml [extraction] through the
settings store (on a worker: the store takes a file lock); the next indexing run reads it."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtWidgets import (QCheckBox, QDoubleSpinBox, QFormLayout, QLabel, QPushButton, QSpinBox,
                               QVBoxLayout, QWidget)

from deskmind.core.config.sections import ExtractionSettings
from deskmind.ui.tasks import Workers

log = logging.getLogger(__name__)


def _mb_box(name: str, value: float, low: float, high: float, decimals: int = 0) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setObjectName(name)
    box.setDecimals(decimals)
    box.setRange(low, high)
    box.setSuffix(" MB")
    box.setValue(value)
    return box


class IndexingPage(QWidget):
    def __init__(self, settings_store: Any, workers: Workers, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("indexingPage")
        self.store, self.workers = settings_store, workers
        s: ExtractionSettings = settings_store.settings.extraction
        lay = QVBoxLayout(self)
        intro = QLabel("Limits for reading one file. A file that reaches one is indexed up to it, or "
                       "refused, and its outcome says which and why. The defaults let a 2,000-page "
                       "book through.")
        intro.setWordWrap(True)
        lay.addWidget(intro)
        form = QFormLayout()
        self.text_mb = _mb_box("indexingTextMb", s.max_text_mb, 0.01, 1024, 2)
        self.inflated_mb = _mb_box("indexingInflatedMb", s.max_inflated_mb, 1, 16384)
        self.pages = QSpinBox()
        self.pages.setObjectName("indexingPages")
        self.pages.setRange(1, 1_000_000)
        self.pages.setValue(s.max_pages)
        self.seconds = QDoubleSpinBox()
        self.seconds.setObjectName("indexingSeconds")
        self.seconds.setDecimals(0)
        self.seconds.setRange(1, 86400)
        self.seconds.setSuffix(" s")
        self.seconds.setValue(s.max_seconds)
        self.memory_mb = QSpinBox()
        self.memory_mb.setObjectName("indexingParserMemory")
        self.memory_mb.setRange(256, 1 << 20)
        self.memory_mb.setSuffix(" MB")
        self.memory_mb.setValue(s.parser_memory_mb)
        self.isolate = QCheckBox("Read PDF, HTML, DOCX, e-mail and gzip files in parser processes")
        self.isolate.setObjectName("indexingParserProcesses")
        self.isolate.setToolTip("A parser process that goes over its memory or time is stopped and "
                                "replaced; off, these parsers run inside the indexer")
        self.isolate.setChecked(s.parser_processes)
        form.addRow("Text kept per file", self.text_mb)
        form.addRow("Inflated per file", self.inflated_mb)
        form.addRow("Pages per file", self.pages)
        form.addRow("Time per file", self.seconds)
        form.addRow("Memory per parser", self.memory_mb)
        form.addRow("", self.isolate)
        lay.addLayout(form)
        self.apply_btn = QPushButton("Apply")
        self.apply_btn.setObjectName("indexingApply")
        self.apply_btn.clicked.connect(self.apply)
        lay.addWidget(self.apply_btn)
        self.status = QLabel("")
        self.status.setObjectName("indexingStatus")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        lay.addStretch(1)

    def values(self) -> dict[str, Any]:
        return {"max_text_mb": round(self.text_mb.value(), 2), "max_inflated_mb": self.inflated_mb.value(),
                "max_pages": self.pages.value(), "max_seconds": self.seconds.value(),
                "parser_memory_mb": self.memory_mb.value(), "parser_processes": self.isolate.isChecked()}

    def apply(self) -> None:
        """Save on a worker; the status line says when it is saved or why not."""
        self.apply_btn.setEnabled(False)
        self.status.setText("Saving…")

        def done(_settings: Any) -> None:
            self.apply_btn.setEnabled(True)
            self.status.setText("Saved: the next indexing run uses these limits.")

        def failed(exc: BaseException) -> None:
            self.apply_btn.setEnabled(True)
            self.status.setText(f"Not saved: {exc}")

        self.workers.submit(self.store.update, "extraction", self.values(), done=done, failed=failed)
