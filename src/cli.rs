//! The command line: `argus serve` (the default) and the admin commands that work on the same
//! data dir while the server runs (`api-keys`, `users`, `db check`, `db backup`). Admin commands print what a script needs
//! alone on the last line of stdout; logs go to stderr.

use crate::app::{self, Deps};
use crate::auth::{api_keys, password};
use crate::config::{Config, Overrides};
use crate::model::Scope;
use crate::store::{api_keys as key_rows, users};
use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "argus",
    version,
    about = "Argus Edge: an AI security-camera appliance"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Address to serve on.
    #[arg(long, global = true, env = "ARGUS_LISTEN")]
    pub listen: Option<String>,
    /// Directory for the database, snapshots and keys.
    #[arg(long, global = true, env = "ARGUS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML configuration file.
    #[arg(long, global = true, env = "ARGUS_CONFIG")]
    pub config: Option<PathBuf>,
    /// The detector's model description (`[detector] model`).
    #[arg(long, global = true, env = "ARGUS_MODEL")]
    pub model: Option<PathBuf>,
    /// The ONNX Runtime library (`[detector] runtime`).
    #[arg(long, global = true, env = "ARGUS_ONNXRUNTIME")]
    pub onnxruntime: Option<PathBuf>,
    /// No object detection: every motion is an event (`[detector] enabled = false`).
    #[arg(long, global = true)]
    pub motion_only: bool,
    /// With `serve`: add (once) a camera named "Demo" that replays an H.264 clip of a person
    /// walking through a scene, so events arrive without any hardware.
    #[arg(long, global = true)]
    pub demo: bool,
    /// The clip the demo camera plays.
    #[arg(long, global = true, default_value = "assets/demo/person-walk.h264")]
    pub demo_file: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the appliance (the default).
    Serve,
    /// Manage API keys.
    #[command(subcommand)]
    ApiKeys(ApiKeysCmd),
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCmd),
    /// Check or back up the database.
    #[command(subcommand)]
    Db(DbCmd),
}

#[derive(Debug, Subcommand)]
pub enum DbCmd {
    /// SQLite's integrity and foreign-key checks plus the snapshot files against the rows
    /// (orphaned files, stale temp files, rows whose file is missing). Changes nothing; exits
    /// non-zero on any problem.
    Check {
        /// Ignore snapshot and temp files younger than this many seconds (a running appliance
        /// writes a snapshot just before its row). 0 when the appliance is stopped or idle.
        #[arg(long, default_value_t = crate::retention::GRACE.as_secs())]
        grace: u64,
    },
    /// An online copy of the database (SQLite backup API), safe while the appliance runs; the
    /// copy is verified with an integrity check before it takes the name FILE.
    Backup { file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum ApiKeysCmd {
    /// Create a key; the key is printed alone on the last line.
    Create {
        #[arg(long)]
        name: String,
        /// Comma-separated: read:events, read:cameras, write:cameras, admin.
        #[arg(long, value_delimiter = ',', default_value = "read:events")]
        scopes: Vec<String>,
        /// Requests per minute.
        #[arg(long, default_value_t = 100)]
        rate_limit: u32,
        /// Expiry (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// List keys (revoked ones too).
    List,
    /// Revoke a key by id; it stops working at once.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum UsersCmd {
    /// Set a new random password (printed alone on the last line); it must be changed at next
    /// login, and the user's sessions end.
    ResetPassword { username: Option<String> },
}

impl GlobalArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config_file: self.config.clone(),
            listen: self.listen.clone(),
            data_dir: self.data_dir.clone(),
            model: self.model.clone(),
            onnxruntime: self.onnxruntime.clone(),
            motion_only: self.motion_only,
        }
    }
}

fn now_ms() -> i64 {
    use crate::clock::Clock;
    crate::clock::SystemClock.now_ms()
}

