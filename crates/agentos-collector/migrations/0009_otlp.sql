-- OpenTelemetry receiver (issue #11 §2, docs/opentelemetry.md).
--
-- Claude Code's OTLP `api_request` events carry no provider request id, so an OTLP turn cannot
-- be matched with the hook/ingest turn (source `claude_code`) of the same request. Instead a
-- session is counted from one source: `claude_code` turns win. This table records, per session,
-- whether claude_code turns were stored (`claude`) and whether OTLP turns of the session are
-- currently counted (`otlp_live`). Both ingest paths upsert the session's row inside their
-- transaction, so two collectors storing the two sources of one session at once serialise on it.
CREATE TABLE session_sources (
    tenant TEXT NOT NULL,
    session_id TEXT NOT NULL,
    claude BIGINT NOT NULL,
    otlp_live BIGINT NOT NULL,
    PRIMARY KEY (tenant, session_id)
);

-- Sessions stored before this migration that have claude_code turns (the per-session rollup of
-- migration 0008 has one row per session, model, device and source).
INSERT INTO session_sources (tenant, session_id, claude, otlp_live)
SELECT DISTINCT tenant, session_id, 1, 0 FROM turn_rollup_session WHERE source = 'claude_code';

-- Retracting a session's OTLP turns finds their 15-minute rows through the session's time span
-- (from turn_rollup_session) and the rollup's primary key: no index on turn_rollup's session,
-- which every ingest would pay for.

-- The `claude_code.token.usage` and `claude_code.cost.usage` data points, one row per point,
-- so that an exporter retry (same series, same start and time) is stored once. `cumulative`
-- is 1 for cumulative temporality (the latest point of a series is its total), 0 for delta
-- (points add up). `kind` is the `type` attribute of token.usage (input, output, cacheRead,
-- cacheCreation) and 'cost' for cost.usage.
CREATE TABLE otlp_metric_points (
    tenant TEXT NOT NULL,
    session_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    model TEXT NOT NULL,
    start_ns BIGINT NOT NULL,
    time_ns BIGINT NOT NULL,
    cumulative BIGINT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    received_at_us BIGINT NOT NULL,
    PRIMARY KEY (tenant, session_id, kind, model, start_ns, time_ns)
);
