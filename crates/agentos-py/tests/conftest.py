"""Shared fixtures: the real `agentos` binary, Ed25519 keys and packs made by it, and the real
collector (`agentos ccc serve` over a SQLite file) on a loopback port."""

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def agentos_bin() -> str:
    path = os.environ.get("AGENTOS_BIN") or str(ROOT / "target" / "debug" / "agentos")
    if not Path(path).is_file():
        pytest.fail(f"agentos binary not found at {path}; run `cargo build -p agentos-cli` or set AGENTOS_BIN")
    return path


@pytest.fixture(autouse=True)
def clean_env(tmp_path, monkeypatch):
    """No user configuration leaks in: every AGENTOS_* variable and DO_NOT_TRACK are unset and
    the XDG config dir is empty."""
    for k in list(os.environ):
        if k.startswith("AGENTOS_") and k != "AGENTOS_BIN" or k == "DO_NOT_TRACK":
            monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


def run(*args, env=None, check=True, cwd=None) -> subprocess.CompletedProcess:
    p = subprocess.run(
        [agentos_bin(), *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd
    )
    if check and p.returncode != 0:
        raise AssertionError(f"agentos {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr}")
    return p


class Keys:
    """A key pair made by `agentos license keygen` and packs issued with it."""

    def __init__(self, dir: Path, kid: str = "k1"):
        self.dir = dir
        self.kid = kid
        out = json.loads(run("license", "keygen", "--out", dir, "--kid", kid, "--json").stdout)
        self.public = out["public_key"]
        self.secret = Path(out["secret_key_file"])

    @property
    def pubkeys(self):
        return {self.kid: self.public}

    def issue(self, name: str, features: str, expires: str = "90d") -> Path:
        path = self.dir / name
        args = ["license", "issue", "--key", self.secret, "--plan", "pro", "--expires", expires, "--out", path]
        if features:
            args += ["--features", features]
        run(*args)
        return path


@pytest.fixture
def keys(tmp_path) -> Keys:
    return Keys(tmp_path / "keys")


class Collector:
    """`agentos ccc serve` on 127.0.0.1 with a fresh SQLite database and one API key."""

    def __init__(self, dir: Path, trust: str):
        dir.mkdir(parents=True, exist_ok=True)
        self.db = dir / "collector.db"
        url = f"sqlite:{self.db}"
        self.api_key = run("ccc", "keys", "create", "--tenant", "acme", "--database", url, "--data-dir", dir).stdout.strip()
        self.proc = subprocess.Popen(
            [agentos_bin(), "ccc", "serve", "--listen", "127.0.0.1:0", "--database", url,
             "--license-pubkeys", trust, "--data-dir", str(dir)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        line = self.proc.stdout.readline()
        if "listening on " not in line:
            self.proc.kill()
            raise AssertionError(f"collector did not start: {line!r} {self.proc.stderr.read()}")
        self.url = line.split("listening on ")[1].split()[0]

    def _query(self, sql):
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def events(self):
        return [json.loads(b) for (b,) in self._query("SELECT body FROM events ORDER BY seq")]

    def summaries(self):
        return [json.loads(b) for (b,) in self._query("SELECT body FROM summaries")]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def collector(tmp_path, keys):
    c = Collector(tmp_path / "collector", f"{keys.kid}={keys.public}")
    yield c
    c.stop()


def read_jsonl(path: Path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# The seed's turn: capacity 0.5, cls 1.2, impf 4.5, feature_delta 1.0.
SEED_TURN = dict(
    subagent="main",
    tokens_in=1200,
    tokens_out=300,
    input_kind="text",
    latency_ms=850.0,
    measurement={"cls": 1.2, "impf": 4.5, "churn_score": 0.1, "feature_delta": 1.0,
                 "errors": ["flaky test"]},
    value={"summary": "shipped login", "links": ["https://example.invalid/pr/1"],
           "evidence_refs": ["local-notes.md"]},
    attribution={"claude-sonnet-4.5": 1.0},
    capacity_used=0.5,
)

SESSION = dict(repo_id="repo-1", branch="main", commit="abc", license_id="lic-1",
               metadata={"team": "core", "customer": "ACME secret"})
