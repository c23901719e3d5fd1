"""Start-up of the command line: a fresh interpreter each time (asv ``timeraw``)."""


def timeraw_import_cli():
    """``import validation.cli`` alone."""
    return "import validation.cli"


def timeraw_build_parser():
    """What ``roharness --version`` and ``--help`` cost: the parser with every command."""
    return "from validation.cli import build_parser; build_parser()"
