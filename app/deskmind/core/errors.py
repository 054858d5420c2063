"""Errors meant for people.

A :class:`DeskmindError` carries a message that says what went wrong and what to do about it.
The command line prints it as one line on stderr with no traceback; the GUI shows it as is.
"""

from __future__ import annotations


class DeskmindError(Exception):
    """A failure a person can understand and act on."""

    exit_code = 1


class UserInputError(DeskmindError):
    """The request itself is wrong (a missing path, an unknown id, a bad option)."""

    exit_code = 2


class StorageError(DeskmindError):
    """The memory database or the data folder cannot be used as asked."""

    exit_code = 3


class ModelUnavailableError(DeskmindError):
    """A model file or package needed for this work is missing or broken."""

    exit_code = 4
