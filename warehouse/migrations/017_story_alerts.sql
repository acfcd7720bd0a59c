-- A story that spreads fast (tasks/breaking.py) can open its topic's alert: story_id names
-- that story (NULL: the topic's volume opened it). One topic still has one open alert.
ALTER TABLE alerts ADD COLUMN story_id VARCHAR;
