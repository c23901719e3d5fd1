"""``roharness scenarios``: list the built-in scenarios, or print one to copy and edit."""

from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser("scenarios", help="list built-in scenarios or print one (--show NAME)",
                       description="List the built-in scenarios; --show NAME prints its TOML so "
                       "you can copy and edit it (then pass the file with --scenario FILE).")
    p.add_argument("--show", metavar="NAME", help="print the TOML of a built-in scenario, "
                   "every key documented (type, unit, allowed range)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from synth import scenario as S

    if args.show:
        print(S.builtin_text(args.show, annotated=True), end="")
        return 0
    for name in S.builtin_names():
        kind = S._file_kind(S.builtin_text(name))
        print(f"{name:24s} [{kind}] {S.builtin_description(name)}")
    return 0
