-- The dashboard lists calls newest first, a page at a time, with a keyset
-- cursor (created_at, id): this index serves both the order and the cursor's
-- range, so any page costs the same at 10,000 calls as at 10.
CREATE INDEX calls_newest_first ON calls (created_at DESC, id DESC);
