"""Deskmind: your own computer as your AI."""

__version__ = "0.1.0"
