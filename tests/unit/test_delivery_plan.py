"""What may go now and what waits: quiet hours, the hourly cap, back-off, and the MIME built."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from email import message_from_bytes
from email.policy import default
from zoneinfo import ZoneInfo

import pytest

from tasks.notify.delivery import (
    PendingMail,
    backoff,
    compose_email,
    parse_quiet_hours,
    plan_delivery,
    quiet_until,
)
from vigie.models import InlineImage, OutboxMessage

TORONTO = ZoneInfo("America/Toronto")
# 23:30 in Toronto (UTC-5 in November).
NIGHT = datetime(2026, 11, 26, 4, 30, tzinfo=UTC)
DAY = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)


def _mail(n: int, *, critical: bool = False, to: tuple[str, ...] = ("a@x.example",)) -> PendingMail:
    message = OutboxMessage(
        f"m{n}", "alert" if critical else "digest", to, f"s{n}", "<p>x</p>", critical=critical
    )
    return PendingMail(message, 0)


def _plan(pending: list[PendingMail], now: datetime, **options: object):  # type: ignore[no-untyped-def]
    settings: dict[str, object] = {
        "sent_last_hour": {},
        "hourly_cap": 10,
        "quiet": (time(22, 0), time(7, 0)),
        "zone": TORONTO,
        "language": "fr",
        "now": now,
    }
    settings.update(options)
    return plan_delivery(pending, **settings)  # type: ignore[arg-type]


def test_quiet_hours_hold_routine_mail_until_they_end_but_never_an_alert() -> None:
    plan = _plan([_mail(1), _mail(2, critical=True)], NIGHT)
    assert [m.message_id for m in plan.send] == ["m2"]
    [hold] = plan.hold
    assert hold.message_id == "m1" and hold.reason == "quiet hours"
    assert hold.until == datetime(2026, 11, 26, 7, 0, tzinfo=TORONTO)


def test_outside_quiet_hours_everything_goes() -> None:
    plan = _plan([_mail(1), _mail(2, critical=True)], DAY)
    assert [m.message_id for m in plan.send] == ["m1", "m2"] and plan.hold == []


def test_quiet_hours_may_stay_within_a_day() -> None:
    quiet = parse_quiet_hours("12:00-14:00")
    assert quiet_until(quiet, datetime(2026, 11, 26, 17, 30, tzinfo=UTC), TORONTO) == datetime(
        2026, 11, 26, 14, 0, tzinfo=TORONTO
    )
    assert quiet_until(quiet, DAY, TORONTO) is None  # 10:00 in Toronto


@pytest.mark.parametrize("value", ["22-07", "25:00-07:00", "07:00-07:00", ""])
def test_malformed_quiet_hours_are_refused(value: str) -> None:
    with pytest.raises(ValueError):
        parse_quiet_hours(value)


def test_the_hourly_cap_holds_the_excess_with_one_note_per_recipient() -> None:
    earlier = [DAY - timedelta(minutes=50 - k) for k in range(9)]
    pending = [_mail(k) for k in range(3)] + [_mail(9, critical=True)]
    plan = _plan(pending, DAY, sent_last_hour={"a@x.example": earlier}, quiet=None)
    # Nine sent in the hour: one more goes, two wait, the alert passes anyway.
    assert [m.message_id for m in plan.send] == ["m0", "m9"]
    assert [(h.message_id, h.reason) for h in plan.hold] == [
        ("m1", "hourly cap"),
        ("m2", "hourly cap"),
    ]
    # The tenth message of the hour went now: the next slot frees when the oldest ages out.
    assert {h.until for h in plan.hold} == {earlier[0] + timedelta(hours=1)}
    [note] = plan.notes
    assert note.recipients == ("a@x.example",)
    assert "2 autres messages non urgents vous seront envoyés" in note.text
    # At the organisation's local time (10:10 in Toronto), not UTC.
    assert "après 10:10 (heure de Toronto)" in note.text and "UTC" not in note.text, note.text
    english = _plan(
        pending, DAY, sent_last_hour={"a@x.example": earlier}, quiet=None, language="en"
    )
    assert "after 10:10 (Toronto time)" in english.notes[0].text, english.notes[0].text


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff(n) for n in (1, 2, 3)] == [timedelta(minutes=m) for m in (1, 2, 4)]
    assert backoff(30) == timedelta(hours=1)


def test_the_email_has_a_text_alternative_and_inline_images() -> None:
    message = OutboxMessage(
        "al-1.opened",
        "alert",
        ("awa@x.example",),
        "[Vigie][ALERTE] Laiterie Boréale\r\nBcc: intrus@evil.example",
        '<p>Rappel <img src="cid:volume-1"></p>',
        text="Rappel de fromages, accentués : éàç",
        images=(InlineImage("volume-1", b"\x89PNG\r\n\x1a\nfake"),),
    )
    raw = compose_email(message, sender="vigie@x.example", sender_name="Vigie").as_bytes()
    parsed = message_from_bytes(raw, policy=default)
    assert parsed.get_content_type() == "multipart/alternative"
    plain, related = parsed.get_payload()  # type: ignore[misc]
    assert plain.get_content_type() == "text/plain"
    assert plain.get_content().strip() == "Rappel de fromages, accentués : éàç"
    assert related.get_content_type() == "multipart/related"
    html_part, image = related.get_payload()
    assert html_part.get_content_type() == "text/html"
    assert image.get_content_type() == "image/png" and image["Content-ID"] == "<volume-1>"
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "[Vigie][ALERTE] Laiterie Boréale Bcc: intrus@evil.example"
    assert parsed["Message-ID"] == "<al-1.opened@vigie>"


def test_without_its_own_text_the_alternative_is_the_html_text() -> None:
    message = OutboxMessage("m", "digest", ("a@x.example",), "s", "<p>Bonjour &amp; <b>à</b></p>")
    parsed = message_from_bytes(
        compose_email(message, sender="v@x.example", sender_name="V").as_bytes(), policy=default
    )
    plain = parsed.get_body(("plain",))
    assert plain is not None and "<" not in plain.get_content()
    assert "Bonjour &" in plain.get_content() and "à" in plain.get_content()
