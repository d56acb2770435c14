-- The call store on PostgreSQL: the same tables as on SQLite, with native
-- types (timestamptz, jsonb), plus the triggers that announce every change
-- to the other instances (LISTEN/NOTIFY, see src/store/news.rs).

CREATE TABLE calls (
    id          TEXT PRIMARY KEY,          -- Twilio CallSid
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    status      TEXT NOT NULL,             -- Twilio call status (queued, ringing, in-progress, completed, …)
    status_seq  BIGINT NOT NULL DEFAULT -1, -- SequenceNumber of the callback that set status
    to_number   TEXT NOT NULL,
    restaurant  TEXT NOT NULL,
    reservation JSONB NOT NULL,            -- domain::Reservation
    call_token  TEXT NOT NULL,             -- per-call secret also carried in the stream parameters
    outcome     JSONB,                     -- domain::Outcome
    answered_by TEXT,
    error       TEXT,
    started_at  TIMESTAMPTZ,               -- media stream started
    ended_at    TIMESTAMPTZ
);
CREATE INDEX calls_created_at ON calls (created_at);
-- The web page lists calls newest first with a keyset cursor (created_at, id).
CREATE INDEX calls_newest_first ON calls (created_at DESC, id DESC);
CREATE INDEX calls_status ON calls (status);

CREATE TABLE transcript_lines (
    call_id TEXT NOT NULL REFERENCES calls (id),
    seq     BIGINT NOT NULL,               -- order of arrival, from 1
    speaker TEXT NOT NULL,                 -- agent | callee
    text    TEXT NOT NULL,
    at_ms   BIGINT NOT NULL,               -- ms since the media stream started
    PRIMARY KEY (call_id, seq)
);

-- Status callbacks that arrived before the call was stored (Twilio can call
-- back before its own REST answer reaches us); applied when the call is stored.
CREATE TABLE early_statuses (
    call_id     TEXT NOT NULL,
    status      TEXT NOT NULL,
    status_seq  BIGINT,
    reason      TEXT,
    received_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX early_statuses_call_id ON early_statuses (call_id);

-- One lease per live call (see migrations/sqlite/0003_call_leases.sql).
CREATE TABLE call_leases (
    call_id    TEXT PRIMARY KEY REFERENCES calls (id),
    holder     TEXT NOT NULL,
    expires_ms BIGINT NOT NULL             -- ms since the Unix epoch, database clock
);

-- Call news for every instance. The payload is a reference, never the data
-- (a NOTIFY payload is limited to 8000 bytes): `kind:seq:call_id`, where kind
-- is status, outcome, amd or line, and seq the line's position (0 otherwise).
-- A follower reads the row. Sent at commit, so a follower never reads ahead of it.
CREATE FUNCTION reservoice_call_news() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'transcript_lines' THEN
        PERFORM pg_notify('reservoice_call_news', 'line:' || NEW.seq || ':' || NEW.call_id);
    ELSIF TG_OP = 'INSERT' THEN
        PERFORM pg_notify('reservoice_call_news', 'status:0:' || NEW.id);
    ELSE
        IF NEW.status IS DISTINCT FROM OLD.status THEN
            PERFORM pg_notify('reservoice_call_news', 'status:0:' || NEW.id);
        END IF;
        IF NEW.outcome IS DISTINCT FROM OLD.outcome THEN
            PERFORM pg_notify('reservoice_call_news', 'outcome:0:' || NEW.id);
        END IF;
        IF NEW.answered_by IS DISTINCT FROM OLD.answered_by THEN
            PERFORM pg_notify('reservoice_call_news', 'amd:0:' || NEW.id);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER calls_news AFTER INSERT OR UPDATE ON calls
    FOR EACH ROW EXECUTE FUNCTION reservoice_call_news();
CREATE TRIGGER transcript_lines_news AFTER INSERT ON transcript_lines
    FOR EACH ROW EXECUTE FUNCTION reservoice_call_news();
