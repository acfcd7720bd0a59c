-- Every place a mention appeared: the same article carried by several sources (or seen again
-- later in another one) is one mention, and each source that carried it is one row here.

CREATE TABLE mention_sightings (
    mention_id      VARCHAR NOT NULL,
    source          VARCHAR NOT NULL,
    first_seen_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (mention_id, source)
);

INSERT INTO mention_sightings SELECT mention_id, source, collected_at FROM mentions;
