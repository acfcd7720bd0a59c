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


def test_vigie_check_names_channels_without_their_url_and_warns_of_plain_http(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.main import main

    text = _member_with(f"mmost://chat.laiterie-boreale.example/{SECRET}")
    assert main(["--config", str(write_toml(tmp_path, text)), "check"]) == 0
    out = capsys.readouterr().out
    [channels] = [line for line in out.splitlines() if line.startswith("Channels (2): ")]
    assert "Nadia Cloutier · json #" in channels and "Nadia Cloutier · mmost #" in channels
    # The loopback webhook is fine; the remote Mattermost over plain HTTP is not.
    [warning] = [line for line in out.splitlines() if "unencrypted" in line]
    assert warning.startswith("Warning: channel Nadia Cloutier · mmost #")
    assert warning.endswith("use mmosts:// if the service has HTTPS")
    assert SECRET not in out and "chat.laiterie-boreale" not in out


def test_chat_text_of_a_drill_says_so_and_reasons_come_from_the_outcome() -> None:
    from datetime import UTC, datetime

    from tasks.notify.channels import AlertFacts, _classify, chat_text
    from warehouse.channel_outbox import UnplannedMessage

    message = UnplannedMessage("al-1.opened", "alert", "al-1", (), "s", "", True, True)
    facts = AlertFacts("marque", "alerte", datetime(2026, 11, 25, 15, 0, tzinfo=UTC), 12)
    title, body = chat_text(message, facts, language="en", timezone="America/Toronto")
    assert title == "[DRILL] Vigie — ALERT: “marque”"
    assert body.startswith("ALERT on “marque” since 2026-11-25 10:00: 12 mentions")
    url_line = f"JSON POST URL: http://127.0.0.1:9/{SECRET}"
    cases = {
        ("Socket Exception: Read timed out. (read timeout=4.0)",): "uncertain",
        ("Failed to send JSON POST notification: Bad Gateway, error=502.",): "refused",
        ("Socket Exception: ... Caused by NewConnectionError ... Connection refused",): "refused",
    }
    for logs, outcome in cases.items():
        found = _classify(False, False, [url_line, *logs])
        assert found.outcome == outcome and SECRET not in found.reason
    assert _classify(False, True, []).outcome == "uncertain"  # Apprise's own deadline
    assert _classify(True, False, [url_line]).outcome == "sent"
    assert _classify(False, False, [url_line, "error=502"]).reason == (
        "the service answered HTTP 502"
    )
