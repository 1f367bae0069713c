//! A throwaway PostgreSQL cluster started by the tests themselves.
//!
//! [`fresh_database`] hands each test its own empty database:
//! - with `AGENTOS_TEST_PG_URL` set, inside that server (a new database per call);
//! - otherwise inside a cluster this module starts: `initdb` into a temp dir, `pg_ctl start` on a
//!   free loopback port with the socket in the temp dir (under `runuser -u postgres` when running
//!   as root, since PostgreSQL refuses to run as root). One cluster is shared by the tests of a
//!   process that overlap in time and stopped when the last [`PgDatabase`] is dropped; a small
//!   watchdog process also stops it if the test process dies without dropping it.
//!
//! When no PostgreSQL binaries exist, [`fresh_database`] prints `PostgreSQL tests NOT RUN`
//! to stderr and fails, unless `AGENTOS_ALLOW_NO_PG=1`, in which case it returns `Ok(None)`
//! and the caller skips visibly. PostgreSQL tests are never counted as passed silently.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use anyhow::{Context, bail};
use sqlx::Connection;

/// Environment variable naming an existing server to use instead of a throwaway cluster.
pub const PG_URL_ENV: &str = "AGENTOS_TEST_PG_URL";
/// Environment variable that turns "no PostgreSQL" from a failure into a visible skip.
pub const ALLOW_NO_PG_ENV: &str = "AGENTOS_ALLOW_NO_PG";

/// How the cluster treats durability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fsync=off`: fast, for functional tests (a crash of the test machine loses nothing we need).
    Fast,
    /// PostgreSQL defaults (fsync on, synchronous commit): for benchmarks.
    Durable,
}

/// A running throwaway cluster. Stopped (and its directory removed) on drop.
#[derive(Debug)]
pub struct PgCluster {
    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub admin_url: String,
    bin_dir: PathBuf,
    data_dir: PathBuf,
    as_postgres: bool,
    /// The `-o` options and log file of `pg_ctl start`, for [`PgCluster::start_server`].
    start_opts: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
    watchdog: Option<std::process::Child>,
}

/// One fresh database. Keeps its cluster alive while it exists.
#[derive(Debug)]
pub struct PgDatabase {
    /// Connection URL of the database.
    pub url: String,
    _cluster: Option<Arc<PgCluster>>,
}

static SHARED: Mutex<Option<Weak<PgCluster>>> = Mutex::new(None);
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Where the PostgreSQL server binaries are, if anywhere.
pub fn find_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("AGENTOS_PG_BINDIR") {
        let dir = PathBuf::from(dir);
        return dir.join("initdb").exists().then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    dir.join("initdb").exists().then_some(dir)
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn run(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

impl PgCluster {
    /// Starts a new cluster.
    ///
    /// # Errors
    /// When the binaries are missing or `initdb`/`pg_ctl` fail (the message includes their output).
    pub fn start(durability: Durability) -> anyhow::Result<PgCluster> {
        let bin_dir = find_bin_dir().context("no PostgreSQL server binaries found")?;
        let as_postgres = running_as_root();
        let dir = tempfile::Builder::new().prefix("agentos-pg-").tempdir()?;
        let data_dir = dir.path().join("data");
        let sock_dir = dir.path().join("sock");
        std::fs::create_dir(&data_dir)?;
        std::fs::create_dir(&sock_dir)?;
        let pg_cmd = |tool: &str| {
            let exe = bin_dir.join(tool);
            if as_postgres {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(exe);
                c
            } else {
                Command::new(exe)
            }
        };
        if as_postgres {
            // The postgres user must be able to reach and own its directories.
            run(
                Command::new("chmod").arg("755").arg(dir.path()),
                "chmod of the cluster dir",
            )?;
            run(
                Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(&data_dir)
                    .arg(&sock_dir),
                "chown of the cluster dirs",
            )?;
        }
        run(
            pg_cmd("initdb").arg("-D").arg(&data_dir).args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ]),
            "initdb",
        )?;
        let mut last_err = None;
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let mut opts = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
                sock_dir.display()
            );
            if durability == Durability::Fast {
                opts.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
            }
            let started = run(
                pg_cmd("pg_ctl")
                    .arg("-D")
                    .arg(&data_dir)
                    .arg("-o")
                    .arg(&opts)
                    .arg("-l")
                    .arg(sock_dir.join("pg.log"))
                    .args(["-w", "-t", "60", "start"]),
                "pg_ctl start",
            );
            match started {
                Ok(()) => {
                    let watchdog = spawn_watchdog(&bin_dir, &data_dir, dir.path(), as_postgres);
                    return Ok(PgCluster {
                        admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
                        bin_dir,
                        data_dir,
                        as_postgres,
                        start_opts: opts,
                        log: sock_dir.join("pg.log"),
                        _dir: dir,
                        watchdog,
                    });
                }
                // Most likely the port was taken between probing and binding; try another.
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("pg_ctl start failed")))
    }

    /// `pg_ctl` as the user that owns the cluster.
    fn pg_ctl(&self) -> Command {
        let exe = self.bin_dir.join("pg_ctl");
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.arg("-D").arg(&self.data_dir);
        cmd
    }

    /// Stops the server (`-m fast`: open connections are terminated), keeping the cluster, so
    /// a test can see what clients get while the database is down.
    ///
    /// # Errors
    /// When `pg_ctl stop` fails.
    pub fn stop_server(&self) -> anyhow::Result<()> {
        run(
            self.pg_ctl().args(["-m", "fast", "-w", "-t", "60", "stop"]),
            "pg_ctl stop",
        )
    }

    /// Starts the server again on the same port after [`PgCluster::stop_server`].
    ///
    /// # Errors
    /// When `pg_ctl start` fails.
    pub fn start_server(&self) -> anyhow::Result<()> {
        run(
            self.pg_ctl()
                .arg("-o")
                .arg(&self.start_opts)
                .arg("-l")
                .arg(&self.log)
                .args(["-w", "-t", "60", "start"]),
            "pg_ctl start",
        )
    }
}

