"""Write the tray icons: one SVG per state, rendered to PNG at 16-64 px with Qt.

Run from anywhere: ``python resources/icons/generate_icons.py``. The PNGs are committed so the
app never depends on the SVG image plugin at run time.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZES = (16, 22, 32, 48, 64)
APP_SIZES = (16, 32, 64, 128, 256, 512)

# A rounded dark tile with a white "d" (Deskmind) and a coloured state badge.
BASE = """<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">
  <rect x="2" y="2" width="60" height="60" rx="14" fill="#263238"/>
  <circle cx="27" cy="36" r="13" fill="none" stroke="#ffffff" stroke-width="6"/>
  <rect x="37" y="8" width="6" height="41" rx="3" fill="#ffffff"/>
  {badge}
</svg>
"""

BADGES = {
    "idle": "",
    "recording": '<circle cx="50" cy="50" r="13" fill="#e53935" stroke="#263238" stroke-width="3"/>',
    "meeting": ('<circle cx="50" cy="50" r="13" fill="#8e24aa" stroke="#263238" stroke-width="3"/>'
                '<rect x="44" y="44" width="4" height="12" fill="#fff"/><rect x="52" y="44" width="4" height="12" fill="#fff"/>'),
    "indexing": ('<circle cx="50" cy="50" r="13" fill="#43a047" stroke="#263238" stroke-width="3"/>'
                 '<path d="M50 42 L50 54 M44 49 L50 55 L56 49" stroke="#fff" stroke-width="3" fill="none"/>'),
    "attention": ('<circle cx="50" cy="50" r="13" fill="#fb8c00" stroke="#263238" stroke-width="3"/>'
                  '<rect x="48" y="42" width="4" height="10" fill="#fff"/><rect x="48" y="54" width="4" height="4" fill="#fff"/>'),
}


def main() -> int:
    from PySide6.QtCore import QByteArray, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    for state, badge in BADGES.items():
        svg = BASE.format(badge=badge)
        (HERE / f"tray-{state}.svg").write_text(svg, encoding="utf-8")
        renderer = QSvgRenderer(QByteArray(svg.encode()))
        for size in SIZES:
            img = QImage(size, size, QImage.Format.Format_ARGB32)
            img.fill(Qt.GlobalColor.transparent)
            p = QPainter(img)
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            renderer.render(p)
            p.end()
            img.save(str(HERE / f"tray-{state}-{size}.png"))
    # The application icon (Briefcase and the desktop file): the idle tile at the usual sizes.
    renderer = QSvgRenderer(QByteArray(BASE.format(badge="").encode()))
    for size in APP_SIZES:
        img = QImage(size, size, QImage.Format.Format_ARGB32)
        img.fill(Qt.GlobalColor.transparent)
        p = QPainter(img)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(p)
        p.end()
        img.save(str(HERE / f"deskmind-{size}.png"))
    (HERE / "deskmind.svg").write_text(BASE.format(badge=""), encoding="utf-8")
    del app
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