/// Runs an admin command to completion.
pub fn run_admin(cfg: &Config, cmd: Command) -> anyhow::Result<()> {
    if let Command::Db(db) = cmd {
        return run_db(cfg, db);
    }
    let (store, keys) = app::open_data_dir(cfg)?;
    app::ensure_admin(&store, &cfg.data_dir, now_ms())?;
    match cmd {
        Command::Serve | Command::Db(_) => unreachable!("not handled here"),
        Command::ApiKeys(ApiKeysCmd::Create {
            name,
            scopes,
            rate_limit,
            expires_at,
        }) => {
            let scopes = crate::api::api_keys::parse_scopes(&scopes).map_err(anyhow::Error::msg)?;
            api_keys::validate_new(&name, &scopes, rate_limit).map_err(anyhow::Error::msg)?;
            let expires_at = match expires_at {
                Some(v) => Some(
                    crate::clock::parse_time(&v)
                        .context("--expires-at: use RFC 3339 or YYYY-MM-DD")?,
                ),
                None => None,
            };
            if expires_at.is_some_and(|e| e <= now_ms()) {
                bail!("--expires-at must be in the future");
            }
            let new = api_keys::NewKey {
                name: name.trim().to_string(),
                scopes,
                rate_limit_per_minute: rate_limit,
                expires_at,
                created_by: Some("cli".into()),
            };
            let (row, key) = store.write_blocking(|c| api_keys::create(c, &keys, new, now_ms()))?;
            let scopes: Vec<&str> = row.scopes.iter().map(|s: &Scope| s.as_str()).collect();
            println!("id: {}", row.id);
            println!("name: {}", row.name);
            println!("scopes: {}", scopes.join(","));
            println!("rate_limit_per_minute: {}", row.rate_limit_per_minute);
            println!("Store this key now; it cannot be shown again:");
            println!("{key}");
        }
        Command::ApiKeys(ApiKeysCmd::List) => {
            let rows = store.read_blocking(|c| key_rows::list(c, true))?;
            println!(
                "{:<36}  {:<16}  {:<8}  {:<40}  NAME",
                "ID", "PREFIX", "STATE", "SCOPES"
            );
            for r in rows {
                let state = if r.revoked_at.is_some() {
                    "revoked"
                } else if r.expires_at.is_some_and(|e| e <= now_ms()) {
                    "expired"
                } else {
                    "active"
                };
                let scopes: Vec<&str> = r.scopes.iter().map(|s| s.as_str()).collect();
                println!(
                    "{:<36}  argus_{:<10}  {:<8}  {:<40}  {}",
                    r.id,
                    r.lookup,
                    state,
                    scopes.join(","),
                    r.name
                );
            }
        }
        Command::ApiKeys(ApiKeysCmd::Revoke { id }) => {
            let changed = store
                .write_blocking(|c| key_rows::revoke(c, &id, now_ms()))
                .map_err(|e| match e {
                    crate::store::StoreError::NotFound(_) => {
                        anyhow::anyhow!("no API key with id {id}")
                    }
                    other => other.into(),
                })?;
            if changed {
                println!("revoked {id}");
            } else {
                println!("{id} was already revoked");
            }
        }
        Command::Users(UsersCmd::ResetPassword { username }) => {
            let user = match &username {
                Some(u) => store
                    .read_blocking(|c| users::by_username(c, &u.to_lowercase()))?
                    .with_context(|| format!("no user named {u:?}"))?,
                None => store
                    .read_blocking(users::first_admin)?
                    .context("there is no admin user")?,
            };
            let pw = password::generate();
            let hash = password::hash(&pw);
            store.write_blocking(|c| {
                users::set_password(c, &user.id, &hash, true, None, now_ms())
            })?;
            let _ = std::fs::remove_file(cfg.data_dir.join(app::INITIAL_PASSWORD_FILE));
            println!(
                "New password for {:?} (must be changed at next login; its sessions have ended):",
                user.username
            );
            println!("{pw}");
        }
    }
    Ok(())
}

