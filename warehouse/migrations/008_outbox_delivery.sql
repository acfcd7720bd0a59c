-- Delivery of the outbox: a plain-text alternative and inline images for each email, what may
-- wait (quiet hours, caps) and what may not (critical), back-off between attempts, and the
-- claim taken just before handing a message to SMTP (a claim left by a crash is "uncertain":
-- the server may have accepted it, so it is never sent again by itself).

ALTER TABLE outbox ADD COLUMN text VARCHAR DEFAULT '';
ALTER TABLE outbox ADD COLUMN critical BOOLEAN DEFAULT false;
ALTER TABLE outbox ADD COLUMN drill BOOLEAN DEFAULT false;
ALTER TABLE outbox ADD COLUMN not_before TIMESTAMPTZ;         -- held or backing off until then
ALTER TABLE outbox ADD COLUMN held_reason VARCHAR;            -- quiet hours | hourly cap
ALTER TABLE outbox ADD COLUMN sending_at TIMESTAMPTZ;         -- claimed for SMTP at
ALTER TABLE outbox ADD COLUMN uncertain_at TIMESTAMPTZ;       -- claim found after a crash

CREATE TABLE outbox_images (
    message_id      VARCHAR NOT NULL,
    cid             VARCHAR NOT NULL,
    png             BLOB NOT NULL,
    PRIMARY KEY (message_id, cid)
);
