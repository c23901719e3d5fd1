"""``roharness gate``: the CI regression gate (fixed-seed computations in two-sided bands),
its ``--update`` (re-record) and its ``--mutations`` suite (does the gate catch known faults?)."""

from __future__ import annotations

from validation.commands import add_retrieval_arguments, parse_retrieval_arguments


def add_parser(sub):
    p = sub.add_parser(
        "gate", help="CI regression gate: fixed-seed round trips, budgets, the current sheet "
        "and occultation searches in two-sided bands around recorded values; exit 1 on a "
        "change",
        description="Run the fixed-seed computations of a thresholds TOML file (default: the "
        "built-in validation/gate_thresholds.toml) and check each metric in its two-sided "
        "band around the recorded value (recorded - tol <= value <= recorded + tol); print "
        "a table of value, recorded value and band, optionally write JUnit XML. --update "
        "re-measures and rewrites the recorded values (bands and comments kept) and prints "
        "old -> new; --mutations runs the gate against known faults patched into the code "
        "(one fresh process each) and fails if a fault goes uncaught. Exit status: 0 all "
        "checks passed (or all mutations caught, or the update was written), 1 a check "
        "failed / a mutation was not caught / a value could not be measured, 2 bad input.")
    p.add_argument("--thresholds", metavar="FILE",
                   help="thresholds TOML file (default: the built-in one)")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML (one testcase per check)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: {checks, passed, elapsed_s}; with --update "
                   "{path, changes, failed, written}; with --mutations {mutations, passed}")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--update", action="store_true",
                      help="re-measure and rewrite the recorded values in the thresholds "
                      "file (atomically; bands and comments kept); print old -> new")
    mode.add_argument("--mutations", action="store_true",
                      help="run the mutation suite (validation/mutations.py): the gate "
                      "against each known fault, 2 at a time; exit 1 if one is not caught")
    mode.add_argument("--mutation", action="append", metavar="NAME", default=None,
                      help="run only this mutation (repeatable; implies --mutations); "
                      "'noop' is the unmutated control")
    add_retrieval_arguments(p)
    p.set_defaults(func=run)
    return p


def _log(line):
    import sys
    print(line, file=sys.stderr, flush=True)


def run(args) -> int:
    from validation.cli import print_json
    from validation.gate import (
        format_table,
        format_update,
        load_thresholds,
        run_gate,
        update_thresholds,
        write_junit,
    )

    if args.junit is not None:  # checked now, not after a run of minutes
        from validation.limits import check_output_file
        check_output_file(args.junit)
    ret = parse_retrieval_arguments(args)
    retrieval = None if ret.is_builtin else ret
    if retrieval is not None:
        from validation.plugins import validate_retrieval
        validate_retrieval(ret)
    if args.mutations or args.mutation:
        from retrieval.errors import RoharnessError
        from validation.mutations import format_mutations, run_mutations

        if retrieval is not None:
            raise RoharnessError("--mutations patches the built-in retrieval's code; it is "
                                 "not used with --retrieval")
        if args.junit:
            raise RoharnessError("--junit is not used with --mutations")
        load_thresholds(args.thresholds)  # bad input: exit 2 before any process starts
        result = run_mutations(args.mutation, thresholds=args.thresholds, log=_log)
        if args.json:
            print_json(result)
        else:
            print(format_mutations(result))
        return 0 if result["passed"] else 1
    if args.update:
        from retrieval.errors import RoharnessError

        if args.junit:
            raise RoharnessError("--junit is not used with --update")
        result = update_thresholds(args.thresholds, log=_log, retrieval=retrieval)
        if args.json:
            print_json(result)
        else:
            print(format_update(result))
        return 0 if result["written"] else 1
    checks = load_thresholds(args.thresholds)
    result = run_gate(checks, log=_log, retrieval=retrieval)
    if args.junit:
        write_junit(result, args.junit)
    if args.json:
        print_json(result)
    else:
        print(format_table(result))
        if args.junit:
            print(f"wrote {args.junit}")
    return 0 if result["passed"] else 1
