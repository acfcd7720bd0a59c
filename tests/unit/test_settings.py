"""Unit tests of the configuration (`vigie.settings`): loading and validating TOML files,
secrets from the environment, and where the configuration file is looked for."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.configs import CELL_TOML, MINIMAL_TOML, settings_from, write_toml
from vigie.errors import ConfigError
from vigie.query import text_words
from vigie.search import positive_terms
from vigie.settings import load_secrets, load_settings, resolve_config_path

LOGIN = 'username = "vigie@laiterie-boreale.example"\n'
SOURCE_URL = 'url = "https://quotidien-du-nord.example/rss.xml"'


def config_error(tmp_path: Path, text: str) -> tuple[Path, str]:
    path = write_toml(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return path, str(caught.value)


# --- valid files -----------------------------------------------------------------------------


def test_minimal_config_loads_with_its_values(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, MINIMAL_TOML)
    assert settings.organisation.name == "Laiterie Boréale"
    assert settings.organisation.timezone == "America/Toronto"
    assert [w.name for w in settings.watch] == ["marque"]
    assert settings.sources[0].url == "https://quotidien-du-nord.example/rss.xml"
    assert str(settings.email.sender) == "vigie@laiterie-boreale.example"


def test_minimal_config_gets_the_documented_defaults(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, MINIMAL_TOML)
    source = settings.sources[0]
    assert (source.kind, source.platform, source.tier, source.language) == ("rss", "news", 3, None)
    assert (settings.detection.threshold, settings.detection.min_mentions) == (3.0, 5)
    assert settings.email.password_env == "VIGIE_SMTP_PASSWORD"
    assert settings.cell.members == ()


def test_the_config_path_is_remembered(tmp_path: Path) -> None:
    path = write_toml(tmp_path, MINIMAL_TOML)
    assert load_settings(path).config_path == path


def test_a_relative_warehouse_path_is_taken_from_the_config_folder(tmp_path: Path) -> None:
    text = MINIMAL_TOML + '\n[warehouse]\npath = "wh/vigie.duckdb"\n'
    settings = settings_from(tmp_path, text)
    assert settings.warehouse_path == tmp_path / "wh" / "vigie.duckdb"


def test_an_absolute_warehouse_path_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "v.duckdb"
    settings = settings_from(tmp_path, MINIMAL_TOML + f'\n[warehouse]\npath = "{target}"\n')
    assert settings.warehouse_path == target


def test_the_watch_query_is_available_parsed(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, MINIMAL_TOML)
    assert settings.watch[0].parsed.matches(text_words("La Laiterie Boréale"))


def test_a_watch_matches_every_language_unless_it_lists_some(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, MINIMAL_TOML)
    assert settings.watch[0].languages is None
    text = MINIMAL_TOML.replace(
        "NOT recrutement'\n", 'NOT recrutement\'\nlanguages = ["fr", "en"]\n'
    )
    assert settings_from(tmp_path, text).watch[0].languages == ("fr", "en")


@pytest.mark.parametrize(
    ("languages", "message_part"),
    [
        pytest.param("[]", "lists no language: leave it out", id="empty"),
        pytest.param('["de"]', "Input should be 'fr' or 'en'", id="unsupported"),
        pytest.param('"fr"', "tuple", id="not-a-list"),
    ],
)
def test_watch_languages_are_checked(tmp_path: Path, languages: str, message_part: str) -> None:
    text = MINIMAL_TOML.replace(
        "NOT recrutement'\n", f"NOT recrutement'\nlanguages = {languages}\n"
    )
    path, message = config_error(tmp_path, text)
    assert message.startswith(f"{path}: watch[0].languages")
    assert message_part in message
    assert "\n" not in message


def test_first_level_is_the_lowest_escalation_level(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, MINIMAL_TOML + CELL_TOML)
    assert [m.name for m in settings.first_level] == ["Awa Diallo", "Louis Tremblay"]


def test_the_example_config_of_the_repository_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "vigie.example.toml"
    settings = load_settings(example)
    assert len(settings.sources) >= 1


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, MINIMAL_TOML)
    with pytest.raises(Exception, match="frozen"):
        settings.organisation.name = "Autre"  # type: ignore[misc]


# --- invalid files: the message starts with the path and names the key ------------------------


@pytest.mark.parametrize(
    ("old", "new", "key", "message_part"),
    [
        pytest.param(
            SOURCE_URL,
            'url = "file:///etc/passwd"',
            "sources[0].url",
            "http",
            id="file-url",
        ),
        pytest.param(
            SOURCE_URL,
            'url = "ftp://quotidien-du-nord.example/rss.xml"',
            "sources[0].url",
            "http",
            id="ftp-url",
        ),
        pytest.param(
            SOURCE_URL,
            SOURCE_URL + '\nkind = "twitter"',
            "sources[0].kind",
            "not supported",
            id="unsupported-kind",
        ),
        pytest.param(
            SOURCE_URL,
            SOURCE_URL + "\ntier = 4",
            "sources[0].tier",
            "",
            id="tier-out-of-range",
        ),
        pytest.param(
            "NOT recrutement'",
            "NOT (recrutement'",
            "watch[0].query",
            "position 49: expected a closing parenthesis for the one at position 37",
            id="unclosed-parenthesis-in-query",
        ),
        pytest.param(
            "query = '(\"laiterie boréale\" OR boreale) NOT recrutement'",
            "query = 'NOT recrutement'",
            "watch[0].query",
            "NOT",
            id="only-not-query",
        ),
        pytest.param(
            'timezone = "America/Toronto"',
            'timezone = "Mars/Olympus"',
            "organisation.timezone",
            "Mars/Olympus",
            id="unknown-timezone",
        ),
        pytest.param(
            'language = "fr"',
            'language = "de"',
            "organisation.language",
            "",
            id="unsupported-language",
        ),
        pytest.param(
            'language = "fr"',
            'language = "fr"\nnmae = "Laiterie"',
            "organisation.nmae",
            "unknown key",
            id="unknown-key",
        ),
        pytest.param(
            'sender = "vigie@laiterie-boreale.example"',
            'sender = "not an address"',
            "email.sender",
            "",
            id="invalid-sender",
        ),
    ],
)
def test_an_invalid_value_names_the_file_and_the_key(
    tmp_path: Path, old: str, new: str, key: str, message_part: str
) -> None:
    assert old in MINIMAL_TOML
    path, message = config_error(tmp_path, MINIMAL_TOML.replace(old, new))
    assert message.startswith(f"{path}: {key}: ")
    assert message_part in message


def test_a_missing_email_section_is_required(tmp_path: Path) -> None:
    text = MINIMAL_TOML.split("[email]")[0]
    path, message = config_error(tmp_path, text)
    assert message == f"{path}: email: is required: add it (docs/configuration.md lists every key)"


def test_no_source_at_all_is_refused(tmp_path: Path) -> None:
    text = MINIMAL_TOML.replace('[[sources]]\nname = "Le Quotidien du Nord"\n' + SOURCE_URL, "")
    path, message = config_error(tmp_path, text)
    assert message.startswith(f"{path}: sources: ")


def test_a_source_name_used_twice_is_named(tmp_path: Path) -> None:
    text = (
        MINIMAL_TOML + '\n[[sources]]\nname = "Le Quotidien du Nord"\nurl = "https://x.example/"\n'
    )
    path, message = config_error(tmp_path, text)
    assert message.startswith(f"{path}: ")
    assert "sources[1].name" in message
    assert "used twice" in message


def test_a_login_other_than_the_sender_is_refused(tmp_path: Path) -> None:
    path, message = config_error(tmp_path, MINIMAL_TOML + 'username = "autre@example.org"\n')
    assert message.startswith(f"{path}: email: ")
    assert "username" in message


def test_invalid_toml_is_reported_as_such(tmp_path: Path) -> None:
    path, message = config_error(tmp_path, MINIMAL_TOML + "\n[email\n")
    assert message.startswith(f"{path}: invalid TOML")


def test_a_file_that_is_not_utf8_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "vigie.toml"
    path.write_bytes(MINIMAL_TOML.encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(path)


def test_a_missing_file_is_reported_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value).startswith(f"{path}: no such configuration file")


# --- secrets ---------------------------------------------------------------------------------


def test_a_login_without_its_password_variable_names_the_variable(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, MINIMAL_TOML + LOGIN)
    with pytest.raises(ConfigError, match="VIGIE_SMTP_PASSWORD"):
        load_secrets(settings, env={})


def test_an_empty_password_variable_counts_as_missing(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, MINIMAL_TOML + LOGIN)
    with pytest.raises(ConfigError, match="VIGIE_SMTP_PASSWORD"):
        load_secrets(settings, env={"VIGIE_SMTP_PASSWORD": ""})


def test_a_custom_password_variable_is_named_in_the_error(tmp_path: Path) -> None:
    text = MINIMAL_TOML + (
        'username = "vigie@laiterie-boreale.example"\npassword_env = "BOREALE_SMTP_PW"\n'
    )
    settings = settings_from(tmp_path, text)
    with pytest.raises(ConfigError, match="BOREALE_SMTP_PW"):
        load_secrets(settings, env={"VIGIE_SMTP_PASSWORD": "wrong-variable"})


def test_the_password_is_read_from_the_environment(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, MINIMAL_TOML + LOGIN)
    secrets = load_secrets(settings, env={"VIGIE_SMTP_PASSWORD": "s3cr3t-Boréale"})
    assert secrets.smtp_password is not None
    assert secrets.smtp_password.get_secret_value() == "s3cr3t-Boréale"


def test_the_password_is_not_visible_in_repr_or_str(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, MINIMAL_TOML + LOGIN)
    secrets = load_secrets(settings, env={"VIGIE_SMTP_PASSWORD": "s3cr3t-Boréale"})
    assert "s3cr3t" not in repr(secrets)
    assert "s3cr3t" not in str(secrets)


def test_no_login_needs_no_password(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, MINIMAL_TOML)
    assert load_secrets(settings, env={}).smtp_password is None


# --- resolve_config_path ---------------------------------------------------------------------


def test_explicit_config_wins_over_the_environment() -> None:
    path = resolve_config_path("cli.toml", env={"VIGIE_CONFIG": "/etc/vigie/env.toml"})
    assert path == Path("cli.toml")


def test_the_environment_variable_is_used_without_explicit_config() -> None:
    path = resolve_config_path(None, env={"VIGIE_CONFIG": "/etc/vigie/env.toml"})
    assert path == Path("/etc/vigie/env.toml")


@pytest.mark.parametrize(
    "env",
    [pytest.param({}, id="unset"), pytest.param({"VIGIE_CONFIG": ""}, id="empty")],
)
def test_the_default_is_vigie_toml(env: dict[str, str]) -> None:
    assert resolve_config_path(None, env=env) == Path("vigie.toml")


def test_an_explicit_path_like_is_accepted(tmp_path: Path) -> None:
    assert resolve_config_path(tmp_path / "x.toml", env={}) == tmp_path / "x.toml"


# --- source tokens ---------------------------------------------------------------------------


def test_a_source_token_is_named_by_its_variable_never_written_in_the_file(tmp_path: Path) -> None:
    text = MINIMAL_TOML.replace(
        SOURCE_URL, SOURCE_URL + '\ntoken_env = "QUOTIDIEN_TOKEN"\ntoken_header = "X-Api-Key"'
    )
    source = settings_from(tmp_path, text).sources[0]
    assert (source.token_env, source.token_header, source.token_param) == (
        "QUOTIDIEN_TOKEN",
        "X-Api-Key",
        None,
    )


@pytest.mark.parametrize(
    ("keys", "message_part"),
    [
        ('token_header = "X-Api-Key"', "token_env: is required with token_header or token_param"),
        ('token_param = "key"', "token_env: is required with token_header or token_param"),
        (
            'token_env = "T"\ntoken_header = "X-Api-Key"\ntoken_param = "key"',
            "token_header and token_param: give one of them, not both",
        ),
        ('token_env = "T"\ntoken_header = "Host"', "'Host' is a header Vigie sets itself"),
        ('token_env = "T"\ntoken_header = "X-A\\r\\nB"', "token_header: "),
        ('token_env = "A TOKEN"', "token_env: "),
        ('token_env = "T"\ntoken_param = "k&x=1"', "token_param: "),
    ],
    ids=[
        "header-alone",
        "param-alone",
        "both",
        "vigie-header",
        "crlf-header",
        "bad-env",
        "bad-param",
    ],
)
def test_a_token_that_cannot_be_sent_safely_is_refused(
    tmp_path: Path, keys: str, message_part: str
) -> None:
    path, message = config_error(
        tmp_path, MINIMAL_TOML.replace(SOURCE_URL, SOURCE_URL + "\n" + keys)
    )
    assert message.startswith(f"{path}: sources[0]")
    assert message_part in message


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("http://news.example/api", False),
        ("HTTP://news.example/api", False),
        ("https://news.example/api", True),
        ("http://127.0.0.1:8080/api", True),
        ("http://localhost/api", True),
        ("http://127.0.0.1.news.example/api", False),
    ],
)
def test_a_token_is_only_sent_over_https_or_to_this_machine(
    tmp_path: Path, url: str, accepted: bool
) -> None:
    text = MINIMAL_TOML.replace(SOURCE_URL, f'url = "{url}"\ntoken_env = "T"')
    if accepted:
        assert settings_from(tmp_path, text).sources[0].token_env == "T"
    else:
        _, message = config_error(tmp_path, text)
        assert "a token is only sent over https (or to this machine)" in message


# --- bounds and text shown to people --------------------------------------------------------

SEARCH_SOURCE = '\n[[sources]]\nname = "HN"\nkind = "hackernews"\n'


@pytest.mark.parametrize(
    ("terms", "separator", "message_part"),
    [
        (30_000, " OR ", "has 288886 characters, more than 2000"),
        (301, " ", "has 301 terms, more than 300"),
    ],
    ids=["30000-or-terms", "301-terms-in-2000-characters"],
)
def test_a_huge_watch_query_is_refused_at_once_naming_the_watch(
    tmp_path: Path, terms: int, separator: str, message_part: str
) -> None:
    """Before the bound, 30,000 OR terms took 75 s to derive a search string (quadratic)."""
    query = separator.join(f"w{i}" if separator == " OR " else "w" for i in range(terms))
    text = MINIMAL_TOML.replace(
        "query = '(\"laiterie boréale\" OR boreale) NOT recrutement'", f"query = '{query}'"
    )
    started = time.perf_counter()
    path, message = config_error(tmp_path, text + SEARCH_SOURCE)
    assert time.perf_counter() - started < 2.0
    assert message.startswith(f"{path}: watch[0].query: ")
    assert "watch 'marque'" in message and message_part in message, message


def test_the_search_string_of_the_largest_query_allowed_is_derived_quickly() -> None:
    query = " ".join(f"w{i}" for i in range(300))  # 300 terms in 1,989 characters
    started = time.perf_counter()
    assert positive_terms(query)[-1] == "w299"
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        (
            'name = "Le Quotidien du Nord"',
            'name = "Le Quotidien\\u001b[2J du Nord"',
            "sources[0].name",
        ),
        ('name = "Laiterie Boréale"', 'name = "Laiterie\\rBoréale"', "organisation.name"),
        ('name = "Awa Diallo"', 'name = "Awa\\u202eDiallo"', "cell.members[0].name"),
        ('name = "Awa Diallo"', 'name = "Awa\\u0085Diallo"', "cell.members[0].name"),
        (
            "query = '(\"laiterie boréale\" OR boreale) NOT recrutement'",
            'query = "boreale\\u001b[31m"',
            "watch[0].query",
        ),
        ("[email]\n", '[email]\nsender_name = "Vigie\\u0007"\n', "email.sender_name"),
    ],
    ids=["source-escape", "org-cr", "member-bidi", "member-c1", "query-escape", "sender-bell"],
)
def test_a_control_character_in_a_name_shown_to_people_is_refused_naming_the_key(
    tmp_path: Path, old: str, new: str, key: str
) -> None:
    text = MINIMAL_TOML + CELL_TOML
    assert old in text
    path, message = config_error(tmp_path, text.replace(old, new, 1))
    assert message.startswith(f"{path}: {key}: holds the control character U+"), message
