"""License rejections, validation errors, recorder equivalence with the CLI, threads, fork."""

import json
import os
import threading

import pytest

import agentos_ccc
from agentos_ccc import (CCCClient, LicenseClient, LicenseError, ValidationError, verify_license,
                         Full, Minimized)
from conftest import SEED_TURN, SESSION, read_jsonl, run


def test_missing_entitlement_is_refused_strictly(tmp_path, keys):
    pack = keys.issue("min.json", "telemetry_minimized")
    c = CCCClient(base_url=None, api_key=None, data_dir=tmp_path / "d", privacy=Full(),
                  licensing=LicenseClient(pack, pubkeys=keys.pubkeys), transport=lambda *a: None)
    with pytest.raises(LicenseError) as e:
        c.start_session(**SESSION)
    assert e.value.code == "missing_entitlement"
    assert not (tmp_path / "d" / "windows.jsonl").exists()


def test_tampered_pack_is_rejected_with_its_cause(tmp_path, keys):
    pack = keys.issue("full.json", "telemetry_minimized,telemetry_full")
    doc = json.loads(pack.read_text())
    doc["license"]["plan"] = "enterprise"
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(LicenseError) as e:
        LicenseClient(bad, pubkeys=keys.pubkeys).validate_pack()
    assert e.value.code == "bad_signature"
    with pytest.raises(LicenseError) as e:
        verify_license(bad, pubkeys=keys.pubkeys)
    assert e.value.code == "bad_signature"
    assert verify_license(pack, pubkeys=keys.pubkeys)["features"] == ["telemetry_minimized", "telemetry_full"]


def test_untrusted_key_and_expiry(tmp_path, keys):
    from conftest import Keys
    other = Keys(tmp_path / "other", kid="k2")
    pack = keys.issue("full.json", "telemetry_full")
    with pytest.raises(LicenseError) as e:
        LicenseClient(pack, pubkeys=other.pubkeys).validate_pack()
    assert e.value.code == "unknown_kid"
    lc = LicenseClient(pack, pubkeys=keys.pubkeys, clock=lambda: 4_000_000_000)
    with pytest.raises(LicenseError) as e:
        lc.validate_pack()
    assert e.value.code == "expired"


def test_injected_verifier_and_clock(tmp_path):
    # The seed's tests: a fake signature, a verifier that accepts it, a fixed clock.
    claims = {"schema": "ccp.license.v1", "plan": "pro", "features": ["telemetry_minimized"],
              "exp": 2_000_000_000, "kid": "dev"}
    pack = tmp_path / "pack.json"
    pack.write_text(json.dumps({"license": claims, "signature": "A" * 86 + "=="}))
    seen = []

    def accept(kid, payload, signature):
        seen.append((kid, json.loads(payload)["plan"]))

    lc = LicenseClient(pack, verifier=accept, clock=lambda: 1_900_000_000)
    assert lc.validate_pack(lc.load_pack())["plan"] == "pro"
    assert seen and seen[0] == ("dev", "pro")
    assert lc.check_entitlement("telemetry_minimized") and not lc.check_entitlement("telemetry_full")

    def reject(kid, payload, signature):
        raise ValueError("bad pack")

    with pytest.raises(LicenseError) as e:
        LicenseClient(pack, verifier=reject, clock=lambda: 1_900_000_000).validate_pack()
    assert e.value.code == "bad_signature" and "bad pack" in str(e.value)

    # The handshake with the injected client grants the tier without the Rust keyring.
    calls = []
    c = CCCClient(base_url=None, api_key=None, data_dir=tmp_path / "d", privacy=Minimized(),
                  licensing=LicenseClient(pack, verifier=accept, clock=lambda: 1_900_000_000),
                  transport=lambda r, p: calls.append(r))
    c.start_session(**SESSION)
    assert c.session_tier == "minimized"
    c.end_session()
    assert calls == ["/v1/metrics"]


def test_without_licensing_the_recorder_downgrades_to_local(tmp_path):
    calls = []
    c = CCCClient(base_url=None, api_key=None, data_dir=tmp_path / "d", privacy="full",
                  transport=lambda r, p: calls.append(r))
    c.start_session(**SESSION)
    assert c.session_tier == "local"
    assert c.last_start["downgrade"]["code"] == "no_pack"
    c.log_event(model="m", **SEED_TURN)
    c.end_session()
    assert calls == []


def test_validation_error_names_the_pointer_and_writes_nothing(tmp_path):
    c = CCCClient(base_url=None, api_key=None, data_dir=tmp_path / "d", privacy="local", transport=None)
    c.start_session(**SESSION)
    bad = dict(SEED_TURN, tokens_in=-5)
    with pytest.raises(ValidationError) as e:
        c.log_event(model="m", **bad)
    assert e.value.pointer == "/turn/tokens_in"
    bad = dict(SEED_TURN, measurement={"cls": 1.0})
    with pytest.raises(ValidationError) as e:
        c.log_event(model="m", **bad)
    assert e.value.pointer.startswith("/measurement")
    assert isinstance(e.value, ValueError)
    assert len(read_jsonl(tmp_path / "d" / "windows.jsonl")) == 1
    with pytest.raises(ValueError):
        CCCClient(base_url=None, api_key=None, data_dir=tmp_path / "e", privacy="secret")
    c.close()


