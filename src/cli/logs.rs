//! `buildplane logs BUILD...`: the logs of each build's steps, in step order. A build is a
//! Build file or `ORG/BUILD` on the build plane (found by labels, as `watch` finds it).

use super::Outcome;
use super::connect::ClientArgs;
use crate::kube::Kube;
use crate::lifecycle::find;
use crate::pipeline::logs::{self, LogSource};
use clap::Args;

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub targets: super::connect::TargetArgs,
    /// Only this step: clone, build, push, workload-create (or their `-step` names).
    #[arg(long, value_name = "STEP")]
    pub step: Option<String>,
    /// Keep streaming while the step runs.
    #[arg(short = 'f', long)]
    pub follow: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub fn run(args: LogsArgs) -> anyhow::Result<Outcome> {
    let (builds, names) = args.targets.split()?;
    let mut sources = logs::sources_of(&builds)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let shown = runtime.block_on(async {
        let kube = Kube::connect(&args.client.settings()).await?;
        if !names.is_empty() {
            let found = find::resolve(&kube, &names).await?;
            sources.extend(found.iter().zip(&names).map(|(f, n)| LogSource {
                build: n.build.clone(),
                engine: f.engine,
                namespace: f.record.namespace.clone(),
                object: f.record.name.clone(),
            }));
        }
        let mut seen = std::collections::BTreeSet::new();
        sources.retain(|s| seen.insert((s.namespace.clone(), s.object.clone())));
        let mut out = std::io::stdout();
        let shown =
            logs::print_logs(&kube, &sources, args.step.as_deref(), args.follow, &mut out).await?;
        anyhow::Ok(shown)
    })?;
    if shown == 0 {
        anyhow::bail!(
            "no step pods found for these builds (not started yet, or deleted with their Workflow)"
        );
    }
    Ok(Outcome::Success)
}
