//! The appliance's static configuration: an optional TOML file, overridden by command-line flags
//! and `ARGUS_*` environment variables, validated once at start-up and then passed explicitly.
//! Nothing reads configuration from a global.
//!
//! Runtime-editable settings (retention, AI providers, detection defaults) are not here: they live
//! in the database and are changed through `PUT /api/v1/system/settings` (see `settings.rs`).

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The TOML file's shape. Every key is optional and documented in the README.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address and port to serve HTTP(S) on.
    pub listen: Option<String>,
    /// Directory holding the database, snapshots and keys.
    pub data_dir: Option<PathBuf>,
    /// Log filter, e.g. `info` or `argus=debug,info`.
    pub log: Option<String>,
    #[serde(default)]
    pub http: HttpSection,
    #[serde(default)]
    pub tls: TlsSection,
    #[serde(default)]
    pub auth: AuthSection,
    #[serde(default)]
    pub detector: DetectorSection,
    #[serde(default)]
    pub protect: ProtectSection,
    #[serde(default)]
    pub video: VideoSection,
}

/// `[video]`: event clips and live viewing (README "Clips and live video").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VideoSection {
    /// Seconds of video kept before an event (the clip starts at the key frame before).
    pub pre_capture_seconds: u32,
    /// Seconds recorded after the event's objects were last seen.
    pub post_capture_seconds: u32,
    /// A clip ends after this many seconds whatever happens.
    pub max_clip_seconds: u32,
    /// Bytes of compressed video one camera's pre-capture ring may hold.
    pub pre_capture_max_bytes: usize,
    /// Live viewers (WebSocket and MJPEG together) per camera.
    pub max_live_viewers: usize,
}

impl Default for VideoSection {
    fn default() -> Self {
        VideoSection {
            pre_capture_seconds: 5,
            post_capture_seconds: 5,
            max_clip_seconds: 120,
            pre_capture_max_bytes: 8 << 20,
            max_live_viewers: 4,
        }
    }
}

/// `[protect]`: how the appliance follows UniFi Protect consoles.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProtectSection {
    /// Seconds without any update message after which the update socket is considered dead
    /// and reopened (a console sends camera statistics every few seconds).
    pub idle_timeout_secs: u64,
    /// Seconds a camera's bootstrap (its camera list) is reused before it is read again.
    pub camera_cache_secs: u64,
    /// When event clips are fetched from the console. Not a key of the file: it follows how
    /// consoles behave (tests shorten it).
    #[serde(skip)]
    pub clip_timing: ProtectClipTiming,
}

impl Default for ProtectSection {
    fn default() -> Self {
        ProtectSection {
            idle_timeout_secs: 120,
            camera_cache_secs: 60,
            clip_timing: ProtectClipTiming::default(),
        }
    }
}

/// When a Protect event's clip (the console's export of the event window) is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtectClipTiming {
    /// The wait after the event's end before the first try: a console needs a moment before
    /// the export exists.
    pub after_end: std::time::Duration,
    /// The wait before the first retry; each later retry waits twice as long as the one before.
    pub retry: std::time::Duration,
    /// Tries in all.
    pub attempts: u32,
    /// An event the console never ends is closed this long after it started.
    pub max_open: std::time::Duration,
}

impl Default for ProtectClipTiming {
    fn default() -> Self {
        ProtectClipTiming {
            after_end: std::time::Duration::from_secs(3),
            retry: std::time::Duration::from_secs(3),
            attempts: 5,
            max_open: std::time::Duration::from_secs(60),
        }
    }
}

// `[detector]` is defined beside the detector it configures (no import back into config).
pub use crate::detect::service::{DetectorSection, OnDetectorError};

/// `[http] body_timeout_secs` by default.
pub const DEFAULT_BODY_TIMEOUT_SECS: u64 = 60;
/// `[http] body_min_rate` by default, bytes per second.
pub const DEFAULT_BODY_MIN_RATE: u64 = 4096;

