//! The dashboard over real HTTP: sign-in with an API key, the session cookie's flags, CSRF,
//! expiry, sign-out, roles, every page and export, and tenant isolation on every page.
//! (`tests/browser.rs` loads the same pages in headless Chromium.)

use agentos_collector::auth::{Role, generate_key_with_role};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::Value;

use crate::common::{Harness, NOW_US};
use crate::report::{device_of, mixed_sessions, post_all, session_id, turns};

pub(crate) async fn key_with(h: &Harness, tenant: &str, role: Role) -> anyhow::Result<String> {
    let (key, record) = generate_key_with_role(tenant, role, NOW_US)?;
    h.state.store().insert_key(&record).await?;
    Ok(key)
}

/// An `application/x-www-form-urlencoded` body.
fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", agentos_collector::web::url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

const FORM: &str = "application/x-www-form-urlencoded";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn cookie_value(resp: &reqwest::Response, name: &str) -> Option<(String, String)> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| {
            let value = v[name.len() + 1..]
                .split(';')
                .next()
                .unwrap_or("")
                .to_string();
            (value, v.to_string())
        })
}

/// The outcome of a sign-in attempt: status, the session cookie (value, whole header).
pub(crate) async fn sign_in_with(
    h: &Harness,
    key: &str,
    https: bool,
    tamper_csrf: bool,
) -> anyhow::Result<(u16, Option<(String, String)>, String)> {
    let c = client();
    let login = c
        .get(format!("{}/login?next=/models", h.base))
        .send()
        .await?;
    assert_eq!(login.status(), 200);
    let (token, header) = cookie_value(&login, "aos_login").expect("login CSRF cookie");
    assert!(
        header.contains("HttpOnly") && header.contains("SameSite=Strict"),
        "{header}"
    );
    let html = login.text().await?;
    assert!(
        html.contains(&format!("value=\"{token}\"")),
        "the form carries the token"
    );
    let sent = if tamper_csrf {
        "0".repeat(token.len())
    } else {
        token.clone()
    };
    let mut req = c
        .post(format!("{}/login", h.base))
        .header(COOKIE, format!("aos_login={token}"))
        .header(reqwest::header::CONTENT_TYPE, FORM)
        .body(form(&[
            ("key", key),
            ("csrf", sent.as_str()),
            ("next", "/models"),
        ]));
    if https {
        req = req.header("x-forwarded-proto", "https");
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let session = cookie_value(&resp, "aos_session");
    let location = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp.text().await?;
    Ok((
        status,
        session,
        if location.is_empty() { body } else { location },
    ))
}

pub(crate) async fn sign_in(h: &Harness, key: &str) -> anyhow::Result<String> {
    let (status, session, location) = sign_in_with(h, key, false, false).await?;
    assert_eq!(status, 303, "{location}");
    assert_eq!(location, "/models");
    Ok(session.expect("session cookie").0)
}

pub(crate) async fn page(h: &Harness, cookie: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let resp = client()
        .get(format!("{}{path}", h.base))
        .header(COOKIE, format!("aos_session={cookie}"))
        .send()
        .await?;
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = resp.text().await?;
    Ok((status, location.unwrap_or(text)))
}

/// The text of `<span class="value" data-figure="KEY">…</span>`.
pub(crate) fn figure(html: &str, key: &str) -> Option<String> {
    let start = html.find(&format!("data-figure=\"{key}\">"))?;
    let rest = &html[start..];
    let open = rest.find('>')? + 1;
    let close = rest.find("</span>")?;
    Some(rest[open..close].to_string())
}

fn thousands(n: u64) -> String {
    agentos_collector::web::pages::thousands(i64::try_from(n).unwrap_or(i64::MAX))
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    html[at..].split('"').next().unwrap_or("").to_string()
}

async fn signing_in_roles_cookies_and_csrf(h: &Harness) -> anyhow::Result<()> {
    let viewer = key_with(h, "acme", Role::Viewer).await?;
    let ingest = h.key("acme").await?;
    let admin = key_with(h, "acme", Role::Admin).await?;
    // No session: every page sends the browser to the sign-in form, remembering where to.
    for path in [
        "/",
        "/models",
        "/devices",
        "/sessions",
        "/sessions/x",
        "/attribution",
    ] {
        let (s, to) = page(h, "nonsense", path).await?;
        assert_eq!(s, 303, "{path}");
        assert!(to.starts_with("/login?next="), "{path}: {to}");
    }
    // A wrong key, an ingest key, a forged form: refused with the reason.
    let (s, _, body) = sign_in_with(h, "aos_000000000000_nope", false, false).await?;
    assert_eq!(s, 401);
    assert!(body.contains("not valid"), "{body}");
    let (s, _, body) = sign_in_with(h, &ingest, false, false).await?;
    assert_eq!(s, 403);
    assert!(body.contains("ingest key cannot sign in"), "{body}");
    let (s, cookie, _) = sign_in_with(h, &viewer, false, true).await?;
    assert_eq!(
        (s, cookie.is_none()),
        (403, true),
        "a forged form signs nobody in"
    );
    // The session cookie: HttpOnly, SameSite=Strict; Secure behind a TLS proxy only.
    let (s, cookie, _) = sign_in_with(h, &viewer, false, false).await?;
    assert_eq!(s, 303);
    let (_, header) = cookie.expect("cookie");
    assert!(
        header.contains("HttpOnly") && header.contains("SameSite=Strict"),
        "{header}"
    );
    assert!(!header.contains("Secure"), "{header}");
    let (_, cookie, _) = sign_in_with(h, &admin, true, false).await?;
    assert!(cookie.expect("cookie").1.contains("; Secure"));
    // A viewer reads but cannot post; an admin can post.
    let (s, e) = h
        .post_events(
            &viewer,
            &crate::common::batch("d", 1, 1, vec![crate::common::turn(1)]),
        )
        .await?;
    assert_eq!(s, 403, "{e}");
    assert_eq!(e["code"], "role_forbidden");
    let (s, _) = h.get("/v1/report?kind=daily", &viewer).await?;
    assert_eq!(s, 200);
    let (s, _) = h
        .post_events(
            &admin,
            &crate::common::batch("d", 1, 1, vec![crate::common::turn(1)]),
        )
        .await?;
    assert_eq!(s, 200);
    // Sign-out needs the session's CSRF token; afterwards the cookie is worthless.
    let cookie = sign_in(h, &viewer).await?;
    let (s, html) = page(h, &cookie, "/").await?;
    assert_eq!(s, 200, "{html}");
    let csrf = csrf_of(&html);
    let post_logout = |token: String| {
        let cookie = cookie.clone();
        let base = h.base.clone();
        async move {
            client()
                .post(format!("{base}/logout"))
                .header(COOKIE, format!("aos_session={cookie}"))
                .header(reqwest::header::CONTENT_TYPE, FORM)
                .body(form(&[("csrf", token.as_str())]))
                .send()
                .await
        }
    };
    let r = post_logout("f".repeat(csrf.len())).await?;
    assert_eq!(r.status(), 403);
    assert_eq!(
        page(h, &cookie, "/").await?.0,
        200,
        "a refused sign-out changes nothing"
    );
    let r = post_logout(csrf).await?;
    assert_eq!(r.status(), 303);
    assert_eq!(page(h, &cookie, "/").await?.0, 303, "signed out");
    // Expiry: 12 hours.
    let cookie = sign_in(h, &viewer).await?;
    h.clock.set(NOW_US + 12 * 3_600_000_000 - 1_000_000);
    assert_eq!(page(h, &cookie, "/devices").await?.0, 200);
    h.clock.set(NOW_US + 12 * 3_600_000_000);
    assert_eq!(page(h, &cookie, "/devices").await?.0, 303, "expired");
    // Revoking the key ends its sessions (within the key cache's 30 s).
    let later = NOW_US + 13 * 3_600_000_000;
    h.clock.set(later);
    let cookie = sign_in(h, &viewer).await?;
    let id = agentos_collector::auth::key_id_of(&viewer).expect("id");
    assert!(h.state.store().revoke_key(id, later).await?);
    h.clock.set(later + 31_000_000);
    assert_eq!(page(h, &cookie, "/").await?.0, 303, "revoked");
    Ok(())
}
crate::both_backends!(signing_in_roles_cookies_and_csrf);

async fn every_page_shows_the_report_figures_and_only_its_tenant(
    h: &Harness,
) -> anyhow::Result<()> {
    let ingest = h.key("acme").await?;
    post_all(h, &ingest, &turns()).await?;
    let a = sign_in(h, &key_with(h, "acme", Role::Viewer).await?).await?;
    let b = sign_in(h, &key_with(h, "other", Role::Viewer).await?).await?;
    let range = "since=2026-10-25&until=2026-11-24&tz=UTC";
    let (_, api) = h
        .get(&format!("/v1/report?kind=daily&{range}"), &ingest)
        .await?;
    let turns_total = api["totals"]["turns"].as_u64().expect("turns");
    assert!(turns_total > 0);
    let (s, html) = page(h, &a, &format!("/?{range}")).await?;
    assert_eq!(s, 200, "{html}");
    assert_eq!(figure(&html, "turns"), Some(thousands(turns_total)));
    assert_eq!(
        figure(&html, "cost"),
        Some(agentos_collector::web::pages::money(
            api["totals"]["cost_usd"].as_f64().expect("cost")
        ))
    );
    assert_eq!(
        figure(&html, "unpriced").as_deref(),
        Some("mystery-model-1")
    );
    assert!(html.contains("<svg class=\"chart\""), "a chart is drawn");
    // Exports are the page's tables.
    let (s, csv) = page(h, &a, &format!("/?{range}&format=csv&table=daily")).await?;
    assert_eq!(s, 200);
    let days = api["rows"].as_array().map_or(0, Vec::len);
    assert_eq!(csv.lines().count(), days + 1, "{csv}");
    assert!(csv.starts_with("Day,Turns,"), "{csv}");
    let (s, json) = page(
        h,
        &a,
        &format!("/sessions?{range}&format=json&table=sessions"),
    )
    .await?;
    assert_eq!(s, 200);
    let rows: Value = serde_json::from_str(&json)?;
    let (_, sess) = h
        .get(&format!("/v1/report?kind=session&{range}"), &ingest)
        .await?;
    assert_eq!(
        rows.as_array().map(Vec::len),
        sess["rows"].as_array().map(Vec::len)
    );
    let (s, e) = page(h, &a, "/?format=csv&table=nope").await?;
    assert_eq!(s, 422, "{e}");
    // Every page renders for A, and shows nothing of A's to B.
    for path in ["/", "/models", "/devices", "/sessions", "/attribution"] {
        let (s, html) = page(h, &a, &format!("{path}?{range}")).await?;
        assert_eq!(s, 200, "{path}: {html}");
        assert!(html.contains("sess-") || path != "/sessions", "{path}");
        let (s, html) = page(h, &b, &format!("{path}?{range}")).await?;
        assert_eq!(s, 200, "{path}");
        for secret in [
            "sess-0",
            "dev-a",
            "dev-b",
            "github.com/acme",
            "mystery-model-1",
        ] {
            assert!(!html.contains(secret), "{path}: tenant B sees `{secret}`");
        }
        if let Some(t) = figure(&html, "turns") {
            assert_eq!(t, "0", "{path}");
        }
    }
    // Drill-down: A sees the turns of its session, B gets 404 for A's session id.
    let data = turns();
    let n = data.iter().filter(|t| t.session == 0).count();
    let (s, html) = page(h, &a, &format!("/sessions/{}", session_id(0))).await?;
    assert_eq!(s, 200, "{html}");
    assert_eq!(html.matches("<tr><td>").count(), n, "one row per turn");
    assert!(html.contains(device_of(0)));
    let (s, _) = page(h, &b, &format!("/sessions/{}", session_id(0))).await?;
    assert_eq!(s, 404);
    // Devices: delivery state per device.
    let (_, html) = page(h, &a, "/devices").await?;
    assert!(html.contains("dev-a") && html.contains("dev-b"), "{html}");
    // Bad filters say why.
    let (s, e) = page(h, &a, "/?tz=Nowhere/Land").await?;
    assert_eq!(s, 422, "{e}");
    let (s, _) = page(h, &a, "/?colour=red").await?;
    assert_eq!(s, 422);
    Ok(())
}
crate::both_backends!(every_page_shows_the_report_figures_and_only_its_tenant);

/// A one-time sign-in link: the GET changes nothing, the POST (with the form's CSRF token)
/// signs in once; a second use, a link used as a cookie, an ingest key's link and an expired
/// link are all refused.
/// The overview's table of a report row, cell for cell: what the page must show for `r`.
fn expected_cells(first: &str, r: &Value) -> Vec<(String, String)> {
    let n = |k: &str| thousands(r[k].as_u64().unwrap_or(u64::MAX));
    let mut cost = agentos_collector::web::pages::money(r["cost_usd"].as_f64().unwrap_or(-1.0));
    let unpriced = r["breakdown"]
        .as_array()
        .is_some_and(|b| b.iter().any(|b| b["priced"] == false));
    if unpriced {
        cost.push_str(" + unpriced");
    }
    let models: Vec<&str> = r["models"]
        .as_array()
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    vec![
        (first.into(), r["key"].as_str().unwrap_or("").to_string()),
        ("Turns".into(), n("turns")),
        ("Input".into(), n("input_tokens")),
        ("Output".into(), n("output_tokens")),
        ("Cache write".into(), n("cache_creation_tokens")),
        ("Cache read".into(), n("cache_read_tokens")),
        ("Total tokens".into(), n("total_tokens")),
        ("Cost (USD)".into(), cost),
        ("Models".into(), models.join(" ")),
    ]
}

/// The cells of an exported (JSON) page table, in header order.
fn exported(
    json: &str,
    headers: &[(String, String)],
) -> anyhow::Result<Vec<Vec<(String, String)>>> {
    let rows: Vec<serde_json::Map<String, Value>> = serde_json::from_str(json)?;
    Ok(rows
        .iter()
        .map(|r| {
            headers
                .iter()
                .map(|(h, _)| (h.clone(), r[h].as_str().unwrap_or("<none>").to_string()))
                .collect()
        })
        .collect())
}

/// The overview's "top sessions" are the ten costliest rows of `/v1/report?kind=session` for
/// the same range and filters (ties by id), figure for figure, and its "top repositories" the
/// costliest rows of `/v1/report?kind=repo`. Ranges whose edges cut sessions included.
async fn the_overview_top_lists_are_the_top_of_the_session_report(
    h: &Harness,
) -> anyhow::Result<()> {
    let ingest = h.key("acme").await?;
    post_all(h, &ingest, &mixed_sessions()).await?;
    let a = sign_in(h, &key_with(h, "acme", Role::Viewer).await?).await?;
    for range in [
        "since=2026-10-25&until=2026-11-24&tz=UTC",
        "since=2026-11-03&until=2026-11-12&tz=Asia/Kolkata",
        "since=2026-10-28&until=2026-11-18&tz=UTC&device=dev-b",
        "since=2026-10-28&until=2026-11-18&tz=UTC&model=mystery-model-1",
    ] {
        let (_, api) = h
            .get(&format!("/v1/report?kind=session&{range}"), &ingest)
            .await?;
        let mut rows: Vec<Value> = api["rows"].as_array().cloned().unwrap_or_default();
        assert!(
            rows.len() > 10,
            "{range}: more sessions than the list shows"
        );
        let (_, api) = h
            .get(&format!("/v1/report?kind=repo&{range}"), &ingest)
            .await?;
        let mut repos: Vec<Value> = api["rows"].as_array().cloned().unwrap_or_default();
        assert!(repos.len() > 1, "{range}: {api}");
        let by_cost = |x: &Value, y: &Value| {
            let c = |v: &Value| v["cost_usd"].as_f64().unwrap_or(0.0);
            c(y).total_cmp(&c(x))
                .then(x["key"].as_str().cmp(&y["key"].as_str()))
        };
        repos.sort_by(by_cost);
        repos.truncate(10);
        rows.sort_by(by_cost);
        rows.truncate(10);
        for (table, first, want) in [
            ("top-sessions", "Session", &rows),
            ("top-repos", "Repository", &repos),
        ] {
            let (s, json) = page(h, &a, &format!("/?{range}&format=json&table={table}")).await?;
            assert_eq!(s, 200, "{range}: {json}");
            let want: Vec<Vec<(String, String)>> =
                want.iter().map(|r| expected_cells(first, r)).collect();
            let got = exported(&json, &want[0])?;
            assert_eq!(got, want, "{range}: {table}");
        }
    }
    Ok(())
}
crate::both_backends!(the_overview_top_lists_are_the_top_of_the_session_report);

async fn one_time_sign_in_links(h: &Harness) -> anyhow::Result<()> {
    use agentos_collector::auth::Principal;
    use agentos_collector::web::create_sign_in_link;
    let viewer = |key_id: &str| Principal {
        tenant: "acme".into(),
        role: Role::Viewer,
        key_id: key_id.into(),
    };
    let key = key_with(h, "acme", Role::Viewer).await?;
    let key_id = agentos_collector::auth::key_id_of(&key)
        .expect("id")
        .to_string();
    let path = create_sign_in_link(h.state.store(), &viewer(&key_id), NOW_US).await?;
    let token = path
        .strip_prefix("/login/link/")
        .expect("link path")
        .to_string();
    let c = client();
    let use_link = |token: String| {
        let c = c.clone();
        async move {
            let page = c
                .get(format!("{}/login/link/{token}", h.base))
                .send()
                .await?;
            assert_eq!(page.status(), 200);
            let (csrf, _) = cookie_value(&page, "aos_login").expect("CSRF cookie");
            let html = page.text().await?;
            assert!(
                html.contains("Continue") && !html.contains("name=\"key\""),
                "{html}"
            );
            assert_eq!(csrf_of(&html), csrf);
            let resp = c
                .post(format!("{}/login", h.base))
                .header(COOKIE, format!("aos_login={csrf}"))
                .header(reqwest::header::CONTENT_TYPE, FORM)
                .body(form(&[("link", &token), ("csrf", &csrf), ("next", "/")]))
                .send()
                .await?;
            anyhow::Ok((resp.status().as_u16(), cookie_value(&resp, "aos_session")))
        }
    };
    // A link token presented as a session cookie is not a session.
    assert_eq!(page(h, &token, "/").await?.0, 303, "not signed in");
    let (status, session) = use_link(token.clone()).await?;
    assert_eq!(status, 303);
    let cookie = session.expect("session cookie").0;
    let (status, html) = page(h, &cookie, "/").await?;
    assert_eq!(status, 200);
    assert!(html.contains("acme"), "{html}");
    // Once only.
    let (status, session) = use_link(token).await?;
    assert_eq!(status, 401);
    assert!(session.is_none());
    // Ingest keys get no link; links expire.
    let ingest = h.key("acme").await?;
    let ingest_id = agentos_collector::auth::key_id_of(&ingest).expect("id");
    let mut p = viewer(ingest_id);
    p.role = Role::Ingest;
    assert!(
        create_sign_in_link(h.state.store(), &p, NOW_US)
            .await
            .is_err()
    );
    let old = create_sign_in_link(h.state.store(), &viewer(&key_id), NOW_US).await?;
    h.clock
        .set(NOW_US + agentos_collector::web::LINK_TTL_US + 1);
    let (status, _) = use_link(old.trim_start_matches("/login/link/").to_string()).await?;
    assert_eq!(status, 401, "expired");
    Ok(())
}

crate::both_backends!(one_time_sign_in_links);
