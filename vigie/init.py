"""`vigie init`: a first, commented `vigie.toml` built from a few answers.

`render_config(spec)` is a pure function: an `InitSpec` (the organisation's name, its other names
and products, people to watch, languages, region) in, the text of a commented configuration out,
with watch queries built from the names, search sources in the chosen languages and region, and a
crisis cell of placeholders to fill in. Names are untrusted text: they are cleaned of control
characters, reach the TOML only through `toml_string` and the queries only as words or quoted
phrases that cannot hold a quote, so no name breaks the file or its queries.

`ask_spec` gathers the answers (from options, else by asking, in French and English) and
`write_new_config` writes the file, never over an existing one unless forced. `placeholders`
finds what is still as `vigie init` wrote it, for `vigie check` and `vigie cell check`.
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from vigie.errors import ConfigError
from vigie.query import text_words
from vigie.search import derived_search_query
from vigie.settings import (
    DEFAULT_BASE_URLS,
    Language,
    Settings,
    address_problem,
    load_settings,
    phone_problem,
)

# Placeholders are marked in their text and use a reserved domain (RFC 2606): mail to them
# can never reach anybody, and `placeholders` finds them by these two marks.
PLACEHOLDER_MARK = "À REMPLIR / TO FILL IN"
PLACEHOLDER_DOMAIN = "a-remplir.example"
MAX_NAME_CHARS = 120
MAX_NAMES = 20
# Watch.query's bound in vigie/settings.py.
MAX_QUERY_CHARS = 2000
DEFAULT_REGION = "CA"
DEFAULT_MASTODON = "https://mastodon.social"
# The main time zone and languages of a few regions; elsewhere UTC and both languages.
REGION_TIMEZONES = {
    "CA": "America/Toronto",
    "US": "America/New_York",
    "FR": "Europe/Paris",
    "BE": "Europe/Brussels",
    "CH": "Europe/Zurich",
    "LU": "Europe/Luxembourg",
    "MC": "Europe/Monaco",
    "GB": "Europe/London",
    "IE": "Europe/Dublin",
    "SN": "Africa/Dakar",
    "CI": "Africa/Abidjan",
    "MA": "Africa/Casablanca",
    "TN": "Africa/Tunis",
    "CM": "Africa/Douala",
    "HT": "America/Port-au-Prince",
    "AU": "Australia/Sydney",
    "NZ": "Pacific/Auckland",
}
REGION_LANGUAGES: dict[str, tuple[Language, ...]] = {
    "CA": ("fr", "en"),
    "FR": ("fr",),
    "BE": ("fr",),
    "CH": ("fr",),
    "LU": ("fr",),
    "MC": ("fr",),
    "SN": ("fr",),
    "CI": ("fr",),
    "HT": ("fr",),
    "US": ("en",),
    "GB": ("en",),
    "IE": ("en",),
    "AU": ("en",),
    "NZ": ("en",),
}
# A suggested crisis topic: the organisation near words that announce trouble. Detection has
# its own, larger lexicon (tasks/detect/signals.py); these only make a topic of their own.
CRISIS_WORDS: dict[Language, tuple[str, ...]] = {
    "fr": (
        "rappel*",
        "scandale*",
        "boycott*",
        "grève*",
        "plainte*",
        "poursuite*",
        "enquête*",
        "fraude*",
        '"fuite de données"',
        "piratage",
        "intoxication*",
        "démission*",
        "polémique*",
        "panne*",
    ),
    "en": (
        "recall*",
        "scandal*",
        "boycott*",
        "strike*",
        "complaint*",
        "lawsuit*",
        "investigation*",
        "fraud*",
        '"data breach"',
        "hacked",
        "poisoning",
        "resign*",
        "backlash",
        "outage*",
    ),
}
WATCH_NAMES: dict[Language, tuple[str, str, str]] = {
    "fr": ("organisation", "personnes", "crise"),
    "en": ("organisation", "people", "crisis"),
}
QUESTIONS = {
    "name": "Nom de l'organisation / Organisation name",
    "aliases": "Autres noms et produits, séparés par des virgules / "
    "Other names and products, comma-separated",
    "people": "Personnes à surveiller (direction, porte-parole), séparées par des virgules / "
    "People to watch (executives, spokespeople), comma-separated",
    "region": "Pays, code à deux lettres (CA, FR, BE, CH...) / Country, two-letter code",
    "languages": "Langues à surveiller (fr, en ou fr,en) / Languages to watch (fr, en or fr,en)",
    "timezone": "Fuseau horaire (America/Toronto, Europe/Paris...) / Time zone",
}
# What an answer must look like, said plainly (French, then English) when one does not fit:
# the interactive questions never answer with an option's name.
HINTS: dict[str, tuple[str, str]] = {
    "name": (
        "Nom de l’organisation : au moins une lettre ou un chiffre, 120 caractères au plus.",
        "Organisation name: at least one letter or digit, at most 120 characters.",
    ),
    "aliases": (
        "Noms séparés par des virgules : 20 au plus, chacun de 120 caractères au plus, avec "
        "une lettre ou un chiffre.",
        "Names separated by commas: at most 20, each at most 120 characters, with a letter or "
        "a digit.",
    ),
    "region": (
        "Pays : un code de deux lettres, comme CA, FR, BE ou CH.",
        "Country: a two-letter code such as CA, FR, BE or CH.",
    ),
    "languages": (
        "Langues : fr, en (séparées par des virgules).",
        "Languages: fr, en (comma-separated).",
    ),
    "timezone": (
        "Fuseau horaire : un nom comme Europe/Paris, America/Toronto ou UTC.",
        "Time zone: a name such as Europe/Paris, America/Toronto or UTC.",
    ),
    "member_name": (
        "Nom : 120 caractères au plus (Entrée pour le remplir plus tard).",
        "Name: at most 120 characters (Enter to fill it in later).",
    ),
    "email": (
        "Courriel : une adresse comme prenom.nom@exemple.org.",
        "Email: an address such as first.last@example.org.",
    ),
    "phone": (
        "Téléphone : chiffres, espaces, +, -, parenthèses et points, par exemple "
        "+1 514 555 0101 (Entrée pour passer).",
        "Phone: digits, spaces, +, -, parentheses and dots, for example +1 514 555 0101 "
        "(Enter to skip).",
    ),
}
HINTS["people"] = HINTS["aliases"]
# The members `vigie init` asks about: role, words for the questions (French, English), level.
# The operator hears about the sources (tasks/collect/health.py); level 3: told last of an alert.
ASKED_MEMBERS: tuple[tuple[str, str, str, int], ...] = (
    ("lead", "Responsable de la cellule de crise", "Crisis cell lead", 1),
    ("spokesperson", "Porte-parole", "Spokesperson", 1),
    ("legal", "Juriste", "Legal counsel", 2),
    ("operator", "Opérateur de Vigie (avis sur les sources)", "Vigie operator (source notices)", 3),
)
_WORD = re.compile(r"[^\W_]+")
# Words the query parser reads as operators when they stand alone.
_OPERATOR_WORDS = {"AND", "OR", "NOT", "NEAR"}
_LANGUAGES: tuple[Language, ...] = get_args(Language)


@dataclass(frozen=True, slots=True)
class InitMember:
    """A member of the cell given to `vigie init` (the others stay placeholders)."""

    role: str  # a role of ASKED_MEMBERS
    name: str
    email: str
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class InitSpec:
    """What `vigie init` asks; `render_config` cleans and checks it."""

    name: str
    aliases: tuple[str, ...] = ()
    people: tuple[str, ...] = ()
    languages: tuple[Language, ...] = ("fr", "en")
    region: str = DEFAULT_REGION
    # None: the region's main time zone (REGION_TIMEZONES), else UTC.
    timezone: str | None = None
    # At most one per role of ASKED_MEMBERS; a role without one gets a placeholder (the
    # operator: a commented example).
    members: tuple[InitMember, ...] = ()


@dataclass(frozen=True, slots=True)
class _Checked:
    name: str
    aliases: tuple[str, ...]
    people: tuple[str, ...]
    languages: tuple[Language, ...]
    region: str
    timezone: str
    org_terms: tuple[str, ...]
    people_terms: tuple[str, ...]
    members: dict[str, InitMember]


def clean_name(value: str) -> str:
    """`value` on one line: control, format and line-separator characters out, spaces
    collapsed."""
    kept = []
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cf":
            continue
        kept.append(" " if category in {"Cc", "Cs", "Zl", "Zp"} else ch)
    return " ".join("".join(kept).split())


def split_names(values: Iterable[str]) -> tuple[str, ...]:
    """Names given as repeated options or comma-separated, cleaned, each once (case and
    accents ignored), in order."""
    names: list[str] = []
    seen: set[tuple[str, ...]] = set()
    for value in values:
        for part in value.split(","):
            name = clean_name(part)
            key = text_words(name)
            if name and key not in seen:
                seen.add(key)
                names.append(name)
    return tuple(names)


def parse_languages(value: str) -> tuple[Language, ...]:
    """`"fr,en"` -> ("fr", "en").

    Raises:
        ConfigError: a language Vigie does not read, or none at all.
    """
    found: list[Language] = []
    for part in re.split(r"[\s,;/]+", value.strip().lower()):
        if not part:
            continue
        language = next((lang for lang in _LANGUAGES if lang == part), None)
        if language is None:
            raise ConfigError(
                f"--languages: {clean_name(part)[:20]!r} is not supported (fr, en, or fr,en)"
            )
        if language not in found:
            found.append(language)
    if not found:
        raise ConfigError("--languages: give fr, en, or fr,en")
    return tuple(found)


def parse_region(value: str) -> str:
    """`"ca"` -> "CA".

    Raises:
        ConfigError: not a two-letter country code.
    """
    region = value.strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", region):
        raise ConfigError(
            f"--region: {clean_name(value)[:20]!r} is not a two-letter country code (CA, FR...)"
        )
    return region


def parse_timezone(value: str) -> str:
    """An IANA time zone name as zoneinfo knows it (`"europe/paris"` -> "Europe/Paris").

    Raises:
        ConfigError: not a time zone zoneinfo knows.
    """
    zone = value.strip()
    try:
        ZoneInfo(zone)
        return zone
    except (ZoneInfoNotFoundError, ValueError):
        pass
    known = {name.lower(): name for name in available_timezones()}
    if zone.lower() in known:
        return known[zone.lower()]
    raise ConfigError(
        f"--timezone: unknown time zone {clean_name(value)[:40]!r} (an IANA name such "
        "as America/Toronto or Europe/Paris)"
    )


def parse_member_name(value: str) -> str:
    """A member's name, cleaned; empty when none was given.

    Raises:
        ConfigError: longer than MAX_NAME_CHARS.
    """
    name = clean_name(value)
    if len(name) > MAX_NAME_CHARS:
        raise ConfigError(
            f"member name {name[:40]!r}... is longer than {MAX_NAME_CHARS} characters"
        )
    return name


def parse_email(value: str) -> str:
    """An email address (syntax only).

    Raises:
        ConfigError: not a usable address.
    """
    address = value.strip()
    problem = address_problem(address) if address else "it is empty"
    if problem:
        raise ConfigError(f"{clean_name(address)[:60]!r} is not an email address: {problem}")
    return address


def parse_phone(value: str) -> str | None:
    """A phone number as the settings accept it; None when none was given.

    Raises:
        ConfigError: characters other than digits, spaces, + - ( ) ., or too few digits.
    """
    phone = " ".join(value.split())
    if not phone:
        return None
    problem = phone_problem(phone)
    if problem:
        raise ConfigError(f"{clean_name(phone)[:40]!r} {problem}")
    return phone


def parse_member(value: str) -> InitMember:
    """`"lead:Awa Diallo:awa@example.org:+1 514 555 0101"` (the phone optional) -> a member.

    Raises:
        ConfigError: an unknown role, no name, an invalid address or phone; names --member.
    """
    parts = [part.strip() for part in value.split(":", 3)]
    roles = [role for role, *_ in ASKED_MEMBERS]
    if len(parts) < 3 or parts[0] not in roles:
        raise ConfigError(
            f"--member: {clean_name(value)[:60]!r} is not ROLE:NAME:EMAIL[:PHONE] with ROLE one "
            f"of {', '.join(roles)}"
        )
    try:
        name = parse_member_name(parts[1])
        if not name:
            raise ConfigError("the name is empty")
        return InitMember(
            parts[0], name, parse_email(parts[2]), parse_phone(parts[3] if len(parts) > 3 else "")
        )
    except ConfigError as err:
        raise ConfigError(f"--member {parts[0]}: {err}") from None


def query_term(name: str) -> str | None:
    """`name` as one query term: a bare word when it is one, else a quoted phrase (its quotes
    become spaces: a phrase cannot hold one); None when it has no letter or digit."""
    phrase = " ".join(name.replace('"', " ").split())
    if not text_words(phrase):
        return None
    if _WORD.fullmatch(phrase) and phrase not in _OPERATOR_WORDS:
        return phrase
    return f'"{phrase}"'


def _group(terms: Iterable[str]) -> str:
    terms = list(terms)
    return terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")"


def _terms(names: Iterable[str], option: str) -> tuple[str, ...]:
    terms: list[str] = []
    for name in names:
        term = query_term(name)
        if term is None:
            raise ConfigError(f"{option}: {name[:40]!r} has no letter or digit to search for")
        terms.append(term)
    return tuple(terms)


def _bounded(names: tuple[str, ...], option: str) -> tuple[str, ...]:
    if len(names) > MAX_NAMES:
        raise ConfigError(f"{option}: at most {MAX_NAMES} names (keep the main ones)")
    for name in names:
        if len(name) > MAX_NAME_CHARS:
            raise ConfigError(
                f"{option}: {name[:40]!r}... is longer than {MAX_NAME_CHARS} characters"
            )
    _terms(names, option)
    return names


def parse_name(value: str) -> str:
    """The organisation's name, cleaned (commas are part of it).

    Raises:
        ConfigError: empty, too long, or without a letter or digit.
    """
    name = clean_name(value)
    if not name:
        raise ConfigError("--name: the organisation's name is empty")
    return _bounded((name,), "--name")[0]


def parse_names(values: Iterable[str], option: str) -> tuple[str, ...]:
    """Other names or people, as `split_names` reads them, bounded in number and length.

    Raises:
        ConfigError: too many, too long, or one without a letter or digit; names `option`.
    """
    return _bounded(split_names(values), option)


def check_spec(spec: InitSpec) -> _Checked:
    """The spec cleaned, with its query terms.

    Raises:
        ConfigError: a value that cannot make a configuration; the message names the option.
    """
    name = parse_name(spec.name)
    # The organisation's own name comes first; an alias spelt like it is dropped.
    aliases = tuple(
        a for a in parse_names(spec.aliases, "--aliases") if text_words(a) != text_words(name)
    )
    people = parse_names(spec.people, "--people")
    languages = parse_languages(",".join(spec.languages))
    region = parse_region(spec.region)
    timezone = parse_timezone(spec.timezone or REGION_TIMEZONES.get(region, "UTC"))
    members: dict[str, InitMember] = {}
    roles = [role for role, *_ in ASKED_MEMBERS]
    for member in spec.members:
        if member.role not in roles or member.role in members:
            raise ConfigError(f"member role {member.role!r}: one each of {', '.join(roles)}")
        member_name = parse_member_name(member.name)
        if not member_name:
            raise ConfigError(f"member ({member.role}): the name is empty")
        members[member.role] = InitMember(
            member.role, member_name, parse_email(member.email), parse_phone(member.phone or "")
        )
    return _Checked(
        name=name,
        aliases=aliases,
        people=people,
        languages=languages,
        region=region,
        timezone=timezone,
        org_terms=_terms((name, *aliases), "--aliases"),
        people_terms=_terms(people, "--people"),
        members=members,
    )


@dataclass(frozen=True, slots=True)
class InitQueries:
    """The watch queries `vigie init` suggests, and the search the search sources send."""

    organisation: str
    people: str | None
    crisis: str
    search: str


def suggested_queries(spec: InitSpec) -> InitQueries:
    """The organisation's names OR-ed; its people with (AND) the organisation; the organisation
    near crisis words of the chosen languages; the search string of the search sources.

    Raises:
        ConfigError: the names make a query longer than a watch query may be.
    """
    checked = check_spec(spec)
    return _queries(checked)


def _queries(checked: _Checked) -> InitQueries:
    organisation = " OR ".join(checked.org_terms)
    org_group = _group(checked.org_terms)
    people = None
    if checked.people_terms:
        people = f"{_group(checked.people_terms)} AND {org_group}"
    words: list[str] = []
    for language in checked.languages:
        words.extend(w for w in CRISIS_WORDS[language] if w not in words)
    crisis = f"{org_group} NEAR/12 {_group(words)}"
    for query in (organisation, people, crisis):
        if query is not None and len(query) > MAX_QUERY_CHARS:
            raise ConfigError(
                "--aliases/--people: the names make a watch query longer than "
                f"{MAX_QUERY_CHARS} characters: keep the main ones"
            )
    # Search services get the organisation's names only: crisis words alone would fetch
    # every crisis in the world, and people are only kept beside the organisation anyway.
    return InitQueries(organisation, people, crisis, derived_search_query([organisation]))


def _needs_escape(ch: str) -> bool:
    """A control character, or a lone surrogate (no UTF-8 form): TOML only takes them escaped."""
    code = ord(ch)
    return code < 0x20 or code == 0x7F or 0xD800 <= code <= 0xDFFF


def toml_string(value: str) -> str:
    """`value` as a TOML string: as it is between quotes when it can be, else a literal string
    ('...', easier to read with the quotes of a query), else a basic string with quotes,
    backslashes and control characters escaped."""
    plain = not any(_needs_escape(ch) for ch in value)
    if plain and '"' not in value and "\\" not in value:
        return f'"{value}"'
    if plain and "'" not in value:
        return f"'{value}'"
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch in {'"', "\\"}:
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\ufffd")  # a lone surrogate has no UTF-8 form
        elif _needs_escape(ch):
            out.append(f"\\u{code:04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _array(values: Iterable[str]) -> str:
    return "[" + ", ".join(toml_string(v) for v in values) + "]"


def _tag(name: str) -> str | None:
    """A Mastodon hashtag for `name`: its words capitalised and joined, without accents
    ("Laiterie Boréale" -> "LaiterieBoreale"); None when it would be too long or empty."""
    words = []
    for word in _WORD.findall(name):
        plain = "".join(
            ch for ch in unicodedata.normalize("NFKD", word) if not unicodedata.combining(ch)
        )
        # ASCII only: the settings' tag pattern is checked by pydantic's regex engine, whose
        # \w differs from Python's on rare scripts (Hypothesis found U+1ED01).
        plain = "".join(ch for ch in plain if ch.isascii() and ch.isalnum())
        if plain:
            words.append(plain[:1].upper() + plain[1:])
    tag = "".join(words)
    return tag if 0 < len(tag) <= 60 else None


def _lines(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def render_config(spec: InitSpec) -> str:
    """The text of a commented vigie.toml for `spec` (comments in English and French).

    Raises:
        ConfigError: the spec cannot make a configuration; the message names the option.
    """
    checked = check_spec(spec)
    queries = _queries(checked)
    language = checked.languages[0]
    watch_org, watch_people, watch_crisis = WATCH_NAMES[language]
    parts = [_header(checked), _organisation(checked, language)]
    parts.append(
        _lines(
            "# What to look for: a mention is kept when one query matches (case and accents",
            '# ignored). Syntax: words, "phrases", prefix*, AND, OR, NOT, NEAR/n, (...);',
            "# docs/guide.md, \"Watch queries\". Try one: echo 'some text' | vigie query '...'",
            "# Ce qu'il faut chercher : une mention est gardée quand une requête la reconnaît",
            "# (sans tenir compte des majuscules ni des accents).",
            "",
            "[[watch]]                       # the organisation / l'organisation",
            f"name = {toml_string(watch_org)}",
            f"query = {toml_string(queries.organisation)}",
            "",
        )
    )
    if queries.people is not None:
        parts.append(
            _lines(
                "# People, when the organisation is named too (remove `AND ...` for distinctive",
                "# names). Personnes, quand l'organisation est nommée aussi (retirez `AND ...`",
                "# pour des noms peu courants).",
                "[[watch]]",
                f"name = {toml_string(watch_people)}",
                f"query = {toml_string(queries.people)}",
                "",
            )
        )
    parts.append(
        _lines(
            "# A suggestion: the organisation near words that announce a crisis; adapt the words.",
            "# A topic of its own, it alerts when these mentions surge even if the organisation's",
            "# whole volume does not; remove it if one topic is enough.",
            "# Suggestion : l'organisation près de mots qui annoncent une crise ; adaptez-les.",
            "# Sujet à part entière, il alerte quand ces mentions bondissent.",
            "[[watch]]",
            f"name = {toml_string(watch_crisis)}",
            f"query = {toml_string(queries.crisis)}",
            "",
        )
    )
    parts.append(_sources(checked, queries.search))
    parts.append(_email())
    parts.append(_cell(language, checked.members))
    parts.append(
        _lines(
            "# [schedule], [collection], [detection], [retention], [quality], [health] and",
            "# [escalation] keep their defaults: every key is in docs/configuration.md.",
            "# Les autres sections gardent leurs valeurs par défaut : docs/configuration.md.",
        )
    )
    return "".join(parts)


def _header(checked: _Checked) -> str:
    return _lines(
        f"# Vigie configuration for {checked.name}, written by `vigie init`.",
        f"# Configuration de Vigie pour {checked.name}, écrite par `vigie init`.",
        "#",
        f'# Fill in the lines marked "{PLACEHOLDER_MARK}", then:',
        f"# Remplissez les lignes marquées « {PLACEHOLDER_MARK} », puis :",
        "#   vigie check          validate, see what is watched / valider, voir ce qui est suivi",
        "#   vigie sources test   fetch every source once / interroger chaque source une fois",
        "#   vigie cell check     what the crisis cell lacks / ce qui manque à la cellule",
        "#   vigie run --once     one watch cycle / un cycle de veille",
        "# Every key / chaque clé : docs/configuration.md. Secrets never go here: the SMTP",
        "# password comes from $VIGIE_SMTP_PASSWORD / le mot de passe SMTP vient de",
        "# $VIGIE_SMTP_PASSWORD, jamais de ce fichier.",
    )


def _organisation(checked: _Checked, language: Language) -> str:
    lines = [
        "[organisation]",
        f"name = {toml_string(checked.name)}",
    ]
    if checked.aliases:
        lines.append(f"other_names = {_array(checked.aliases)}  # other names, products")
    lines += [
        f'language = "{language}"                 # the emails\' language / langue des courriels',
        f"timezone = {toml_string(checked.timezone)}  # IANA name / fuseau horaire",
        "",
        "[warehouse]",
        'path = "data/vigie.duckdb"      # relative to this file / relatif à ce fichier',
        "",
    ]
    return _lines(*lines)


def _sources(checked: _Checked, search: str) -> str:
    region = checked.region
    query = f"query = {toml_string(search)}"
    parts = [
        _lines(
            "# Sources. Search kinds send `query` to a service; Vigie keeps what a watch query",
            "# matches. `vigie sources test` tries each one.",
            "# Les sources de recherche envoient `query` à un service ; Vigie garde ce qu'une",
            "# requête de veille reconnaît. `vigie sources test` essaie chacune.",
            "",
        )
    ]
    for language in checked.languages:
        label = "Google Actualités" if language == "fr" else "Google News"
        parts.append(
            _lines(
                "[[sources]]",
                f'name = "{label} ({language}-{region})"',
                'kind = "news_search"            # Google News RSS search: '
                f"hl={language}-{region}, gl={region}, ceid={region}:{language}",
                f"url = {toml_string(DEFAULT_BASE_URLS['news_search'])}",
                f'language = "{language}"',
                f'region = "{region}"',
                query,
                "tier = 2                        # 1 major outlet, 2 regional or trade, 3 the rest",
                "",
            )
        )
    tag = _tag(checked.name)
    mastodon = [
        "[[sources]]",
        'name = "Mastodon"',
        'kind = "mastodon"               # the tag timeline and the search of one server',
        f"instance = {toml_string(DEFAULT_MASTODON)}  # or your community's server "
        "(https://piaille.fr...)",
    ]
    if tag:
        mastodon.append(f"tag = {toml_string(tag)}")
    mastodon += [query, ""]
    bluesky_language = (
        [f'language = "{checked.languages[0]}"'] if len(checked.languages) == 1 else []
    )
    parts.append(
        _lines(
            "[[sources]]",
            'name = "Reddit"',
            'kind = "reddit"',
            f"url = {toml_string(DEFAULT_BASE_URLS['reddit'])}",
            query,
            '# subreddit = "Quebec"          # optional: one subreddit only / un seul subreddit',
            "",
            *mastodon,
            "[[sources]]",
            'name = "Bluesky"',
            'kind = "bluesky"',
            f"url = {toml_string(DEFAULT_BASE_URLS['bluesky'])}",
            *bluesky_language,
            query,
            "",
            "[[sources]]",
            'name = "Hacker News"',
            'kind = "hackernews"             # mostly technology, in English / surtout techno',
            f"url = {toml_string(DEFAULT_BASE_URLS['hackernews'])}",
            'language = "en"',
            query,
            "",
            "# Your own feeds (newsroom, blog, podcast) and the outlets that matter to you, one",
            "# [[sources]] each. Vos propres fils (salle de presse, blogue, balado) et les médias",
            "# qui comptent pour vous, un [[sources]] chacun :",
            "# [[sources]]",
            '# name = "Salle de presse / Newsroom"',
            '# kind = "rss"                  # RSS, Atom, RDF; "jsonfeed" for a JSON Feed',
            '# url = "https://www.example.org/feed.xml"',
            '# platform = "news"             # news | blog | social | forum | video | other',
            "# tier = 3",
            "",
        )
    )
    return "".join(parts)


def _email() -> str:
    return _lines(
        f"# {PLACEHOLDER_MARK}: the SMTP server Vigie sends from / le serveur SMTP d'envoi.",
        "[email]",
        f'host = "smtp.{PLACEHOLDER_DOMAIN}"',
        "port = 587",
        f'sender = "vigie@{PLACEHOLDER_DOMAIN}"',
        'security = "starttls"           # none | starttls | ssl',
        f'# username = "vigie@{PLACEHOLDER_DOMAIN}"  # with a login, the same as sender; the',
        "#                                 password comes from $VIGIE_SMTP_PASSWORD",
        "",
    )


_PLACEHOLDER_MEMBERS = (
    ("lead", "responsable", "lead", 1),
    ("spokesperson", "porte-parole", "spokesperson", 1),
    ("legal", "juriste", "legal counsel", 2),
)
_PHONE_EXAMPLE = '# phone = "+1 514 555 0100"     # optional / facultatif'


def _member_lines(member: InitMember, level: int) -> list[str]:
    return [
        "[[cell.members]]",
        f"name = {toml_string(member.name)}",
        f"email = {toml_string(member.email)}",
        f'role = "{member.role}"',
        f"level = {level}                       # escalation order / ordre d'escalade",
        f"phone = {toml_string(member.phone)}" if member.phone else _PHONE_EXAMPLE,
    ]


def _cell(language: Language, members: dict[str, InitMember]) -> str:
    lines = [
        "# The crisis cell (step 1 of crisis readiness): who decides, who speaks, who checks",
        "# the law, who stands in. Members marked as placeholders: put real people,",
        "# add backups and phones, then `vigie cell check` says what is still missing.",
        "# La cellule de crise (étape 1) : qui décide, qui parle, qui vérifie le droit, qui",
        "# remplace qui. Les membres marqués sont à remplacer par de vraies personnes ;",
        "# `vigie cell check` dit ensuite ce qui manque.",
        "[cell]",
        '# address = "cellule@example.org"  # optional: where teams forward what they see',
        "charter = [                     # rules of engagement quoted in alerts (at most 12)",
    ]
    if language == "fr":
        lines += [
            '    # "Nous répondons en moins d’une heure, avec des faits vérifiés.",',
            '    # "Seules les personnes autorisées répondent au nom de l’organisation.",',
        ]
    else:
        lines += [
            '    # "We answer within the hour, with checked facts.",',
            '    # "Only authorised people answer in the organisation\'s name.",',
        ]
    lines += ["]", ""]
    for role, french, english, level in _PLACEHOLDER_MEMBERS:
        given = members.get(role)
        if given is not None:
            lines += _member_lines(given, level)
        else:
            lines += [
                "[[cell.members]]",
                f'name = "{PLACEHOLDER_MARK}: {french} / {english}"',
                f'email = "{french}@{PLACEHOLDER_DOMAIN}"',
                f'role = "{role}"',
                f"level = {level}                       # escalation order / ordre d'escalade",
                _PHONE_EXAMPLE,
            ]
        lines += [
            '# backup = "..."                # who stands in (a member\'s name) / qui remplace',
            '# platforms = ["facebook", "x"] # where this person may answer / où répondre',
            "",
        ]
    lines += [
        "# Who runs Vigie and repairs its sources: hears about sources that fail or fall",
        "# silent (without one, these notices go only to email.sender). Qui fait tourner Vigie",
        "# et répare ses sources : reçoit les avis sur les sources en panne ou muettes.",
    ]
    operator = members.get("operator")
    if operator is not None:
        lines += [*_member_lines(operator, 3), ""]
    else:
        lines += [
            "# [[cell.members]]",
            '# name = "..."',
            '# email = "..."',
            '# role = "operator"',
            "# level = 3",
            "",
        ]
    lines += [
        "# Internal teams reminded that the cell exists (step 4) / équipes internes à qui",
        "# l'on rappelle que la cellule existe (étape 4) :",
        "# [[teams]]",
        '# name = "Service à la clientèle"',
        '# emails = ["clientele@example.org"]',
        "",
    ]
    return _lines(*lines)


def placeholders(settings: Settings) -> list[str]:
    """The keys that still hold a placeholder written by `vigie init`."""
    found: list[str] = []

    def marked(value: str | None) -> bool:
        return value is not None and (
            PLACEHOLDER_MARK in value or value.lower().endswith(PLACEHOLDER_DOMAIN)
        )

    if marked(settings.email.host):
        found.append("email.host")
    if marked(settings.email.sender):
        found.append("email.sender")
    for index, member in enumerate(settings.cell.members):
        if marked(member.name) or marked(member.email):
            found.append(f"cell.members[{index}]")
    if marked(settings.cell.address):
        found.append("cell.address")
    for index, team in enumerate(settings.teams):
        if any(marked(address) for address in team.emails):
            found.append(f"teams[{index}].emails")
    return found


Ask = Callable[[str], str]


def ask_spec(
    *,
    name: str | None,
    aliases: list[str] | None,
    people: list[str] | None,
    languages: str | None,
    region: str | None,
    timezone: str | None,
    ask: Ask | None,
    say: Callable[[str], None],
    members: list[str] | None = None,
) -> InitSpec:
    """The spec from the options given, asking for the others with `ask` (French and English
    prompts, the default in brackets), or taking their defaults when `ask` is None.

    An answer that does not fit is asked again, after saying plainly what is expected
    (`HINTS`). In a terminal, the time zone and, unless `members` are given (`--member`), the
    cell's lead, spokesperson, legal counsel and operator are asked too (name, email, phone;
    Enter leaves one to fill in later).

    Raises:
        ConfigError: the name is missing and cannot be asked, or an option is invalid.
    """

    def answer(
        question: str,
        default: str,
        parse: Callable[[str], object],
        hint: str,
        option: str | None = None,
    ) -> str:
        assert ask is not None
        shown = f" [{default}]" if default else ""
        while True:
            try:
                value = ask(f"{question}{shown}: ").strip() or default
            except EOFError as err:
                where = f"pass --{option}" if option else "answer in a terminal"
                raise ConfigError(f"no answer to {question!r}: {where}") from err
            try:
                parse(value)
            except ConfigError:
                french, english = HINTS[hint]
                shown_value = clean_name(value)[:40]
                say(f"« {shown_value} » ne convient pas. {french}")
                say(f"'{shown_value}' does not fit. {english}")
                continue
            return value

    def asked(key: str, default: str, parse: Callable[[str], object]) -> str:
        return answer(QUESTIONS[key], default, parse, key, key)

    if name is None and ask is None:
        raise ConfigError(
            "--name is required when vigie init cannot ask (no terminal, or "
            "--non-interactive): the organisation's name / le nom de l'organisation"
        )
    if ask is not None:
        if name is None:
            name = asked("name", "", parse_name)
        if aliases is None:
            aliases = [asked("aliases", "", lambda v: parse_names([v], "--aliases"))]
        if people is None:
            people = [asked("people", "", lambda v: parse_names([v], "--people"))]
        if region is None:
            region = asked("region", DEFAULT_REGION, parse_region)
    region = region or DEFAULT_REGION
    code = parse_region(region)
    default_languages = ",".join(REGION_LANGUAGES.get(code, ("fr", "en")))
    if languages is None:
        languages = (
            asked("languages", default_languages, parse_languages) if ask else default_languages
        )
    cell = [parse_member(value) for value in members or ()]
    if ask is not None:
        if timezone is None:
            timezone = asked("timezone", REGION_TIMEZONES.get(code, "UTC"), parse_timezone)
        if members is None:
            cell = _ask_members(answer)
    assert name is not None
    return InitSpec(
        name=name,
        aliases=tuple(aliases or ()),
        people=tuple(people or ()),
        languages=parse_languages(languages),
        region=region,
        timezone=parse_timezone(timezone) if timezone else None,
        members=tuple(cell),
    )


def _ask_members(
    answer: Callable[[str, str, Callable[[str], object], str], str],
) -> list[InitMember]:
    """The members of ASKED_MEMBERS whose name is given, with their email and phone."""
    members = []
    for role, french, english, _level in ASKED_MEMBERS:
        name = parse_member_name(
            answer(
                f"{french} : nom (Entrée : plus tard) / {english}: name (Enter: later)",
                "",
                parse_member_name,
                "member_name",
            )
        )
        if not name:
            continue
        email = answer(f"{french} : courriel / {english}: email", "", parse_email, "email")
        phone = answer(
            f"{french} : téléphone (facultatif) / {english}: phone (optional)",
            "",
            parse_phone,
            "phone",
        )
        members.append(InitMember(role, name, email.strip(), parse_phone(phone)))
    return members


def refuse_existing(path: Path, *, force: bool) -> None:
    """Raises ConfigError when `path` exists and `force` is not set."""
    if path.exists() and not force:
        raise ConfigError(
            f"{path} already exists: pass --force to replace it, or --output another file"
        )


def write_new_config(path: Path, text: str, *, force: bool) -> Settings:
    """Write `text` to `path` once it loads as a configuration; an existing file is replaced
    only with `force`. Returns the loaded settings.

    Raises:
        ConfigError: the file exists and `force` is not set, it cannot be written, or the text
            does not load (a bug of `render_config`: then nothing is written).
    """
    refuse_existing(path, force=force)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as err:
        raise ConfigError(f"{path}: cannot be written: {err.strerror}") from err
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide it from a worker's account
        try:
            settings = load_settings(temporary)
        except ConfigError as err:
            raise ConfigError(str(err).replace(temporary, str(path))) from err
        os.replace(temporary, path)
    except OSError as err:
        raise ConfigError(f"{path}: cannot be written: {err.strerror}") from err
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return settings.model_copy(update={"config_path": path})
