"""Examples shown at the end of every `vigie ... --help`.

Kept apart from `cli/main.py` so that adding a command touches one line here and its parser
block there. Each command path ("db export") maps to example command lines, each with what it
does. tests/unit/test_cli_examples.py checks that every command and subcommand has examples
and that each example parses, so they cannot drift from the options.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import Any, NoReturn

Example = tuple[str, str]  # (the command line, what it does)

EXAMPLES: dict[str, tuple[Example, ...]] = {
    "check": (
        ("vigie check", "validate ./vigie.toml and print what will be watched"),
        ("vigie --config /etc/vigie/vigie.toml check", "the same for another file"),
    ),
    "run": (
        ("vigie run --once", "one watch cycle now, then a one-line summary"),
        ("vigie run --once --json", "one cycle; its summary as one JSON object on stdout"),
        ("vigie run", "a cycle every schedule.watch_every_minutes, until Ctrl-C"),
    ),
    "status": (("vigie status", "last cycle, health of every source, open alerts, outbox"),),
    "watchdog": (
        ("vigie watchdog", "exit 0 if a cycle completed recently, else tell the operators, exit 1"),
        (
            "*/5 * * * * vigie --config /srv/vigie/vigie.toml watchdog",
            "a crontab line: checked every 5 minutes, outside Prefect",
        ),
        (
            "vigie watchdog --automation",
            "the same from the Prefect server: create or update its automation (after deploy)",
        ),
    ),
    "quality": (
        ("vigie quality", "drift of the last 7 days: languages, empty texts, duplicates"),
        ("vigie quality --days 30 --json", "the last 30 days, as JSON"),
    ),
    "db": (
        ("vigie db info", "schema version, rows per table, time range of the mentions"),
        ("vigie db backup", "a dated copy of the warehouse beside it"),
    ),
    "db migrate": (("vigie db migrate", "apply the migrations the warehouse has not had yet"),),
    "db info": (("vigie db info", "schema version, rows per table, time range of the mentions"),),
    "db check": (
        ("vigie db check", "read the whole warehouse to find damage (exit 1 when damaged)"),
    ),
    "db export": (
        (
            "vigie db export --since 2026-11-01 --until 2026-12-01",
            "November's mentions to mentions-20261101-20261201.parquet",
        ),
        (
            "vigie db export --since 2026-11-01 --until 2026-11-08 --format csv --output week.csv",
            "one week as CSV, into week.csv",
        ),
    ),
    "db backup": (
        ("vigie db backup", "a dated copy beside the warehouse (safe while cycles run)"),
        ("vigie db backup /backups/vigie.duckdb", "a copy to that file"),
    ),
    "db restore": (
        (
            "vigie db restore /backups/vigie.duckdb",
            "replace the warehouse with that backup (stop the watch first)",
        ),
        (
            "vigie db restore data/backups/vigie-20261206T081500.duckdb",
            "a daily backup of the maintenance flow (a damaged warehouse is kept as .damaged)",
        ),
    ),
    "db prune": (("vigie db prune", "erase raw texts older than retention.raw_text_days now"),),
    "escalate": (
        ("vigie escalate", "page the next level for alerts nobody acknowledged, send emails"),
    ),
    "digest": (
        ("vigie digest --period daily", "queue and send the digest of the last day"),
        (
            "vigie digest --period weekly --end 2026-11-23T07:00-05:00 --no-send",
            "queue the week ending then, without sending",
        ),
    ),
    "outbox": (("vigie outbox list", "every email not sent yet, and why"),),
    "outbox list": (("vigie outbox list", "every email not sent yet, and why"),),
    "outbox resend": (
        (
            "vigie outbox resend al-202611251410-1a2b3c4d-alert",
            "send that email again (check first that it did not arrive)",
        ),
    ),
    "replay": (
        (
            "vigie replay --since 2026-11-01 --until 2026-11-26",
            "the alerts detection would have opened over those days",
        ),
        (
            "vigie replay --since 2026-11-01 --until 2026-11-02 --step 5",
            "one day, assessed every 5 minutes",
        ),
    ),
    "ack": (
        (
            'vigie ack al-202611251410-1a2b3c4d --by "Awa Diallo"',
            "Awa Diallo takes charge: escalation stops",
        ),
    ),
    "query": (
        ("vigie query '(boreale OR \"laiterie boréale\") NOT recrutement'", "check the syntax"),
        (
            "printf 'La Laiterie Boréale rappelle ses fromages\\n' | vigie query 'boreale NEAR/3 "
            "rappel*'",
            "which lines of stdin match",
        ),
        (
            "vigie query test '(boreale OR \"laiterie boréale\") NOT recrutement' "
            "--since 2026-11-01",
            "what it matches and misses among the mentions stored since November 1",
        ),
    ),
    "score-text": (
        ('echo "Quel scandale !" | vigie score-text --lang auto', "one JSON score per line"),
        ("vigie score-text --lang en < posts.txt", "score English lines from a file"),
    ),
    "detect-series": (
        (
            "vigie detect-series counts.csv scores.csv",
            "score a timestamp,value series; >= 0.5 is where Vigie would alert",
        ),
    ),
    "cell": (("vigie cell check", "what the crisis cell lacks (exit 1 when not ready)"),),
    "cell check": (("vigie cell check", "what the crisis cell lacks (exit 1 when not ready)"),),
    "cell show": (("vigie cell show", "the cell by escalation level, its charter, the teams"),),
    "readiness": (
        ("vigie readiness", "send the readiness reminders that are due"),
        (
            'vigie readiness --team "Service à la clientèle" --force',
            "remind that team now, even if it was this period",
        ),
    ),
    "serve": (
        (
            "PREFECT_API_URL=http://127.0.0.1:4200/api vigie serve",
            "run every deployment of prefect.yaml on its schedule",
        ),
        ("vigie serve --limit 4", "at most 4 flow runs at once"),
    ),
    "demo": (
        ("vigie demo", "the bundled crisis scenario on local servers, into demo-output/"),
        ("vigie demo --workdir /tmp/vigie-demo", "the same, into another folder"),
    ),
    "drill": (
        (
            'vigie drill "exercice 2026-11" --ack-wait 30',
            "a labelled synthetic crisis to the cell; waits 30 min for an acknowledgement",
        ),
    ),
    "incident": (("vigie incident list", "every incident, newest first"),),
    "incident list": (("vigie incident list", "every incident, newest first"),),
    "incident stop": (
        (
            'vigie incident stop "rappel lait" --by "Awa Diallo"',
            "end that incident after its current cycle",
        ),
    ),
    "preview": (
        ("vigie preview alert", "the latest stored alert's email (else a sample) as an HTML file"),
        (
            "vigie preview digest --sample --language en --open",
            "a sample digest in English, opened in the browser",
        ),
        (
            'vigie preview readiness --team "Ontario sales" --output /tmp/reminder.html',
            "that team's readiness reminder, into /tmp/reminder.html",
        ),
    ),
    "sources": (("vigie sources test", "fetch every source once, store nothing, show a table"),),
    "sources test": (
        ("vigie sources test", "fetch every source once, store nothing, show a table"),
        (
            'vigie sources test --source "Le Quotidien" --json',
            "only that source, as one JSON object",
        ),
    ),
    "init": (
        (
            "vigie init",
            "asks the organisation's names, people, languages, region, time zone, and the "
            "cell's lead, spokesperson, legal counsel and operator with their phones",
        ),
        (
            'vigie init --yes --name "Société de transport de Montréal" --aliases STM '
            '--people "Marie Tremblay" --languages fr,en --region CA '
            '--member "lead:Marie Roy:marie.roy@stm.example:+1 514 555 0101"',
            "the same without questions, from options",
        ),
    ),
}


def command_path(prog: str) -> str:
    """The command path of a parser's `prog`: "vigie db export" -> "db export"."""
    return prog.partition(" ")[2]


