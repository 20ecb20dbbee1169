//! Camera rows: list, get, insert, update, delete.

use super::{is_unique_violation, json_col, StoreError, StoreResult};
use crate::model::{CameraType, Schedule, Sensitivity, Zone};
use rusqlite::{named_params, Connection, Row};

/// One `cameras` row. The password is sealed (see `crypto::Keys::seal`).
#[derive(Debug, Clone)]
pub struct CameraRow {
    pub id: String,
    pub name: String,
    pub camera_type: CameraType,
    pub rtsp_url: Option<String>,
    pub username: Option<String>,
    pub password_sealed: Option<Vec<u8>>,
    pub device_index: Option<u32>,
    pub device_path: Option<String>,
    pub file_path: Option<String>,
    pub rtsp_transport: String,
    pub frame_rate: u32,
    pub is_enabled: bool,
    pub motion_enabled: bool,
    pub motion_sensitivity: Sensitivity,
    pub motion_cooldown: u32,
    pub detection_zones: Vec<Zone>,
    pub detection_schedule: Option<Schedule>,
    pub object_filter: Vec<String>,
    pub prompt_override: Option<String>,
    pub protect_controller_id: Option<String>,
    pub protect_camera_id: Option<String>,
    pub smart_detection_types: Vec<String>,
    pub is_doorbell: bool,
    /// Record a clip per object event.
    pub record_clips: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, name, type, rtsp_url, username, password_sealed, device_index, \
    device_path, file_path, rtsp_transport, frame_rate, is_enabled, motion_enabled, \
    motion_sensitivity, motion_cooldown, detection_zones, detection_schedule, object_filter, \
    prompt_override, protect_controller_id, protect_camera_id, smart_detection_types, \
    is_doorbell, created_at, updated_at, record_clips";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Result<CameraRow, StoreError>> {
    let kind: String = r.get(2)?;
    let sens: String = r.get(13)?;
    let zones: String = r.get(15)?;
    let sched: Option<String> = r.get(16)?;
    let filter: String = r.get(17)?;
    let smart: String = r.get(21)?;
    let build = || -> Result<CameraRow, StoreError> {
        Ok(CameraRow {
            id: r.get(0)?,
            name: r.get(1)?,
            camera_type: CameraType::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("camera type {kind:?}")))?,
            rtsp_url: r.get(3)?,
            username: r.get(4)?,
            password_sealed: r.get(5)?,
            device_index: r.get(6)?,
            device_path: r.get(7)?,
            file_path: r.get(8)?,
            rtsp_transport: r.get(9)?,
            frame_rate: r.get(10)?,
            is_enabled: r.get(11)?,
            motion_enabled: r.get(12)?,
            motion_sensitivity: Sensitivity::parse(&sens)
                .ok_or_else(|| StoreError::Corrupt(format!("sensitivity {sens:?}")))?,
            motion_cooldown: r.get(14)?,
            detection_zones: json_col(&zones)?,
            detection_schedule: sched.as_deref().map(json_col).transpose()?,
            object_filter: json_col(&filter)?,
            prompt_override: r.get(18)?,
            protect_controller_id: r.get(19)?,
            protect_camera_id: r.get(20)?,
            smart_detection_types: json_col(&smart)?,
            is_doorbell: r.get(22)?,
            created_at: r.get(23)?,
            updated_at: r.get(24)?,
            record_clips: r.get(25)?,
        })
    };
    Ok(build())
}

pub fn list(conn: &Connection, enabled: Option<bool>) -> StoreResult<Vec<CameraRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM cameras WHERE (:enabled IS NULL OR is_enabled = :enabled) \
         ORDER BY name COLLATE NOCASE"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(named_params! {":enabled": enabled}, from_row)?;
    rows.map(|r| r?).collect()
}

