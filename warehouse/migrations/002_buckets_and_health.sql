-- Aggregates kept forever (raw text is pruned by the retention policy), the sentiment column
-- enrichment will fill, and the state behind "degraded source" notices.

ALTER TABLE mentions ADD COLUMN sentiment DOUBLE;   -- in [-1, 1]; NULL until scored

ALTER TABLE sources ADD COLUMN degraded_since TIMESTAMPTZ;

ALTER TABLE source_runs ADD COLUMN quarantined INTEGER DEFAULT 0;

-- Mentions per 5-minute bucket of publication time, per topic, platform, language and sentiment
-- label. Maintained by every load (new mentions only), so counts are exact and idempotent.
CREATE TABLE mention_buckets (
    bucket_start    TIMESTAMPTZ NOT NULL,
    topic           VARCHAR NOT NULL,
    platform        VARCHAR NOT NULL,
    language        VARCHAR NOT NULL,      -- fr | en | '' (undetermined)
    sentiment       VARCHAR NOT NULL,      -- negative | neutral | positive | unknown
    mentions        BIGINT NOT NULL,
    PRIMARY KEY (bucket_start, topic, platform, language, sentiment)
);

-- A file made by the previous version already holds mentions: count them in.
INSERT INTO mention_buckets
SELECT time_bucket(INTERVAL 5 MINUTE, published_at), topic, platform, coalesce(language, ''),
       'unknown', count(*)
FROM (SELECT published_at, platform, language, unnest(topics) AS topic FROM mentions)
GROUP BY ALL;

CREATE VIEW mention_counts_5m AS
SELECT bucket_start, topic, platform, language, sentiment, mentions FROM mention_buckets;

CREATE VIEW mention_counts_1h AS
SELECT date_trunc('hour', bucket_start) AS bucket_start, topic, platform, language, sentiment,
       sum(mentions)::BIGINT AS mentions
FROM mention_buckets GROUP BY ALL;

CREATE VIEW mention_counts_1d AS
SELECT date_trunc('day', bucket_start) AS bucket_start, topic, platform, language, sentiment,
       sum(mentions)::BIGINT AS mentions
FROM mention_buckets GROUP BY ALL;
