"""Notification: alerts and their life, emails rendered into the outbox and delivered exactly
once, escalation, digests, readiness reminders, incident reports and drills."""
