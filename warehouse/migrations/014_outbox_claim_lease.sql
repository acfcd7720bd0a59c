-- A claim names its sender and lasts a lease, and sendings whose outcome is unknown are counted.
-- A claim is judged dead only when its lease is over or its process is gone (same machine), never
-- while its sender still waits on SMTP; an uncertain alert or escalation is sent once more
-- (tasks/delivery.py, docs/reliability.md section 2).

ALTER TABLE outbox ADD COLUMN claim_owner VARCHAR;              -- host:pid:token of the claiming sender
ALTER TABLE outbox ADD COLUMN claim_expires_at TIMESTAMPTZ;     -- the claim's lease ends then
ALTER TABLE outbox ADD COLUMN uncertain_sendings INTEGER DEFAULT 0;  -- sendings with no known outcome
