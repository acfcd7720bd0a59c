"""compose_email: the MIME tree of an outbox message, before any server is involved."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage

from tasks.notify.delivery import compose_email
from vigie.models import InlineImage, OutboxMessage

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _message(**changes: object) -> OutboxMessage:
    fields: dict[str, object] = {
        "message_id": "digest.daily.20261125T120000Z",
        "kind": "digest",
        "recipients": ("awa.diallo@laiterie-boreale.example", "louis@laiterie-boreale.example"),
        "subject": "[Vigie][RÉSUMÉ] Laiterie Boréale — 25 novembre 2026",
        "html": '<p>Crème brûlée</p><img src="cid:volume-abc">',
        "text": "Crème brûlée",
        "images": (InlineImage("volume-abc", PNG),),
    }
    fields.update(changes)
    return OutboxMessage(**fields)  # type: ignore[arg-type]


def _reparse(mime: EmailMessage) -> EmailMessage:
    parsed = email.message_from_bytes(mime.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _content(part: object) -> str:
    """A text part's content; lines end in CRLF on the wire (policy SMTP)."""
    return str(part.get_content()).replace("\r\n", "\n")  # type: ignore[attr-defined]


def _tree(part: EmailMessage) -> object:
    if part.is_multipart():
        return (part.get_content_type(), [_tree(p) for p in part.iter_parts()])  # type: ignore[arg-type]
    return part.get_content_type()


def test_text_then_related_html_and_image() -> None:
    parsed = _reparse(
        compose_email(
            _message(), sender="vigie@laiterie-boreale.example", sender_name="Vigie", now=NOW
        )
    )
    assert _tree(parsed) == (
        "multipart/alternative",
        ["text/plain", ("multipart/related", ["text/html", "image/png"])],
    )
    text, related = parsed.iter_parts()
    html_part, image = related.iter_parts()  # type: ignore[attr-defined]
    assert _content(text) == "Crème brûlée\n"
    assert text.get_content_charset() == "utf-8"
    assert "Crème brûlée" in html_part.get_content()
    assert image["Content-ID"] == "<volume-abc>"
    assert image.get_content() == PNG
    assert f"cid:{image['Content-ID'].strip('<>')}" in html_part.get_content()


def test_headers_are_single_lines_with_the_deterministic_message_id() -> None:
    message = _message(subject="Rappel\r\nBcc: attacker@example.org\u202e fin", images=())
    mime = compose_email(
        message, sender="vigie@laiterie-boreale.example", sender_name="Vigie", now=NOW
    )
    raw = mime.as_bytes()
    parsed = _reparse(mime)
    assert parsed["Subject"] == "Rappel Bcc: attacker@example.org fin"
    assert parsed["Bcc"] is None
    assert b"\nBcc:" not in raw
    assert parsed["Message-ID"] == "<digest.daily.20261125T120000Z@vigie>"
    assert parsed["Date"] == "Wed, 25 Nov 2026 12:00:00 +0000"
    assert [a.addr_spec for a in parsed["To"].addresses] == [
        "awa.diallo@laiterie-boreale.example",
        "louis@laiterie-boreale.example",
    ]
    # Without images there is no related part.
    assert _tree(parsed) == ("multipart/alternative", ["text/plain", "text/html"])


def test_accented_subject_survives_encoding() -> None:
    parsed = _reparse(
        compose_email(
            _message(), sender="vigie@laiterie-boreale.example", sender_name="Vigie", now=NOW
        )
    )
    assert parsed["Subject"] == "[Vigie][RÉSUMÉ] Laiterie Boréale — 25 novembre 2026"
    assert (
        compose_email(_message(), sender="v@x.example", sender_name="Vigie", now=NOW)
        .as_bytes()
        .isascii()
    )


def test_a_message_without_text_gets_one_from_its_html() -> None:
    message = _message(
        text="", html="<h2>Alerte &amp; rappel</h2><p>Crème<br>brûlée</p><script>x()</script>"
    )
    parsed = _reparse(
        compose_email(
            message, sender="vigie@laiterie-boreale.example", sender_name="Vigie", now=NOW
        )
    )
    text = next(parsed.iter_parts())
    assert _content(text) == "Alerte & rappel\nCrème\nbrûlée\n"
