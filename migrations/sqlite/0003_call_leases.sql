-- One lease per live call: the instance holding its media stream renews it
-- every few seconds; a lease that expires means that instance stopped, and a
-- surviving instance finishes the call (see src/store/lease.rs).
CREATE TABLE call_leases (
    call_id    TEXT PRIMARY KEY REFERENCES calls (id),
    holder     TEXT NOT NULL,              -- the instance holding the stream
    expires_ms INTEGER NOT NULL            -- ms since the Unix epoch, database clock
);
