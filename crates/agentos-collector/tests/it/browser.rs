//! The dashboard in a real browser (headless Chromium over the DevTools protocol), against a
//! collector seeded with known turns, on SQLite and on PostgreSQL: sign-in through the form,
//! every page at 1280 px and at phone width with no console errors and no horizontal page
//! scroll, the rendered figures equal to `/v1/report`'s, the date picker, sign-out, and tenant
//! B trying tenant A's URLs. Screenshots land in `target/browser-screenshots/`.

use agentos_collector::auth::Role;
use serde_json::Value;

use crate::common::Harness;
use crate::dashboard::key_with;
use crate::report::{post_all, session_id, turns};
use agentos_test_support::browser::{Browser, chromium_or_skip};

const PAGES: [(&str, &str); 5] = [
    ("/", "overview"),
    ("/models", "models"),
    ("/devices", "devices"),
    ("/sessions", "sessions"),
    ("/attribution", "attribution"),
];

fn thousands(n: u64) -> String {
    agentos_collector::web::pages::thousands(i64::try_from(n).unwrap_or(i64::MAX))
}

async fn figure(b: &mut Browser, key: &str) -> anyhow::Result<String> {
    let v = b
        .eval(&format!(
            "(document.querySelector('[data-figure=\"{key}\"]') || {{}}).textContent || null"
        ))
        .await?;
    Ok(v.as_str().unwrap_or("<none>").to_string())
}

async fn sign_in(b: &mut Browser, h: &Harness, key: &str, path: &str) -> anyhow::Result<()> {
    b.goto(&format!("{}{path}", h.base)).await?;
    let at = b.eval("location.pathname").await?;
    assert_eq!(at, "/login", "not signed in: the page sends us to the form");
    b.navigate_by(&format!(
        "document.querySelector('#key').value = {}; document.querySelector('form.login').submit()",
        Value::String(key.into())
    ))
    .await?;
    Ok(())
}

