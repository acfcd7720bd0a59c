-- Adaptive polling (tasks/collect/schedule.py): what each source's fetches taught about how
-- often it publishes, the hash of the last body parsed (a 200 with the same body counts as
-- unchanged) and when a body was last parsed (the periodic full fetch), the time before which
-- its server asked not to be polled, and when it is due next as the last cycle saw it.

ALTER TABLE sources ADD COLUMN poll_interval_s DOUBLE;
ALTER TABLE sources ADD COLUMN quiet_polls INTEGER DEFAULT 0;
ALTER TABLE sources ADD COLUMN content_hash VARCHAR;
ALTER TABLE sources ADD COLUMN full_fetch_at TIMESTAMPTZ;
ALTER TABLE sources ADD COLUMN server_wait_until TIMESTAMPTZ;
ALTER TABLE sources ADD COLUMN next_poll_at TIMESTAMPTZ;
