"""Keep the clipboard as it was around a paste: every format, not only its text.

Dictated text that is pasted goes through the clipboard; ``ClipboardKeeper.save`` copies each
format the clipboard offers (text, HTML, images, file lists, application formats) and
``restore`` puts them all back, so the person's own clipboard survives the dictation.
"""

from __future__ import annotations

from PySide6.QtCore import QMimeData
from PySide6.QtGui import QClipboard, QGuiApplication

# A clipboard bigger than this is not copied (a huge image, say): it is left alone and
# ``restore`` reports that it could not bring it back, rather than holding it in memory.
MAX_SAVED_BYTES = 64 * 1024 * 1024


class ClipboardKeeper:
    def __init__(self, clipboard: QClipboard | None = None) -> None:
        self._clipboard = clipboard or QGuiApplication.clipboard()
        self._saved: dict[str, bytes] | None = None
        self.too_big = False

    def save(self) -> None:
        """Copy every format the clipboard holds now."""
        mime = self._clipboard.mimeData()
        saved: dict[str, bytes] = {}
        total = 0
        self.too_big = False
        for fmt in (mime.formats() if mime is not None else []):
            data = bytes(mime.data(fmt))
            total += len(data)
            if total > MAX_SAVED_BYTES:
                self.too_big = True
                saved = {}
                break
            saved[fmt] = data
        self._saved = saved

    def put_text(self, text: str) -> None:
        self._clipboard.setText(text)

    def restore(self) -> bool:
        """Put the saved formats back; False when nothing could be saved (too big)."""
        if self._saved is None:
            raise RuntimeError("restore() called before save()")
        if self.too_big:
            return False
        if not self._saved:
            self._clipboard.clear()
            return True
        mime = QMimeData()
        for fmt, data in self._saved.items():
            mime.setData(fmt, data)
        self._clipboard.setMimeData(mime)
        return True
