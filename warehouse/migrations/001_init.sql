-- The tables of the contract (DESIGN.md): mentions, sources, source_runs, quarantine, stories,
-- alerts, alert_events, outbox; plus cycles, the log of watch cycles. All times are UTC.

CREATE TABLE sources (
    name            VARCHAR PRIMARY KEY,
    kind            VARCHAR NOT NULL,
    url             VARCHAR NOT NULL,
    platform        VARCHAR NOT NULL,
    tier            INTEGER NOT NULL,
    etag            VARCHAR,
    last_modified   VARCHAR,
    last_status     VARCHAR,
    last_error      VARCHAR,
    last_run_at     TIMESTAMPTZ,
    last_ok_at      TIMESTAMPTZ,
    consecutive_failures INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE cycles (
    cycle_id        VARCHAR PRIMARY KEY,
    started_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ,
    flow_run_id     VARCHAR,
    summary         JSON
);

CREATE TABLE source_runs (
    cycle_id        VARCHAR NOT NULL,
    source          VARCHAR NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    duration_s      DOUBLE NOT NULL,
    status          VARCHAR NOT NULL,      -- ok | not_modified | error
    http_status     INTEGER,
    bytes           BIGINT NOT NULL DEFAULT 0,
    items           INTEGER NOT NULL DEFAULT 0,
    new_mentions    INTEGER NOT NULL DEFAULT 0,
    error           VARCHAR,
    PRIMARY KEY (cycle_id, source)
);

CREATE TABLE mentions (
    mention_id      VARCHAR PRIMARY KEY,
    source          VARCHAR NOT NULL,
    platform        VARCHAR NOT NULL,
    tier            INTEGER NOT NULL,
    url             VARCHAR NOT NULL,
    title           VARCHAR NOT NULL,
    summary         VARCHAR NOT NULL,
    author          VARCHAR,
    published_at    TIMESTAMPTZ NOT NULL,
    collected_at    TIMESTAMPTZ NOT NULL,
    language        VARCHAR,
    story_id        VARCHAR NOT NULL,
    topics          VARCHAR[] NOT NULL,
    cycle_id        VARCHAR NOT NULL
);

CREATE TABLE quarantine (              -- one row per refused mention, from the first cycle that saw it
    cycle_id        VARCHAR NOT NULL,
    mention_id      VARCHAR NOT NULL PRIMARY KEY,
    source          VARCHAR NOT NULL,
    reasons         VARCHAR[] NOT NULL,
    record          JSON NOT NULL,
    quarantined_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE stories (
    story_id        VARCHAR PRIMARY KEY,
    title           VARCHAR NOT NULL,
    url             VARCHAR NOT NULL,
    first_seen      TIMESTAMPTZ NOT NULL,
    last_seen       TIMESTAMPTZ NOT NULL,
    mentions        INTEGER NOT NULL,
    sources         INTEGER NOT NULL
);

CREATE TABLE alerts (
    alert_id        VARCHAR PRIMARY KEY,
    topic           VARCHAR NOT NULL,
    level           VARCHAR NOT NULL,      -- veille | vigilance | alerte | crise
    status          VARCHAR NOT NULL,      -- open | acknowledged | resolved
    score           DOUBLE NOT NULL,
    reason          VARCHAR NOT NULL,
    opened_at       TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    window_start    TIMESTAMPTZ NOT NULL,
    window_end      TIMESTAMPTZ NOT NULL,
    mentions_in_window INTEGER NOT NULL,
    baseline        DOUBLE NOT NULL
);

CREATE TABLE alert_events (
    alert_id        VARCHAR NOT NULL,
    occurred_at     TIMESTAMPTZ NOT NULL,
    kind            VARCHAR NOT NULL,      -- opened | updated | escalated | acknowledged | resolved
    detail          JSON,
    PRIMARY KEY (alert_id, kind, occurred_at)
);

CREATE TABLE outbox (
    message_id      VARCHAR PRIMARY KEY,
    kind            VARCHAR NOT NULL,      -- alert | escalation | digest | readiness | ...
    alert_id        VARCHAR,
    recipients      VARCHAR[] NOT NULL,
    subject         VARCHAR NOT NULL,
    html            VARCHAR NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      VARCHAR,
    last_attempt_at TIMESTAMPTZ,
    sent_at         TIMESTAMPTZ
);