pub fn get(conn: &Connection, id: &str) -> StoreResult<CameraRow> {
    let sql = format!("SELECT {COLUMNS} FROM cameras WHERE id = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query_map([id], from_row)?;
    match rows.next() {
        Some(r) => r?,
        None => Err(StoreError::NotFound("Camera")),
    }
}

/// Names of cameras by id, for joining in exports and statistics.
pub fn names(conn: &Connection) -> StoreResult<std::collections::HashMap<String, String>> {
    let mut stmt = conn.prepare_cached("SELECT id, name FROM cameras")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn write(conn: &Connection, c: &CameraRow, insert: bool) -> StoreResult<()> {
    let sql = if insert {
        format!(
            "INSERT INTO cameras ({COLUMNS}) VALUES (:id, :name, :type, :rtsp_url, :username, \
             :password_sealed, :device_index, :device_path, :file_path, :rtsp_transport, \
             :frame_rate, :is_enabled, :motion_enabled, :motion_sensitivity, :motion_cooldown, \
             :detection_zones, :detection_schedule, :object_filter, :prompt_override, \
             :protect_controller_id, :protect_camera_id, :smart_detection_types, :is_doorbell, \
             :created_at, :updated_at, :record_clips)"
        )
    } else {
        "UPDATE cameras SET name = :name, type = :type, rtsp_url = :rtsp_url, \
         username = :username, password_sealed = :password_sealed, device_index = :device_index, \
         device_path = :device_path, file_path = :file_path, rtsp_transport = :rtsp_transport, \
         frame_rate = :frame_rate, is_enabled = :is_enabled, motion_enabled = :motion_enabled, \
         motion_sensitivity = :motion_sensitivity, motion_cooldown = :motion_cooldown, \
         detection_zones = :detection_zones, detection_schedule = :detection_schedule, \
         object_filter = :object_filter, prompt_override = :prompt_override, \
         protect_controller_id = :protect_controller_id, protect_camera_id = :protect_camera_id, \
         smart_detection_types = :smart_detection_types, is_doorbell = :is_doorbell, \
         created_at = :created_at, updated_at = :updated_at, \
         record_clips = :record_clips WHERE id = :id"
            .to_string()
    };
    let zones = serde_json::to_string(&c.detection_zones)?;
    let sched = c
        .detection_schedule
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?;
    let filter = serde_json::to_string(&c.object_filter)?;
    let smart = serde_json::to_string(&c.smart_detection_types)?;
    let res = conn.prepare_cached(&sql)?.execute(named_params! {
        ":id": c.id, ":name": c.name, ":type": c.camera_type.as_str(), ":rtsp_url": c.rtsp_url,
        ":username": c.username, ":password_sealed": c.password_sealed,
        ":device_index": c.device_index, ":device_path": c.device_path,
        ":file_path": c.file_path, ":rtsp_transport": c.rtsp_transport,
        ":frame_rate": c.frame_rate, ":is_enabled": c.is_enabled,
        ":motion_enabled": c.motion_enabled,
        ":motion_sensitivity": c.motion_sensitivity.as_str(),
        ":motion_cooldown": c.motion_cooldown, ":detection_zones": zones,
        ":detection_schedule": sched, ":object_filter": filter,
        ":prompt_override": c.prompt_override,
        ":protect_controller_id": c.protect_controller_id,
        ":protect_camera_id": c.protect_camera_id, ":smart_detection_types": smart,
        ":is_doorbell": c.is_doorbell, ":created_at": c.created_at, ":updated_at": c.updated_at,
        ":record_clips": c.record_clips,
    });
    match res {
        Ok(0) => Err(StoreError::NotFound("Camera")),
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
            "A camera named {:?} already exists",
            c.name
        ))),
        Err(e) => Err(e.into()),
    }
}

pub fn insert(conn: &Connection, c: &CameraRow) -> StoreResult<()> {
    write(conn, c, true)
}

pub fn update(conn: &Connection, c: &CameraRow) -> StoreResult<()> {
    write(conn, c, false)
}

/// Deletes a camera and (by cascade) its events. Returns the thumbnail paths of the deleted
/// events so the caller can remove the files after the transaction commits.
pub fn delete(conn: &mut Connection, id: &str) -> StoreResult<Vec<String>> {
    let tx = conn.transaction()?;
    let paths = {
        let mut stmt = tx.prepare_cached(
            "SELECT thumbnail_path, clip_path FROM events WHERE camera_id = ?1 \
             AND (thumbnail_path IS NOT NULL OR clip_path IS NOT NULL)",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok([
                r.get::<_, Option<String>>(0)?,
                r.get::<_, Option<String>>(1)?,
            ])
        })?;
        let mut paths = Vec::new();
        for r in rows {
            paths.extend(r?.into_iter().flatten());
        }
        paths
    };
    let n = tx.execute("DELETE FROM cameras WHERE id = ?1", [id])?;
    if n == 0 {
        return Err(StoreError::NotFound("Camera"));
    }
    tx.commit()?;
    Ok(paths)
}
