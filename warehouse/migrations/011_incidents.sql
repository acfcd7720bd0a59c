-- Incident mode (flows/incident.py): one row per incident, from its start to its report.
-- status: running | ended (its duration passed) | stopped (stop request or cancelled run).
-- A stop request (`vigie incident stop`) is a row update the running flow reads between cycles.

CREATE TABLE incidents (
    incident_id       VARCHAR PRIMARY KEY,
    name              VARCHAR NOT NULL,
    parameters        JSON NOT NULL,
    flow_run_id       VARCHAR,
    started_at        TIMESTAMPTZ NOT NULL,
    ends_at           TIMESTAMPTZ NOT NULL,
    ended_at          TIMESTAMPTZ,
    status            VARCHAR NOT NULL,
    sitreps           INTEGER NOT NULL DEFAULT 0,   -- number of the last situation report sent
    stop_requested_at TIMESTAMPTZ,
    stop_requested_by VARCHAR,
    report            VARCHAR                        -- the final report, markdown
);