def examples_epilog(path: str) -> str:
    """The "Examples:" block of `path`'s help, empty when it has none."""
    examples = EXAMPLES.get(path, ())
    if not examples:
        return ""
    lines = ["Examples:"]
    for command, what in examples:
        lines.append(f"  {command}")
        lines.append(f"      {what}")
    return "\n".join(lines)


class ExampleParser(argparse.ArgumentParser):
    """An argument parser whose help ends with its command's examples (EXAMPLES).

    Given as `parser_class` to `add_subparsers`; nested subcommands inherit it. The examples keep
    their lines (RawDescriptionHelpFormatter), so an epilog of prose is wrapped here instead.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raw = kwargs.get("formatter_class") is argparse.RawDescriptionHelpFormatter
        kwargs["formatter_class"] = argparse.RawDescriptionHelpFormatter
        super().__init__(*args, **kwargs)
        notes = self.epilog or ""
        # Prose is wrapped; a raw epilog keeps its own line breaks, each line wrapped.
        lines = notes.splitlines() if raw else [" ".join(notes.split())]
        notes = "\n".join(
            textwrap.fill(line, width=78, break_on_hyphens=False) for line in lines if line
        )
        examples = examples_epilog(command_path(self.prog))
        self.epilog = "\n\n".join(part for part in (notes, examples) if part) or None

    def error(self, message: str) -> NoReturn:
        """The usage and the error, as argparse prints them, and where the examples are."""
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message} (examples: {self.prog} --help)\n")
