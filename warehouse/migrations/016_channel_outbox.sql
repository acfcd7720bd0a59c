-- Chat, push and SMS channels (Apprise): one row per message and channel, with the same
-- guarantees as an email's outbox row (claimed with an owner and a lease before it is handed
-- to the service, marked sent as soon as the service accepts it, released and due again when
-- it refuses, uncertain when no answer came). The channel's URL is a secret and stays in the
-- configuration: a row names it by a hash (`channel_id`) and a label for people.
-- (tasks/notify/channels.py, docs/reliability.md section 2.)

CREATE TABLE channel_outbox (
    message_id          VARCHAR NOT NULL,      -- the outbox message this one tells of
    channel_id          VARCHAR NOT NULL,      -- sha256 of the channel's URL (16 hex digits)
    label               VARCHAR NOT NULL,      -- whose channel, and its scheme
    kind                VARCHAR NOT NULL,      -- the outbox message's kind
    critical            BOOLEAN NOT NULL DEFAULT false,
    drill               BOOLEAN NOT NULL DEFAULT false,
    title               VARCHAR NOT NULL,
    body                VARCHAR NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 0,
    last_error          VARCHAR,
    last_attempt_at     TIMESTAMPTZ,
    not_before          TIMESTAMPTZ,           -- backing off until then
    sending_at          TIMESTAMPTZ,           -- claimed at
    claim_owner         VARCHAR,               -- host:pid:token of the claiming sender
    claim_expires_at    TIMESTAMPTZ,
    uncertain_at        TIMESTAMPTZ,           -- left for a person
    uncertain_sendings  INTEGER NOT NULL DEFAULT 0,
    sent_at             TIMESTAMPTZ,
    PRIMARY KEY (message_id, channel_id)
);

-- When the channels of an outbox message were chosen (once). Messages queued before channels
-- existed are never told on them.
ALTER TABLE outbox ADD COLUMN channels_planned_at TIMESTAMPTZ;
UPDATE outbox SET channels_planned_at = created_at;
