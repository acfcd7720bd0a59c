"""The dead man's switch as a Prefect automation, where the Prefect server lives.

Every cycle in which a source answered emits `vigie.watch.watched` (tasks/publish/events.py). The
automation's trigger is proactive: after such an event, it expects the next one within
`health.watchdog_minutes` (the limit of `vigie watchdog`); when none comes (the worker or
`vigie serve` is dead, every source fails, the flow crashes), it fires once and the server
emails the operators through a `VigieEmail` block (cli/email_block.py). The same event in
`after` and `expect`, bucketed per watch, is Prefect's pattern for heartbeats: the window
restarts at each event, and after firing nothing is armed until the next watching cycle, so a
long stop is told once. Prefect sends nothing when the watch comes back (an event trigger has
no "resolved" state); `vigie watchdog` does.

The email is sent by the server's actions service, so no worker needs to be alive; the server
must run in Vigie's environment to load the block (the `prefect.collections` entry point). When
the server itself is down, nobody is told by it: that is what `vigie watchdog` in cron is for.

`ensure_watch_automation` creates the block and the automation, or updates them by name: never
duplicated. The automation is rewritten only when it differs, because Prefect gives an updated
trigger new ids, which disarms a window already running until the next watching cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

from cli.email_block import VigieEmail
from cli.watchdog import WATCHDOG_TEXT, duration_text
from tasks.publish.events import WATCH_WATCHED, watch_key, watch_resource
from vigie.settings import Settings

if TYPE_CHECKING:
    from prefect.events.schemas.automations import AutomationCore

AUTOMATION_TEXT: dict[str, dict[str, str]] = {
    "fr": {
        "subject": "[Vigie][VEILLE ARRÊTÉE] Aucun cycle de veille depuis plus de {limit}",
        "intro": (
            "La veille ne tourne plus : aucun cycle ne s’est terminé avec au moins une source "
            "collectée depuis plus de {limit}. Une crise qui commence maintenant ne serait pas "
            "vue. (Avis de l’automatisation Prefect « {name} ».)"
        ),
    },
    "en": {
        "subject": "[Vigie][WATCH STOPPED] No watch cycle for more than {limit}",
        "intro": (
            "The watch is not running: no cycle has completed with at least one source "
            "collected for more than {limit}. A crisis starting now would not be seen. "
            "(Notice of the Prefect automation “{name}”.)"
        ),
    },
}


@dataclass(frozen=True, slots=True)
class AutomationSetup:
    """What `ensure_watch_automation` did: the automation's name and id, and how."""

    name: str
    automation_id: str
    block_name: str
    action: Literal["created", "updated", "unchanged"]
    within: timedelta


def automation_name(settings: Settings) -> str:
    return f"vigie-watchdog-{watch_key(settings)}"


def block_name(settings: Settings) -> str:
    return f"vigie-watchdog-email-{watch_key(settings)}"


def email_block(settings: Settings) -> VigieEmail:
    """The block that emails the operators with the configured SMTP server; with a login, it
    names the variable the Prefect server reads the password from (never the password)."""
    email = settings.email
    return VigieEmail(
        host=email.host,
        port=email.port,
        security=email.security,
        sender=email.sender,
        sender_name=email.sender_name,
        username=email.username,
        password_env=email.password_env if email.username else None,
        ca_file=str(email.ca_file.resolve()) if email.ca_file else None,
        timeout_s=email.timeout_s,
        recipients=[m.email for m in settings.operators],
    )


def notice_texts(settings: Settings, within: timedelta) -> tuple[str, str]:
    """The subject and body (Jinja templates rendered by the server) of the notice; the
    triggering event is the last `vigie.watch.watched`, so it names the last cycle that
    watched."""
    language = settings.organisation.language
    text = AUTOMATION_TEXT[language]
    limit = duration_text(within) if within >= timedelta(minutes=1) else f"{within.seconds} s"
    last = WATCHDOG_TEXT[language]["last"]
    body = (
        text["intro"].format(limit=limit, name=automation_name(settings))
        + "\n\n"
        + f"{last}: {{{{ event.payload.cycle_id }}}} ({{{{ event.payload.finished_at }}}})"
        + "\n\n"
        + WATCHDOG_TEXT[language]["check"]
        + "\n"
    )
    return text["subject"].format(limit=limit), body


def watch_automation(settings: Settings, block_id: str, within: timedelta) -> AutomationCore:
    """The automation: a proactive trigger on `vigie.watch.watched` of this watch, and an
    email through the block `block_id`."""
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    resource_id = watch_resource(settings)["prefect.resource.id"]
    subject, body = notice_texts(settings, within)
    return AutomationCore(
        name=automation_name(settings),
        description=(
            f"Vigie's dead man's switch for {settings.organisation.name}: emails the operators "
            f"when no watch cycle has completed with a source answering for {within}."
        ),
        enabled=True,
        trigger=EventTrigger(
            match={"prefect.resource.id": resource_id},
            after={WATCH_WATCHED},
            expect={WATCH_WATCHED},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=within,
        ),
        actions=[
            SendNotification(block_document_id=block_id, subject=subject, body=body)  # type: ignore[arg-type]
        ],
    )


def _comparable(automation: AutomationCore) -> dict[str, Any]:
    from prefect.events.schemas.automations import AutomationCore

    core = AutomationCore.model_validate(automation.model_dump())
    return core.model_dump(mode="json", exclude={"trigger": {"id"}})


def ensure_watch_automation(settings: Settings, *, within: timedelta) -> AutomationSetup:
    """Create or update, by name, the email block and the automation on the server of
    PREFECT_API_URL. Raises what the Prefect client raises when the server does not answer."""
    from prefect import get_client
    from prefect.client.schemas.actions import BlockDocumentUpdate

    block = email_block(settings)
    name = block_name(settings)
    block_id = str(block.save(name, overwrite=True))
    wanted = watch_automation(settings, block_id, within)
    with get_client(sync_client=True) as client:
        # Saving over a block merges the new data into the old: a password an earlier
        # version stored there would stay. Keep only what the block has now.
        saved = client.read_block_document(UUID(block_id), include_secrets=True)
        fields = set(VigieEmail.model_fields)
        if set(saved.data) - fields:
            client.update_block_document(
                saved.id,
                BlockDocumentUpdate(
                    data={k: v for k, v in saved.data.items() if k in fields},
                    merge_existing_data=False,
                ),
            )
        existing = client.read_automations_by_name(wanted.name)
        for duplicate in existing[1:]:  # made by hand, or by two starts at once
            client.delete_automation(duplicate.id)
        if not existing:
            automation_id = client.create_automation(wanted)
            action: Literal["created", "updated", "unchanged"] = "created"
        else:
            automation_id = existing[0].id
            if _comparable(existing[0]) == _comparable(wanted):
                action = "unchanged"
            else:
                client.update_automation(automation_id, wanted)
                action = "updated"
    return AutomationSetup(wanted.name, str(automation_id), name, action, within)
