//! `buildplane stop ORG/BUILD... [--terminate]`: Argo's own stop of a build's Workflow.
//! `argo stop` and `argo terminate` are one patch that differs in one word, so here they are
//! one command and a flag that says what the difference costs: `stop` lets exit handlers run,
//! `--terminate` cuts them short. As Argo does, a finished build is refused (exit 1); a name not
//! on the build plane is kubectl's NotFound (exit 1); nothing is patched before every name is
//! found.

use super::Outcome;
use super::connect::ClientArgs;
use crate::core::builds::StopMode;
use crate::core::text::escape_controls;
use crate::kube::Kube;
use crate::lifecycle::find::{self, Stopped};
use clap::Args;
use std::io::Write;

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Builds on the build plane, as ORG/BUILD.
    #[arg(value_name = "ORG/BUILD", required = true)]
    pub builds: Vec<String>,
    /// Terminate: stop at once, without running exit handlers (`argo terminate`).
    #[arg(long)]
    pub terminate: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// The line `stop` prints for a build it asked to stop.
fn requested_line(build: &str, object: &str, mode: StopMode) -> String {
    match mode {
        StopMode::Stop => {
            format!("{build} stopping ({object} asked to Stop; exit handlers still run)")
        }
        StopMode::Terminate => {
            format!("{build} terminating ({object} asked to Terminate; exit handlers are skipped)")
        }
    }
}

pub fn run(args: StopArgs) -> anyhow::Result<Outcome> {
    let names = super::get::parse_names(&args.builds)?;
    let mode = if args.terminate {
        StopMode::Terminate
    } else {
        StopMode::Stop
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut out = std::io::stdout().lock();
    let finished = runtime.block_on(async {
        let kube = Kube::connect(&args.client.settings()).await?;
        let found = find::resolve(&kube, &names).await?;
        let mut finished = Vec::new();
        for f in &found {
            let build = f.record.label();
            let object = f.id().to_string();
            let line = match find::stop(&kube, f, mode).await? {
                Stopped::Requested(m) => requested_line(&build, &object, m),
                Stopped::AlreadyRequested(m) => {
                    format!("{build}: {m} was already requested ({object})")
                }
                Stopped::Finished => {
                    let phase = super::list::phase_cell(&f.record);
                    finished.push(format!("{build} ({phase})"));
                    continue;
                }
            };
            writeln!(out, "{}", escape_controls(&line))?;
        }
        anyhow::Ok(finished)
    })?;
    if finished.is_empty() {
        return Ok(Outcome::Success);
    }
    let line = format!("cannot stop a finished build: {}", finished.join(", "));
    Ok(Outcome::Refused(escape_controls(&line).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_what_each_mode_costs() {
        assert_eq!(
            requested_line("acme/b", "Workflow/ns/w", StopMode::Stop),
            "acme/b stopping (Workflow/ns/w asked to Stop; exit handlers still run)"
        );
        assert!(
            requested_line("acme/b", "Workflow/ns/w", StopMode::Terminate)
                .contains("asked to Terminate; exit handlers are skipped")
        );
    }
}
