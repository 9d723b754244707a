"""`energy-console report` and `compare`: a session's runs with their changes, two side by side."""

from __future__ import annotations

import argparse
import shutil
import sys

from energy_console.core.cli.conventions import EXIT_BAD_INPUT, EXIT_OK, results_root


def cmd_report(args: argparse.Namespace) -> int:
    from energy_console.core.analysis.export import render, write_report
    from energy_console.core.store.follow import read_session
    from energy_console.core.store.session_dir import newest_session

    path = args.session or newest_session(results_root(args))
    if path is None:
        print(f"error: no sessions under {results_root(args)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        session = read_session(path)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    width = shutil.get_terminal_size((120, 24)).columns
    print(render(session, args.format, width), end="")
    if args.out:
        try:
            written = write_report(session, args.out)
        except ImportError:
            print("error: plots need matplotlib: pip install 'energy-console[plots]'",
                  file=sys.stderr)
            return EXIT_BAD_INPUT
        except OSError as exc:
            print(f"error: cannot write the report to {args.out}: {exc.strerror}",
                  file=sys.stderr)
            return EXIT_BAD_INPUT
        print(f"wrote {len(written)} files to {args.out}: {', '.join(p.name for p in written)}",
              file=sys.stderr)
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from energy_console.core.analysis.report import format_comparison
    from energy_console.core.store.follow import read_session

    try:
        a, b = read_session(args.a), read_session(args.b)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(format_comparison(a, b, shutil.get_terminal_size((120, 24)).columns), end="")
    return EXIT_OK
