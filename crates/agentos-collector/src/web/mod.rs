//! The dashboard: server-rendered pages (askama templates, inline SVG charts, no JavaScript
//! build and no CDN) over the same figures as `/v1/report`.
//!
//! Sign-in: `GET /login` shows a form for an API key; `POST /login` checks it (a `viewer` or
//! `admin` key; an `ingest` key is refused) and sets the `aos_session` cookie (HttpOnly,
//! SameSite=Strict, Secure when the request came over TLS — `X-Forwarded-Proto: https` from the
//! proxy that terminates it — or when [`crate::StateBuilder::secure_cookies`] says so). The
//! database keeps only the cookie's SHA-256, so any collector sharing it accepts the session.
//! A session ends at `POST /logout`, after [`SESSION_TTL_US`], or when its key is revoked.
//!
//! A one-time sign-in link (`/login/link/<token>`, made by [`create_sign_in_link`], e.g. by
//! `agentos demo`) opens the same form with a "Continue" button instead of the key field; the
//! POST consumes the link (it works once, within [`LINK_TTL_US`]) and starts a normal session.
//!
//! State changes are POSTs carrying a CSRF token: the session's for `/logout`, and for
//! `/login` a token also set as a short-lived cookie (double submit), so no other site can sign
//! a browser in or out.
//!
//! In local mode (`agentos ui`, [`crate::StateBuilder::local_ui`]) there is no sign-in: every
//! page reads the one local tenant, and the server listens on loopback only.

pub mod charts;
pub mod pages;

use axum::Form;
use axum::extract::{FromRequestParts, OptionalFromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::auth::{Principal, random_token, sha256_hex};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::WebSession;

/// How long a dashboard sign-in lasts: 12 hours.
pub const SESSION_TTL_US: i64 = 12 * 3_600_000_000;
/// How long an unused one-time sign-in link stays valid: 15 minutes.
pub const LINK_TTL_US: i64 = 15 * 60_000_000;
/// The session cookie.
pub const SESSION_COOKIE: &str = "aos_session";
/// The sign-in form's CSRF cookie (double submit).
pub const LOGIN_CSRF_COOKIE: &str = "aos_login";

/// A signed-in dashboard user (or the local user in local mode).
#[derive(Debug, Clone)]
pub struct Viewer {
    /// Tenant and role.
    pub principal: Principal,
    /// CSRF token for this session's forms (empty in local mode, where nothing changes state).
    pub csrf: String,
    /// Local mode: no sign-in, no sign-out.
    pub local: bool,
}

/// Why a page cannot be shown: not signed in (go to the sign-in page) or an error.
#[derive(Debug)]
pub enum PageError {
    /// No valid session: redirect to `/login?next=…`.
    SignIn(String),
    /// Anything else, shown as a small HTML page with its status.
    Api(ApiError),
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError::Api(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn(next) => {
                let next = url_encode(&next);
                Redirect::to(&format!("/login?next={next}")).into_response()
            }
            PageError::Api(e) => {
                let status = e.status();
                let body = format!(
                    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><link rel=\"icon\" href=\"data:,\"><title>{}</title></head>\
                     <body><h1>{}</h1><p>{}</p><p><a href=\"/\">Back to the overview</a></p></body></html>",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("Error"),
                    charts::esc(&e.to_string())
                );
                let mut resp = (status, Html(body)).into_response();
                // Keep the logging detail of 5xx (see `error.rs`).
                let api = e.into_response();
                if let Some(d) = api.extensions().get::<crate::error::InternalDetail>() {
                    resp.extensions_mut().insert(d.clone());
                }
                resp
            }
        }
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    state.inner.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn set_cookie(name: &str, value: &str, max_age_s: i64, secure: bool) -> HeaderValue {
    let text = format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{}",
        if secure { "; Secure" } else { "" }
    );
    // Values are base64url/hex tokens: always a valid header.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The session behind the request's cookie, if valid.
async fn session_of(state: &AppState, parts: &Parts) -> Result<Option<Viewer>, ApiError> {
    if let Some(p) = &state.inner.local_ui {
        return Ok(Some(Viewer {
            principal: p.clone(),
            csrf: String::new(),
            local: true,
        }));
    }
    let Some(value) = cookie(&parts.headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let now = state.now_us();
    let Some(s) = state
        .store()
        .web_session(&sha256_hex(value), now)
        .await
        .map_err(|e| ApiError::from_store(&e))?
        // An unused sign-in link shares the table but is not a session: a cookie spelling its
        // hashed id must not turn a one-time link into a reusable session.
        .filter(|s| !s.csrf.is_empty())
    else {
        return Ok(None);
    };
    if !state
        .inner
        .keys
        .still_valid(state.store(), &s.key_id, now)
        .await
        .unwrap_or(false)
    {
        return Ok(None);
    }
    Ok(Some(Viewer {
        principal: Principal {
            tenant: s.tenant,
            role: s.role,
            key_id: s.key_id,
        },
        csrf: s.csrf,
        local: false,
    }))
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        match session_of(state, parts).await? {
            Some(v) => Ok(v),
            None => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_string();
                Err(PageError::SignIn(next))
            }
        }
    }
}

impl OptionalFromRequestParts<AppState> for Viewer {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, PageError> {
        Ok(session_of(state, parts).await?)
    }
}

#[derive(askama::Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    next: &'a str,
    error: Option<&'a str>,
    /// A one-time sign-in link's token: the form continues with it instead of asking for a key.
    link: Option<&'a str>,
}