def normalise(line):
    """Drops what differs between two runs: ids and times."""
    s = json.dumps(line, sort_keys=True)
    for k in ("event_id", "recorded_at", "created_at", "ended_at", "session_id", "turn_id", "generated_at"):
        s = _blank(s, k)
    return s


def _blank(text, key):
    import re
    return re.sub(rf'"{key}": "[^"]*"', f'"{key}": "-"', text)


def test_recorder_equivalence_with_the_cli(tmp_path):
    cli, py = tmp_path / "cli", tmp_path / "py"
    run("ccc", "session", "start", "--repo-id", "repo-1", "--branch", "main", "--commit", "abc",
        "--license-id", "lic-1", "--tier", "local", "--metadata", "team=core", "--data-dir", cli)
    for model in ("claude-sonnet-4.5", "glm-4.6"):
        run("ccc", "turn", "--model", model, "--subagent", "main", "--tokens-in", "1200",
            "--tokens-out", "300", "--input-kind", "text", "--latency-ms", "850",
            "--capacity-used", "0.5", "--attribution", "claude-sonnet-4.5=1", "--cls", "1.2",
            "--impf", "4.5", "--churn-score", "0.1", "--feature-delta", "1", "--error", "flaky test",
            "--value-summary", "shipped login", "--link", "https://example.invalid/pr/1",
            "--data-dir", cli)
    run("ccc", "session", "end", "--notes", "n", "--no-upload", "--data-dir", cli)

    c = CCCClient(base_url=None, api_key=None, data_dir=py, privacy="local")
    c.start_session(repo_id="repo-1", branch="main", commit="abc", license_id="lic-1",
                    metadata={"team": "core"})
    for model in ("claude-sonnet-4.5", "glm-4.6"):
        c.log_event(model=model, subagent="main", tokens_in=1200, tokens_out=300,
                    input_kind="text", latency_ms=850.0, capacity_used=0.5,
                    attribution={"claude-sonnet-4.5": 1.0},
                    measurement={"cls": 1.2, "impf": 4.5, "churn_score": 0.1, "feature_delta": 1.0,
                                 "errors": ["flaky test"]},
                    value={"summary": "shipped login", "links": ["https://example.invalid/pr/1"]})
    c.end_session(notes="n")
    c.close()

    for name in ("windows.jsonl", "glm_counts.jsonl"):
        a = [normalise(l) for l in read_jsonl(cli / name)]
        b = [normalise(l) for l in read_jsonl(py / name)]
        assert a == b and a, name
    def summary(d):
        sid = read_jsonl(d / "windows.jsonl")[0]["session"]["session_id"]
        return normalise(json.loads((d / "metrics_summary.json").read_text())).replace(sid, "SID")

    assert summary(cli) == summary(py)
    assert sorted(p.name for p in cli.iterdir() if p.is_file() and p.name != "device_id") == \
        sorted(p.name for p in py.iterdir() if p.is_file() and p.name != "device_id")


def test_many_threads_one_client(tmp_path):
    c = CCCClient(base_url=None, api_key=None, data_dir=tmp_path / "d", privacy="local")
    c.start_session(**SESSION)

    def work():
        for _ in range(50):
            c.log_event(model="m", **SEED_TURN)

    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    lines = read_jsonl(tmp_path / "d" / "windows.jsonl")
    assert [l["seq"] for l in lines] == list(range(1, 202))
    assert c.refresh_metrics_summary()["turns"] == 200
    c.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_does_not_duplicate_uploads(tmp_path, keys, collector):
    pack = keys.issue("full.json", "telemetry_minimized,telemetry_full")
    c = CCCClient(base_url=collector.url, api_key=collector.api_key, data_dir=tmp_path / "d",
                  privacy="full", licensing=LicenseClient(pack, pubkeys=keys.pubkeys))
    c.start_session(**SESSION)
    pid = os.fork()
    if pid == 0:  # child: records, cannot deliver, exits without touching the parent's uploader
        code = 0
        try:
            c.log_event(model="child", **SEED_TURN)
            if c.delivery_state != "forked" or c.flush(1) is not False:
                code = 3
            c.close()
        except BaseException:
            code = 4
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    c.log_event(model="parent", **SEED_TURN)
    assert c.flush(10)
    c.close()
    models = [e["turn"]["model"] for e in collector.events() if e["type"] == "turn"]
    assert sorted(models) == ["child", "parent"]


def test_preview_matches_what_would_leave(tmp_path, keys):
    pack = keys.issue("full.json", "telemetry_minimized,telemetry_full")
    d = tmp_path / "d"
    d.mkdir()
    (d / "agentos.toml").write_text(f'[license]\npack = "{pack}"\npubkeys = {{ {keys.kid} = "{keys.public}" }}\n')
    c = CCCClient(base_url=None, api_key=None, data_dir=d, privacy="full", licensing=str(pack))
    c.start_session(**SESSION)
    c.log_event(model="m", **SEED_TURN)
    c.close()
    p = agentos_ccc.preview(d)
    assert p["tier"] == "full"
    assert [e["type"] for e in p["events"]] == ["session", "turn"]
    assert "evidence_refs" not in p["events"][1]["value"]
    assert set(p["metrics"]) == set(agentos_ccc.MINIMIZED_SUMMARY_FIELDS)
    assert agentos_ccc.preview(d, "minimized")["events"] == []
