"""`vigie init`'s configuration text (`vigie.init`): it loads with `load_settings` for real and
hostile names, its queries find the names they were built from, and what is left to fill in is
reported by `vigie check`'s `placeholders` and by `check_cell`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from cli.cell import check_cell
from vigie.errors import ConfigError
from vigie.init import (
    MAX_NAME_CHARS,
    MAX_NAMES,
    PLACEHOLDER_MARK,
    Ask,
    InitMember,
    InitSpec,
    ask_spec,
    check_spec,
    clean_name,
    parse_timezone,
    placeholders,
    query_term,
    render_config,
    split_names,
    suggested_queries,
    toml_string,
    write_new_config,
)
from vigie.query import parse_query, text_words
from vigie.settings import Settings, load_settings

PROPERTIES = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _load(tmp_path: Path, spec: InitSpec) -> Settings:
    path = tmp_path / "vigie.toml"
    path.write_text(render_config(spec), encoding="utf-8")
    return load_settings(path)


def _matches(query: str, text: str) -> bool:
    return parse_query(query).matches(text_words(text))


def _watch(settings: Settings, name: str) -> str:
    return next(w.query for w in settings.watch if w.name == name)


ORGANISATIONS = [
    pytest.param(
        InitSpec(
            name="Société de transport de Montréal",
            aliases=("STM", "OPUS"),
            people=("Marie-Claude Léonard",),
            languages=("fr", "en"),
            region="CA",
        ),
        id="stm-fr-en-ca",
    ),
    pytest.param(
        InitSpec(name="Laiterie Boréale", aliases=("boreale",), languages=("fr",), region="fr"),
        id="accents-fr",
    ),
    pytest.param(
        InitSpec(name="L'Oréal", aliases=("Lancôme", "Garnier"), people=("Nicolas Hieronimus",)),
        id="apostrophe",
    ),
    pytest.param(
        InitSpec(name='Le "Vrai" Café', aliases=('Café "Noir", le vrai',), languages=("en",)),
        id="quotes",
    ),
    pytest.param(
        InitSpec(name="Acme\\Corp", people=("J. R. Smith", "O'Brien"), region="US"),
        id="backslash",
    ),
    pytest.param(InitSpec(name="OR", aliases=("NOT", "NEAR/5", "x*y")), id="operator-names"),
]


@pytest.mark.parametrize("spec", ORGANISATIONS)
def test_the_generated_file_loads_and_its_queries_find_the_names(
    tmp_path: Path, spec: InitSpec
) -> None:
    settings = _load(tmp_path, spec)
    assert settings.organisation.name == clean_name(spec.name)
    organisation = _watch(settings, "organisation")
    for name in (spec.name, *split_names(spec.aliases)):
        assert _matches(organisation, f"Hier, {name} a publié un communiqué.")
    assert not _matches(organisation, "Rien à voir avec le sujet.")
    kinds = [s.kind for s in settings.sources]
    assert kinds.count("news_search") == len(spec.languages)
    assert {"reddit", "mastodon", "bluesky", "hackernews"} <= set(kinds)
    search = suggested_queries(spec).search
    assert {s.query for s in settings.sources} == {search}


def test_news_search_feeds_follow_the_languages_and_the_region(tmp_path: Path) -> None:
    settings = _load(tmp_path, InitSpec(name="STM", languages=("fr", "en"), region="ca"))
    news = [(s.language, s.region, s.url) for s in settings.sources if s.kind == "news_search"]
    assert news == [
        ("fr", "CA", "https://news.google.com"),
        ("en", "CA", "https://news.google.com"),
    ]
    assert settings.organisation.timezone == "America/Toronto"
    assert settings.organisation.language == "fr"
    text = render_config(InitSpec(name="STM", languages=("en", "fr"), region="FR"))
    assert "hl=en-FR, gl=FR, ceid=FR:en" in text
    assert 'language = "en"' in text.split("[organisation]")[1].split("\n\n")[0]


def test_people_are_watched_with_the_organisation_and_crisis_words_near_it(tmp_path: Path) -> None:
    spec = InitSpec(
        name="Société de transport de Montréal",
        aliases=("STM",),
        people=("Marie-Claude Léonard, Awa Diallo",),
        languages=("fr",),
    )
    settings = _load(tmp_path, spec)
    people = _watch(settings, "personnes")
    assert _matches(people, "Awa Diallo quitte la STM")
    assert _matches(
        people, "Marie-Claude Léonard, directrice de la Société de transport de Montréal"
    )
    assert not _matches(people, "Awa Diallo en concert ce soir")
    crisis = _watch(settings, "crise")
    assert _matches(crisis, "La STM visée par une enquête sur ses contrats")
    assert _matches(crisis, "Grève à la Société de transport de Montréal")
    assert not _matches(crisis, "La STM inaugure une station")
    # French only: the English words are not suggested.
    assert "recall*" not in crisis
    english = suggested_queries(InitSpec(name="STM", languages=("en",)))
    assert english.people is None
    assert "recall*" in english.crisis and "rappel*" not in english.crisis


def test_search_sources_ask_for_the_names_not_the_crisis_words() -> None:
    queries = suggested_queries(
        InitSpec(name="Laiterie Boréale", aliases=("boreale", "Cheddar Nord"))
    )
    assert queries.search == '"laiterie boréale" OR boréale OR "cheddar nord"'
    assert "rappel" not in queries.search


# Names drawn from every kind of character, with quotes, backslashes, newlines and TOML's and
# the query language's delimiters made frequent.
HOSTILE = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(
            [
                '"',
                "'",
                "\\",
                "\n",
                "\r",
                "\t",
                "\x00",
                "\x7f",
                "(",
                ")",
                "*",
                "/",
                "#",
                "[",
                "]",
                "=",
                ",",
            ]
        ),
        st.sampled_from(["é", "œ", "ß", "İ", "ﬁ", "½", "\u200b", "\u2028", "\u0301"]),
        st.sampled_from(["A", "b", "9"]),
    ),
    min_size=1,
    max_size=40,
)
SEPARATOR_WORDS = st.sampled_from(['"""', "'''", "OR", "NOT", "AND", "NEAR/3", "\\u0041", "${x}"])