async fn the_dashboard_in_a_browser(h: &Harness, backend: &str) -> anyhow::Result<()> {
    let Some(chromium) = chromium_or_skip("the_dashboard_in_a_browser")? else {
        return Ok(());
    };
    let ingest = h.key("acme").await?;
    post_all(h, &ingest, &turns()).await?;
    let viewer_a = key_with(h, "acme", Role::Viewer).await?;
    let viewer_b = key_with(h, "rival", Role::Viewer).await?;
    let range = "since=2026-10-25&until=2026-11-24&tz=UTC";
    let (_, api) = h
        .get(&format!("/v1/report?kind=daily&{range}"), &ingest)
        .await?;

    let mut b = Browser::start(&chromium).await?;
    b.viewport(1280, 900, false).await?;
    b.goto(&format!("{}/login", h.base)).await?;
    b.screenshot(&format!("{backend}-login")).await?;
    sign_in(&mut b, h, &viewer_a, &format!("/?{range}")).await?;
    assert_eq!(
        b.eval("location.pathname").await?,
        "/",
        "back to the page asked for"
    );
    // The rendered headline figures are the report API's.
    let turns_total = api["totals"]["turns"].as_u64().expect("turns");
    assert_eq!(figure(&mut b, "turns").await?, thousands(turns_total));
    assert_eq!(
        figure(&mut b, "cost").await?,
        agentos_collector::web::pages::money(api["totals"]["cost_usd"].as_f64().expect("cost"))
    );
    // And so are the table's rows: one per day, the same turns.
    let cells: Value = b
        .eval("[...document.querySelectorAll('table[data-table=daily] tbody tr')].map(r => [r.cells[0].textContent, r.cells[1].textContent])")
        .await?;
    let want: Vec<Value> = api["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| serde_json::json!([r["key"], thousands(r["turns"].as_u64().unwrap_or(0))]))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(cells, Value::Array(want));
    for (path, name) in PAGES {
        for (width, mobile) in [(1280, false), (390, true)] {
            b.viewport(width, 900, mobile).await?;
            b.goto(&format!("{}{path}?{range}", h.base)).await?;
            let errors = b.take_console_errors();
            assert!(errors.is_empty(), "{path} at {width}px: {errors:?}");
            let overflow = b
                .eval("document.documentElement.scrollWidth - document.documentElement.clientWidth")
                .await?;
            assert!(
                overflow.as_i64().unwrap_or(1) <= 0,
                "{path} at {width}px scrolls sideways by {overflow}px"
            );
            // Keyboard: every control can take focus (nothing needs a mouse).
            let unfocusable = b
                .eval("[...document.querySelectorAll('a[href], button, input:not([type=hidden])')].filter(e => { e.focus(); return document.activeElement !== e; }).length")
                .await?;
            assert_eq!(unfocusable, 0, "{path}");
            b.screenshot(&format!("{backend}-{name}-{width}")).await?;
        }
    }
    b.viewport(1280, 900, false).await?;
    // The drill-down of a session lists its turns.
    b.goto(&format!("{}/sessions/{}", h.base, session_id(1)))
        .await?;
    let n = turns().iter().filter(|t| t.session == 1).count();
    let rows = b
        .eval("document.querySelectorAll('table[data-table=turns] tbody tr').length")
        .await?;
    assert_eq!(rows.as_u64(), Some(n as u64));
    b.screenshot(&format!("{backend}-session")).await?;
    // The date picker narrows the range; the figures follow the API for that range.
    b.goto(&format!("{}/?{range}", h.base)).await?;
    b.navigate_by(
        "document.querySelector('#since').value = '2026-11-01'; \
         document.querySelector('#until').value = '2026-11-07'; \
         document.querySelector('#apply').click()",
    )
    .await?;
    let search = b.eval("location.search").await?;
    assert!(
        search.as_str().unwrap_or("").contains("since=2026-11-01"),
        "{search}"
    );
    let (_, week) = h
        .get(
            "/v1/report?kind=daily&since=2026-11-01&until=2026-11-07&tz=UTC",
            &ingest,
        )
        .await?;
    assert_eq!(
        figure(&mut b, "turns").await?,
        thousands(week["totals"]["turns"].as_u64().unwrap_or(0))
    );
    assert!(b.take_console_errors().is_empty());
    // Sign out: back to the form, and the pages want a sign-in again.
    b.navigate_by("document.querySelector('#sign-out').click()")
        .await?;
    assert_eq!(b.eval("location.pathname").await?, "/login");
    b.goto(&format!("{}/models", h.base)).await?;
    assert_eq!(b.eval("location.pathname").await?, "/login");

    // Tenant B tries tenant A's URLs.
    sign_in(&mut b, h, &viewer_b, &format!("/?{range}")).await?;
    assert_eq!(figure(&mut b, "turns").await?, "0");
    for (path, name) in PAGES {
        b.goto(&format!("{}{path}?{range}", h.base)).await?;
        let text = b.eval("document.body.innerText").await?;
        let text = text.as_str().unwrap_or("");
        for secret in ["sess-", "dev-a", "github.com/acme", "mystery-model-1"] {
            assert!(!text.contains(secret), "B sees `{secret}` on {path}");
        }
        b.screenshot(&format!("{backend}-tenant-b-{name}")).await?;
    }
    b.goto(&format!("{}/sessions/{}", h.base, session_id(0)))
        .await?;
    let text = b.eval("document.body.innerText").await?;
    assert!(text.as_str().unwrap_or("").contains("no session"), "{text}");
    let _ = b.take_console_errors();
    Ok(())
}

mod the_dashboard_in_a_browser {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() -> anyhow::Result<()> {
        let h = crate::common::Harness::sqlite().await?;
        super::the_dashboard_in_a_browser(&h, "sqlite").await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() -> anyhow::Result<()> {
        let Some(h) = crate::common::Harness::postgres().await? else {
            return Ok(());
        };
        super::the_dashboard_in_a_browser(&h, "postgres").await
    }
}
