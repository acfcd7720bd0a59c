"""Channels in the configuration: Apprise URLs of network services only, refused at load with
one line naming the key (and never the URL, which holds a token); a watch's `notify_teams`
names teams that exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.configs import CELL_TOML, MINIMAL_TOML, write_toml
from vigie.errors import ConfigError
from vigie.settings import CHANNEL_SCHEMES, load_settings

SECRET = "s3cret-Tok3n"


def _member_with(channel: str) -> str:
    return (
        MINIMAL_TOML
        + CELL_TOML
        + f"""
[[cell.members]]
name = "Nadia Cloutier"
email = "nadia.cloutier@laiterie-boreale.example"
role = "communications"
channels = ["json://127.0.0.1:8080/ok", "{channel}"]
"""
    )


@pytest.mark.parametrize(
    "channel",
    [
        f"windows://{SECRET}",
        f"file:///etc/{SECRET}",
        f"macosx://{SECRET}",
        f"dbus://{SECRET}",
        f"syslog://{SECRET}",
        f"mailto://user:{SECRET}@example.org",
        f"myscript://{SECRET}",  # a custom plugin runs code
        f"apprise://{SECRET}@127.0.0.1/config",  # another Apprise's configuration
    ],
)
def test_a_channel_that_would_reach_this_machine_or_run_code_is_refused_at_load(
    tmp_path: Path, channel: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write_toml(tmp_path, _member_with(channel)))
    message = str(caught.value)
    assert "cell.members[3].channels[1]: the scheme" in message
    assert "is not allowed" in message and "\n" not in message
    assert SECRET not in message


@pytest.mark.parametrize("channel", ["not a url", f"json://127.0.0.1/{SECRET} x", "json://"])
def test_a_channel_that_is_not_an_apprise_url_is_refused_without_being_repeated(
    tmp_path: Path, channel: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write_toml(tmp_path, _member_with(channel)))
    assert "cell.members[3].channels[1]:" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_a_channel_is_kept_as_a_secret(tmp_path: Path) -> None:
    settings = load_settings(
        write_toml(tmp_path, _member_with(f"mmosts://chat.example.org/{SECRET}"))
    )
    member = settings.cell.members[3]
    assert member.channels[1].get_secret_value() == f"mmosts://chat.example.org/{SECRET}"
    assert SECRET not in repr(settings) and SECRET not in settings.model_dump_json()


def test_notify_teams_names_a_team(tmp_path: Path) -> None:
    text = MINIMAL_TOML.replace('name = "marque"\n', 'name = "marque"\nnotify_teams = ["Usine"]\n')
    with pytest.raises(ConfigError, match=r"watch\[0\]\.notify_teams: 'Usine' is not a team"):
        load_settings(write_toml(tmp_path, text))
    team = '\n[[teams]]\nname = "Usine"\nemails = ["usine@laiterie-boreale.example"]\n'
    settings = load_settings(write_toml(tmp_path, text + team))
    assert settings.watch[0].notify_teams == ("Usine",)


def test_every_allowed_scheme_is_a_service_apprise_knows_and_none_is_local() -> None:
    from apprise.manager_plugins import NotificationManager

    known = NotificationManager()
    for scheme in sorted(CHANNEL_SCHEMES):
        assert scheme in known, scheme
        assert known[scheme].__module__.startswith("apprise.plugins."), scheme
    local = {"windows", "macosx", "dbus", "kde", "glib", "gnome", "qt", "syslog", "mailto"}
    assert local <= set(known.schemas()) and not local & CHANNEL_SCHEMES