/// `[http]`: the server's limits. The README's "Limits" section lists them all.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// Largest JSON request body accepted, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Largest upload (images for `/ai/describe`, events with a snapshot), in bytes.
    pub max_upload_bytes: usize,
    /// Open connections at most. When full, the connection that has waited longest for a
    /// request (idle keep-alive, slow headers, TLS handshake) is closed to make room; when every
    /// one is busy with a request, a new one gets 503.
    pub max_connections: usize,
    /// Open connections per client address (an IPv4 address or an IPv6 /64); beyond it a new
    /// one gets 429. 0: no per-address limit (behind a reverse proxy, every client has the
    /// proxy's address).
    pub max_connections_per_ip: usize,
    /// Seconds for a request's headers to arrive, from their first byte (for the first request
    /// of a connection: from its start); 408 beyond.
    pub header_timeout_secs: u64,
    /// Seconds an idle keep-alive connection is kept open for its next request.
    pub keep_alive_timeout_secs: u64,
    /// Seconds a response write may make no progress (a client that stops reading) before the
    /// connection is closed.
    pub write_timeout_secs: u64,
    /// Largest request head (request line and headers), in bytes; 431 beyond.
    pub max_head_bytes: usize,
    /// Longest request target (path and query), in bytes; 414 beyond.
    pub max_uri_bytes: usize,
    /// Most header fields in a request; 431 beyond.
    pub max_headers: usize,
    /// Seconds a request body may take in all (routes that need credentials); 408 beyond.
    pub body_timeout_secs: u64,
    /// Bytes per second a request body must average after its first 2 s; 408 below.
    pub body_min_rate: u64,
    /// Seconds a body may take on the routes that need no credentials (login).
    pub public_body_timeout_secs: u64,
    /// Largest body on the routes that need no credentials, in bytes.
    pub public_max_body_bytes: usize,
    /// The URL browsers use to reach the appliance when it is not the address they connect
    /// to (a reverse proxy that rewrites `Host`), e.g. `https://cams.example.org`: pages of
    /// that origin may use the session cookie. Webhooks and notifications carry absolute,
    /// signed snapshot links under it; when unset, the `Host` of the latest authenticated API
    /// request stands in (and before any, links are relative).
    pub public_url: Option<String>,
    /// How long a signed snapshot link (in webhooks and notifications) stays valid, in seconds.
    pub media_link_ttl_secs: u64,
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            max_body_bytes: 1 << 20,
            max_upload_bytes: 16 << 20,
            max_connections: 256,
            max_connections_per_ip: 32,
            header_timeout_secs: 10,
            keep_alive_timeout_secs: 15,
            write_timeout_secs: 30,
            max_head_bytes: 32 * 1024,
            max_uri_bytes: 8 * 1024,
            max_headers: 100,
            body_timeout_secs: DEFAULT_BODY_TIMEOUT_SECS,
            body_min_rate: DEFAULT_BODY_MIN_RATE,
            public_body_timeout_secs: 5,
            public_max_body_bytes: 16 * 1024,
            public_url: None,
            media_link_ttl_secs: 86_400,
        }
    }
}

