-- Key roles (issue #10): `ingest` posts events and metrics and reads the JSON API, `viewer`
-- reads (API and dashboard) but cannot post, `admin` does both. Keys made before roles existed
-- were made to deliver: they keep exactly what they could do, as `ingest`.
ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'ingest';

-- Dashboard sign-ins: one row per browser session. Only SHA-256 of the cookie value is kept;
-- the CSRF token is stored as is (it is not a credential on its own: it rides in pages).
-- In the database, not in memory, so any collector behind a load balancer accepts the cookie.
CREATE TABLE web_sessions (
    id_hash TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    key_id TEXT NOT NULL,
    role TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    expires_at_us BIGINT NOT NULL
);
CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at_us);