/// Stops the cluster when the test process is gone (e.g. killed by a timeout), so no
/// postmaster outlives the run.
fn spawn_watchdog(
    bin_dir: &Path,
    data_dir: &Path,
    dir: &Path,
    as_postgres: bool,
) -> Option<std::process::Child> {
    let pg_ctl = bin_dir.join("pg_ctl");
    let stop = format!(
        "{}{} -D {} -m immediate stop",
        if as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        },
        pg_ctl.display(),
        data_dir.display()
    );
    let script = format!(
        // A zombie still answers `kill -0`, so also check its state.
        "while kill -0 {pid} 2>/dev/null && ! grep -qs '^State:[[:space:]]*Z' /proc/{pid}/status; do sleep 1; done; \
         if [ -d {data} ]; then {stop} >/dev/null 2>&1; rm -rf {dir}; fi",
        pid = std::process::id(),
        data = data_dir.display(),
        dir = dir.display(),
    );
    // `setsid`: its own session, so killing the test's process group (a CI timeout) does not
    // take the watchdog down with it.
    Command::new("setsid")
        .arg("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self
            .pg_ctl()
            .args(["-m", "fast", "-w", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

/// Replaces the database name in a PostgreSQL URL.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    let mut out = format!("{}/{db}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

async fn create_database(admin_url: &str) -> anyhow::Result<String> {
    let name = format!(
        "agentos_t_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .with_context(|| format!("cannot connect to {admin_url}"))?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .with_context(|| format!("cannot create database {name}"))?;
    let _ = conn.close().await;
    Ok(with_database(admin_url, &name))
}

fn not_run<T>(reason: &str) -> anyhow::Result<Option<T>> {
    // Written to the stderr handle directly: libtest captures `eprintln!` of passing tests,
    // and a skip must be visible even then.
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "\n*** PostgreSQL tests NOT RUN: {reason}. Set {PG_URL_ENV} or install PostgreSQL; \
         {ALLOW_NO_PG_ENV}=1 turns this failure into a visible skip. ***\n"
    );
    if std::env::var(ALLOW_NO_PG_ENV).as_deref() == Ok("1") {
        Ok(None)
    } else {
        bail!("PostgreSQL tests NOT RUN: {reason}")
    }
}

/// A cluster of the caller's own (not shared), for tests that stop and restart the server.
/// `None` only when PostgreSQL is missing and skipping was allowed, as for [`fresh_database`].
///
/// # Errors
/// When the cluster cannot start, or PostgreSQL is missing and skipping was not allowed.
pub fn private_cluster() -> anyhow::Result<Option<PgCluster>> {
    if find_bin_dir().is_none() {
        return not_run("no PostgreSQL server binaries found");
    }
    PgCluster::start(Durability::Fast).map(Some)
}

/// A cluster shared by overlapping callers in this process (started on first use).
///
/// # Errors
/// When the cluster cannot start.
pub fn shared_cluster() -> anyhow::Result<Arc<PgCluster>> {
    let mut guard = SHARED
        .lock()
        .map_err(|_| anyhow::anyhow!("shared cluster lock poisoned"))?;
    if let Some(c) = guard.as_ref().and_then(Weak::upgrade) {
        return Ok(c);
    }
    let c = Arc::new(PgCluster::start(Durability::Fast)?);
    *guard = Some(Arc::downgrade(&c));
    Ok(c)
}

/// An empty database for one test.
///
/// Returns `Ok(None)` only when PostgreSQL is unavailable and `AGENTOS_ALLOW_NO_PG=1` (after
/// printing "PostgreSQL tests NOT RUN").
///
/// # Errors
/// When PostgreSQL is unavailable (and skipping is not allowed) or the database cannot be made.
pub async fn fresh_database() -> anyhow::Result<Option<PgDatabase>> {
    if let Ok(url) = std::env::var(PG_URL_ENV) {
        let url = create_database(&url).await?;
        return Ok(Some(PgDatabase {
            url,
            _cluster: None,
        }));
    }
    if find_bin_dir().is_none() {
        return not_run("no PostgreSQL server binaries (initdb) found");
    }
    let cluster = tokio::task::spawn_blocking(shared_cluster).await??;
    let url = create_database(&cluster.admin_url).await?;
    Ok(Some(PgDatabase {
        url,
        _cluster: Some(cluster),
    }))
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_name_is_replaced_and_the_query_kept() {
        assert_eq!(
            with_database("postgres://u:p@h:5/postgres?sslmode=disable", "x"),
            "postgres://u:p@h:5/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:5", "x"), "postgres://h:5/x");
    }
}
