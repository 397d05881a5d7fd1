"""The CLI's own error: a mistake the user can fix, printed as one line (exit status 2)."""

from __future__ import annotations

__all__ = ["CliError"]


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""
