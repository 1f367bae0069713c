Feature: CCC adapter over the wire — what reaches a real collector
  The same recorder, with `agentos ccc sync` and session close delivering to a real collector
  (agentos-collector over SQLite) on loopback. Every step runs the real `agentos` binary.

  Background:
    Given a fresh data dir

  Scenario: minimized uploads only the allowlisted summary when the session closes
    Given a license granting "telemetry_minimized"
    And a collector on loopback trusting that license
    And the data dir delivers to that collector
    When I start a session with tier "minimized"
    And I record the seed turn with model "glm-4.6"
    And I end the session with notes "done"
    Then the collector holds a summary from this device with exactly the keys "avg_churn_score,avg_cls,avg_impf,capacity_used,features_per_capacity,features_shipped,generated_at"
    And the collector stores 0 events from this device

  Scenario: full streams redacted events
    Given a license granting "telemetry_minimized,telemetry_full"
    And the config allowlists the metadata key "team"
    And a collector on loopback trusting that license
    And the data dir delivers to that collector
    When I start a session with tier "full"
    And I record the seed turn with model "claude-sonnet-4.5"
    And I end the session with notes "secret retro" without uploading
    And I sync
    Then the command exits with 0
    And the collector stores the events "session,turn,session_end" from this device with seqs 1 to 3
    And nothing the collector stored contains "ACME", "secret retro", "private note", "secret_plan" or "evidence.txt"

  Scenario: the local summary shows the collector's model health, fetched by sync, not by a turn
    Given a license granting "telemetry_minimized,telemetry_full"
    And a collector on loopback trusting that license
    And the data dir delivers to that collector
    When I start a session with tier "full"
    And I record the seed turn with model "claude-sonnet-4.5"
    Then the local summary has no model health
    When I sync
    And I record the seed turn with model "claude-sonnet-4.5"
    # The collector lists a model under its canonical id (the alias table), whatever spelling
    # the turns used, unless its quotas file configures another name for it.
    Then the local summary's model health comes from the collector and lists "claude-sonnet-4-5-20250929"

  Scenario: an outage loses nothing and doubles nothing
    Given a license granting "telemetry_minimized,telemetry_full"
    And a collector on loopback trusting that license
    And the data dir delivers to that collector
    When I start a session with tier "full"
    And I record the seed turn with model "claude-sonnet-4.5"
    And the collector goes down
    And I record the seed turn with model "glm-4.6"
    And I end the session with notes "done" without uploading
    And I sync with a timeout of "1s"
    Then the command exits with 1
    When the collector comes back
    And I sync
    Then the command exits with 0
    And the collector stores the events "session,turn,turn,session_end" from this device with seqs 1 to 4
    When I sync
    Then the collector stores the events "session,turn,turn,session_end" from this device with seqs 1 to 4

  Scenario: a license the collector does not trust sends nothing
    Given a license granting "telemetry_minimized,telemetry_full"
    And a collector on loopback trusting another key
    And the data dir delivers to that collector
    When I start a session with tier "full"
    And I record the seed turn with model "claude-sonnet-4.5"
    And I sync
    Then the command exits with 1 naming "license"
    And the collector stores 0 events from this device

  Scenario: a lowered tier holds events back until a sync allows them
    Given a license granting "telemetry_minimized,telemetry_full"
    And a collector on loopback trusting that license
    And the data dir delivers to that collector
    When I start a session with tier "full"
    And I record the seed turn with model "claude-sonnet-4.5"
    And I end the session with notes "done" without uploading
    And I sync with tier "minimized"
    Then the command exits with 3
    And the collector stores 0 events from this device
    When I sync
    Then the command exits with 0
    And the collector stores the events "session,turn,session_end" from this device with seqs 1 to 3
