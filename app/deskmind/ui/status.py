"""A snapshot of the running app for `{"cmd": "status"}` on the local socket.

Used by end-to-end tests and benchmarks driving the real app from outside (under Xvfb) and by
anyone wanting to know what a running Deskmind is doing. Screen positions are global.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPoint, QRect
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QApplication, QWidget


def _rect(r: QRect) -> list[int]:
    return [r.x(), r.y(), r.width(), r.height()]


def _global(w: QWidget) -> list[int]:
    return _rect(QRect(w.mapToGlobal(QPoint(0, 0)), w.size()))


def _window(w: QWidget | None) -> dict[str, Any]:
    if w is None:
        return {"built": False, "visible": False}
    return {"built": True, "visible": w.isVisible(), "active": w.isActiveWindow(),
            "geometry": _rect(w.frameGeometry())}


def snapshot(app: Any) -> dict[str, Any]:
    t = app.tray
    out: dict[str, Any] = {"ok": True, "tray_ready_at": app.tray_ready_at, "tray_ready_ms": app.tray_ready_ms,
                           "state": t.state, "tray": None, "fallback": _window(t.fallback)}
    if t.tray is not None:
        out["tray"] = {"visible": t.tray.isVisible(), "geometry": _rect(t.tray.geometry()),
                       "tooltip": t.tray.toolTip()}
    m = t.menu
    out["menu"] = {"visible": m.isVisible(), "actions": {
        a.text(): _rect(QRect(m.mapToGlobal(m.actionGeometry(a).topLeft()), m.actionGeometry(a).size()))
        for a in m.actions() if not a.isSeparator() and a.isVisible()}}
    p = app.palette
    pal = _window(p)
    if p is not None:
        focus = QApplication.focusWidget()
        pal.update({"input_focus": focus is p.input, "answer": p.answer, "streaming": p.streaming,
                    "status": p.status.text(), "citations": [c.title for c in p.citations],
                    "route": p.route_label.text(), "painted_at": p.painted_at, "history": list(p.history),
                    "tools": [[c.get("tool"), c.get("decision")] for c in p.tools.calls],
                    "approval": p.tools.question.text() if p.tools.approval.isVisible() else None})
        if p.tools.approval.isVisible():
            pal["approve_once"] = _rect(QRect(p.tools.allow_btn.mapToGlobal(QPoint(0, 0)), p.tools.allow_btn.size()))
        if p.citations:
            fm = QFontMetrics(p.cites_label.font())
            m_ = p.cites_label.contentsMargins()
            x = m_.left() + fm.horizontalAdvance("Sources: ") + fm.horizontalAdvance("[1]") // 2 + 2
            y = p.cites_label.height() // 2
            g = p.cites_label.mapToGlobal(QPoint(x, y))
            pal["cite1"] = [g.x(), g.y()]
    out["palette"] = pal
    out["windows"] = {name: _window(w) for name, w in app._windows.items()}
    settings = app._windows.get("settings")
    if settings is not None:
        nav = settings.nav
        out["settings_nav"] = {nav.item(i).text(): [nav.mapToGlobal(nav.visualItemRect(nav.item(i)).center()).x(),
                                                    nav.mapToGlobal(nav.visualItemRect(nav.item(i)).center()).y()]
                               for i in range(nav.count())}
        out["settings_page"] = nav.currentItem().text() if nav.currentItem() is not None else None
        hk = settings.pages.get("Hotkeys")
        if hk is not None:
            out["hotkey_fields"] = {a: {"text": e.keySequence().toString(), "focus": e.hasFocus(),
                                        "rect": _global(e)}
                                    for a, e in hk.edits.items()}
    browser = app._windows.get("browser")
    if browser is not None and browser.results.count():
        res = browser.results
        at = [res.viewport().mapToGlobal(res.visualItemRect(res.item(i)).center()) for i in range(min(res.count(), 10))]
        out["browser_rows"] = [[res.item(i).text(), p.x(), p.y()] for i, p in enumerate(at)]
    if browser is not None and browser.item_view.item is not None:
        out["browser_item"] = browser.item_view.item["source"].title
        out["browser_provenance"] = browser.item_view.provenance.text()
    dz = app._windows.get("dropzone")
    if dz is not None:
        out["dropzone"] = {"progress": dz.progress.text(), "rows": dz.table.rowCount(),
                           "summary": dz.summary.text(), "close_text": dz.close_btn.text(),
                           "dialog": dz.dialog is not None and dz.dialog.isVisible(),
                           "folder_btn": _global(dz.folder_btn), "close_btn": _global(dz.close_btn),
                           "details": dz.details.text() if dz.details is not None and dz.details.isVisible() else None,
                           "why_cells": {dz.table.item(r, 0).text(): [p.x(), p.y()] for r in range(dz.table.rowCount())
                                         for p in [dz.table.viewport().mapToGlobal(
                                             dz.table.visualItemRect(dz.table.item(r, 2)).center())]}}
    if app.meeting is not None:
        out["meeting"] = {"state": app.meeting.state, "segments": len(app.meeting.segments),
                          "elapsed": app.meeting.elapsed(), "menu_text": t.act_meeting.text()}
    if app.talk is not None:
        out["talk"] = {"state": app.talk.state}
    dictation = getattr(app, "dictation", None)
    if dictation is not None:
        last = dictation.last
        mic = app.speech.armed_microphone if app.speech is not None else None
        out["dictation"] = {"state": dictation.state, "last": last.to_dict() if last is not None else None,
                            "preroll_armed": bool(mic is not None and mic.armed),
                            "preroll_kept_s": mic.kept_s if mic is not None else 0.0}
    if app.hud is not None:
        out["hud"] = {"state": app.hud.state, "text": app.hud.label.text()}
    out["hotkeys"] = [{"action": s.action, "combo": s.combo, "armed": s.armed, "mode": s.mode, "detail": s.detail}
                      for s in app.hotkeys.statuses]
    return out
