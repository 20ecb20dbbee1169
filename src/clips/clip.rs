//! One clip being written: the fragmented MP4 file in `clips/.tmp`, its fragments (one per
//! group of pictures, at most about a second each, each fsynced), its end time, and the
//! rewrite as fast-start MP4 when it ends. Also the recovery of files a crash left behind.

use super::ClipSettings;
use crate::video::mp4::{self, Sample, Track};
use crate::video::Au;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A fragment is written at each key frame or when it holds this many 90 kHz ticks.
const FRAGMENT_TICKS: u64 = 90_000;
/// The duration of the last picture of a clip when the stream gives none (15 fps).
const DEFAULT_TICKS: u64 = 6_000;

pub struct Clip {
    pub event_id: String,
    part: PathBuf,
    file: File,
    track: Track,
    seq: u32,
    decode_time: u64,
    /// Pictures waiting for the next fragment, with their durations.
    pending: Vec<(Arc<Au>, u32)>,
    /// The newest picture: its duration is known when the next one arrives.
    last: Option<Arc<Au>>,
    last_ticks: u64,
    /// When the event was noticed, in the stream's ticks, and the clip's first picture's.
    event_pts: u64,
    first_pts: u64,
    /// Ends at this instant (objects gone plus the post-capture, or the maximum length).
    end_at: Instant,
    hard_end: Instant,
    post: Duration,
}

/// A clip rewritten as fast-start MP4, ready to be moved into place.
pub struct Done {
    pub path: PathBuf,
    pub duration_ms: u64,
    pub offset_ms: u64,
    pub bytes: u64,
}

