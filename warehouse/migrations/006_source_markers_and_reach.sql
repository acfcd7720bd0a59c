-- Source kinds beyond RSS (tasks/sources.py): the marker a paginated API source remembers
-- between cycles (newest status id, or Unix time in seconds), and the reach hint of a mention
-- (followers, score, points or likes, where the API gives them; NULL otherwise).

ALTER TABLE sources ADD COLUMN marker VARCHAR;

ALTER TABLE mentions ADD COLUMN reach BIGINT;
