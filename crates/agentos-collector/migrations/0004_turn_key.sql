-- A turn whose id is derived from its origin (v1.1 `turn.source`, e.g. a Claude Code request)
-- is one turn however many paths bring it (a hook and a later catch-up, two devices ingesting
-- the same transcript): `turn_key` is `source:turn_id`, unique per tenant. Hand-recorded turns
-- (random ids) have no key.
ALTER TABLE events ADD COLUMN turn_key TEXT;
CREATE UNIQUE INDEX events_turn_key ON events (tenant, turn_key) WHERE turn_key IS NOT NULL;
