"""The one error type users see: :class:`StackError`, printed by the CLI as ``ccstack: <message>``."""

from __future__ import annotations


class StackError(Exception):
    """An error the user can act on; the CLI prints it without a traceback."""
