"""The desktop app: a thin PySide6 layer over :mod:`deskmind.core`.

Only this package imports Qt. Widgets receive the services they use from
:class:`deskmind.ui.app.DesktopApp`; results from other threads reach them through
:mod:`deskmind.ui.bridge`.
"""
