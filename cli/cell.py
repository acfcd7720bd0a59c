"""Is the crisis cell ready? (step 1 of crisis readiness)

`check_cell` reads the cell of the configuration and lists what is missing (the cell is not
ready until it is fixed) and what is only worth a look (warnings). It is a plain function of the
settings: `vigie cell check` prints its report, and exits non-zero when something is missing.
Load the settings with `load_settings(path, lenient_cell=True)` so that invalid addresses, phones
and unknown backups reach this report instead of stopping at the first one.

Everything here is said in the organisation's language (`CELL_TEXT`, French and English), since
the cell reads it; configuration keys stay as written in the file.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

from tasks.notify.emails import ROLE_NAMES
from vigie.init import PLACEHOLDER_MARK, placeholders
from vigie.settings import Member, Settings, address_problem, phone_problem

Severity = Literal["missing", "warning"]

# Roles without which the cell cannot act: someone decides, someone speaks, someone checks the law.
KEY_ROLES = ("lead", "spokesperson", "legal")

CELL_TEXT: dict[str, dict[str, str]] = {
    "fr": {
        "no_lead": 'pas de responsable (role = "lead") : personne ne décide ni ne coordonne',
        "no_spokesperson": (
            'pas de porte-parole (role = "spokesperson") : personne ne peut parler au nom de '
            "l’organisation"
        ),
        "no_legal": (
            'pas de juriste (role = "legal") : personne ne vérifie ce qui est dit au regard du '
            "droit"
        ),
        "no_members": (
            "la cellule n’a aucun membre ([[cell.members]]) : les alertes n’atteindraient personne"
        ),
        "placeholder": (
            "{key} : encore à remplir ({mark}, écrit par vigie init) : mettez le nom et "
            "l’adresse d’une vraie personne"
        ),
        "no_backup": (
            "{role} : {name} est seul·e à tenir ce rôle et n’a pas de suppléant·e (ajoutez "
            'backup = "<nom d’un membre>" à {name}, ou un·e second·e {role})'
        ),
        "self_backup": (
            "cell.members[{index}].backup : {name} ne peut pas être sa propre suppléance"
        ),
        "unknown_backup": (
            "cell.members[{index}].backup : {backup!r}, suppléant·e de {name}, n’est pas "
            "membre de la cellule"
        ),
        "invalid_address": (
            "{where} : {address!r} n’est pas une adresse valable (détail : {problem})"
        ),
        "invalid_phone": (
            "cell.members[{index}].phone ({name}) : {phone!r} n’est pas un numéro de téléphone "
            "(chiffres, espaces, +, -, parenthèses et points ; trois chiffres au moins)"
        ),
        "level_gap": (
            "le niveau d’escalade {level} n’a personne, alors que le niveau {highest} a "
            "{count} : l’escalade s’arrêterait là"
        ),
        "member": "membre",
        "members": "membres",
        "no_phone": (
            'pas de téléphone pour {names} (phone = "...") : en pleine crise, la cellule '
            "s’appelle, elle n’attend pas un courriel"
        ),
        "no_operator": (
            'pas d’opérateur (role = "operator") : les avis sur les sources (en panne, muettes, '
            "dégradées) ne vont à personne de la cellule, seulement à l’adresse d’envoi de "
            "Vigie ({sender})"
        ),
        "nobody_authorised": (
            "personne n’est autorisé·e à répondre sur une plateforme (platforms = [...]) : "
            "les alertes et les rappels ne nomment personne qui puisse répondre"
        ),
        "empty_charter": (
            "la charte est vide ([cell] charter = [...]) : les alertes et les rappels ne citent "
            "aucune règle d’engagement"
        ),
        "no_teams": "aucune équipe interne ne reçoit de rappel ([[teams]])",
        "team_language": (
            "l’équipe {team!r} lit {language}, mais aucun membre de la cellule ne travaille "
            "dans cette langue (languages = [...])"
        ),
        "language_fr": "le français",
        "language_en": "l’anglais",
        "missing_label": "MANQUE",
        "warning_label": "ATTENTION",
        "ready": "La cellule est prête ({warnings}).",
        "not_ready": "La cellule n’est PAS prête : {missing}, {warnings}.",
        "missing_count": "{n} élément manquant|{n} éléments manquants",
        "warning_count": "{n} avertissement|{n} avertissements",
        "title": "Cellule de crise de {org} ({path})",
        "level": "Niveau {level} :",
        "no_member_line": "(aucun membre)",
        "no_phone_detail": "pas de téléphone",
        "speaks": "parle {languages}",
        "backup": "suppléance : {backup}",
        "answers_on": "répond sur {platforms}",
        "forwarded": "Ce qui est vu est transmis à : {reach}",
        "nobody": "personne",
        "charter": "Charte : {count}",
        "rule": "{n} règle|{n} règles",
        "teams": "Équipes à qui l’on rappelle la cellule ({count}) :",
        "team": "{name} [{language}, cron {cron!r}] : {emails}",
    },
    "en": {
        "no_lead": 'no lead (role = "lead"): nobody decides and coordinates',
        "no_spokesperson": (
            'no spokesperson (role = "spokesperson"): nobody may speak for the organisation'
        ),
        "no_legal": (
            'no legal counsel (role = "legal"): nobody checks what is said against the law'
        ),
        "no_members": "the cell has no members ([[cell.members]]): alerts would reach nobody",
        "placeholder": (
            "{key}: still a placeholder of vigie init ({mark}): put a real person's name and "
            "address"
        ),
        "no_backup": (
            "{role}: {name} is the only one and has no backup "
            '(add backup = "<a member\'s name>" to {name}, or a second {role})'
        ),
        "self_backup": "cell.members[{index}].backup: {name} cannot be their own backup",
        "unknown_backup": (
            "cell.members[{index}].backup: {name}'s backup {backup!r} is not a member of the cell"
        ),
        "invalid_address": "{where}: {address!r} is not valid: {problem}",
        "invalid_phone": (
            "cell.members[{index}].phone ({name}): {phone!r} is not a phone number (digits, "
            "spaces, +, -, parentheses and dots; at least three digits)"
        ),
        "level_gap": (
            "escalation level {level} has nobody, but level {highest} has {count}: escalation "
            "would stall there"
        ),
        "member": "member",
        "members": "members",
        "no_phone": (
            'no phone for {names} (phone = "..."): in a crisis the cell calls, it does not wait '
            "for an email"
        ),
        "no_operator": (
            'no operator (role = "operator"): notices about the sources (down, silent, '
            "degraded) reach nobody in the cell, only Vigie's sending address ({sender})"
        ),
        "nobody_authorised": (
            "nobody is authorised to answer on any platform (platforms = [...]): "
            "alerts and reminders name nobody who may answer"
        ),
        "empty_charter": (
            "the charter is empty ([cell] charter = [...]): alerts and reminders quote "
            "no rules of engagement"
        ),
        "no_teams": "no internal team gets readiness reminders ([[teams]])",
        "team_language": (
            "team {team!r} reads {language}, but no member of the cell works in it "
            "(languages = [...])"
        ),
        "language_fr": "French",
        "language_en": "English",
        "missing_label": "MISSING",
        "warning_label": "WARNING",
        "ready": "The cell is ready ({warnings}).",
        "not_ready": "The cell is NOT ready: {missing}, {warnings}.",
        "missing_count": "{n} missing|{n} missing",
        "warning_count": "{n} warning|{n} warnings",
        "title": "Crisis cell of {org} ({path})",
        "level": "Level {level}:",
        "no_member_line": "(no members)",
        "no_phone_detail": "no phone",
        "speaks": "speaks {languages}",
        "backup": "backup: {backup}",
        "answers_on": "answers on {platforms}",
        "forwarded": "Things seen are forwarded to: {reach}",
        "nobody": "nobody",
        "charter": "Charter: {count}",
        "rule": "{n} rule|{n} rules",
        "teams": "Teams reminded ({count}):",
        "team": "{name} [{language}, cron {cron!r}]: {emails}",
    },
}


def _count(text: dict[str, str], key: str, n: int) -> str:
    """`n` with its noun: "one|many" forms, the singular for 1 (and for 0 in French)."""
    one, many = text[key].split("|")
    singular = n == 1 or (n == 0 and text is CELL_TEXT["fr"])
    return (one if singular else many).format(n=n)


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


def _role_without_backup(role: str, holders: list[Member], language: str) -> Finding | None:
    """A role held by a single person who names no backup: nobody stands in when they are away."""
    if len(holders) != 1 or holders[0].backup is not None:
        return None
    holder = holders[0]
    words = ROLE_NAMES[language].get(role, role)
    return Finding(
        "missing" if role in KEY_ROLES else "warning",
        "no_backup",
        CELL_TEXT[language]["no_backup"].format(role=words, name=holder.name),
    )


def _address_findings(settings: Settings, text: dict[str, str]) -> list[Finding]:
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
                    "missing",
                    "invalid_address",
                    text["invalid_address"].format(where=where, address=address, problem=problem),
                )
            )
    return findings


def _phone_findings(settings: Settings, text: dict[str, str]) -> list[Finding]:
    """Phones that cannot be dialled (missing), and members without one (one warning)."""
    findings = [
        Finding(
            "missing",
            "invalid_phone",
            text["invalid_phone"].format(index=i, name=m.name, phone=m.phone),
        )
        for i, m in enumerate(settings.cell.members)
        if m.phone is not None and phone_problem(m.phone)
    ]
    unfilled = set(placeholders(settings))  # already missing as a whole
    without = [
        m.name
        for i, m in enumerate(settings.cell.members)
        if not m.phone and f"cell.members[{i}]" not in unfilled
    ]
    if without:
        findings.append(
            Finding("warning", "no_phone", text["no_phone"].format(names=", ".join(without)))
        )
    return findings


def _placeholder_findings(settings: Settings, text: dict[str, str]) -> list[Finding]:
    """Members and addresses still as `vigie init` wrote them: they reach nobody."""
    return [
        Finding(
            "missing", "placeholder", text["placeholder"].format(key=key, mark=PLACEHOLDER_MARK)
        )
        for key in placeholders(settings)
        if key.startswith(("cell.", "teams["))
    ]


def _backup_findings(settings: Settings, text: dict[str, str]) -> list[Finding]:
    names = {m.name for m in settings.cell.members}
    findings = []
    for i, member in enumerate(settings.cell.members):
        if member.backup is None:
            continue
        if member.backup == member.name:
            message = text["self_backup"].format(index=i, name=member.name)
        elif member.backup not in names:
            message = text["unknown_backup"].format(index=i, name=member.name, backup=member.backup)
        else:
            continue
        findings.append(Finding("missing", "unknown_backup", message))
    return findings


def _level_findings(settings: Settings, text: dict[str, str]) -> list[Finding]:
    levels = Counter(m.level for m in settings.cell.members)
    if not levels:
        return []
    highest = max(levels)
    count = f"{levels[highest]} {text['member' if levels[highest] == 1 else 'members']}"
    return [
        Finding(
            "missing",
            "level_gap",
            text["level_gap"].format(level=level, highest=highest, count=count),
        )
        for level in range(1, highest)
        if level not in levels
    ]


def check_cell(settings: Settings) -> CellReport:
    """What the cell lacks to be ready (severity "missing") and what deserves a look ("warning"),
    said in the organisation's language."""
    language = settings.organisation.language
    text = CELL_TEXT[language]
    members = settings.cell.members
    findings: list[Finding] = []
    if not members:
        findings.append(Finding("missing", "no_members", text["no_members"]))
    findings += _placeholder_findings(settings, text)
    holders: dict[str, list[Member]] = {}
    for member in members:
        holders.setdefault(member.role, []).append(member)
    for role in KEY_ROLES:
        if role not in holders:
            findings.append(Finding("missing", f"no_{role}", text[f"no_{role}"]))
    for role, people in holders.items():
        finding = _role_without_backup(role, people, language)
        if finding:
            findings.append(finding)
    findings += _backup_findings(settings, text)
    findings += _address_findings(settings, text)
    findings += _level_findings(settings, text)
    findings += _phone_findings(settings, text)
    if members and not settings.source_operators:
        findings.append(
            Finding(
                "warning", "no_operator", text["no_operator"].format(sender=settings.email.sender)
            )
        )
    if members and not any(m.platforms for m in members):
        findings.append(Finding("warning", "nobody_authorised", text["nobody_authorised"]))
    if not settings.cell.charter:
        findings.append(Finding("warning", "empty_charter", text["empty_charter"]))
    if not settings.teams:
        findings.append(Finding("warning", "no_teams", text["no_teams"]))
    spoken = {lang for m in members for lang in settings.member_languages(m)}
    for team in settings.teams:
        team_language = settings.team_language(team)
        if members and team_language not in spoken:
            findings.append(
                Finding(
                    "warning",
                    "team_language",
                    text["team_language"].format(
                        team=team.name, language=text[f"language_{team_language}"]
                    ),
                )
            )
    # What is missing first, then the warnings, each in the order found.
    return CellReport(tuple(sorted(findings, key=lambda f: f.severity != "missing")))


