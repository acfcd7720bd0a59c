-- Escalation through the crisis cell: the highest level of the cell told about an alert, and
-- when. An alert nobody acknowledged within `escalation.delay_minutes` goes to the next level.

ALTER TABLE alerts ADD COLUMN cell_level INTEGER;
ALTER TABLE alerts ADD COLUMN paged_at TIMESTAMPTZ;
UPDATE alerts SET paged_at = opened_at;
