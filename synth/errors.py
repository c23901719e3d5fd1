"""Errors of the forward side: scenario files a user wrote."""

from retrieval.errors import RoharnessError


class ScenarioError(RoharnessError):
    """A scenario file has an unknown key or a bad value."""
