Feature: CCC adapter — recording agent sessions under a privacy tier
  The recorder writes every session, turn and session end to windows.jsonl, keeps
  metrics_summary.json current, and decides what may leave the machine per tier.
  Every step runs the real `agentos` binary in a fresh data dir.

  Background:
    Given a fresh data dir

  Scenario: local tier writes three events and the summary
    When I start a session with tier "local"
    And I record the seed turn with model "claude-sonnet-4.5"
    And I end the session with notes "done"
    Then windows.jsonl holds the events "session,turn,session_end" with seqs 1 to 3
    And every event is recorded under tier "local"
    And the summary has features_shipped 1.0, features_per_capacity 2.0, avg_cls 1.2 and avg_impf 4.5
    And preview under tier "local" prints nothing

  Scenario: minimized tier computes exactly the allowlisted subset and glm_counts
    Given a license granting "telemetry_minimized"
    When I start a session with tier "minimized"
    And I record the seed turn with model "glm-4.6"
    And I end the session with notes "done"
    Then every event is recorded under tier "minimized"
    And glm_counts.jsonl has 1 line for model "glm-4.6" with 1200 tokens in and 300 tokens out
    And preview under tier "minimized" sends no events
    And preview under tier "minimized" sends a metrics body with exactly the keys "avg_churn_score,avg_cls,avg_impf,capacity_used,features_per_capacity,features_shipped,generated_at"

  Scenario: full tier computes the redacted event payloads
    Given a license granting "telemetry_minimized,telemetry_full"
    And the config allowlists the metadata key "team"
    When I start a session with tier "full"
    And I record the seed turn with model "claude-sonnet-4.5"
    And I end the session with notes "secret retro"
    Then preview under tier "full" sends 3 events
    And the sent session metadata keeps only "team"
    And the sent turn keeps value keys "links,summary", drops feature notes and counts 1 error
    And the sent session end has no notes
    And nothing sent contains "ACME", "secret retro", "private note", "secret_plan" or "evidence.txt"

  Scenario: a tier without its entitlement records locally as local
    Given a license granting "telemetry_minimized"
    When I start a session with tier "full"
    Then the command succeeds with a warning naming "telemetry_full"
    And every event is recorded under tier "local"
    And the session record notes requested tier "full" and problem "missing_entitlement"

  Scenario: --strict-license refuses instead
    Given a license granting "telemetry_minimized"
    When I start a strict session with tier "full"
    Then the command exits with 1 naming "telemetry_full"
    And no event is recorded

  Scenario Outline: bad license packs are rejected by `agentos license verify`
    Given a license pack that is <kind>
    When I verify the pack
    Then the command exits with 1 naming "<cause>"

    Examples:
      | kind                 | cause                        |
      | expired              | expired                      |
      | signed by other key  | does not verify              |
      | from an unknown kid  | not in the trusted keyring   |
      | tampered with        | does not verify              |
