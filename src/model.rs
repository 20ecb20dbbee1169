//! Domain types shared by the store, the API and (later) the pipeline: camera kinds, detection
//! zones and schedules, scopes, the live status of cameras and controllers. They are plain data; validation lives beside them so the API and
//! the admin CLI apply the same rules.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a camera's frames come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CameraType {
    /// An RTSP/RTSPS network camera (H.264).
    Rtsp,
    /// A local V4L2 device (USB webcam, CSI camera through a V4L2 driver).
    Usb,
    /// An Annex B H.264 file replayed in a loop at its native rate (demo and tests).
    File,
    /// A camera of a UniFi Protect controller.
    Protect,
}

impl CameraType {
    pub fn as_str(self) -> &'static str {
        match self {
            CameraType::Rtsp => "rtsp",
            CameraType::Usb => "usb",
            CameraType::File => "file",
            CameraType::Protect => "protect",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "rtsp" => CameraType::Rtsp,
            "usb" => CameraType::Usb,
            "file" => CameraType::File,
            "protect" => CameraType::Protect,
            _ => return None,
        })
    }
}

/// Share of changed pixels that counts as motion: low 5 %, medium 2 %, high 0.5 %.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum Sensitivity {
    Low,
    #[default]
    Medium,
    High,
}

impl Sensitivity {
    pub fn as_str(self) -> &'static str {
        match self {
            Sensitivity::Low => "low",
            Sensitivity::Medium => "medium",
            Sensitivity::High => "high",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "low" => Sensitivity::Low,
            "medium" => Sensitivity::Medium,
            "high" => Sensitivity::High,
            _ => return None,
        })
    }
    /// Fraction of analysed pixels that must change for a frame to count as motion.
    pub fn changed_fraction(self) -> f32 {
        match self {
            Sensitivity::Low => 0.05,
            Sensitivity::Medium => 0.02,
            Sensitivity::High => 0.005,
        }
    }
}

/// A point in normalised frame coordinates (0..1, origin top left).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

/// A polygon of the frame in which motion counts. A camera with no enabled zone watches the
/// whole frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: String,
    /// At least 3 vertices, each within 0..1; the polygon is closed implicitly.
    pub vertices: Vec<Point>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// One daily time range, `HH:MM` to `HH:MM` local time; an end before the start runs overnight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeRange {
    pub start: String,
    pub end: String,
}

/// When motion analysis is active. Days are 0 = Monday .. 6 = Sunday.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub days: Vec<u8>,
    pub time_ranges: Vec<TimeRange>,
}

impl Schedule {
    /// True if analysis is active on `day` (0 = Monday) at `minute` after local midnight. A range
    /// whose end is before its start runs overnight: its part after midnight belongs to the day
    /// it started on.
    pub fn is_active(&self, day: u8, minute: u16) -> bool {
        if !self.enabled {
            return true;
        }
        let yesterday = (day + 6) % 7;
        self.time_ranges.iter().any(|r| {
            let (Some(start), Some(end)) = (parse_hhmm(&r.start), parse_hhmm(&r.end)) else {
                return false;
            };
            if start <= end {
                self.days.contains(&day) && (start..=end).contains(&minute)
            } else {
                (self.days.contains(&day) && minute >= start)
                    || (self.days.contains(&yesterday) && minute <= end)
            }
        })
    }
}

pub const MAX_ZONES: usize = 10;

/// Validates zones; the error names the offending field.
pub fn validate_zones(zones: &[Zone]) -> Result<(), String> {
    if zones.len() > MAX_ZONES {
        return Err(format!(
            "detection_zones: at most {MAX_ZONES} zones are allowed"
        ));
    }
    for (i, z) in zones.iter().enumerate() {
        if z.vertices.len() < 3 {
            return Err(format!(
                "detection_zones[{i}].vertices: a zone needs at least 3 vertices"
            ));
        }
        if z.vertices.len() > 64 {
            return Err(format!(
                "detection_zones[{i}].vertices: at most 64 vertices"
            ));
        }
        for (j, p) in z.vertices.iter().enumerate() {
            if !(0.0..=1.0).contains(&p.x) || !(0.0..=1.0).contains(&p.y) {
                return Err(format!(
                    "detection_zones[{i}].vertices[{j}]: coordinates must be between 0 and 1"
                ));
            }
        }
    }
    Ok(())
}

/// Parses `HH:MM` into minutes after midnight.
pub fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

