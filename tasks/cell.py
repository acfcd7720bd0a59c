"""Is the crisis cell ready? (step 1 of crisis readiness)

`check_cell` reads the cell of the configuration and lists what is missing (the cell is not
ready until it is fixed) and what is only worth a look (warnings). It is a plain function of the
settings: `vigie cell check` prints its report, and exits non-zero when something is missing.
Load the settings with `load_settings(path, lenient_cell=True)` so that invalid addresses and
unknown backups reach this report instead of stopping at the first one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

from tasks.notify import ROLE_NAMES
from vigie.init import PLACEHOLDER_MARK, placeholders
from vigie.settings import Member, Settings, address_problem

Severity = Literal["missing", "warning"]

# Roles without which the cell cannot act: someone decides, someone speaks, someone checks the law.
KEY_ROLES = ("lead", "spokesperson", "legal")
_KEY_ROLE_WORDS = {
    "lead": 'no lead (role = "lead"): nobody decides and coordinates',
    "spokesperson": (
        'no spokesperson (role = "spokesperson"): nobody may speak for the organisation'
    ),
    "legal": 'no legal counsel (role = "legal"): nobody checks what is said against the law',
}
LANGUAGE_NAMES = {"fr": "French", "en": "English"}


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Severity
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class CellReport:
    findings: tuple[Finding, ...]

    @property
    def missing(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "missing")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    @property
    def ready(self) -> bool:
        """True when nothing is missing (warnings do not stop the cell)."""
        return not self.missing


def _role_without_backup(role: str, holders: list[Member]) -> Finding | None:
    """A role held by a single person who names no backup: nobody stands in when they are away."""
    if len(holders) != 1 or holders[0].backup is not None:
        return None
    holder = holders[0]
    words = ROLE_NAMES["en"].get(role, role)
    return Finding(
        "missing" if role in KEY_ROLES else "warning",
        "no_backup",
        f"{words}: {holder.name} is the only one and has no backup "
        f'(add backup = "<a member\'s name>" to {holder.name}, or a second {words})',
    )


def _address_findings(settings: Settings) -> list[Finding]:
    findings = []
    places: list[tuple[str, str]] = [
        (f"cell.members[{i}].email ({m.name})", m.email)
        for i, m in enumerate(settings.cell.members)
    ]
    if settings.cell.address is not None:
        places.append(("cell.address", settings.cell.address))
    for i, team in enumerate(settings.teams):
        places.extend((f"teams[{i}].emails ({team.name})", address) for address in team.emails)
    for where, address in places:
        problem = address_problem(address)
        if problem:
            findings.append(
                Finding(
                    "missing", "invalid_address", f"{where}: {address!r} is not valid: {problem}"
                )
            )
    return findings


def _placeholder_findings(settings: Settings) -> list[Finding]:
    """Members and addresses still as `vigie init` wrote them: they reach nobody."""
    return [
        Finding(
            "missing",
            "placeholder",
            f"{key}: still a placeholder of vigie init ({PLACEHOLDER_MARK}): put a real "
            "person's name and address",
        )
        for key in placeholders(settings)
        if key.startswith(("cell.", "teams["))
    ]


def _backup_findings(settings: Settings) -> list[Finding]:
    names = {m.name for m in settings.cell.members}
    findings = []
    for i, member in enumerate(settings.cell.members):
        if member.backup is None:
            continue
        if member.backup == member.name:
            findings.append(
                Finding(
                    "missing",
                    "unknown_backup",
                    f"cell.members[{i}].backup: {member.name} cannot be their own backup",
                )
            )
        elif member.backup not in names:
            findings.append(
                Finding(
                    "missing",
                    "unknown_backup",
                    f"cell.members[{i}].backup: {member.name}'s backup {member.backup!r} "
                    "is not a member of the cell",
                )
            )
    return findings


def _level_findings(settings: Settings) -> list[Finding]:
    levels = Counter(m.level for m in settings.cell.members)
    if not levels:
        return []
    highest = max(levels)
    return [
        Finding(
            "missing",
            "level_gap",
            f"escalation level {level} has nobody, but level {highest} has "
            f"{levels[highest]} member{'s' if levels[highest] > 1 else ''}: "
            "escalation would stall there",
        )
        for level in range(1, highest)
        if level not in levels
    ]


def check_cell(settings: Settings) -> CellReport:
    """What the cell lacks to be ready (severity "missing") and what deserves a look ("warning")."""
    members = settings.cell.members
    findings: list[Finding] = []
    if not members:
        findings.append(
            Finding(
                "missing",
                "no_members",
                "the cell has no members ([[cell.members]]): alerts would reach nobody",
            )
        )
    findings += _placeholder_findings(settings)
    holders: dict[str, list[Member]] = {}
    for member in members:
        holders.setdefault(member.role, []).append(member)
    for role in KEY_ROLES:
        if role not in holders:
            findings.append(Finding("missing", f"no_{role}", _KEY_ROLE_WORDS[role]))
    for role, people in holders.items():
        finding = _role_without_backup(role, people)
        if finding:
            findings.append(finding)
    findings += _backup_findings(settings)
    findings += _address_findings(settings)
    findings += _level_findings(settings)
    if members and "operator" not in holders:
        findings.append(
            Finding(
                "warning",
                "no_operator",
                'no operator (role = "operator"): notices about the watch itself (failing '
                "sources, quality) go to level 1",
            )
        )
    if members and not any(m.platforms for m in members):
        findings.append(
            Finding(
                "warning",
                "nobody_authorised",
                "nobody is authorised to answer on any platform (platforms = [...]): "
                "alerts and reminders name nobody who may answer",
            )
        )
    if not settings.cell.charter:
        findings.append(
            Finding(
                "warning",
                "empty_charter",
                "the charter is empty ([cell] charter = [...]): alerts and reminders quote "
                "no rules of engagement",
            )
        )
    if not settings.teams:
        findings.append(
            Finding(
                "warning",
                "no_teams",
                "no internal team gets readiness reminders ([[teams]])",
            )
        )
    spoken = {lang for m in members for lang in settings.member_languages(m)}
    for team in settings.teams:
        language = settings.team_language(team)
        if members and language not in spoken:
            findings.append(
                Finding(
                    "warning",
                    "team_language",
                    f"team {team.name!r} reads {LANGUAGE_NAMES[language]}, but no member of "
                    "the cell works in it (languages = [...])",
                )
            )
    # What is missing first, then the warnings, each in the order found.
    return CellReport(tuple(sorted(findings, key=lambda f: f.severity != "missing")))
