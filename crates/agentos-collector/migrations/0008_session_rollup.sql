-- Per-session and per-day totals for the overview page and the session, repository and daily
-- reports (issue #10 §6).
--
-- `turn_rollup_session` holds one row per tenant, session, model, device and source, without
-- time: the same sums as `turn_rollup`, with the turns that carried their own cost summed in
-- their own columns instead of a key column (one row where `turn_rollup` has two). Maintained in
-- the ingest transaction with the other rollups, for the events a batch newly stored.
--
-- A session report for a date range reads it instead of grouping the range's 15-minute rows
-- (about 27 per session): a row whose first and last turn (`first_us`, `last_us`) both lie in
-- the range counts whole. A session with a row that does not lie wholly inside nor wholly
-- outside (it was active at the range's start or end) is summed from `turn_rollup` over the
-- range instead, as before; only those sessions, and only the buckets between the edge and
-- their last (first) turn. So the report stays exact at the edges: a session spanning the
-- range's start counts only its turns inside the range.
CREATE TABLE turn_rollup_session (
    tenant TEXT NOT NULL,
    session_id TEXT NOT NULL,
    model TEXT NOT NULL,
    device_id TEXT NOT NULL,
    source TEXT NOT NULL,
    turns BIGINT NOT NULL,
    tokens_in DOUBLE PRECISION NOT NULL,
    tokens_out DOUBLE PRECISION NOT NULL,
    cache_creation_tokens DOUBLE PRECISION NOT NULL,
    cache_read_tokens DOUBLE PRECISION NOT NULL,
    -- Of the above, the turns that carried a `cost` payload and their tokens; cost_usd is the
    -- sum of the costs they carried (the other turns are priced by the server at query time).
    carried_turns BIGINT NOT NULL,
    carried_tokens_in DOUBLE PRECISION NOT NULL,
    carried_tokens_out DOUBLE PRECISION NOT NULL,
    carried_cache_creation_tokens DOUBLE PRECISION NOT NULL,
    carried_cache_read_tokens DOUBLE PRECISION NOT NULL,
    cost_usd DOUBLE PRECISION NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    features DOUBLE PRECISION NOT NULL,
    capacity DOUBLE PRECISION NOT NULL,
    first_us BIGINT NOT NULL,
    last_us BIGINT NOT NULL,
    PRIMARY KEY (tenant, session_id, model, device_id, source)
);

-- A range's sessions: those whose last turn is at or after the range's start. Covering for
-- the question "which sessions have a row across an edge of the range", answered from the
-- index alone.
CREATE INDEX turn_rollup_session_last ON turn_rollup_session (tenant, last_us, first_us, session_id);

-- Sessions stored before this migration, from the 15-minute rollup (rows of events not yet
-- folded into it, `rolled IS NULL`, are folded into every rollup at start-up).
INSERT INTO turn_rollup_session (tenant, session_id, model, device_id, source, turns, tokens_in,
    tokens_out, cache_creation_tokens, cache_read_tokens, carried_turns, carried_tokens_in,
    carried_tokens_out, carried_cache_creation_tokens, carried_cache_read_tokens, cost_usd,
    latency_ms, features, capacity, first_us, last_us)
SELECT tenant, session_id, model, device_id, source, SUM(turns), SUM(tokens_in), SUM(tokens_out),
    SUM(cache_creation_tokens), SUM(cache_read_tokens), SUM(carried * turns),
    SUM(carried * tokens_in), SUM(carried * tokens_out), SUM(carried * cache_creation_tokens),
    SUM(carried * cache_read_tokens), SUM(cost_usd), SUM(latency_ms), SUM(features),
    SUM(capacity), MIN(first_us), MAX(last_us)
FROM turn_rollup
GROUP BY tenant, session_id, model, device_id, source;

-- The hourly sums per UTC day: what a report reads when every boundary it draws falls on a UTC
-- day (daily, weekly and monthly reports in UTC over whole days; model and device reports
-- over whole UTC days). A fourth of the hourly table's rows or fewer: with 1,000,000 turns
-- over 90 days (bench/dashboard.sh), 36,832 hourly rows against 9,900 daily.
CREATE TABLE turn_rollup_daily (
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

INSERT INTO turn_rollup_daily (tenant, bucket_us, model, device_id, source, carried, turns,
    tokens_in, tokens_out, cache_creation_tokens, cache_read_tokens, latency_ms, cost_usd,
    features, capacity, first_us, last_us)
SELECT tenant, (bucket_us / 86400000000) * 86400000000, model, device_id, source, carried,
    SUM(turns), SUM(tokens_in), SUM(tokens_out), SUM(cache_creation_tokens),
    SUM(cache_read_tokens), SUM(latency_ms), SUM(cost_usd), SUM(features), SUM(capacity),
    MIN(first_us), MAX(last_us)
FROM turn_rollup_hourly
GROUP BY tenant, (bucket_us / 86400000000) * 86400000000, model, device_id, source, carried;
