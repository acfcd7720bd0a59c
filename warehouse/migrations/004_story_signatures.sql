-- MinHash signatures of recent stories, so that a copy published later on another source or
-- platform joins the story it copies (tasks/stories.py).
CREATE TABLE story_signatures (
    story_id        VARCHAR PRIMARY KEY,
    signature       UBIGINT[] NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL
);
