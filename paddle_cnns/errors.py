"""Errors the library raises for bad input; the CLI turns them into one line and exit code 2.

Messages say what is wrong in the library's own terms (parameters, files). A `fix` names what the
user can change — a parameter such as "lr" or an action such as "prepare" — and `details` carry
the values a fix needs; the command-line layer (ablations.cli) turns them into flag hints.
"""
from __future__ import annotations


class CNNsError(Exception):
    """Base class: a problem with what the user asked for, not a bug in the library."""

    def __init__(self, message: str = "", fix: str | None = None, **details):
        super().__init__(message)
        self.fix, self.details = fix, details


class UsageError(CNNsError, ValueError):
    """A bad argument: unknown model name, image size below a model's minimum, bad trick name."""


class DataError(CNNsError):
    """A dataset that is missing, malformed or inconsistent (named in the message, with the fix)."""


class NotPrepared(DataError):
    """A dataset that needs preparing first (fix="prepare"; details name the dataset and folder)."""
