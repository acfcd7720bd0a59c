-- Drills: a labelled synthetic crisis injected through the real pipeline to rehearse step 5
-- (flows/drill.py). One row per drill, keyed by the drill id derived from its name, with the
-- moments that give the time to detect (injected_at -> detected_at, the alert's opening) and
-- the time to acknowledge (alert_sent_at, the alert email's sending -> acknowledged_at).
--
-- What a drill creates is marked, so that real figures never include it:
-- * its sources (`sources.drill`): their `source_runs`, `mentions`, `mention_sightings`,
--   `quarantine` rows and the stories of those mentions belong to the drill through the source;
-- * its topic is the drill id (`drill-<name>`), never a configured watch: the 5-minute
--   aggregates, baselines and volumes of real topics never see drill mentions;
-- * its alerts (`alerts.drill`), and its emails (`outbox.drill`, migration 008).

CREATE TABLE drills (
    drill_id        VARCHAR PRIMARY KEY,
    name            VARCHAR NOT NULL,
    topic           VARCHAR NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    injected_at     TIMESTAMPTZ,
    detected_at     TIMESTAMPTZ,
    alert_id        VARCHAR,
    alert_sent_at   TIMESTAMPTZ,
    acknowledged_at TIMESTAMPTZ,
    acknowledged_by VARCHAR,
    -- running | acknowledged | not_acknowledged | not_detected
    status          VARCHAR NOT NULL,
    time_to_detect_s DOUBLE,
    time_to_ack_s   DOUBLE,
    ack_wait_minutes INTEGER,
    finished_at     TIMESTAMPTZ,
    flow_run_id     VARCHAR
);

ALTER TABLE alerts ADD COLUMN drill BOOLEAN DEFAULT false;
ALTER TABLE sources ADD COLUMN drill BOOLEAN DEFAULT false;
