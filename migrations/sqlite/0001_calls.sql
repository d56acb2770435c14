-- Call records and their transcripts.
CREATE TABLE calls (
    id          TEXT PRIMARY KEY,          -- Twilio CallSid
    created_at  TEXT NOT NULL,             -- RFC 3339, UTC
    updated_at  TEXT NOT NULL,
    status      TEXT NOT NULL,             -- Twilio call status (queued, ringing, in-progress, completed, …)
    status_seq  INTEGER NOT NULL DEFAULT -1, -- SequenceNumber of the callback that set status
    to_number   TEXT NOT NULL,
    restaurant  TEXT NOT NULL,
    reservation TEXT NOT NULL,             -- JSON of domain::Reservation
    call_token  TEXT NOT NULL,             -- per-call secret also carried in the stream parameters
    outcome     TEXT,                      -- JSON of domain::Outcome
    answered_by TEXT,
    error       TEXT,
    started_at  TEXT,                      -- media stream started
    ended_at    TEXT
);
CREATE INDEX calls_created_at ON calls (created_at);

CREATE TABLE transcript_lines (
    call_id TEXT NOT NULL REFERENCES calls (id),
    seq     INTEGER NOT NULL,              -- order of arrival, from 1
    speaker TEXT NOT NULL,                 -- agent | callee
    text    TEXT NOT NULL,
    at_ms   INTEGER NOT NULL,              -- ms since the media stream started
    PRIMARY KEY (call_id, seq)
);

-- Status callbacks that arrived before the call was stored (Twilio can call
-- back before its own REST answer reaches us); applied when the call is stored.
CREATE TABLE early_statuses (
    call_id     TEXT NOT NULL,
    status      TEXT NOT NULL,
    status_seq  INTEGER,
    reason      TEXT,                      -- Twilio's reason (from SipResponseCode), if any
    received_at TEXT NOT NULL
);
