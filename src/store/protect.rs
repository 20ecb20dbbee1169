//! `protect_controllers` rows (UniFi Protect consoles) and the Protect cameras that belong to
//! them. The console password is stored sealed (see `crypto::Keys::seal`) and never leaves this
//! row except to log in.

use super::cameras::CameraRow;
use super::{is_unique_violation, StoreError, StoreResult};
use rusqlite::{named_params, Connection, OptionalExtension, Row};

/// One `protect_controllers` row.
#[derive(Clone)]
pub struct ControllerRow {
    pub id: String,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password_sealed: Vec<u8>,
    pub verify_ssl: bool,
    pub is_enabled: bool,
    pub last_connected_at: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for ControllerRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerRow")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("verify_ssl", &self.verify_ssl)
            .field("is_enabled", &self.is_enabled)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, name, host, port, username, password_sealed, verify_ssl, is_enabled, \
    last_connected_at, last_error, created_at, updated_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<ControllerRow> {
    Ok(ControllerRow {
        id: r.get(0)?,
        name: r.get(1)?,
        host: r.get(2)?,
        port: r.get(3)?,
        username: r.get(4)?,
        password_sealed: r.get(5)?,
        verify_ssl: r.get(6)?,
        is_enabled: r.get(7)?,
        last_connected_at: r.get(8)?,
        last_error: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
    })
}

pub fn list(conn: &Connection) -> StoreResult<Vec<ControllerRow>> {
    let sql = format!("SELECT {COLUMNS} FROM protect_controllers ORDER BY name COLLATE NOCASE");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn get(conn: &Connection, id: &str) -> StoreResult<ControllerRow> {
    let sql = format!("SELECT {COLUMNS} FROM protect_controllers WHERE id = ?1");
    conn.prepare_cached(&sql)?
        .query_row([id], from_row)
        .optional()?
        .ok_or(StoreError::NotFound("Controller"))
}

fn conflict(e: rusqlite::Error, name: &str) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Conflict(format!("A controller named {name:?} already exists"))
    } else {
        e.into()
    }
}

pub fn insert(conn: &Connection, c: &ControllerRow) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO protect_controllers ({COLUMNS}) VALUES (:id, :name, :host, :port, \
         :username, :password_sealed, :verify_ssl, :is_enabled, :last_connected_at, \
         :last_error, :created_at, :updated_at)"
    );
    conn.prepare_cached(&sql)?
        .execute(named_params! {
            ":id": c.id, ":name": c.name, ":host": c.host, ":port": c.port,
            ":username": c.username, ":password_sealed": c.password_sealed,
            ":verify_ssl": c.verify_ssl, ":is_enabled": c.is_enabled,
            ":last_connected_at": c.last_connected_at, ":last_error": c.last_error,
            ":created_at": c.created_at, ":updated_at": c.updated_at,
        })
        .map_err(|e| conflict(e, &c.name))?;
    Ok(())
}

/// Writes the fields a user can change (not the connection record).
pub fn update(conn: &Connection, c: &ControllerRow) -> StoreResult<()> {
    let n = conn
        .prepare_cached(
            "UPDATE protect_controllers SET name = :name, host = :host, port = :port, \
             username = :username, password_sealed = :password_sealed, verify_ssl = :verify_ssl, \
             is_enabled = :is_enabled, updated_at = :updated_at WHERE id = :id",
        )?
        .execute(named_params! {
            ":id": c.id, ":name": c.name, ":host": c.host, ":port": c.port,
            ":username": c.username, ":password_sealed": c.password_sealed,
            ":verify_ssl": c.verify_ssl, ":is_enabled": c.is_enabled,
            ":updated_at": c.updated_at,
        })
        .map_err(|e| conflict(e, &c.name))?;
    if n == 0 {
        return Err(StoreError::NotFound("Controller"));
    }
    Ok(())
}

/// Records the outcome of a connection attempt: `connected_at` when it succeeded (clearing the
/// error), else the error. A controller deleted meanwhile is not an error.
pub fn record_connection(
    conn: &Connection,
    id: &str,
    connected_at: Option<i64>,
    error: Option<&str>,
) -> StoreResult<()> {
    conn.prepare_cached(
        "UPDATE protect_controllers SET \
         last_connected_at = COALESCE(:connected_at, last_connected_at), last_error = :error \
         WHERE id = :id",
    )?
    .execute(named_params! {":id": id, ":connected_at": connected_at, ":error": error})?;
    Ok(())
}

/// Deletes a controller, and by cascade its cameras and their events. Returns the thumbnail
/// paths of the deleted events so the caller can remove the files after the commit.
pub fn delete(conn: &mut Connection, id: &str) -> StoreResult<Vec<String>> {
    let tx = conn.transaction()?;
    let paths = {
        let mut stmt = tx.prepare_cached(
            "SELECT e.thumbnail_path FROM events e JOIN cameras c ON c.id = e.camera_id \
             WHERE c.protect_controller_id = ?1 AND e.thumbnail_path IS NOT NULL",
        )?;
        let rows = stmt.query_map([id], |r| r.get::<_, String>(0))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    let n = tx.execute("DELETE FROM protect_controllers WHERE id = ?1", [id])?;
    if n == 0 {
        return Err(StoreError::NotFound("Controller"));
    }
    tx.commit()?;
    Ok(paths)
}

/// The appliance cameras of a controller, by Protect camera id.
pub fn cameras(conn: &Connection, controller_id: &str) -> StoreResult<Vec<CameraRow>> {
    Ok(super::cameras::list(conn, None)?
        .into_iter()
        .filter(|c| c.protect_controller_id.as_deref() == Some(controller_id))
        .collect())
}

/// True when an event already carries this Protect event id.
pub fn has_event(conn: &Connection, protect_event_id: &str) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM events WHERE protect_event_id = ?1")?
        .query_row([protect_event_id], |_| Ok(()))
        .optional()?
        .is_some())
}