/// Query of `GET /login`.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
}

fn safe_next(next: Option<&str>) -> &str {
    // Only a path on this site: never `//host` or a full URL (no open redirect).
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

fn render<T: askama::Template>(t: &T) -> Result<String, ApiError> {
    t.render()
        .map_err(|e| ApiError::Internal(format!("template: {e}")))
}

fn login_form(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    next: &str,
    error: Option<&str>,
) -> Result<Response, ApiError> {
    login_page(state, headers, status, next, error, None)
}

fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    next: &str,
    error: Option<&str>,
    link: Option<&str>,
) -> Result<Response, ApiError> {
    let token = random_token::<16>(false).map_err(|e| ApiError::Internal(e.to_string()))?;
    let html = render(&LoginPage {
        csrf: &token,
        next,
        error,
        link,
    })?;
    let mut resp = (status, Html(html)).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_CSRF_COOKIE, &token, 3600, secure(state, headers)),
    );
    no_store(&mut resp);
    Ok(resp)
}

fn no_store(resp: &mut Response) {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// `GET /login`: the sign-in form (already signed in: on to the page asked for).
///
/// # Errors
/// 5xx when the random source or the database fails.
pub async fn get_login(
    State(state): State<AppState>,
    headers: HeaderMap,
    viewer: Option<Viewer>,
    q: axum::extract::Query<LoginQuery>,
) -> Result<Response, PageError> {
    let next = safe_next(q.next.as_deref());
    if viewer.is_some() {
        return Ok(Redirect::to(next).into_response());
    }
    Ok(login_form(&state, &headers, StatusCode::OK, next, None)?)
}

/// The stored id of a one-time link token (never the same as a cookie's, see `session_of`).
fn link_hash(token: &str) -> String {
    sha256_hex(&format!("link:{token}"))
}

/// Makes a one-time sign-in link for `principal` (a viewer or admin key): the path
/// `/login/link/<token>`, valid once, for [`LINK_TTL_US`]. Only its hash is stored.
///
/// # Errors
/// 403 for an ingest key; 5xx when the random source or the database fails.
pub async fn create_sign_in_link(
    store: &crate::Store,
    principal: &Principal,
    now: i64,
) -> Result<String, ApiError> {
    if !principal.role.can_view_pages() {
        return Err(ApiError::Forbidden {
            code: "role_forbidden",
            message: "an ingest key cannot sign in to the dashboard".into(),
        });
    }
    let token = random_token::<32>(true).map_err(|e| ApiError::Internal(e.to_string()))?;
    store
        .insert_web_session(&WebSession {
            id_hash: link_hash(&token),
            tenant: principal.tenant.clone(),
            key_id: principal.key_id.clone(),
            role: principal.role,
            csrf: String::new(),
            created_at_us: now,
            expires_at_us: now.saturating_add(LINK_TTL_US),
        })
        .await
        .map_err(|e| ApiError::from_store(&e))?;
    Ok(format!("/login/link/{token}"))
}

/// `GET /login/link/{token}`: the sign-in form with a "Continue" button for a one-time link
/// (nothing changes until the POST; the link is not checked here so a GET reveals nothing).
///
/// # Errors
/// 5xx when the random source fails.
pub async fn get_login_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(token): axum::extract::Path<String>,
) -> Result<Response, PageError> {
    Ok(login_page(
        &state,
        &headers,
        StatusCode::OK,
        "/",
        None,
        Some(&token),
    )?)
}

