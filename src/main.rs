//! Entry point: parse, run, and map the result to an exit code — 0 success, 1 differences,
//! failed builds or a build not found, 2 errors (bad input, unreachable cluster). Nothing else
//! decides how to exit.
#![forbid(unsafe_code)]

use buildplane::cli::{self, Cli, LogFormat, Outcome};
use clap::Parser;
use std::process::ExitCode;

// Rendering allocates many small maps; mimalloc is measurably faster than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(cli.log_format, cli.default_log_filter());
    match cli::run(cli) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Differences) => ExitCode::from(1),
        Ok(Outcome::Refused(line)) => {
            eprintln!("error: {line}");
            ExitCode::from(1)
        }
        Err(e) => {
            // Each error says its own context once and leaves its cause to the next link.
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            let line = buildplane::core::text::escape_controls(&chain.join(": ")).into_owned();
            eprintln!("error: {line}");
            ExitCode::from(2)
        }
    }
}

/// Diagnostics go to stderr, filtered by `BUILDPLANE_LOG` (`RUST_LOG` syntax). The default is
/// the command's own (`Cli::default_log_filter`): libraries' logs would repeat errors that are
/// reported once. JSON lines carry the same events for log collectors.
fn init_logging(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BUILDPLANE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
