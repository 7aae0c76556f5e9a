//! Entry point: parse, run, and map the result to an exit code — 0 success, 1 differences or
//! failed builds, 2 errors (bad input, unreachable cluster). Nothing else decides how to exit.
#![forbid(unsafe_code)]

use buildplane::cli::{self, Cli, Outcome};
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
    match cli::run(cli) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Differences) => ExitCode::from(1),
        Err(e) => {
            // Each error carries its own context once; print the chain without repeats.
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    msg.push_str(": ");
                    msg.push_str(&c);
                }
            }
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}
