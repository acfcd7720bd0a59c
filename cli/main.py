"""The `vigie` command line: one module per group of commands (watch, setup, db, the cell's
commands, analysis); this one builds the parser and turns expected errors into one line.

Expected errors (`VigieError`) print one line on stderr and exit non-zero, never a traceback.
Heavy imports (Prefect, Great Expectations) happen only in the commands that need them, so
`vigie check` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from cli import analysis, cell_commands, db, setup, watch
from cli.common import EXIT_BROKEN_PIPE, EXIT_CONFIG, EXIT_ERROR, EXIT_INTERRUPTED
from cli.examples import ExampleParser
from vigie import disable_telemetry
from vigie.errors import ConfigError, VigieError, one_line
from vigie.settings import CONFIG_ENV


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vigie",
        description="Vigie: early warning of press and social-media crises.",
        epilog="Examples:\n  vigie check --config vigie.toml\n  vigie run --once --json\n"
        "  vigie status\n  vigie demo",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        help=f"configuration file (default: ${CONFIG_ENV}, else vigie.toml)",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ExampleParser)
    for group in (watch, setup, db, cell_commands, analysis):
        group.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    disable_telemetry()
    # Without PREFECT_API_URL, Prefect starts a temporary server for the run; on a busy
    # two-core machine its default 20 s to come up is not always enough.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    args = build_parser().parse_args(argv)
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # here, so that a reader gone away is met inside this `try`
        return code
    except BrokenPipeError:
        # `vigie check | head -1`: the reader has what it wanted. Python's recipe: point stdout
        # at /dev/null so that the flush at exit does not fail again, and end as `yes` does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except ConfigError as err:
        print(f"vigie: {one_line(err)}", file=sys.stderr)
        return EXIT_CONFIG
    except VigieError as err:
        print(f"vigie: {one_line(err)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
