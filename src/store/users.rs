//! Users and their login sessions.

use super::{is_unique_violation, StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension, Row};

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub role: String,
    pub is_active: bool,
    pub must_change_password: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_login_at: Option<i64>,
}

const COLUMNS: &str = "id, username, password_hash, role, is_active, must_change_password, \
    created_at, updated_at, last_login_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: r.get(0)?,
        username: r.get(1)?,
        password_hash: r.get(2)?,
        role: r.get(3)?,
        is_active: r.get(4)?,
        must_change_password: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
        last_login_at: r.get(8)?,
    })
}

pub fn count(conn: &Connection) -> StoreResult<u64> {
    Ok(conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?)
}

pub fn insert(conn: &Connection, u: &UserRow) -> StoreResult<()> {
    let sql = format!("INSERT INTO users ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    conn.execute(
        &sql,
        rusqlite::params![
            u.id,
            u.username,
            u.password_hash,
            u.role,
            u.is_active,
            u.must_change_password,
            u.created_at,
            u.updated_at,
            u.last_login_at
        ],
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(format!("A user named {:?} already exists", u.username))
        } else {
            e.into()
        }
    })?;
    Ok(())
}

pub fn by_username(conn: &Connection, username: &str) -> StoreResult<Option<UserRow>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE username = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([username], from_row)
        .optional()?)
}

pub fn get(conn: &Connection, id: &str) -> StoreResult<UserRow> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = ?1");
    conn.prepare_cached(&sql)?
        .query_row([id], from_row)
        .optional()?
        .ok_or(StoreError::NotFound("User"))
}

/// The first admin user, for `argus users reset-password` without a name.
pub fn first_admin(conn: &Connection) -> StoreResult<Option<UserRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM users WHERE role = 'admin' ORDER BY created_at, username LIMIT 1"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([], from_row)
        .optional()?)
}

/// Sets a new password hash and revokes every session of the user except `keep_session`.
pub fn set_password(
    conn: &mut Connection,
    user_id: &str,
    hash: &str,
    must_change: bool,
    keep_session: Option<&str>,
    now: i64,
) -> StoreResult<()> {
    let tx = conn.transaction()?;
    let n = tx.execute(
        "UPDATE users SET password_hash = ?2, must_change_password = ?3, updated_at = ?4 WHERE id = ?1",
        rusqlite::params![user_id, hash, must_change, now],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound("User"));
    }
    tx.execute(
        "UPDATE sessions SET revoked_at = ?3 WHERE user_id = ?1 AND revoked_at IS NULL \
         AND (?2 IS NULL OR id != ?2)",
        rusqlite::params![user_id, keep_session, now],
    )?;
    tx.commit()?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub user_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

pub fn create_session(
    conn: &Connection,
    s: &SessionRow,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO sessions (id, user_id, created_at, expires_at, revoked_at, ip, user_agent) \
         VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6)",
        rusqlite::params![s.id, s.user_id, s.created_at, s.expires_at, ip, user_agent],
    )?;
    conn.execute(
        "UPDATE users SET last_login_at = ?2 WHERE id = ?1",
        rusqlite::params![s.user_id, s.created_at],
    )?;
    // Expired sessions are of no use to anybody; drop them while we are here.
    conn.execute("DELETE FROM sessions WHERE expires_at < ?1", [s.created_at])?;
    Ok(())
}

pub fn get_session(conn: &Connection, id: &str) -> StoreResult<Option<SessionRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, user_id, created_at, expires_at, revoked_at FROM sessions WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok(SessionRow {
                id: r.get(0)?,
                user_id: r.get(1)?,
                created_at: r.get(2)?,
                expires_at: r.get(3)?,
                revoked_at: r.get(4)?,
            })
        })
        .optional()?)
}

pub fn revoke_session(conn: &Connection, id: &str, now: i64) -> StoreResult<()> {
    conn.execute(
        "UPDATE sessions SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        rusqlite::params![id, now],
    )?;
    Ok(())
}

/// User count, for start-up (blocking).
pub fn count_blocking(store: &super::Store) -> StoreResult<u64> {
    store.read_blocking(count)
}