@st.composite
def hostile_names(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.one_of(HOSTILE, SEPARATOR_WORDS), min_size=1, max_size=4))
    return " ".join(parts)


def _problem(values: list[str]) -> str | None:
    """The error `render_config` must raise for these names, if any."""
    for value in values:
        cleaned = clean_name(value)
        if len(cleaned) > MAX_NAME_CHARS:
            return "longer than"
        if cleaned and not text_words(cleaned.replace('"', " ")):
            return "has no letter or digit"
    return None


@pytest.fixture
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("hostile")


@PROPERTIES
@given(
    name=hostile_names(),
    aliases=st.lists(hostile_names(), max_size=3),
    people=st.lists(hostile_names(), max_size=2),
)
@example(name='"""', aliases=[], people=[])
@example(name='Acme """ Corp', aliases=["a\\", "'''"], people=['x"\ny'])
@example(name='L\'Oréal\n[email]\nhost = "evil"', aliases=[], people=[])
@example(name='a\\" OR "b', aliases=["(c"], people=["d NEAR/2"])
@example(name="Acme", aliases=[], people=["\t", " , "])  # people that clean to nothing: no watch
def test_hostile_names_cannot_break_the_toml_or_the_queries(
    folder: Path, name: str, aliases: list[str], people: list[str]
) -> None:
    spec = InitSpec(name=name, aliases=tuple(aliases), people=tuple(people))
    parts = [part for value in (*aliases, *people) for part in value.split(",")]
    problem = "is empty" if not clean_name(name) else _problem([name, *parts])
    event(f"refused: {problem}" if problem else "written")
    if problem is not None:
        with pytest.raises(ConfigError, match=problem):
            render_config(spec)
        return
    settings = _load(folder, spec)
    assert settings.organisation.name == clean_name(name)
    assert "\n" not in settings.organisation.name
    assert settings.email.host.endswith("a-remplir.example")  # no name rewrote another key
    assert settings.watch[0].name == "organisation"
    organisation = _watch(settings, "organisation")
    assert _matches(organisation, clean_name(name))
    for alias in split_names(aliases):
        assert _matches(organisation, alias)
    if split_names(people):
        assert _matches(
            _watch(settings, "personnes"), f"{split_names(people)[0]} {clean_name(name)}"
        )
    else:
        assert all(w.name != "personnes" for w in settings.watch)


@pytest.mark.parametrize(
    "value",
    ['"""', "'''", "a'b\"c", "back\\slash", "tab\there", "nl\nx", "\x00\x7f", "\ud800", "é"],
)
def test_toml_string_round_trips(value: str) -> None:
    import tomllib

    expected = value.replace("\ud800", "\ufffd")
    assert tomllib.loads(f"key = {toml_string(value)}")["key"] == expected