/// `argus db check` and `argus db backup`: they never create a data dir or a database.
fn run_db(cfg: &Config, cmd: DbCmd) -> anyhow::Result<()> {
    use crate::store::retention as sql;
    let db = cfg.db_path();
    if !db.is_file() {
        bail!("no database at {}", db.display());
    }
    match cmd {
        DbCmd::Check { grace } => {
            let store = crate::store::Store::open_read_only(&db)?;
            let integrity = store.read_blocking(sql::integrity_check)?;
            let fks = store.read_blocking(sql::foreign_key_check)?;
            let events = store.read_blocking(sql::event_count)?;
            let grace = std::time::Duration::from_secs(grace);
            let files =
                crate::retention::check_files(&store, &cfg.data_dir, false, grace, now_ms())?;
            println!("database: {}", db.display());
            println!("events: {events}");
            println!(
                "integrity_check: {}",
                if integrity.is_empty() { "ok" } else { "FAILED" }
            );
            for l in integrity.iter().take(20) {
                println!("  {l}");
            }
            println!("foreign_key_check: {} problems", fks.len());
            for l in fks.iter().take(20) {
                println!("  {l}");
            }
            println!(
                "snapshots: {} files, {} rows with a snapshot",
                files.files_checked, files.rows_checked
            );
            println!("orphaned files: {}", files.orphans.len());
            for p in &files.orphans {
                println!("  orphan: {p}");
            }
            println!("stale temp files: {}", files.temp_files.len());
            for p in &files.temp_files {
                println!("  temp: {p}");
            }
            println!("rows whose file is missing: {}", files.missing_count);
            for p in &files.missing {
                println!("  missing: {p}");
            }
            let problems = integrity.len() as u64 + fks.len() as u64 + files.problems();
            if problems > 0 {
                bail!("database check found {problems} problem(s)");
            }
            println!("ok");
        }
        DbCmd::Backup { file } => {
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .context("FILE must name a file")?
                .to_string();
            let dir = match file.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let tmp = dir.join(format!(".{name}.{}.tmp", crate::crypto::random_token(8)));
            let res = (|| -> anyhow::Result<u64> {
                sql::backup(&db, &tmp)?;
                let copy = crate::store::Store::open_read_only(&tmp)?;
                let bad = copy.read_blocking(sql::integrity_check)?;
                if !bad.is_empty() {
                    bail!("the copy failed its integrity check: {}", bad.join("; "));
                }
                let events = copy.read_blocking(sql::event_count)?;
                drop(copy);
                std::fs::File::open(&tmp)?.sync_all()?;
                std::fs::rename(&tmp, &file)?;
                std::fs::File::open(&dir)?.sync_all()?;
                Ok(events)
            })();
            match res {
                Ok(events) => {
                    let bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
                    println!("backed up {events} events ({bytes} bytes); integrity check ok");
                    println!("{}", file.display());
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e.context(format!("backup to {} failed", file.display())));
                }
            }
        }
    }
    Ok(())
}

/// Adds the demo camera unless a camera of that name exists.
pub fn ensure_demo_camera(cfg: &Config, clip: &std::path::Path) -> anyhow::Result<()> {
    let clip = std::fs::canonicalize(clip).with_context(|| {
        format!(
            "the demo clip {} is missing (run from the repository, or pass --demo-file)",
            clip.display()
        )
    })?;
    let (store, _) = app::open_data_dir(cfg)?;
    let exists = store
        .read_blocking(|c| crate::store::cameras::list(c, None))?
        .iter()
        .any(|c| c.name == "Demo");
    if exists {
        return Ok(());
    }
    let now = now_ms();
    let row = crate::store::cameras::CameraRow {
        id: crate::crypto::new_uuid(),
        name: "Demo".into(),
        camera_type: crate::model::CameraType::File,
        rtsp_url: None,
        username: None,
        password_sealed: None,
        device_index: None,
        device_path: None,
        file_path: Some(clip.display().to_string()),
        rtsp_transport: "tcp".into(),
        frame_rate: 5,
        is_enabled: true,
        motion_enabled: true,
        motion_sensitivity: crate::model::Sensitivity::Medium,
        motion_cooldown: 10,
        detection_zones: vec![],
        detection_schedule: None,
        object_filter: vec!["person".into(), "vehicle".into()],
        prompt_override: None,
        protect_controller_id: None,
        protect_camera_id: None,
        smart_detection_types: vec![],
        is_doorbell: false,
        record_clips: true,
        created_at: now,
        updated_at: now,
    };
    store.write_blocking(|c| crate::store::cameras::insert(c, &row))?;
    tracing::info!(file = %clip.display(), "added the demo camera");
    Ok(())
}

/// Runs the server until SIGINT/SIGTERM; a second signal exits at once.
pub async fn serve(cfg: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let shutdown = async {
        wait_for_signal().await;
        tokio::spawn(async {
            wait_for_signal().await;
            tracing::warn!("second signal: exiting now");
            std::process::exit(130);
        });
    };
    app::run(cfg, Deps::default(), listener, shutdown).await?;
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
