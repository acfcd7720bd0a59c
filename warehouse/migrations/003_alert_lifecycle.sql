-- The life of an alert: when its topic last triggered (a calm period resolves it), its
-- severity score with each signal's contribution, and when it was resolved.
ALTER TABLE alerts ADD COLUMN last_triggered_at TIMESTAMPTZ;
ALTER TABLE alerts ADD COLUMN severity DOUBLE;
ALTER TABLE alerts ADD COLUMN contributions JSON;
ALTER TABLE alerts ADD COLUMN resolved_at TIMESTAMPTZ;
UPDATE alerts SET last_triggered_at = updated_at;
