//! The database failing under the collector: a failed write never wedges the writer, the
//! client gets 503 with `Retry-After` (retryable) and never a 500, `/readyz` turns 503 while
//! writes fail, and everything recovers by itself once the database can write again.
//!
//! SQLite runs on a real full filesystem: a tmpfs of a few MiB mounted for the test (needs
//! root; the test says clearly when it cannot mount and is then skipped) and filled with a
//! filler file, which is deleted to give the space back. PostgreSQL runs in a private cluster
//! that is stopped and restarted while clients keep sending.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use agentos_collector::StoreOptions;
use serde_json::Value;

use crate::common::{Harness, Options, batch, turn};

/// A tmpfs mounted on a temp dir for one test; unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
                    Err(e) => e.to_string(),
                };
                // Straight to stderr: libtest hides eprintln! of passing tests.
                let _ = writeln!(
                    std::io::stderr(),
                    "\n*** disk-full test SKIPPED: cannot mount a {size} tmpfs (needs root): {why} ***\n"
                );
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let done = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !done {
            // Still busy (a connection not closed yet): detach it so nothing outlives the test.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Writes `path` until the filesystem is full, down to single bytes.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).expect("create filler");
    for chunk in [64 * 1024, 4096, 1] {
        let buf = vec![0u8; chunk];
        loop {
            match f.write_all(&buf) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
}

/// POST /v1/events, returning the status, the `Retry-After` header and the body.
async fn post(h: &Harness, key: &str, body: &Value) -> (u16, Option<String>, Value) {
    let resp = h
        .client
        .post(format!("{}/v1/events", h.base))
        .bearer_auth(key)
        .header("X-AgentOS-License", h.full())
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).expect("json"))
        .send()
        .await
        .expect("the collector answers");
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        retry,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn readyz(h: &Harness) -> (u16, Value) {
    h.send(reqwest::Method::GET, "/readyz", None, None, None, None)
        .await
        .expect("readyz answers")
}

fn big_batch(device: &str, from: u64, n: u64) -> Value {
    batch(
        device,
        from,
        from + n - 1,
        (from..from + n).map(turn).collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_full_is_503_then_recovers_when_space_returns() -> anyhow::Result<()> {
    let Some(fs) = Tmpfs::mount("8m") else {
        return Ok(());
    };
    let url = format!("sqlite:{}", fs.path().join("collector.db").display());
    let mut h = Harness::at_url(url, Options::default()).await?;
    let key = h.key("acme").await?;
    let (s, _, r) = post(&h, &key, &big_batch("d", 1, 3)).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(readyz(&h).await.0, 200);

    let filler: PathBuf = fs.path().join("filler");
    fill(&filler);
    let full = big_batch("d", 4, 400);
    for attempt in 0..3 {
        let (s, retry, r) = post(&h, &key, &full).await;
        assert_eq!(
            s, 503,
            "attempt {attempt}: disk full must be retryable, never a wedged 500: {r}"
        );
        assert!(retry.is_some(), "503 carries Retry-After");
        assert_eq!(r["code"], "unavailable", "{r}");
    }
    let (s, r) = readyz(&h).await;
    assert_eq!(s, 503, "not ready while writes fail: {r}");
    assert_eq!(r["database"]["writable"], false, "{r}");

    std::fs::remove_file(&filler)?;
    let (s, _, r) = post(&h, &key, &full).await;
    assert_eq!(
        s, 200,
        "writes recover by themselves once space returns: {r}"
    );
    assert_eq!(r["accepted"], 400);
    assert_eq!(r["watermark"], 403);
    let (s, r) = readyz(&h).await;
    assert_eq!(s, 200, "ready again after a successful write: {r}");
    assert_eq!(h.state.store().event_count("acme").await?, 403);

    h.shutdown().await?;
    h.state.store().close().await;
    drop(h);
    drop(fs);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_under_load_is_503_and_recovers_after_restart() -> anyhow::Result<()> {
    let Some(cluster) = agentos_test_support::pg::private_cluster()? else {
        return Ok(());
    };
    let cluster = Arc::new(cluster);
    let opts = Options {
        store: StoreOptions {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(2),
        },
        ..Options::default()
    };
    let h = Arc::new(Harness::at_url(cluster.admin_url.clone(), opts).await?);
    let key = Arc::new(h.key("acme").await?);
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let unavailable = Arc::new(AtomicU64::new(0));
    // Two clients, each resending its current batch until it is acknowledged (as the real
    // uploader does), then moving on.
    let mut clients = Vec::new();
    for c in 0..2 {
        let (h, key, stop, acked, unavailable) = (
            Arc::clone(&h),
            Arc::clone(&key),
            Arc::clone(&stop),
            Arc::clone(&acked),
            Arc::clone(&unavailable),
        );
        clients.push(tokio::spawn(async move {
            let device = format!("dev-{c}");
            let mut from = 1;
            let mut statuses = Vec::new();
            let body = |from| big_batch(&device, from, 10);
            let mut current = body(from);
            while !stop.load(Ordering::SeqCst) {
                let (s, retry, r) = post(&h, &key, &current).await;
                match s {
                    200 => {
                        acked.fetch_add(10, Ordering::SeqCst);
                        from += 10;
                        current = body(from);
                    }
                    503 => {
                        assert!(retry.is_some(), "503 carries Retry-After");
                        unavailable.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    _ => statuses.push((s, r)),
                }
            }
            statuses
        }));
    }
    // Bounded waits: liveness checks with generous limits, not timing assertions.
    async fn wait_for(what: &str, mut cond: impl AsyncFnMut() -> bool) {
        for _ in 0..600 {
            if cond().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("gave up waiting (60 s) for {what}");
    }
    wait_for("traffic before the stop", async || {
        acked.load(Ordering::SeqCst) >= 40
    })
    .await;
    let c = Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || c.stop_server()).await??;
    let before = unavailable.load(Ordering::SeqCst);
    wait_for("503s while the database is down", async || {
        unavailable.load(Ordering::SeqCst) >= before + 3
    })
    .await;
    let (s, r) = readyz(&h).await;
    assert_eq!(s, 503, "not ready while the database is down: {r}");

    let c = Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || c.start_server()).await??;
    let after_restart = acked.load(Ordering::SeqCst);
    wait_for("writes after the restart", async || {
        acked.load(Ordering::SeqCst) >= after_restart + 40
    })
    .await;
    wait_for("readiness after the restart", async || {
        readyz(&h).await.0 == 200
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        let odd = client.await?;
        assert!(odd.is_empty(), "only 200 or 503, never a 500: {odd:?}");
    }
    // Nothing acknowledged was lost, nothing resent was stored twice.
    assert_eq!(
        h.state.store().event_count("acme").await?,
        acked.load(Ordering::SeqCst)
    );
    Ok(())
}
