//! A headless Chromium driven over the DevTools protocol, with a minimal WebSocket client (the
//! protocol needs only text frames), for the dashboard's browser tests.
//!
//! Chromium is the Debian package `chromium`. When it is missing the tests say so on stderr and
//! pass only when `CI` is unset: `.ci/run` installs it and sets `CI`, so CI never skips them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// How long any one browser step may take before the test fails (a deadline, not a measurement).
const STEP: Duration = Duration::from_secs(60);

/// The Chromium binary, if installed.
pub fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .filter_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
            })
        })
        .next()
}

/// Chromium, or `None` after saying loudly that it is missing (an error under `CI`).
pub fn chromium_or_skip(test: &str) -> anyhow::Result<Option<PathBuf>> {
    match chromium() {
        Some(p) => Ok(Some(p)),
        None if std::env::var_os("CI").is_some() => {
            bail!("{test}: chromium is not installed, and CI must run the browser tests")
        }
        None => {
            eprintln!(
                "SKIPPED {test}: chromium is not installed (apt-get install chromium); \
                 .ci/run installs it and never skips"
            );
            Ok(None)
        }
    }
}

/// Where screenshots go: `target/browser-screenshots/` (test artefacts, not committed).
pub fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-screenshots");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

struct Ws {
    stream: TcpStream,
}

impl Ws {
    async fn connect(url: &str) -> anyhow::Result<Ws> {
        let rest = url
            .strip_prefix("ws://")
            .context("DevTools gave a non-ws URL")?;
        let (host, path) = rest.split_once('/').context("ws URL without path")?;
        let mut stream = TcpStream::connect(host).await?;
        let req = format!(
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).await?;
            head.push(byte[0]);
            if head.len() > 16 * 1024 {
                bail!("WebSocket handshake answer too long");
            }
        }
        let head = String::from_utf8_lossy(&head);
        if !head.starts_with("HTTP/1.1 101") {
            bail!("WebSocket handshake refused: {head}");
        }
        Ok(Ws { stream })
    }

    async fn send(&mut self, text: &str) -> anyhow::Result<()> {
        let payload = text.as_bytes();
        let mut frame = vec![0x81u8];
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).await?;
        Ok(())
    }

    /// The next complete text message.
    async fn recv(&mut self) -> anyhow::Result<String> {
        let mut message = Vec::new();
        loop {
            let mut h = [0u8; 2];
            self.stream.read_exact(&mut h).await?;
            let fin = h[0] & 0x80 != 0;
            let opcode = h[0] & 0x0f;
            let mut len = u64::from(h[1] & 0x7f);
            if len == 126 {
                let mut b = [0u8; 2];
                self.stream.read_exact(&mut b).await?;
                len = u64::from(u16::from_be_bytes(b));
            } else if len == 127 {
                let mut b = [0u8; 8];
                self.stream.read_exact(&mut b).await?;
                len = u64::from_be_bytes(b);
            }
            let mut payload = vec![0u8; usize::try_from(len)?];
            self.stream.read_exact(&mut payload).await?;
            match opcode {
                0x8 => bail!("the browser closed the DevTools connection"),
                0x9 | 0xA => continue,
                _ => message.extend_from_slice(&payload),
            }
            if fin {
                return Ok(String::from_utf8(message)?);
            }
        }
    }
}