@pytest.mark.parametrize(
    ("name", "term"),
    [
        ("Boréale", "Boréale"),
        ("Laiterie Boréale", '"Laiterie Boréale"'),
        ("L'Oréal", '"L\'Oréal"'),
        ('Le "Vrai" Café', '"Le Vrai Café"'),
        ("OR", '"OR"'),
        ("x*", '"x*"'),
        ("***", None),
    ],
)
def test_a_name_becomes_a_word_or_a_quoted_phrase(name: str, term: str | None) -> None:
    assert query_term(name) == term


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (InitSpec(name="  "), "--name: the organisation's name is empty"),
        (InitSpec(name="***"), "--name: '***' has no letter or digit"),
        (InitSpec(name="STM", aliases=("ok", "!!!")), "--aliases: '!!!' has no letter or digit"),
        (InitSpec(name="x" * 121), "--name: 'xxxx"),
        (
            InitSpec(name="STM", people=tuple(f"P{i}" for i in range(MAX_NAMES + 1))),
            f"--people: at most {MAX_NAMES} names",
        ),
        (InitSpec(name="STM", languages=("de",)), "--languages: 'de' is not supported"),  # type: ignore[arg-type]
        (InitSpec(name="STM", region="Canada"), "--region: 'Canada' is not a two-letter"),
        (InitSpec(name="STM", timezone="Mars/Olympus"), "--timezone: unknown time zone"),
        (
            InitSpec(name="STM", aliases=tuple(f"{'Société ' * 14}{i}" for i in range(MAX_NAMES))),
            "longer than 2000 characters",
        ),
    ],
)
def test_a_value_that_cannot_make_a_configuration_is_one_line_naming_the_option(
    spec: InitSpec, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        render_config(spec)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_placeholders_pass_check_but_the_cell_check_says_what_to_fill_in(tmp_path: Path) -> None:
    settings = _load(tmp_path, InitSpec(name="Laiterie Boréale"))
    assert placeholders(settings) == [
        "email.host",
        "email.sender",
        "cell.members[0]",
        "cell.members[1]",
        "cell.members[2]",
    ]
    assert {m.role for m in settings.cell.members} == {"lead", "spokesperson", "legal"}
    assert all(PLACEHOLDER_MARK in m.name for m in settings.cell.members)
    report = check_cell(settings)
    assert not report.ready
    flagged = [f.message for f in report.missing if f.code == "placeholder"]
    assert len(flagged) == 3
    assert "no_phone" not in [f.code for f in report.warnings]  # placeholders are missing already
    assert flagged[0].startswith("cell.members[0] : encore à remplir (À REMPLIR / TO FILL IN")


def test_a_filled_in_member_is_no_longer_a_placeholder(tmp_path: Path) -> None:
    text = render_config(InitSpec(name="Laiterie Boréale")).replace(
        f'name = "{PLACEHOLDER_MARK}: responsable / lead"\nemail = "responsable@a-remplir.example"',
        'name = "Awa Diallo"\nemail = "awa.diallo@laiterie-boreale.example"',
    )
    path = tmp_path / "vigie.toml"
    path.write_text(text, encoding="utf-8")
    assert "cell.members[0]" not in placeholders(load_settings(path))


def test_an_existing_file_is_kept_unless_forced(tmp_path: Path) -> None:
    path = tmp_path / "vigie.toml"
    path.write_text("# mine\n", encoding="utf-8")
    text = render_config(InitSpec(name="STM"))
    with pytest.raises(ConfigError, match=r"already exists: pass --force to replace it"):
        write_new_config(path, text, force=False)
    assert path.read_text(encoding="utf-8") == "# mine\n"
    settings = write_new_config(path, text, force=True)
    assert settings.config_path == path
    assert path.read_text(encoding="utf-8") == text
    assert path.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vigie.toml"]  # no temporary left


def test_a_text_that_does_not_load_is_never_written(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "vigie.toml"
    with pytest.raises(ConfigError, match="watch") as err:
        write_new_config(path, "[organisation]\nname = 'x'\n", force=False)
    assert str(err.value).startswith(f"{path}: ")
    assert not path.exists()
    assert list(path.parent.iterdir()) == []


def _spec(ask: Ask | None, said: list[str] | None = None, **given: object) -> InitSpec:
    """ask_spec with the options not in `given` left out (None)."""
    options: dict[str, Any] = dict.fromkeys(
        ("name", "aliases", "people", "languages", "region", "timezone", "members")
    )
    return ask_spec(**{**options, **given}, ask=ask, say=(said if said is not None else []).append)


def test_questions_are_asked_in_french_and_english_and_invalid_answers_asked_again(
    tmp_path: Path,
) -> None:
    answers = iter(
        [
            "Laiterie Boréale",
            "boreale, Cheddar Nord",
            "",
            "fr",
            "ca",  # not a language Vigie reads
            "fr",
            "Mars/Olympus",  # not a time zone
            "",  # France's
            "Awa Diallo",  # the lead
            "awa.diallo@",  # not an address
            "awa.diallo@laiterie-boreale.example",
            "appelez l’accueil",  # not a phone
            "+33 1 23 45 67 89",
            "",  # the spokesperson: later
            "",  # the legal counsel: later
            "Odile Opérations",  # the operator
            "odile@laiterie-boreale.example",
            "",  # no phone
        ]
    )
    prompts: list[str] = []
    said: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    spec = _spec(ask, said)
    assert spec == InitSpec(
        name="Laiterie Boréale",
        aliases=("boreale, Cheddar Nord",),
        people=("",),
        languages=("fr",),
        region="fr",
        timezone="Europe/Paris",
        members=(
            InitMember(
                "lead", "Awa Diallo", "awa.diallo@laiterie-boreale.example", "+33 1 23 45 67 89"
            ),
            InitMember("operator", "Odile Opérations", "odile@laiterie-boreale.example", None),
        ),
    )
    assert prompts[0] == "Nom de l'organisation / Organisation name: "
    assert prompts[3].startswith("Pays, code à deux lettres") and prompts[3].endswith("[CA]: ")
    assert prompts[4].endswith("[fr]: ")  # France's default language
    assert (
        prompts[6]
        == "Fuseau horaire (America/Toronto, Europe/Paris...) / Time zone [Europe/Paris]: "
    )
    assert prompts[8].startswith("Responsable de la cellule de crise : nom (Entrée : plus tard)")
    assert prompts[11].startswith("Responsable de la cellule de crise : téléphone (facultatif)")
    assert len(prompts) == 18
    # Plain words on what is expected, never an option's name.
    assert said[:2] == [
        "« ca » ne convient pas. Langues : fr, en (séparées par des virgules).",
        "'ca' does not fit. Languages: fr, en (comma-separated).",
    ]
    assert said[2].startswith("« Mars/Olympus » ne convient pas. Fuseau horaire : un nom comme")
    assert said[4].startswith("« awa.diallo@ » ne convient pas. Courriel : une adresse comme")
    assert said[6].startswith("« appelez l’accueil » ne convient pas. Téléphone : chiffres")
    assert len(said) == 8 and not any("--" in line for line in said)
    # The answers are in the file: time zone, the lead's phone, the operator.
    settings = _load(tmp_path, spec)
    assert settings.organisation.name == "Laiterie Boréale"
    assert settings.organisation.timezone == "Europe/Paris"
    lead = settings.member("Awa Diallo")
    assert lead is not None and lead.role == "lead" and lead.phone == "+33 1 23 45 67 89"
    assert [m.email for m in settings.source_operators] == ["odile@laiterie-boreale.example"]
    assert placeholders(settings) == [
        "email.host",
        "email.sender",
        "cell.members[1]",
        "cell.members[2]",
    ]


def test_a_time_zone_is_found_whatever_its_case() -> None:
    assert parse_timezone("europe/paris") == "Europe/Paris"
    assert parse_timezone(" America/Montreal ") == "America/Montreal"
    with pytest.raises(ConfigError, match=r"^--timezone: unknown time zone 'Europe/Lyon'"):
        parse_timezone("Europe/Lyon")


def test_given_options_are_not_asked_again() -> None:
    def ask(prompt: str) -> str:
        raise AssertionError(f"asked {prompt!r}")

    spec = _spec(
        ask,
        name="STM",
        aliases=["OPUS"],
        people=[],
        languages="en",
        region="us",
        timezone="america/chicago",
        members=["spokesperson: Ann Lee : ann@stm.example : +1 312 555 0100"],
    )
    assert (spec.name, spec.aliases, spec.languages, spec.region, spec.timezone) == (
        "STM",
        ("OPUS",),
        ("en",),
        "us",
        "America/Chicago",
    )
    assert spec.members == (
        InitMember("spokesperson", "Ann Lee", "ann@stm.example", "+1 312 555 0100"),
    )


@pytest.mark.parametrize(
    ("member", "message"),
    [
        ("boss:Ann Lee:ann@stm.example", "--member: 'boss:Ann Lee:ann@stm.example' is not ROLE"),
        ("lead:Ann Lee", "is not ROLE:NAME:EMAIL[:PHONE]"),
        ("lead::ann@stm.example", "--member lead: the name is empty"),
        ("lead:Ann Lee:ann@", "--member lead: 'ann@' is not an email address"),
        ("lead:Ann Lee:ann@stm.example:poste douze", "--member lead: 'poste douze' is not a phone"),
    ],
)
def test_a_member_option_that_cannot_be_read_names_the_option(member: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        _spec(None, name="STM", members=[member])
    assert message in str(err.value)


def test_without_a_terminal_the_name_is_required_and_the_rest_defaults() -> None:
    with pytest.raises(ConfigError, match=r"^--name is required when vigie init cannot ask"):
        _spec(None)
    spec = _spec(None, name="STM")
    assert spec == InitSpec(name="STM", languages=("fr", "en"), region="CA")
    assert check_spec(spec).timezone == "America/Toronto"  # the region's


def test_an_answer_that_never_comes_names_the_option() -> None:
    def ask(prompt: str) -> str:
        raise EOFError

    with pytest.raises(ConfigError, match=r"pass --name$"):
        _spec(ask)
