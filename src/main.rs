//! The `argus` binary: parse the command line, set up logging, load the configuration and hand
//! over to the library.

use argus::cli::{self, Cli, Command};
use argus::config::Config;
use clap::Parser;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

fn init_logging(default: &str) {
    let spec = std::env::var("ARGUS_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| default.to_string());
    let filter: Targets = spec
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO));
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false),
        )
        .with(filter)
        .init();
}

fn serve(cfg: Config, demo: Option<&std::path::PathBuf>) -> anyhow::Result<()> {
    if let Some(clip) = demo {
        cli::ensure_demo_camera(&cfg, clip)?;
    }
    // A bounded blocking pool: SQLite calls and file writes run there, and an SD-card appliance
    // gains nothing from hundreds of threads.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(32)
        .enable_all()
        .build()?;
    rt.block_on(cli::serve(cfg))
}

fn main() -> std::process::ExitCode {
    // Two malloc arenas instead of one per thread: on a board with little memory, per-thread
    // arenas (64 MiB of address space each, and their fragmentation) cost more than the rare
    // contention they avoid.
    #[cfg(target_env = "gnu")]
    // SAFETY: called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    let args = Cli::parse();
    let cfg = match Config::load(&args.global.overrides()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("argus: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logging(&cfg.log);
    let result = match args.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cfg, args.global.demo.then_some(&args.global.demo_file)),
        admin => cli::run_admin(&cfg, admin),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("argus: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
