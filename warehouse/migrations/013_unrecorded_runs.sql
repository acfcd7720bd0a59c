-- A cycle `vigie run` ran while the Prefect server stopped answering: its data are loaded and
-- its emails sent, but its flow run's final state never reached the server, which shows it
-- Running. `unrecorded_at` says when `vigie run` gave up recording it; the next `vigie run`
-- with the server back records the run's true end (Completed, or Crashed when the cycle did
-- not finish) and clears it.
ALTER TABLE cycles ADD COLUMN unrecorded_at TIMESTAMPTZ;
