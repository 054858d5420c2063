"""Files dropped on a window (the drop window, the palette, the first-run page)."""

from __future__ import annotations

from typing import Any


def accept_files(event: Any) -> None:
    """A drag enters: take it when it carries files or links."""
    if event.mimeData().hasUrls():
        event.acceptProposedAction()


def take_files(event: Any) -> list[str]:
    """The local paths a drop carries (the drop is taken when there are any)."""
    paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
    if paths:
        event.acceptProposedAction()
    return paths
