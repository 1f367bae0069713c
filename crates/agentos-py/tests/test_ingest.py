"""backfill() and report() give the documents the CLI prints (`ccc backfill --dry-run`,
`report KIND --json`)."""

import json
from pathlib import Path

import agentos_ccc
import pytest
from conftest import ROOT, run

SNAPSHOT = ROOT / "crates" / "agentos-ingest" / "tests" / "fixtures" / "ccc_usage_r35_full.json"


def ccp_root(tmp_path: Path) -> Path:
    root = tmp_path / "ccp"
    (root / "logs").mkdir(parents=True)
    (root / "results").mkdir()
    lines = [
        {"ts": 1761267000.5, "rid": "0badf00d", "lane": "zai", "model": "claude-haiku-4.5",
         "input_tokens": 120, "output_tokens": 40, "status": 200, "reason": "ok", "op": "nonstream",
         "latency_ms": 900},
        {"ts": 1761353400.0, "rid": "1badf00d", "lane": "anthropic", "model": "claude-3.5-sonnet",
         "input_tokens": 1000, "output_tokens": 300, "status": 200, "reason": "ok", "op": "nonstream",
         "latency_ms": 1500},
    ]
    (root / "logs" / "usage.jsonl").write_text("".join(json.dumps(l) + "\n" for l in lines))
    (root / "results" / "METRICS_1.json").write_text('{"total": 0}')
    return root


def drop(doc, *keys):
    return {k: v for k, v in doc.items() if k not in keys}


def test_backfill_matches_the_cli(tmp_path):
    root = ccp_root(tmp_path)
    data = tmp_path / "data"
    py = agentos_ccc.backfill(root, data_dir=data, usage_json=str(SNAPSHOT))
    assert py["turns"] == 2
    assert set(py["model_health"]) == {"claude-haiku-4.5", "claude-3.5-sonnet"}
    written = json.loads((data / "ccp_metrics_summary.json").read_text())
    assert drop(written, "generated_at") == drop(py, "generated_at")
    cli = json.loads(run("ccc", "backfill", "--ccp-root", root, "--usage-json", SNAPSHOT,
                         "--dry-run", "--data-dir", tmp_path / "cli").stdout)
    assert drop(cli, "generated_at", "ingest") == drop(py, "generated_at", "ingest")
    with pytest.raises(agentos_ccc.AgentosError):
        agentos_ccc.backfill(tmp_path / "missing", data_dir=data)


def test_report_matches_the_cli(tmp_path):
    root = ccp_root(tmp_path)
    data = tmp_path / "data"
    run("ingest", "ccc", "--ccp-root", root, "--data-dir", data)
    for kind in ("daily", "monthly", "session"):
        cli = json.loads(run("report", kind, "--json", "--timezone", "UTC", "--data-dir", data).stdout)
        py = agentos_ccc.report(kind, data_dir=data, timezone="UTC")
        assert py == cli, kind
        assert py["totals"]["turns"] == 2
    ccusage = agentos_ccc.report("daily", data_dir=data, timezone="UTC", ccusage_format=True)
    assert ccusage == json.loads(run("report", "daily", "--json-format", "ccusage", "--timezone",
                                     "UTC", "--data-dir", data).stdout)
    with pytest.raises(agentos_ccc.ValidationError):
        agentos_ccc.report("hourly", data_dir=data)