/// Form of `POST /login`: an API key, or a one-time link's token.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    link: Option<String>,
    csrf: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /login`: checks the key and the CSRF token, starts a session.
///
/// # Errors
/// 403 for a missing or wrong CSRF token, 5xx when the database fails. A wrong key or an
/// ingest key gets the form again, 401 or 403 with the reason.
pub async fn post_login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    let next = safe_next(form.next.as_deref()).to_string();
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    if expected.is_empty() || !constant_eq(expected, &form.csrf) {
        return Ok(login_form(
            &state,
            &headers,
            StatusCode::FORBIDDEN,
            &next,
            Some("The form expired or came from another site; please sign in again."),
        )?);
    }
    let now = state.now_us();
    if let Some(link) = form.link.as_deref().filter(|l| !l.is_empty()) {
        let taken = state
            .store()
            .take_web_session(&link_hash(link), now)
            .await
            .map_err(|e| ApiError::from_store(&e))?
            .filter(|s| s.csrf.is_empty());
        let Some(s) = taken else {
            return Ok(login_form(
                &state,
                &headers,
                StatusCode::UNAUTHORIZED,
                &next,
                Some("That sign-in link was already used or has expired; sign in with an API key."),
            )?);
        };
        let principal = Principal {
            tenant: s.tenant,
            role: s.role,
            key_id: s.key_id,
        };
        if !state
            .inner
            .keys
            .still_valid(state.store(), &principal.key_id, now)
            .await
            .unwrap_or(false)
        {
            return Ok(login_form(
                &state,
                &headers,
                StatusCode::UNAUTHORIZED,
                &next,
                Some("The key behind that sign-in link was revoked."),
            )?);
        }
        return start_session(&state, &headers, principal, &next, now).await;
    }
    let principal = match state
        .inner
        .keys
        .verify_key(state.store(), form.key.trim(), now)
        .await
    {
        Ok(p) => p,
        Err(e) if e.status() == StatusCode::UNAUTHORIZED => {
            return Ok(login_form(
                &state,
                &headers,
                StatusCode::UNAUTHORIZED,
                &next,
                Some("That API key is not valid (unknown, revoked or mistyped)."),
            )?);
        }
        Err(e) => return Err(e.into()),
    };
    if !principal.role.can_view_pages() {
        return Ok(login_form(
            &state,
            &headers,
            StatusCode::FORBIDDEN,
            &next,
            Some(
                "An ingest key cannot sign in: use a viewer or admin key (agentos ccc keys create --role viewer).",
            ),
        )?);
    }
    start_session(&state, &headers, principal, &next, now).await
}

/// Stores a new session for `principal` and answers with its cookie and a redirect to `next`.
async fn start_session(
    state: &AppState,
    headers: &HeaderMap,
    principal: Principal,
    next: &str,
    now: i64,
) -> Result<Response, PageError> {
    let value = random_token::<32>(true).map_err(|e| ApiError::Internal(e.to_string()))?;
    let csrf = random_token::<16>(false).map_err(|e| ApiError::Internal(e.to_string()))?;
    state
        .store()
        .insert_web_session(&WebSession {
            id_hash: sha256_hex(&value),
            tenant: principal.tenant,
            key_id: principal.key_id,
            role: principal.role,
            csrf,
            created_at_us: now,
            expires_at_us: now.saturating_add(SESSION_TTL_US),
        })
        .await
        .map_err(|e| ApiError::from_store(&e))?;
    let mut resp = Redirect::to(next).into_response();
    let sec = secure(state, headers);
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &value, SESSION_TTL_US / 1_000_000, sec),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(LOGIN_CSRF_COOKIE, "", 0, sec),
    );
    Ok(resp)
}

/// Form of `POST /logout`.
#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    csrf: String,
}

/// `POST /logout`: ends the session (CSRF token required).
///
/// # Errors
/// 403 for a wrong CSRF token; 5xx when the database fails.
pub async fn post_logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    viewer: Viewer,
    Form(form): Form<LogoutForm>,
) -> Result<Response, PageError> {
    if viewer.local {
        return Ok(Redirect::to("/").into_response());
    }
    if !constant_eq(&viewer.csrf, &form.csrf) {
        return Err(ApiError::Forbidden {
            code: "csrf",
            message: "missing or wrong CSRF token".into(),
        }
        .into());
    }
    if let Some(value) = cookie(&headers, SESSION_COOKIE) {
        state
            .store()
            .delete_web_session(&sha256_hex(value))
            .await
            .map_err(|e| ApiError::from_store(&e))?;
    }
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, secure(&state, &headers)),
    );
    Ok(resp)
}

fn constant_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}
