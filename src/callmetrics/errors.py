"""Errors meant for people: the command line prints them as one line, with no traceback."""


class UserError(Exception):
    """A mistake in the input or set-up that the user can fix; the message says how."""
