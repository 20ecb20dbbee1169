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
    //
    // And a fixed mmap threshold of 4 MiB. glibc's threshold is dynamic: it starts at 128 KiB
    // and, each time a block above it is freed, rises to that block's size (up to 32 MiB on
    // 64-bit). So once the first 19 MiB Argon2id block (every password check needs one) has
    // been freed, the later ones come from the arenas, which keep freed memory resident and,
    // with small allocations in between, did not even reuse it: 100 wrong-password logins, two
    // at a time, left RSS at 1.9 GB for good (measured; 31 MB with this setting). With a fixed
    // threshold every block of 4 MiB or more is mmapped and goes back to the OS when freed
    // (setting it also fixes the trim threshold at its 128 KiB default). Why 4 MiB rather than
    // less: the buffers the camera pipeline allocates per analysed frame stay below it and keep
    // being reused from the arenas, instead of costing an mmap, page faults and an munmap each
    // time. Up to 1080p a frame copy for the detector is 2 MiB of luma and two 0.5 MiB chroma
    // planes (a V4L2 frame converted to I420 the same), the detector's input tensor 2 MiB, an
    // H.264 access unit well under 1 MiB. Only a 4K analysis stream's 8 MiB luma copy crosses it,
    // for the frames with motion sent to the detector (at most the camera's analysis rate):
    // about a millisecond of page faults each, little beside decoding a 4K frame.
    #[cfg(target_env = "gnu")]
    // SAFETY: called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
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
