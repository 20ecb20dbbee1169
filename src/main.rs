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

fn main() -> std::process::ExitCode {
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
        Command::Serve => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(cli::serve(cfg))),
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
