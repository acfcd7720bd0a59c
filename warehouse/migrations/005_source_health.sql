-- The health of the watch itself: how fresh each source's newest entry is, how often it
-- usually publishes, and the health verdict behind the operators' notices (sent on changes only).

ALTER TABLE sources ADD COLUMN newest_entry_at TIMESTAMPTZ;   -- newest published_at ever parsed
ALTER TABLE sources ADD COLUMN entry_gap_s DOUBLE;            -- typical seconds between entries
ALTER TABLE sources ADD COLUMN health VARCHAR DEFAULT 'ok';    -- ok | failing | not_a_feed | silent
ALTER TABLE sources ADD COLUMN health_since TIMESTAMPTZ;
ALTER TABLE sources ADD COLUMN health_reason VARCHAR;
