"""The seed's three integration scenarios, against the real collector on loopback, through the
background uploader (no transport) and through the seed's synchronous transport contract."""

import json

import pytest

from agentos_ccc import CCCClient, Full, LicenseClient, LocalOnly, Minimized, MINIMIZED_SUMMARY_FIELDS
from conftest import SEED_TURN, SESSION, read_jsonl


def record_seed_session(client, models=("claude-sonnet-4.5", "glm-4.6")):
    sid = client.start_session(**SESSION)
    for m in models:
        client.log_event(model=m, **SEED_TURN)
    client.end_session(notes="private notes")
    return sid


def test_local_only_writes_files_and_sends_nothing(tmp_path, collector):
    data = tmp_path / "data"
    calls = []
    with CCCClient(base_url=collector.url, api_key=collector.api_key, data_dir=data,
                   privacy=LocalOnly()) as c:
        sid = record_seed_session(c)
        assert c.flush(10)
    lines = read_jsonl(data / "windows.jsonl")
    assert [l["type"] for l in lines] == ["session", "turn", "turn", "session_end"]
    assert [l["seq"] for l in lines] == [1, 2, 3, 4]
    assert all(l["tier"] == "local" for l in lines)
    assert lines[0]["session"]["session_id"] == sid
    glm = read_jsonl(data / "glm_counts.jsonl")
    assert [(g["model"], g["tokens_in"], g["tokens_out"]) for g in glm] == [("glm-4.6", 1200, 300)]
    summary = json.loads((data / "metrics_summary.json").read_text())
    assert summary["turns"] == 2
    assert summary["features_shipped"] == 2.0
    assert summary["capacity_used"] == 1.0
    assert collector.events() == []
    assert collector.summaries() == []

    # The same under the transport contract: nothing is ever handed over.
    data2 = tmp_path / "data2"
    c2 = CCCClient(base_url=None, api_key=None, data_dir=data2, privacy="local",
                   transport=lambda route, payload: calls.append((route, payload)))
    record_seed_session(c2)
    assert c2.upload_minimized_metrics() is not None
    c2.close()
    assert calls == []
    assert len(read_jsonl(data2 / "windows.jsonl")) == 4


def test_minimized_sends_only_the_allowlisted_summary(tmp_path, keys, collector):
    pack = keys.issue("min.json", "telemetry_minimized")
    data = tmp_path / "data"
    with CCCClient(base_url=collector.url, api_key=collector.api_key, data_dir=data,
                   privacy=Minimized(), licensing=LicenseClient(pack, pubkeys=keys.pubkeys)) as c:
        record_seed_session(c)
        assert c.session_tier == "minimized"
        assert c.flush(10)
    assert collector.events() == []
    summaries = collector.summaries()
    assert len(summaries) == 1
    assert set(summaries[0]) == set(MINIMIZED_SUMMARY_FIELDS)
    assert summaries[0]["features_shipped"] == 2.0
    # Locally everything is kept.
    assert len(read_jsonl(data / "windows.jsonl")) == 4


def test_minimized_transport_gets_nothing_before_the_summary(tmp_path, keys):
    pack = keys.issue("min.json", "telemetry_minimized")
    calls = []
    c = CCCClient(base_url=None, api_key=None, data_dir=tmp_path / "d", privacy=Minimized(),
                  licensing=LicenseClient(pack, pubkeys=keys.pubkeys),
                  transport=lambda route, payload: calls.append((route, payload)))
    c.start_session(**SESSION)
    c.log_event(model="claude-sonnet-4.5", **SEED_TURN)
    assert calls == []
    body = c.upload_minimized_metrics()
    assert calls == [("/v1/metrics", body)]
    assert set(body) == set(MINIMIZED_SUMMARY_FIELDS)
    assert body["features_shipped"] == 1.0
    c.end_session()
    assert [r for r, _ in calls] == ["/v1/metrics", "/v1/metrics"]
    c.close()


