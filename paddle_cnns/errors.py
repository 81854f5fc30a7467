"""Errors the library raises for bad input; the CLI turns them into one line and exit code 2."""


class CNNsError(Exception):
    """Base class: a problem with what the user asked for, not a bug in the library."""


class UsageError(CNNsError, ValueError):
    """A bad argument: unknown model name, image size below a model's minimum, bad trick name."""


class DataError(CNNsError):
    """A dataset that is missing, malformed or inconsistent (named in the message, with the fix)."""


class NotPrepared(DataError):
    """A dataset that needs preparing first (the message names the command that prepares it)."""
