-- The take-charge link of an alert: the page of the paused acknowledge-alert run its email
-- linked to (tasks/load.py prefect_ack_link), at the public UI address. The escalation email
-- gives the same link, so that the next level takes charge in that run (NULL: no such run).
ALTER TABLE alerts ADD COLUMN ack_url VARCHAR;
