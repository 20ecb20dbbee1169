//! The event lifecycle: recording an event with its snapshot, replacing the snapshot with a
//! better frame, writing the cloud description, deleting. Every change is published on the
//! [`crate::bus`] as a typed message after it is on disk; this module never knows who listens.
//!
//! Invariants: an event and its snapshot file are on disk before `EventCreated` goes out; a
//! snapshot is written atomically (temp file, rename) before its row; a failed insert leaves no
//! file behind; below the free-disk floor events are stored without their snapshot.

use crate::bus::{Bus, Change, EventInfo, Message};
use crate::clock::Clock;
use crate::error::{AppError, AppResult};
use crate::retention::Retention;
use crate::store::ai::Description;
use crate::store::events::EventRow;
use crate::store::Store;
use std::path::PathBuf;
use std::sync::Arc;

/// Where clips are finished before they are moved into place, relative to the data dir.
pub const CLIP_TMP_DIR: &str = "clips/.tmp";

/// The one way events enter, change in and leave the appliance. Cheap to clone.
#[derive(Clone)]
pub struct Events {
    store: Store,
    data_dir: PathBuf,
    retention: Arc<Retention>,
    bus: Bus,
    clock: Arc<dyn Clock>,
}

impl Events {
    pub fn new(
        store: Store,
        data_dir: PathBuf,
        retention: Arc<Retention>,
        bus: Bus,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Events {
            store,
            data_dir,
            retention,
            bus,
            clock,
        }
    }

    /// Stores an event (and its snapshot, written atomically first) and publishes
    /// `EventCreated`. When this returns `Ok` the event (and its file) is on disk.
    pub async fn record(
        &self,
        mut row: EventRow,
        jpeg: Option<Vec<u8>>,
    ) -> AppResult<Arc<EventInfo>> {
        let jpeg = jpeg.filter(|b| self.retention.admit(b.len() as u64));
        if let Some(bytes) = jpeg {
            let day = crate::clock::utc_day(row.ts);
            let rel = format!("thumbnails/{day}/{}.jpg", row.id);
            let abs = self.data_dir.join(&rel);
            row.thumbnail_bytes = bytes.len() as u64;
            tokio::task::spawn_blocking(move || crate::fsutil::write_atomic(&abs, &bytes))
                .await
                .map_err(AppError::internal)?
                .map_err(AppError::internal)?;
            row.thumbnail_path = Some(rel);
        }
        let camera_name = match self.store.insert_event(row.clone()).await {
            Ok(cam) => {
                self.retention.wrote(row.thumbnail_bytes);
                cam
            }
            Err(e) => {
                self.remove_files(row.thumbnail_path.iter().cloned().collect())
                    .await;
                return Err(e.into());
            }
        };
        let info = Arc::new(EventInfo { row, camera_name });
        self.bus
            .publish(self.clock.now_ms(), Message::EventCreated(info.clone()));
        Ok(info)
    }

    /// Replaces an event's snapshot with a better frame of the same object (and its confidence
    /// and boxes), and publishes `EventUpdated`. The file is replaced atomically; a deleted
    /// event is left alone; below the free-disk floor the first snapshot stays.
    pub async fn improve(
        &self,
        id: &str,
        confidence: u8,
        bounding_boxes: serde_json::Value,
        jpeg: Vec<u8>,
    ) -> AppResult<()> {
        let cur = self.get(id.to_string()).await?;
        let Some(rel) = cur.row.thumbnail_path.clone() else {
            return Ok(());
        };
        if !self.retention.admit(jpeg.len() as u64) {
            return Ok(());
        }
        let abs = self.data_dir.join(&rel);
        let size = jpeg.len() as u64;
        tokio::task::spawn_blocking(move || crate::fsutil::write_atomic(&abs, &jpeg))
            .await
            .map_err(AppError::internal)?
            .map_err(AppError::internal)?;
        let (eid, boxes) = (id.to_string(), bounding_boxes.clone());
        let found = self
            .store
            .write(move |c| {
                crate::store::events::update_detection(c, &eid, confidence, &boxes, size)
            })
            .await?;
        if found {
            let mut info = (*cur).clone();
            info.row.confidence = confidence;
            info.row.bounding_boxes = bounding_boxes;
            info.row.thumbnail_bytes = size;
            self.bus.publish(
                self.clock.now_ms(),
                Message::EventUpdated(Arc::new(info), Change::BestFrame),
            );
        } else {
            // Deleted meanwhile: do not leave the rewritten file behind.
            self.remove_files(vec![rel]).await;
        }
        Ok(())
    }

