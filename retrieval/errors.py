"""The project exception.

Every error a user can cause (bad input, a missing kernel, a time outside coverage, an
unknown body name...) is raised as :class:`RoharnessError` carrying one clear sentence:
what was wrong, where, and what was expected. The command line prints that sentence on
stderr and exits with status 2; it never shows a traceback for it.
"""


class RoharnessError(Exception):
    """A user-caused error, described in one sentence."""
