-- v1.1 turn fields copied out of the body, like tokens_in/tokens_out, so usage queries never
-- parse JSON. NULL for turns that do not say (v1.0 turns, sources without a prompt cache).
ALTER TABLE events ADD COLUMN cache_creation_tokens BIGINT;
ALTER TABLE events ADD COLUMN cache_read_tokens BIGINT;