    /// Where clips are finished before [`Events::attach_clip`] moves them into place (created
    /// on demand; the start-up sweep empties it).
    pub fn clip_tmp_dir(&self) -> PathBuf {
        self.data_dir.join(CLIP_TMP_DIR)
    }

    /// Moves a finished fast-start MP4 (a file inside [`Events::clip_tmp_dir`]) into place as
    /// the event's clip, names it in the row and publishes `EventUpdated` (`Change::Clip`).
    /// The file is fsynced and renamed before the row names it; `Ok(false)` (and the file
    /// removed) when the event is gone or storage is below the free-disk floor.
    pub async fn attach_clip(
        &self,
        event_id: &str,
        finished: PathBuf,
        duration_ms: u64,
        offset_ms: Option<u64>,
    ) -> AppResult<bool> {
        let cur = match self.get(event_id.to_string()).await {
            Ok(c) => c,
            Err(_) => {
                let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(finished)).await;
                return Ok(false);
            }
        };
        let bytes = std::fs::metadata(&finished).map(|m| m.len()).unwrap_or(0);
        if !self.retention.admit(bytes) {
            let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(finished)).await;
            return Ok(false);
        }
        let day = crate::clock::utc_day(cur.row.ts);
        let rel = format!("clips/{day}/{event_id}.mp4");
        let abs = self.data_dir.join(&rel);
        tokio::task::spawn_blocking(move || crate::fsutil::move_into_place(&finished, &abs))
            .await
            .map_err(AppError::internal)?
            .map_err(AppError::internal)?;
        let (eid, path) = (event_id.to_string(), rel.clone());
        let found = self
            .store
            .write(move |c| {
                crate::store::events::set_clip(c, &eid, &path, bytes, duration_ms, offset_ms)
            })
            .await?;
        if !found {
            self.remove_files(vec![rel]).await;
            return Ok(false);
        }
        self.retention.wrote(bytes);
        let mut info = (*cur).clone();
        info.row.clip_path = Some(rel);
        info.row.clip_bytes = bytes;
        info.row.clip_duration_ms = Some(duration_ms);
        info.row.clip_offset_ms = offset_ms;
        self.bus.publish(
            self.clock.now_ms(),
            Message::EventUpdated(Arc::new(info), Change::Clip),
        );
        Ok(true)
    }

    /// Writes a description (or why there is none) onto an event and publishes
    /// `EventUpdated`; the updated event, or `None` when it was deleted meanwhile.
    pub async fn describe(
        &self,
        event_id: &str,
        desc: Description,
    ) -> AppResult<Option<Arc<EventInfo>>> {
        let id = event_id.to_string();
        let found = self
            .store
            .write(move |c| {
                if !crate::store::ai::set_description(c, &id, &desc)? {
                    return Ok(None);
                }
                let row = crate::store::events::get(c, &id)?;
                let camera_name = crate::store::cameras::get(c, &row.camera_id)
                    .ok()
                    .map(|c| c.name);
                Ok(Some(EventInfo { row, camera_name }))
            })
            .await?;
        Ok(found.map(|info| {
            let info = Arc::new(info);
            self.bus.publish(
                self.clock.now_ms(),
                Message::EventUpdated(info.clone(), Change::Description),
            );
            info
        }))
    }

    /// One stored event with its camera's name.
    pub async fn get(&self, id: String) -> AppResult<Arc<EventInfo>> {
        let info = self
            .store
            .read(move |c| {
                let row = crate::store::events::get(c, &id)?;
                let camera_name = crate::store::cameras::get(c, &row.camera_id)
                    .ok()
                    .map(|c| c.name);
                Ok(EventInfo { row, camera_name })
            })
            .await?;
        Ok(Arc::new(info))
    }

    /// Deletes one event and its snapshot and publishes `EventDeleted` (404 when there is no
    /// such event).
    pub async fn delete(&self, id: &str) -> AppResult<()> {
        let eid = id.to_string();
        let (camera_id, path) = self
            .store
            .write(move |c| {
                let cam = crate::store::events::get(c, &eid)?.camera_id;
                Ok((cam, crate::store::events::delete(c, &eid)?))
            })
            .await?;
        self.remove_files(path).await;
        self.bus.publish(
            self.clock.now_ms(),
            Message::EventDeleted {
                id: id.to_string(),
                camera_id,
            },
        );
        Ok(())
    }

    /// Removes files (paths relative to the data dir) after their rows are gone.
    pub async fn remove_files(&self, rel_paths: Vec<String>) {
        if rel_paths.is_empty() {
            return;
        }
        let dir = self.data_dir.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for p in rel_paths {
                if let Err(e) = std::fs::remove_file(dir.join(&p)) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::warn!(file = %p, error = %e, "could not remove snapshot");
                    }
                }
            }
        })
        .await;
    }
}
