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
    "validation.commands.export",
    "validation.commands.score",
    "validation.commands.sheet",
    "validation.commands.fit",
    "validation.commands.invert",
    "validation.commands.budget",
    "validation.commands.requirement",
    "validation.commands.campaign",
    "validation.commands.gate",
)


def add_retrieval_arguments(parser) -> None:
    """``--retrieval SPEC`` and ``--retrieval-timeout S`` (see :mod:`validation.plugins`)."""
    parser.add_argument(
        "--retrieval", default="builtin", metavar="SPEC",
        help="the retrieval to judge: builtin (default), module:function (a Python callable "
        "observation Dataset -> profile Dataset), a name registered under the entry-point "
        "group roharness.retrievals (e.g. radiocc), or 'cmd:TEMPLATE' (any program; "
        "{observation} and {profile} are replaced by netCDF paths)")
    parser.add_argument("--retrieval-timeout", type=float, default=None, metavar="S",
                        help="seconds one call of a plug-in retrieval may take before it is "
                        "killed and the realisation counted as failed (default 300)")


def add_force_argument(parser) -> None:
    """``--force``: run even when the estimate exceeds the limits (:mod:`validation.limits`)."""
    parser.add_argument("--force", action="store_true",
                        help="run even if the estimated time (> 2 h) or memory (> 50 %% of "
                        "RAM) is above the limits")


def check_run_arguments(args) -> None:
    """One sentence for a bad output directory, scheduler address or worker count, before
    any work starts."""
    from validation.limits import check_output_dir, check_scheduler

    check_scheduler(getattr(args, "scheduler", None))
    workers = getattr(args, "workers", None)
    if workers is not None and workers < 0:
        from retrieval.errors import RoharnessError
        raise RoharnessError(f"--workers must be >= 0 (0 = in-process), got {workers}")
    if getattr(args, "output", None) is not None:
        check_output_dir(args.output)


def parse_retrieval_arguments(args):
    """The :class:`validation.plugins.Retrieval` the arguments name (checked now)."""
    from validation.plugins import parse_retrieval

    return parse_retrieval(args.retrieval, args.retrieval_timeout)
