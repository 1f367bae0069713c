-- Reports and the dashboard read aggregates, never a tenant's events (issue #10).
--
-- `turn_rollup` holds one row per tenant, 15-minute bucket, session, model, device, source and
-- "carried its own cost", maintained in the ingest transaction for the events it newly stored.
-- 15 minutes: every time zone's offset is a whole number of quarter hours and billing blocks
-- start on the hour, so no report row (local day, week, month, block) ever splits a bucket.
-- Sums are DOUBLE PRECISION so that no tenant's totals can make an upsert fail with an integer
-- overflow (exact below 2^53; token counts are bounded by 10^12 per turn).
CREATE TABLE turn_rollup (
    tenant TEXT NOT NULL,
    bucket_us BIGINT NOT NULL,
    session_id TEXT NOT NULL,
    model TEXT NOT NULL,
    device_id TEXT NOT NULL,
    source TEXT NOT NULL,
    -- 1: the turns carried a `cost` payload (their cost is cost_usd); 0: priced by the server.
    carried BIGINT NOT NULL,
    turns BIGINT NOT NULL,
    tokens_in DOUBLE PRECISION NOT NULL,
    tokens_out DOUBLE PRECISION NOT NULL,
    cache_creation_tokens DOUBLE PRECISION NOT NULL,
    cache_read_tokens DOUBLE PRECISION NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    cost_usd DOUBLE PRECISION NOT NULL,
    features DOUBLE PRECISION NOT NULL,
    capacity DOUBLE PRECISION NOT NULL,
    first_us BIGINT NOT NULL,
    last_us BIGINT NOT NULL,
    PRIMARY KEY (tenant, bucket_us, session_id, model, device_id, source, carried)
);

-- The repository of each session (from its `session` event), joined at query time so a session
-- event arriving after its turns still attributes them.
CREATE TABLE report_sessions (
    tenant TEXT NOT NULL,
    session_id TEXT NOT NULL,
    repo_id TEXT NOT NULL,
    PRIMARY KEY (tenant, session_id)
);

-- Turn fields the drill-down and the edge of the usage windows read without parsing JSON.
ALTER TABLE events ADD COLUMN session_id TEXT;
ALTER TABLE events ADD COLUMN cost_usd DOUBLE PRECISION;

-- NULL only on events stored before this migration: the collector folds those into the rollup
-- at start-up (Store::connect) and sets 1; every later insert writes 1 in the same transaction
-- that updates the rollup, so nothing is counted twice, whichever collector does the work.
ALTER TABLE events ADD COLUMN rolled BIGINT;
CREATE INDEX events_unrolled ON events (tenant, event_id) WHERE rolled IS NULL;

-- The same sums per hour without the session (and so without the repository): what daily,
-- weekly, monthly, model, device and blocks reports and /v1/usage read whenever hours suffice
-- (zones whose offset is a whole number of hours; ranges on the hour). About a tenth of the
-- rows of turn_rollup for a typical team.
CREATE TABLE turn_rollup_hourly (
    tenant TEXT NOT NULL,
    bucket_us BIGINT NOT NULL,
    model TEXT NOT NULL,
    device_id TEXT NOT NULL,
    source TEXT NOT NULL,
    carried BIGINT NOT NULL,
    turns BIGINT NOT NULL,
    tokens_in DOUBLE PRECISION NOT NULL,
    tokens_out DOUBLE PRECISION NOT NULL,
    cache_creation_tokens DOUBLE PRECISION NOT NULL,
    cache_read_tokens DOUBLE PRECISION NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    cost_usd DOUBLE PRECISION NOT NULL,
    features DOUBLE PRECISION NOT NULL,
    capacity DOUBLE PRECISION NOT NULL,
    first_us BIGINT NOT NULL,
    last_us BIGINT NOT NULL,
    PRIMARY KEY (tenant, bucket_us, model, device_id, source, carried)
);
