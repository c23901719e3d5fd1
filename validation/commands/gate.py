"""``roharness gate``: the CI regression gate (fixed-seed round trips and small budgets)."""

from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser(
        "gate", help="CI regression gate: fixed-seed round trips and small budgets against "
        "thresholds; exit 1 on a regression",
        description="Run the fixed-seed checks of a thresholds TOML file (default: the "
        "built-in validation/gate_thresholds.toml), print a table of value vs maximum "
        "(|value| <= maximum passes), optionally write JUnit XML. Exit status: 0 all checks "
        "passed, 1 a check failed (a regression, including a retrieval that raised), 2 bad "
        "input.")
    p.add_argument("--thresholds", metavar="FILE",
                   help="thresholds TOML file of [[check]] tables (default: the built-in one)")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML (one testcase per check)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object {checks, passed, elapsed_s}")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    import sys

    from validation.gate import format_table, load_thresholds, run_gate, write_junit

    checks = load_thresholds(args.thresholds)
    result = run_gate(checks, log=lambda line: print(line, file=sys.stderr, flush=True))
    if args.junit:
        write_junit(result, args.junit)
    if args.json:
        from validation.cli import print_json
        print_json(result)
    else:
        print(format_table(result))
        if args.junit:
            print(f"wrote {args.junit}")
    return 0 if result["passed"] else 1