/// One headless Chromium with one page.
pub struct Browser {
    child: std::process::Child,
    _profile: tempfile::TempDir,
    ws: Ws,
    next_id: u64,
    /// DevTools events not yet consumed.
    events: Vec<Value>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// Starts Chromium (fresh profile, no network beyond what pages ask for) on about:blank.
    pub async fn start(binary: &Path) -> anyhow::Result<Browser> {
        let profile = tempfile::tempdir()?;
        let child = std::process::Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = tokio::time::Instant::now() + STEP;
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file)
                && let Some(p) = text.lines().next().and_then(|l| l.parse::<u16>().ok())
            {
                break p;
            }
            if tokio::time::Instant::now() > deadline {
                bail!("chromium never wrote {}", port_file.display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let list: Value = reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
            .await?
            .json()
            .await?;
        let ws_url = list
            .as_array()
            .and_then(|l| l.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .context("no page target")?
            .to_string();
        let ws = Ws::connect(&ws_url).await?;
        let mut b = Browser {
            child,
            _profile: profile,
            ws,
            next_id: 0,
            events: Vec::new(),
        };
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            b.call(domain, json!({})).await?;
        }
        Ok(b)
    }

    /// Sends one command and waits for its answer (events arriving meanwhile are kept).
    pub async fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        self.ws
            .send(&json!({"id": id, "method": method, "params": params}).to_string())
            .await?;
        let answer = tokio::time::timeout(STEP, async {
            loop {
                let msg: Value = serde_json::from_str(&self.ws.recv().await?)?;
                if msg["id"].as_u64() == Some(id) {
                    return anyhow::Ok(msg);
                }
                self.events.push(msg);
            }
        })
        .await
        .with_context(|| format!("{method}: no answer"))??;
        if let Some(e) = answer.get("error") {
            bail!("{method}: {e}");
        }
        Ok(answer["result"].clone())
    }

    async fn wait_event(&mut self, method: &str) -> anyhow::Result<Value> {
        if let Some(i) = self.events.iter().position(|e| e["method"] == method) {
            return Ok(self.events.remove(i));
        }
        tokio::time::timeout(STEP, async {
            loop {
                let msg: Value = serde_json::from_str(&self.ws.recv().await?)?;
                if msg["method"] == method {
                    return anyhow::Ok(msg);
                }
                self.events.push(msg);
            }
        })
        .await
        .with_context(|| format!("waiting for {method}"))?
    }

    /// Loads `url` and waits for its load event.
    pub async fn goto(&mut self, url: &str) -> anyhow::Result<()> {
        self.events.retain(|e| e["method"] != "Page.loadEventFired");
        self.call("Page.navigate", json!({"url": url})).await?;
        self.wait_event("Page.loadEventFired").await?;
        Ok(())
    }

    /// Runs `js` (which starts a navigation, e.g. submits a form) and waits for the new page.
    pub async fn navigate_by(&mut self, js: &str) -> anyhow::Result<()> {
        self.events.retain(|e| e["method"] != "Page.loadEventFired");
        self.eval(js).await?;
        self.wait_event("Page.loadEventFired").await?;
        Ok(())
    }

    /// Evaluates `js` in the page and returns its value.
    pub async fn eval(&mut self, js: &str) -> anyhow::Result<Value> {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": js, "returnByValue": true}),
            )
            .await?;
        if let Some(e) = r.get("exceptionDetails") {
            bail!("{js}: {e}");
        }
        Ok(r["result"]["value"].clone())
    }

    /// Sets the viewport (CSS pixels; `mobile` emulates a phone).
    pub async fn viewport(&mut self, width: u32, height: u32, mobile: bool) -> anyhow::Result<()> {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        )
        .await?;
        Ok(())
    }

    /// Saves a full-page PNG under [`screenshot_dir`].
    pub async fn screenshot(&mut self, name: &str) -> anyhow::Result<PathBuf> {
        let r = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().context("no screenshot data")?)?;
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// Console errors, uncaught exceptions and failed loads seen so far (then forgets them).
    pub fn take_console_errors(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::mem::take(&mut self.events) {
            match e["method"].as_str() {
                Some("Runtime.exceptionThrown") => out.push(e["params"].to_string()),
                Some("Runtime.consoleAPICalled") if e["params"]["type"] == "error" => {
                    out.push(e["params"].to_string());
                }
                Some("Log.entryAdded") if e["params"]["entry"]["level"] == "error" => {
                    out.push(e["params"]["entry"].to_string());
                }
                _ => {}
            }
        }
        out
    }
}