def test_full_sends_redacted_events_and_the_summary(tmp_path, keys, collector):
    pack = keys.issue("full.json", "telemetry_minimized,telemetry_full")
    data = tmp_path / "data"
    (data).mkdir()
    (data / "agentos.toml").write_text('[privacy]\nmetadata_allowlist = ["team"]\n')
    with CCCClient(base_url=collector.url, api_key=collector.api_key, data_dir=data,
                   privacy=Full(), licensing=LicenseClient(pack, pubkeys=keys.pubkeys)) as c:
        record_seed_session(c)
        assert c.flush(10)
    events = collector.events()
    assert [e["type"] for e in events] == ["session", "turn", "turn", "session_end"]
    assert events[0]["session"]["metadata"] == {"team": "core"}
    turn = events[1]
    assert "errors" not in turn["measurement"] and turn["measurement"]["error_count"] == 1
    assert turn["value"] == {"summary": "shipped login", "links": ["https://example.invalid/pr/1"]}
    assert "notes" not in events[3]
    summaries = collector.summaries()
    assert len(summaries) == 1 and set(summaries[0]) == set(MINIMIZED_SUMMARY_FIELDS)
    # The local log keeps what was redacted on the way out.
    local = read_jsonl(data / "windows.jsonl")
    assert local[0]["session"]["metadata"]["customer"] == "ACME secret"
    assert local[3]["notes"] == "private notes"


def test_transport_contract_full(tmp_path, keys):
    pack = keys.issue("full.json", "telemetry_minimized,telemetry_full")
    calls = []
    data = tmp_path / "d"
    c = CCCClient(base_url=None, api_key=None, data_dir=data, privacy=Full(),
                  licensing=LicenseClient(pack, pubkeys=keys.pubkeys),
                  transport=lambda route, payload: calls.append((route, payload)))
    assert c.delivery_state == "disabled"
    record_seed_session(c)
    routes = [r for r, _ in calls]
    assert routes == ["/v1/events"] * 4 + ["/v1/metrics"]
    assert [p["type"] for _, p in calls[:4]] == ["session", "turn", "turn", "session_end"]
    assert [p["seq"] for _, p in calls[:4]] == [1, 2, 3, 4]
    # Redacted for the tier: no metadata key is allowlisted here, notes and evidence stay.
    assert "metadata" not in calls[0][1]["session"]
    assert "evidence_refs" not in calls[1][1]["value"]
    assert "notes" not in calls[3][1]
    assert set(calls[4][1]) == set(MINIMIZED_SUMMARY_FIELDS)
    # The local files are written exactly as without a transport.
    local = read_jsonl(data / "windows.jsonl")
    assert [l["event_id"] for l in local] == [p["event_id"] for _, p in calls[:4]]
    assert len(read_jsonl(data / "glm_counts.jsonl")) == 1
    assert json.loads((data / "metrics_summary.json").read_text())["turns"] == 2
    c.close()


def test_flush_close_and_context_manager(tmp_path, keys, collector):
    pack = keys.issue("full.json", "telemetry_minimized,telemetry_full")
    c = CCCClient(base_url=collector.url, api_key=collector.api_key, data_dir=tmp_path / "d",
                  privacy="full", licensing=str(pack))
    # A path as `licensing` trusts the data dir's configured keys: none here, so it fails.
    from agentos_ccc import LicenseError
    with pytest.raises(LicenseError) as e:
        c.start_session(**SESSION)
    assert e.value.code in ("no_public_keys", "unknown_kid")
    c.close()

    with CCCClient(base_url=collector.url, api_key=collector.api_key, data_dir=tmp_path / "e",
                   privacy="full", licensing=LicenseClient(pack, pubkeys=keys.pubkeys)) as c:
        assert c.delivery_state == "running"
        c.start_session(**SESSION)
        for _ in range(5):
            c.log_event(model="claude-sonnet-4.5", **SEED_TURN)
        assert c.flush(10) is True
        assert len(collector.events()) == 6
    assert c.delivery_state == "closed"
    assert c.close() is True  # idempotent
