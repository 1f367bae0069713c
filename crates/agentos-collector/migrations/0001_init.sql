-- One schema for SQLite and PostgreSQL: only types and syntax both accept.
-- Timestamps are BIGINT epoch microseconds (sqlx 0.9 has no jiff support; RFC 3339 stays in JSON).

CREATE TABLE api_keys (
    key_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    -- SHA-256 of the whole key, lowercase hex. The key itself is never stored.
    key_hash TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    revoked_at_us BIGINT
);

CREATE TABLE events (
    tenant TEXT NOT NULL,
    event_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    recorded_at_us BIGINT NOT NULL,
    -- Turn figures copied out of the body so usage queries never parse JSON.
    model TEXT,
    tokens_in BIGINT,
    tokens_out BIGINT,
    latency_ms DOUBLE PRECISION,
    received_at_us BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, event_id)
);

CREATE INDEX events_turns_by_time ON events (tenant, recorded_at_us) WHERE kind = 'turn';

CREATE TABLE devices (
    tenant TEXT NOT NULL,
    device_id TEXT NOT NULL,
    -- JSON array of inclusive [from, to] seq ranges the collector has accounted for.
    covered TEXT NOT NULL,
    watermark BIGINT NOT NULL,
    max_seq BIGINT NOT NULL,
    events BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    PRIMARY KEY (tenant, device_id)
);

CREATE TABLE summaries (
    tenant TEXT NOT NULL,
    device_id TEXT NOT NULL,
    generated_at_us BIGINT,
    received_at_us BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, device_id)
);
