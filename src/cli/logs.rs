//! `buildplane logs BUILD...`: the logs of each build's steps, in step order.

use super::Outcome;
use super::connect::ClientArgs;
use crate::kube::Kube;
use crate::pipeline::logs;
use clap::Args;

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub targets: super::connect::BuildArgs,
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
    let builds = args.targets.load()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let shown = runtime.block_on(async {
        let kube = Kube::connect(&args.client.settings()).await?;
        let mut out = std::io::stdout();
        logs::print_logs(&kube, &builds, args.step.as_deref(), args.follow, &mut out).await
    })?;
    if shown == 0 {
        anyhow::bail!(
            "no step pods found for these builds (not started yet, or deleted with their Workflow)"
        );
    }
    Ok(Outcome::Success)
}
