-- Dedup by normalised title (vigie/titles.py): the title key of every stored headline, so that
-- the same headline from another outlet within a week becomes one more sighting of it.
CREATE TABLE mention_titles (
    title_key       VARCHAR NOT NULL,
    mention_id      VARCHAR NOT NULL,
    published_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (title_key, mention_id)
);

-- An outside count of the watch's volume (GDELT's timeline of articles matching a gdelt
-- source's query), one row per source and time bucket; a later fetch of a bucket replaces it
-- (the newest bucket grows as GDELT reads more).
CREATE TABLE outside_volumes (
    source          VARCHAR NOT NULL,
    topic_or_query  VARCHAR NOT NULL,
    bucket_start    TIMESTAMPTZ NOT NULL,
    value           BIGINT NOT NULL,
    fetched_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, bucket_start)
);
