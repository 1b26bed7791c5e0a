"""The client commands' errors: one line each, said to the user as they are."""

from __future__ import annotations


class ClientError(Exception):
    """A problem that stops a client command (exit 1)."""


class BadURL(ClientError):
    """A URL the command cannot use as given (exit 2)."""


class NoAnswer(ClientError):
    """A server that did not answer, after the retries."""