impl Clip {
    /// Starts a clip with the pre-capture (the ring's units, from its first key frame);
    /// `None` when there is no key frame to start from yet.
    pub fn start<'a>(
        tmp_dir: &Path,
        event_id: String,
        ring: impl Iterator<Item = &'a Arc<Au>>,
        now: Instant,
        s: ClipSettings,
    ) -> std::io::Result<Option<Clip>> {
        let units: Vec<Arc<Au>> = ring.cloned().collect();
        let Some(first) = units.first().filter(|a| a.key) else {
            return Ok(None);
        };
        let Some(track) = Track::from_au(&first.data) else {
            return Ok(None);
        };
        std::fs::create_dir_all(tmp_dir)?;
        let part = tmp_dir.join(format!("{event_id}.part"));
        let mut file = File::create(&part)?;
        file.write_all(&mp4::init_segment(&track))?;
        let newest = units.last().map_or(first.pts, |a| a.pts);
        let pre = Duration::from_millis(newest.saturating_sub(first.pts) / 90);
        let mut clip = Clip {
            event_id,
            part,
            file,
            track,
            seq: 1,
            decode_time: 0,
            pending: Vec::new(),
            last: None,
            last_ticks: DEFAULT_TICKS,
            event_pts: newest,
            first_pts: first.pts,
            // Until the objects are gone, the clip runs to its maximum (pre-capture included).
            hard_end: now + s.max.saturating_sub(pre),
            end_at: now + s.max.saturating_sub(pre),
            post: s.post,
        };
        for u in &units {
            clip.add(u)?;
        }
        Ok(Some(clip))
    }

    /// Adds the stream's next unit; a key frame with other parameter sets ends the clip (the
    /// caller sees it as due).
    pub fn add(&mut self, au: &Arc<Au>) -> std::io::Result<()> {
        if au.key && !self.pending.is_empty() {
            if let Some(t) = Track::from_au(&au.data) {
                if t.sps != self.track.sps || t.pps != self.track.pps {
                    self.end_at = Instant::now();
                    self.hard_end = self.end_at;
                    return self.flush();
                }
            }
        }
        if let Some(prev) = self.last.replace(au.clone()) {
            let ticks = au.pts.saturating_sub(prev.pts).clamp(1, 90_000);
            self.last_ticks = ticks;
            self.pending.push((prev, ticks as u32));
        }
        let held: u64 = self.pending.iter().map(|p| u64::from(p.1)).sum();
        if (au.key && !self.pending.is_empty()) || held >= FRAGMENT_TICKS {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the pending pictures as one fragment and fsyncs it.
    fn flush(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let samples: Vec<Sample<'_>> = self
            .pending
            .iter()
            .map(|(a, d)| Sample {
                au: &a.data,
                duration: *d,
                key: a.key,
                composition_offset: 0,
            })
            .collect();
        let frag = mp4::fragment(self.seq, self.decode_time, &samples);
        self.file.write_all(&frag)?;
        self.file.sync_data()?;
        self.seq += 1;
        self.decode_time += self.pending.iter().map(|p| u64::from(p.1)).sum::<u64>();
        self.pending.clear();
        Ok(())
    }

    /// The event's objects are gone: the clip ends after the post-capture.
    pub fn objects_gone(&mut self, now: Instant) {
        self.end_at = (now + self.post).min(self.hard_end);
    }

    pub fn due(&self, now: Instant) -> bool {
        now >= self.end_at
    }

    /// Writes what is left, rewrites the file as fast-start MP4 next to it and removes the
    /// fragmented one.
    pub fn finish(mut self) -> Result<Done, mp4::Mp4Error> {
        if let Some(last) = self.last.take() {
            let d = self.last_ticks as u32;
            self.pending.push((last, d));
        }
        self.flush()?;
        drop(self.file);
        let offset_ms = self.event_pts.saturating_sub(self.first_pts) / 90;
        let out = self.part.with_extension("mp4");
        let done = rewrite(&self.part, &out, offset_ms);
        let _ = std::fs::remove_file(&self.part);
        done
    }

    /// Gives up on the clip (the file could not be written) and removes its file.
    pub fn abandon(self) {
        let _ = std::fs::remove_file(&self.part);
    }
}

/// Rewrites a fragmented clip as fast-start MP4 at `out` (fsynced).
fn rewrite(part: &Path, out: &Path, offset_ms: u64) -> Result<Done, mp4::Mp4Error> {
    let src = std::io::BufReader::new(File::open(part)?);
    let res = (|| {
        let mut dst = std::io::BufWriter::new(File::create(out)?);
        let sum = mp4::finish(src, &mut dst)?;
        let f = dst.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        Ok(Done {
            path: out.to_path_buf(),
            duration_ms: sum.duration_ms,
            offset_ms: offset_ms.min(sum.duration_ms),
            bytes: sum.bytes,
        })
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(out);
    }
    res
}

/// A clip recovered after a crash, to attach to its event.
pub struct Recovered {
    pub event_id: String,
    pub path: PathBuf,
    pub duration_ms: u64,
}

pub fn recover(tmp_dir: &Path) -> Vec<Recovered> {
    let Ok(rd) = std::fs::read_dir(tmp_dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(id) = name.strip_suffix(".part") {
            let dst = path.with_extension("mp4");
            match rewrite(&path, &dst, 0) {
                Ok(d) => {
                    tracing::info!(event.id = %id, duration_ms = d.duration_ms, "recovered a clip cut short by a stop");
                    out.push(Recovered {
                        event_id: id.to_string(),
                        path: d.path,
                        duration_ms: d.duration_ms,
                    });
                }
                Err(err) => {
                    tracing::warn!(event.id = %id, error = %err, "an interrupted clip held nothing playable; removed")
                }
            }
            let _ = std::fs::remove_file(&path);
        }
    }
    // Anything else is a leftover of an interrupted rewrite or move (its `.part` was handled
    // above, or the clip is already in place).
    let keep: std::collections::HashSet<PathBuf> = out.iter().map(|r| r.path.clone()).collect();
    if let Ok(rd) = std::fs::read_dir(tmp_dir) {
        for e in rd.flatten() {
            if !keep.contains(&e.path()) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    out
}
