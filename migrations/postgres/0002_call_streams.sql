-- Which Media Stream of the call is the newest (see
-- migrations/sqlite/0004_call_streams.sql).
ALTER TABLE calls ADD COLUMN stream_number INTEGER NOT NULL DEFAULT 1;