impl HttpSection {
    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(format!("http.{m}")));
        if self.max_body_bytes < 1024 {
            return bad("max_body_bytes: at least 1024");
        }
        if self.max_connections == 0 || self.max_connections > 65_536 {
            return bad("max_connections: between 1 and 65536");
        }
        for (name, v) in [
            ("header_timeout_secs", self.header_timeout_secs),
            ("keep_alive_timeout_secs", self.keep_alive_timeout_secs),
            ("write_timeout_secs", self.write_timeout_secs),
            ("body_timeout_secs", self.body_timeout_secs),
            ("public_body_timeout_secs", self.public_body_timeout_secs),
        ] {
            if !(1..=3600).contains(&v) {
                return bad(&format!("{name}: between 1 and 3600"));
            }
        }
        if !(1024..=256 * 1024).contains(&self.max_head_bytes) {
            return bad("max_head_bytes: between 1024 and 262144");
        }
        if self.max_uri_bytes < 256 || self.max_uri_bytes > self.max_head_bytes {
            return bad("max_uri_bytes: between 256 and max_head_bytes");
        }
        if !(8..=1000).contains(&self.max_headers) {
            return bad("max_headers: between 8 and 1000");
        }
        if self.public_max_body_bytes < 1024 {
            return bad("public_max_body_bytes: at least 1024");
        }
        if !(60..=30 * 86_400).contains(&self.media_link_ttl_secs) {
            return bad("media_link_ttl_secs: between 60 and 2592000 (30 days)");
        }
        if let Some(u) = &self.public_url {
            let ok = url::Url::parse(u).is_ok_and(|p| {
                matches!(p.scheme(), "http" | "https")
                    && p.host_str().is_some()
                    && matches!(p.path(), "" | "/")
                    && p.query().is_none()
            });
            if !ok {
                return bad(&format!(
                    "public_url: {u:?} is not an origin like https://cams.example.org"
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM certificate chain. With `key_file`, the appliance serves HTTPS instead of HTTP.
    pub cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// Lifetime of a browser login (JWT and session), in hours.
    pub session_hours: u32,
    /// Failed or not, login attempts allowed per client IP per 15 minutes.
    pub login_attempts_per_15min: u32,
    /// Login attempts allowed per minute from all addresses together (the whole minute's worth
    /// may come at once); 429 beyond.
    pub login_attempts_per_minute: u32,
    /// Password hashes (19 MiB of memory each) computed at once, for logins and password
    /// changes. Default: the number of cores, at most 4.
    pub password_hashes_in_flight: Option<usize>,
    /// Seconds a login waits for a hashing slot before it gets 429.
    pub password_hash_wait_secs: u64,
    /// Mark the `access_token` cookie `Secure`. Defaults to on when TLS is configured.
    pub cookie_secure: Option<bool>,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            session_hours: 24,
            login_attempts_per_15min: 10,
            login_attempts_per_minute: 60,
            password_hashes_in_flight: None,
            password_hash_wait_secs: 5,
            cookie_secure: None,
        }
    }
}

/// Validated configuration, ready to use.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub log: String,
    pub http: HttpSection,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub auth: AuthSection,
    pub detector: DetectorSection,
    pub protect: ProtectSection,
    pub video: VideoSection,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// Values given on the command line or in the environment; they win over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// `[detector] model`.
    pub model: Option<PathBuf>,
    /// `[detector] runtime`.
    pub onnxruntime: Option<PathBuf>,
    /// `[detector] enabled = false`.
    pub motion_only: bool,
}

impl Config {
    /// Reads the file (if any), applies overrides and validates.
    pub fn load(o: &Overrides) -> Result<Config, ConfigError> {
        let file = match &o.config_file {
            Some(p) => Self::read_file(p)?,
            None => FileConfig::default(),
        };
        Self::from_parts(file, o)
    }

