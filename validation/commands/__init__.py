"""One module per CLI sub-command.

Each module defines ``add_parser(subparsers)`` which creates its sub-parser and sets
``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an exit status).
A command is a thin layer over one library call: it prints a human summary, or with
``--json`` one machine-readable object on stdout.
"""

#: Sub-command modules, in the order ``roharness --help`` lists them.
COMMAND_MODULES = (
    "validation.commands.geometry",
    "validation.commands.events",
    "validation.commands.scenarios",
    "validation.commands.roundtrip",
    "validation.commands.sheet",
    "validation.commands.fit",
    "validation.commands.invert",
    "validation.commands.budget",
    "validation.commands.campaign",
    "validation.commands.gate",
)
