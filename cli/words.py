"""What the commands the crisis cell uses (`vigie ack`, `readiness`, `drill`, `incident`, and
what `vigie serve` says of the runs it leaves) print, in the organisation's language (French or
English). Expected errors stay one English line, as every command's."""

from __future__ import annotations

WORDS: dict[str, dict[str, str]] = {
    "fr": {
        "ack.done": "{alert_id} pris en charge par {by}",
        "ack.already": "{alert_id} est déjà {status} : rien n’a changé",
        "status.acknowledged": "prise en charge",
        "status.resolved": "résolue",
        "ack.run_closed": "la demande de prise en charge de {alert_id} dans Prefect est close",
        "ack.run_left": (
            "la demande de prise en charge de {alert_id} dans Prefect a repris mais n’est pas "
            "finie : aucun processus ne l’attend (`vigie serve` tourne-t-il ?)"
        ),
        "ack.run_error": (
            "la demande de prise en charge dans Prefect n’a pas pu reprendre ({error})"
        ),
        "readiness.no_team": "Aucune équipe à qui rappeler la cellule : ajoutez [[teams]] à la "
        "configuration.",
        "readiness.sent": "envoyé",
        "readiness.failed": "ÉCHEC",
        "readiness.queued": "en file d’attente",
        "readiness.already_sent": "déjà envoyé pour cette période",
        "readiness.already_queued": "déjà en file d’attente pour cette période",
        "drill.start": (
            "Exercice {drill_id} : l’alerte part à la cellule ; prenez-la en charge avec "
            "vigie ack ALERTE --by NOM (attente jusqu’à {minutes} min)"
        ),
        "drill.done": (
            "exercice {drill_id} : {status}, alerte {alert_id}, détectée en {detect}, "
            "prise en charge en {ack}"
        ),
        "incident.none": (
            "Aucun incident pour l’instant (lancez le mode incident depuis l’interface "
            "Prefect : incident-mode)."
        ),
        "incident.stop_asked": ", arrêt demandé par {by}",
        "incident.running": "en cours",
        "incident.ended": "terminé",
        "incident.stopped": "arrêté",
        "incident.crashed": "interrompu",
        "incident.line": (
            "{incident_id} « {name} » {status}{stop} : {start} -> {end}, "
            "{sitreps} point(s) de situation"
        ),
        "incident.stopping": (
            "{incident_id} s’arrêtera après son cycle en cours et enverra son rapport "
            "(demandé par {by})"
        ),
        "serve.left": "  {name} ({flow}) : inachevé à l’arrêt, maintenant {state}",
    },
    "en": {
        "ack.done": "{alert_id} acknowledged by {by}",
        "ack.already": "{alert_id} was already {status}; nothing changed",
        "status.acknowledged": "acknowledged",
        "status.resolved": "resolved",
        "ack.run_closed": "the acknowledge run of {alert_id} in the Prefect UI is closed",
        "ack.run_left": (
            "the acknowledge run of {alert_id} in the Prefect UI was resumed but has not "
            "finished: no process waits for it (is `vigie serve` running?)"
        ),
        "ack.run_error": "the acknowledge run in the Prefect UI could not be resumed ({error})",
        "readiness.no_team": "No team to remind: add [[teams]] to the configuration.",
        "readiness.sent": "sent",
        "readiness.failed": "FAILED",
        "readiness.queued": "queued",
        "readiness.already_sent": "already sent this period",
        "readiness.already_queued": "already queued this period",
        "drill.start": (
            "Drill {drill_id}: the alert goes to the cell; take charge with "
            "vigie ack ALERT --by NAME (waiting up to {minutes} min)"
        ),
        "drill.done": (
            "drill {drill_id}: {status}, alert {alert_id}, time to detect {detect}, "
            "time to acknowledge {ack}"
        ),
        "incident.none": (
            "No incident yet (start incident mode from the Prefect UI: incident-mode)."
        ),
        "incident.stop_asked": ", stop asked by {by}",
        "incident.running": "running",
        "incident.ended": "ended",
        "incident.stopped": "stopped",
        "incident.crashed": "crashed",
        "incident.line": (
            "{incident_id} {name!r} {status}{stop}: {start} -> {end}, {sitreps} situation report(s)"
        ),
        "incident.stopping": (
            "{incident_id} will stop after its current cycle and send its report (asked by {by})"
        ),
        "serve.left": "  {name} ({flow}): left unfinished, now {state}",
    },
}


def say(language: str, key: str, **values: object) -> str:
    """The text `key` in `language` (English when the language has none), filled in."""
    text = WORDS.get(language, {}).get(key) or WORDS["en"][key]
    return text.format(**values)
