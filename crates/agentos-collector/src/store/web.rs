//! Dashboard sign-ins (`web_sessions`): created by `POST /login`, read on every page, deleted by
//! `POST /logout` or left to expire.

use sqlx::Row;

use super::{PerBackend, Store, StoreError};
use crate::auth::Role;

/// One signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    /// Lowercase hex SHA-256 of the cookie value.
    pub id_hash: String,
    /// Tenant it reads.
    pub tenant: String,
    /// The key it signed in with (revoking the key ends the session).
    pub key_id: String,
    /// That key's role.
    pub role: Role,
    /// The token every state-changing form must carry. Empty for a one-time sign-in link that
    /// has not been used yet: such a row is never a session (see `web::session_of`).
    pub csrf: String,
    /// When it was created (epoch µs).
    pub created_at_us: i64,
    /// When it stops being accepted (epoch µs).
    pub expires_at_us: i64,
}

impl Store {
    /// Stores a new sign-in, and forgets the ones that expired.
    ///
    /// # Errors
    /// Driver errors.
    pub async fn insert_web_session(&self, s: &WebSession) -> Result<(), StoreError> {
        const PURGE: &str = "DELETE FROM web_sessions WHERE expires_at_us <= $1";
        const SQL: &str = "INSERT INTO web_sessions (id_hash, tenant, key_id, role, csrf, created_at_us, expires_at_us) \
            VALUES ($1, $2, $3, $4, $5, $6, $7)";
        per_backend!(self.writer(), |pool| {
            sqlx::query(PURGE)
                .bind(s.created_at_us)
                .execute(pool)
                .await?;
            sqlx::query(SQL)
                .bind(&s.id_hash)
                .bind(&s.tenant)
                .bind(&s.key_id)
                .bind(s.role.as_str())
                .bind(&s.csrf)
                .bind(s.created_at_us)
                .bind(s.expires_at_us)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The unexpired sign-in whose cookie hashes to `id_hash`.
    ///
    /// # Errors
    /// Driver errors, or [`StoreError::Corrupt`] for an unknown stored role.
    pub async fn web_session(
        &self,
        id_hash: &str,
        now_us: i64,
    ) -> Result<Option<WebSession>, StoreError> {
        const SQL: &str = "SELECT id_hash, tenant, key_id, role, csrf, created_at_us, expires_at_us \
            FROM web_sessions WHERE id_hash = $1 AND expires_at_us > $2";
        per_backend!(self.reader(), |pool| {
            let row = sqlx::query(SQL)
                .bind(id_hash)
                .bind(now_us)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(web_session_from_row).transpose()
        })
    }

    /// Removes and returns the unexpired row whose id hashes to `id_hash`, in one statement, so
    /// two requests racing for a one-time sign-in link cannot both get it.
    ///
    /// # Errors
    /// Driver errors, or [`StoreError::Corrupt`] for an unknown stored role.
    pub async fn take_web_session(
        &self,
        id_hash: &str,
        now_us: i64,
    ) -> Result<Option<WebSession>, StoreError> {
        const SQL: &str = "DELETE FROM web_sessions WHERE id_hash = $1 AND expires_at_us > $2 \
            RETURNING id_hash, tenant, key_id, role, csrf, created_at_us, expires_at_us";
        per_backend!(self.writer(), |pool| {
            let row = sqlx::query(SQL)
                .bind(id_hash)
                .bind(now_us)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(web_session_from_row).transpose()
        })
    }

    /// Ends a sign-in.
    ///
    /// # Errors
    /// Driver errors.
    pub async fn delete_web_session(&self, id_hash: &str) -> Result<(), StoreError> {
        const SQL: &str = "DELETE FROM web_sessions WHERE id_hash = $1";
        per_backend!(self.writer(), |pool| {
            sqlx::query(SQL).bind(id_hash).execute(pool).await?;
        });
        Ok(())
    }

    /// The turns of one session of a tenant, oldest first, as the drill-down lists them: only
    /// the indexed columns, never a body (free text never arrives, and nothing else is needed).
    ///
    /// # Errors
    /// Driver errors.
    pub async fn session_turns(
        &self,
        tenant: &str,
        session_id: &str,
        limit: i64,
    ) -> Result<Vec<SessionTurn>, StoreError> {
        // No index on session_id (it would cost every insert): the session's time span from
        // the per-session rollup (a primary-key lookup) bounds a scan of the turns-by-time
        // index instead.
        const SQL: &str = "SELECT recorded_at_us, device_id, COALESCE(model, '') AS model, \
            COALESCE(tokens_in, 0) AS tin, COALESCE(tokens_out, 0) AS tout, \
            COALESCE(cache_creation_tokens, 0) AS tcc, COALESCE(cache_read_tokens, 0) AS tcr, \
            latency_ms, cost_usd FROM events \
            WHERE tenant = $1 AND kind = 'turn' AND recorded_at_us >= \
            (SELECT MIN(first_us) FROM turn_rollup_session WHERE tenant = $1 AND session_id = $2) \
            AND recorded_at_us <= \
            (SELECT MAX(last_us) FROM turn_rollup_session WHERE tenant = $1 AND session_id = $2) \
            AND session_id = $2 ORDER BY recorded_at_us, seq LIMIT $3";
        let rows = match self.reader() {
            PerBackend::Sqlite(pool) => sqlx::query(SQL)
                .bind(tenant)
                .bind(session_id)
                .bind(limit)
                .fetch_all(pool)
                .await?
                .iter()
                .map(session_turn)
                .collect::<Result<Vec<_>, _>>()?,
            PerBackend::Postgres(pool) => sqlx::query(SQL)
                .bind(tenant)
                .bind(session_id)
                .bind(limit)
                .fetch_all(pool)
                .await?
                .iter()
                .map(session_turn)
                .collect::<Result<Vec<_>, _>>()?,
        };
        Ok(rows)
    }
}

/// One turn of a session's drill-down.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SessionTurn {
    /// `recorded_at` (epoch µs).
    pub recorded_at_us: i64,
    /// Device that delivered it.
    pub device_id: String,
    /// Model.
    pub model: String,
    /// Input, output, cache creation, cache read tokens.
    pub tokens: [i64; 4],
    /// Latency (ms).
    pub latency_ms: Option<f64>,
    /// The cost it carried (USD), if any.
    pub cost_usd: Option<f64>,
}

fn session_turn<R: Row>(r: &R) -> Result<SessionTurn, StoreError>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Option<f64>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(SessionTurn {
        recorded_at_us: r.try_get("recorded_at_us")?,
        device_id: r.try_get("device_id")?,
        model: r.try_get("model")?,
        tokens: [
            r.try_get("tin")?,
            r.try_get("tout")?,
            r.try_get("tcc")?,
            r.try_get("tcr")?,
        ],
        latency_ms: r.try_get("latency_ms")?,
        cost_usd: r.try_get("cost_usd")?,
    })
}

fn web_session_from_row<R: Row>(r: &R) -> Result<WebSession, StoreError>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let role: String = r.try_get("role")?;
    Ok(WebSession {
        id_hash: r.try_get("id_hash")?,
        tenant: r.try_get("tenant")?,
        key_id: r.try_get("key_id")?,
        role: Role::parse(&role).map_err(|e| StoreError::Corrupt {
            table: "web_sessions",
            detail: e.to_string(),
        })?,
        csrf: r.try_get("csrf")?,
        created_at_us: r.try_get("created_at_us")?,
        expires_at_us: r.try_get("expires_at_us")?,
    })
}