    fn read_file(p: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
            path: p.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: p.display().to_string(),
            message: e.to_string(),
        })
    }

    pub fn from_parts(file: FileConfig, o: &Overrides) -> Result<Config, ConfigError> {
        let listen_s = o
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| "0.0.0.0:8000".into());
        let listen: SocketAddr = listen_s.parse().map_err(|_| {
            ConfigError::Invalid(format!(
                "listen: {listen_s:?} is not an address like 0.0.0.0:8000"
            ))
        })?;
        let data_dir = o
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./data"));
        let tls = match (file.tls.cert_file, file.tls.key_file) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid(
                    "tls: set both cert_file and key_file, or neither".into(),
                ))
            }
        };
        file.http.validate()?;
        if file.auth.session_hours == 0 || file.auth.session_hours > 24 * 90 {
            return Err(ConfigError::Invalid(
                "auth.session_hours: between 1 and 2160".into(),
            ));
        }
        if file.auth.login_attempts_per_15min == 0 {
            return Err(ConfigError::Invalid(
                "auth.login_attempts_per_15min: at least 1".into(),
            ));
        }
        if file.auth.login_attempts_per_minute == 0 {
            return Err(ConfigError::Invalid(
                "auth.login_attempts_per_minute: at least 1".into(),
            ));
        }
        if file
            .auth
            .password_hashes_in_flight
            .is_some_and(|n| n == 0 || n > 64)
        {
            return Err(ConfigError::Invalid(
                "auth.password_hashes_in_flight: between 1 and 64 (each needs 19 MiB)".into(),
            ));
        }
        if !(1..=60).contains(&file.auth.password_hash_wait_secs) {
            return Err(ConfigError::Invalid(
                "auth.password_hash_wait_secs: between 1 and 60".into(),
            ));
        }
        let mut detector = file.detector;
        if let Some(m) = &o.model {
            detector.model = Some(m.clone());
        }
        if let Some(r) = &o.onnxruntime {
            detector.runtime = Some(r.clone());
        }
        if o.motion_only {
            detector.enabled = false;
        }
        if detector.workers == 0 || detector.workers > 16 {
            return Err(ConfigError::Invalid(
                "detector.workers: between 1 and 16".into(),
            ));
        }
        if detector.threads.is_some_and(|t| t == 0 || t > 64) {
            return Err(ConfigError::Invalid(
                "detector.threads: between 1 and 64".into(),
            ));
        }
        if detector.queue == 0 {
            return Err(ConfigError::Invalid("detector.queue: at least 1".into()));
        }
        if !(1..=3600).contains(&file.protect.idle_timeout_secs) {
            return Err(ConfigError::Invalid(
                "protect.idle_timeout_secs: between 1 and 3600".into(),
            ));
        }
        let v = &file.video;
        if v.pre_capture_seconds > 30 {
            return Err(ConfigError::Invalid(
                "video.pre_capture_seconds: between 0 and 30".into(),
            ));
        }
        if v.post_capture_seconds > 60 {
            return Err(ConfigError::Invalid(
                "video.post_capture_seconds: between 0 and 60".into(),
            ));
        }
        if !(5..=600).contains(&v.max_clip_seconds) {
            return Err(ConfigError::Invalid(
                "video.max_clip_seconds: between 5 and 600".into(),
            ));
        }
        if !((1 << 20)..=(64 << 20)).contains(&v.pre_capture_max_bytes) {
            return Err(ConfigError::Invalid(
                "video.pre_capture_max_bytes: between 1 MiB and 64 MiB".into(),
            ));
        }
        if v.max_live_viewers > 64 {
            return Err(ConfigError::Invalid(
                "video.max_live_viewers: between 0 and 64".into(),
            ));
        }
        if file.protect.camera_cache_secs > 3600 {
            return Err(ConfigError::Invalid(
                "protect.camera_cache_secs: between 0 and 3600".into(),
            ));
        }
        Ok(Config {
            listen,
            data_dir,
            log: file.log.unwrap_or_else(|| "info".into()),
            http: file.http,
            tls,
            auth: file.auth,
            detector,
            protect: file.protect,
            video: file.video,
        })
    }

    /// A configuration for tests: everything default except the detector, which is off (the
    /// detection tests switch it on), data in `data_dir`.
    pub fn for_data_dir(data_dir: &Path) -> Config {
        let o = Overrides {
            data_dir: Some(data_dir.to_path_buf()),
            listen: Some("127.0.0.1:0".into()),
            motion_only: true,
            ..Default::default()
        };
        Config::from_parts(FileConfig::default(), &o).expect("defaults are valid")
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("argus.db")
    }

    pub fn cookie_secure(&self) -> bool {
        self.auth.cookie_secure.unwrap_or(self.tls.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_rejected() {
        let e = toml::from_str::<FileConfig>("lissen = \"x\"").unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }

    #[test]
    fn overrides_win_and_half_tls_is_refused() {
        let file: FileConfig = toml::from_str("listen = \"127.0.0.1:9000\"").unwrap();
        let o = Overrides {
            listen: Some("127.0.0.1:9100".into()),
            ..Default::default()
        };
        let c = Config::from_parts(file, &o).unwrap();
        assert_eq!(c.listen.port(), 9100);
        let file: FileConfig = toml::from_str("[tls]\ncert_file = \"a.pem\"").unwrap();
        assert!(Config::from_parts(file, &Overrides::default()).is_err());
    }

    #[test]
    fn http_limits_are_checked() {
        let bad = |t: &str| {
            let file: FileConfig = toml::from_str(t).unwrap();
            Config::from_parts(file, &Overrides::default())
                .unwrap_err()
                .to_string()
        };
        assert!(bad("[http]\nheader_timeout_secs = 0").contains("header_timeout_secs"));
        assert!(bad("[http]\nmax_uri_bytes = 100000").contains("max_uri_bytes"));
        assert!(bad("[http]\npublic_url = \"cams.example.org\"").contains("public_url"));
        assert!(bad("[http]\npublic_url = \"https://x.org/app\"").contains("public_url"));
        let file: FileConfig = toml::from_str(
            "[http]\npublic_url = \"https://cams.example.org\"\nmax_connections_per_ip = 0",
        )
        .unwrap();
        assert!(Config::from_parts(file, &Overrides::default()).is_ok());
    }
}