pub fn validate_schedule(s: &Schedule) -> Result<(), String> {
    if s.days.is_empty() || s.days.iter().any(|d| *d > 6) {
        return Err("detection_schedule.days: list days as 0 (Monday) to 6 (Sunday)".into());
    }
    if s.time_ranges.is_empty() || s.time_ranges.len() > 8 {
        return Err("detection_schedule.time_ranges: give 1 to 8 ranges".into());
    }
    for (i, r) in s.time_ranges.iter().enumerate() {
        if parse_hhmm(&r.start).is_none() || parse_hhmm(&r.end).is_none() {
            return Err(format!(
                "detection_schedule.time_ranges[{i}]: times are HH:MM (00:00-23:59)"
            ));
        }
    }
    Ok(())
}

/// What an API key may do. `write:cameras` implies `read:cameras`; `admin` implies everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, PartialOrd, Ord)]
pub enum Scope {
    #[serde(rename = "read:events")]
    ReadEvents,
    #[serde(rename = "read:cameras")]
    ReadCameras,
    #[serde(rename = "write:cameras")]
    WriteCameras,
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::ReadEvents,
        Scope::ReadCameras,
        Scope::WriteCameras,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ReadEvents => "read:events",
            Scope::ReadCameras => "read:cameras",
            Scope::WriteCameras => "write:cameras",
            Scope::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// True if holding `granted` allows an action that needs `needed`.
pub fn scopes_allow(granted: &[Scope], needed: Scope) -> bool {
    granted.iter().any(|g| {
        *g == needed
            || *g == Scope::Admin
            || (*g == Scope::WriteCameras && needed == Scope::ReadCameras)
    })
}

/// The live state of a camera, shown in the camera JSON and sent on `/ws`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveStatus {
    /// `connecting`, `streaming`, `error` or `stopped`.
    pub status: &'static str,
    pub last_frame_at: Option<i64>,
    pub fps: Option<f32>,
    pub resolution: Option<(usize, usize)>,
    pub codec: Option<&'static str>,
    pub error: Option<String>,
    /// Event clips: `recording`, `idle`, `off`, `paused_low_disk` (none when not capturing).
    pub recording: Option<&'static str>,
}

impl Default for LiveStatus {
    fn default() -> Self {
        LiveStatus {
            status: "stopped",
            last_frame_at: None,
            fps: None,
            resolution: None,
            codec: None,
            error: None,
            recording: None,
        }
    }
}

/// A controller's connection state, shown in its JSON and sent on `/ws`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkStatus {
    /// `disconnected` (disabled or stopped), `connecting`, `connected` or `error`.
    pub status: &'static str,
    /// Why the last attempt or connection failed, if it did.
    pub error: Option<String>,
}

impl Default for LinkStatus {
    fn default() -> Self {
        LinkStatus {
            status: "disconnected",
            error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_implications() {
        assert!(scopes_allow(&[Scope::Admin], Scope::WriteCameras));
        assert!(scopes_allow(&[Scope::WriteCameras], Scope::ReadCameras));
        assert!(!scopes_allow(&[Scope::ReadCameras], Scope::WriteCameras));
        assert!(!scopes_allow(&[Scope::ReadEvents], Scope::ReadCameras));
        assert!(!scopes_allow(&[Scope::WriteCameras], Scope::Admin));
    }

    #[test]
    fn schedules_with_overnight_ranges() {
        let s = Schedule {
            enabled: true,
            days: vec![4], // Friday
            time_ranges: vec![TimeRange {
                start: "22:00".into(),
                end: "06:00".into(),
            }],
        };
        assert!(s.is_active(4, 23 * 60));
        assert!(s.is_active(5, 5 * 60)); // Saturday early morning belongs to Friday night
        assert!(!s.is_active(5, 23 * 60));
        assert!(!s.is_active(4, 12 * 60));
        let day = Schedule {
            enabled: true,
            days: vec![0, 1],
            time_ranges: vec![TimeRange {
                start: "08:00".into(),
                end: "17:30".into(),
            }],
        };
        assert!(day.is_active(1, 17 * 60 + 30));
        assert!(!day.is_active(2, 12 * 60));
        assert!(Schedule {
            enabled: false,
            ..day
        }
        .is_active(6, 0));
    }

    #[test]
    fn hhmm() {
        assert_eq!(parse_hhmm("00:00"), Some(0));
        assert_eq!(parse_hhmm("23:59"), Some(1439));
        assert_eq!(parse_hhmm("24:00"), None);
        assert_eq!(parse_hhmm("7:00"), None);
    }

    #[test]
    fn zone_validation_names_the_field() {
        let z = Zone {
            id: None,
            name: "door".into(),
            vertices: vec![
                Point { x: 0.0, y: 0.0 },
                Point { x: 1.5, y: 0.0 },
                Point { x: 0.0, y: 1.0 },
            ],
            enabled: true,
        };
        let e = validate_zones(&[z]).unwrap_err();
        assert!(e.starts_with("detection_zones[0].vertices[1]"), "{e}");
    }
}
