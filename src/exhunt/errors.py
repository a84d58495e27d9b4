"""One exception tree for everything exhunt raises on purpose."""

from __future__ import annotations


class ExhuntError(Exception):
    """Base of every error exhunt raises deliberately."""


class InputError(ExhuntError):
    """An input (file, folder, archive, feed) cannot be used; the message names it."""


class UsageError(ExhuntError):
    """The user asked for something that cannot be done as asked."""
