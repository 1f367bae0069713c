-- One row per collector instance, rewritten by every `GET /readyz`: readiness is a real
-- committed write, so a database that answers reads but cannot store (disk full, read-only
-- failover) takes the instance out of the load balancer.
CREATE TABLE readiness_probe (
    instance TEXT PRIMARY KEY,
    at_us BIGINT NOT NULL
);
