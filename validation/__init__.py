"""The judge: round trips, error budgets, campaigns, the CI gate, reports and the CLI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("roharness")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
