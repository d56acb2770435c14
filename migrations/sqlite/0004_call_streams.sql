-- Which Media Stream of the call is the newest: a key press through Twilio
-- (issue 14) ends the call's stream and opens a new one, which may reach
-- another instance. That instance claims the stream number here, and the
-- instance that held the call's previous stream sees it and yields the call.
ALTER TABLE calls ADD COLUMN stream_number INTEGER NOT NULL DEFAULT 1;
