"""Errors the core raises for people to read. Pages and the CLI show `str(error)` as is."""

from __future__ import annotations


class CurationError(Exception):
    """Base class: the message is complete and meant for the user."""


class InputError(CurationError):
    """Bad input data. The message names the file, the row (1-based, header not counted) and the field."""

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None, field: str | None = None):
        self.file, self.row, self.field, self.detail = file, row, field, message
        where = ", ".join(
            part
            for part in (
                file,
                f"row {row}" if row is not None else None,
                f"field '{field}'" if field is not None else None,
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)


class PermissionDenied(CurationError):
    """The caller's role may not do this. Raised by the core, whatever the page shows."""


class NotFound(CurationError):
    """A named project, user or example does not exist."""


class Conflict(CurationError):
    """The change collides with another one (a name taken, a stale row version)."""