def report_lines(report: CellReport, language: str) -> list[str]:
    """The findings one per line, then the verdict, as `vigie cell check` prints them."""
    text = CELL_TEXT[language]
    width = max(8, len(text["missing_label"]), len(text["warning_label"]))
    lines = [
        f"{text[f'{finding.severity}_label']:<{width}} {finding.message}"
        for finding in report.findings
    ]
    warnings = _count(text, "warning_count", len(report.warnings))
    if report.ready:
        lines.append(text["ready"].format(warnings=warnings))
    else:
        missing = _count(text, "missing_count", len(report.missing))
        lines.append(text["not_ready"].format(missing=missing, warnings=warnings))
    return lines


def cell_lines(settings: Settings) -> list[str]:
    """The cell by escalation level, where to reach it, its charter and the teams reminded,
    as `vigie cell show` prints them."""
    language = settings.organisation.language
    text = CELL_TEXT[language]
    cell = settings.cell
    lines = [text["title"].format(org=settings.organisation.name, path=settings.config_path)]
    for level in sorted({m.level for m in cell.members}):
        lines.append("  " + text["level"].format(level=level))
        for member in settings.level_members(level):
            details = [ROLE_NAMES[language].get(member.role, member.role), member.email]
            details.append(member.phone or text["no_phone_detail"])
            details.append(
                text["speaks"].format(languages=", ".join(settings.member_languages(member)))
            )
            if member.backup:
                details.append(text["backup"].format(backup=member.backup))
            if member.platforms:
                details.append(text["answers_on"].format(platforms=", ".join(member.platforms)))
            lines.append(f"    {member.name} — {' · '.join(details)}")
    if not cell.members:
        lines.append("  " + text["no_member_line"])
    reach = cell.address or ", ".join(m.email for m in settings.first_level) or text["nobody"]
    lines.append(text["forwarded"].format(reach=reach))
    lines.append(text["charter"].format(count=_count(text, "rule", len(cell.charter))))
    lines.extend(f"  {number}. {rule}" for number, rule in enumerate(cell.charter, 1))
    lines.append(text["teams"].format(count=len(settings.teams)))
    lines.extend(
        "  "
        + text["team"].format(
            name=team.name,
            language=settings.team_language(team),
            cron=settings.team_cron(team),
            emails=", ".join(team.emails),
        )
        for team in settings.teams
    )
    return lines
