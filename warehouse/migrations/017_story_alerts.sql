-- A story that spreads fast (tasks/breaking.py) has its own alert, keyed by its story: one
-- open alert per story, as one open volume alert per topic (those keep story_id NULL). The
-- alert's topic is the watch whose usual spread the story outran.
ALTER TABLE alerts ADD COLUMN story_id VARCHAR;
