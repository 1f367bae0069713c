//! Clients that try to exhaust the server: bodies are read only after authentication, headers
//! must arrive in time, connections and in-flight bodies are capped with 503, and shutdown
//! finishes within its grace period whatever the clients do.
//!
//! Every wait here is a bounded liveness check with a generous limit (it only fails when the
//! server never does what is asserted), not a timing assertion.

use std::time::Duration;

use agentos_collector::Limits;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::common::{Harness, Options};

/// Generous bound for anything the server must do eventually.
const LIVENESS: Duration = Duration::from_secs(60);

async fn harness(limits: Limits) -> Harness {
    Harness::sqlite_with(Options {
        limits,
        ..Options::default()
    })
    .await
    .expect("harness")
}

async fn connect(h: &Harness) -> TcpStream {
    TcpStream::connect(h.base.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// Reads until the server closes the connection (or LIVENESS passes) and returns what it sent.
async fn read_to_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(LIVENESS, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one response's head and status (the connection may stay open).
async fn read_status(s: &mut TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let _ = tokio::time::timeout(LIVENESS, async {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn head(path: &str, key: &str, license: &str, content_length: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: t\r\nauthorization: Bearer {key}\r\n\
         x-agentos-license: {license}\r\ncontent-type: application/json\r\n\
         content-length: {content_length}\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_request_is_refused_before_its_body_is_read() {
    let h = harness(Limits::default()).await;
    let mut s = connect(&h).await;
    // Announce a 1 MB body and send none of it: the answer must not wait for it.
    s.write_all(head("/v1/events", "aos_000000000000_wrong", "x", 1_000_000).as_bytes())
        .await
        .expect("write");
    let (status, text) = read_status(&mut s).await;
    assert_eq!(status, 401, "refused on its headers alone, got: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_that_never_completes_is_cut_off() {
    let h = harness(Limits {
        header_timeout: Duration::from_millis(500),
        ..Limits::default()
    })
    .await;
    let mut s = connect(&h).await;
    s.write_all(b"POST /v1/events HTTP/1.1\r\nhost: t\r\n")
        .await
        .expect("write");
    // The server closes the connection (a slow-loris client would otherwise hold it forever).
    let got = tokio::time::timeout(LIVENESS, async {
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.map(|_| out)
    })
    .await;
    assert!(got.is_ok(), "the connection was never closed");
    // An idle connection that sends nothing at all is closed the same way.
    let mut idle = connect(&h).await;
    assert!(
        tokio::time::timeout(LIVENESS, read_to_close(&mut idle))
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_get_503_and_the_cap_frees_up() {
    let h = harness(Limits {
        max_connections: 3,
        ..Limits::default()
    })
    .await;
    let key = h.key("acme").await.expect("key");
    // Three silent connections take every slot (the header timeout is the default 10 s, far
    // longer than this test needs them).
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect(&h).await);
    }
    let mut extra = connect(&h).await;
    let answer = read_to_close(&mut extra).await;
    assert!(
        answer.starts_with("HTTP/1.1 503") && answer.contains("retry-after: 1"),
        "{answer}"
    );
    drop(held);
    // Once they are gone, normal requests go through again (the slots free up as the server
    // notices the closes: bounded retry).
    let mut ok = false;
    for _ in 0..600 {
        if let Ok((200, _)) = h.get("/v1/summary", &key).await {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "slots never freed up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_in_flight_cap_get_503() {
    let h = harness(Limits {
        max_inflight_bodies: 2,
        ..Limits::default()
    })
    .await;
    let key = h.key("acme").await.expect("key");
    let license = h.full();
    // Two authenticated uploads that send their headers and half a body, then stall: each
    // holds an in-flight body slot.
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut s = connect(&h).await;
        s.write_all(head("/v1/events", &key, &license, 1000).as_bytes())
            .await
            .expect("write");
        s.write_all(&[b' '; 500]).await.expect("write");
        slow.push(s);
    }
    // A third one is refused without its body being read. It sends a complete (tiny) body,
    // so before the first two have reached the server it is simply answered (422) and tried
    // again: a bounded retry.
    let mut refused = String::new();
    for _ in 0..600 {
        let mut s = connect(&h).await;
        s.write_all(format!("{}{{}}", head("/v1/events", &key, &license, 2)).as_bytes())
            .await
            .expect("write");
        let (status, text) = read_status(&mut s).await;
        if status == 503 {
            refused = text;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        refused.to_ascii_lowercase().contains("retry-after"),
        "a third body was read while two were in flight: {refused}"
    );
    drop(slow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_within_its_grace_whatever_clients_do() {
    let mut h = harness(Limits {
        shutdown_grace: Duration::from_millis(500),
        ..Limits::default()
    })
    .await;
    let key = h.key("acme").await.expect("key");
    let license = h.full();
    // A stalled body (its request is in flight), a half header, and an idle connection.
    let mut stalled = connect(&h).await;
    stalled
        .write_all(head("/v1/events", &key, &license, 1000).as_bytes())
        .await
        .expect("write");
    stalled.write_all(b"{\"events\":[").await.expect("write");
    let mut half = connect(&h).await;
    half.write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .expect("write");
    let _idle = connect(&h).await;
    // Let the server see the stalled request (bounded: /healthz answers when it is serving).
    let _ = h
        .send(reqwest::Method::GET, "/healthz", None, None, None, None)
        .await;
    // Without the grace deadline the stalled request would hold shutdown for the full
    // 30 s request timeout; LIVENESS is only the "never returns" guard.
    let done = tokio::time::timeout(Duration::from_secs(20), h.shutdown()).await;
    assert!(
        matches!(done, Ok(Ok(()))),
        "the server did not stop within its grace period: {done:?}"
    );
}
