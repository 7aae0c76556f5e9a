//! `buildplane retry BUILD...`: build again although the spec did not change. The submit-once
//! rule (`deploy::apply`) never re-creates a Workflow for a spec hash it has seen; retry deletes
//! the finished Workflow and forgets its record, then applies, so exactly one new one runs.

use super::Outcome;
use super::connect::{BuildArgs, ClientArgs};
use crate::core::manifest;
use crate::kube::Kube;
use crate::pipeline::deploy::{self, Action, DeployOptions, Retry};
use crate::pipeline::{self, Rendered};
use clap::Args;
use std::io::Write;

#[derive(Debug, Args)]
pub struct RetryArgs {
    #[command(flatten)]
    pub targets: BuildArgs,
    /// Inventory the builds were applied with (`sync` uses `sync` unless told otherwise).
    #[arg(long, value_name = "NAME", default_value = "sync")]
    pub inventory: String,
    /// Namespace of the inventory ConfigMap.
    #[arg(
        long = "inventory-namespace",
        value_name = "NS",
        default_value = "default"
    )]
    pub inventory_namespace: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub fn run(args: RetryArgs) -> anyhow::Result<Outcome> {
    let builds = args.targets.load()?;
    let mut objects = pipeline::render_builds(&builds)?;
    manifest::sort(&mut objects);
    let rendered = Rendered {
        builds: objects,
        ..Rendered::default()
    };
    let opts = DeployOptions {
        inventory: args.inventory.clone(),
        inventory_namespace: args.inventory_namespace.clone(),
        ..Default::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let kube = Kube::connect(&args.client.settings()).await?;
        let mut prepared = deploy::prepare(&kube, &rendered, &opts).await?;
        let decided = deploy::forget_builds(&kube, &mut prepared).await?;
        let done = deploy::apply(&kube, &prepared, &opts, |_, _| {}).await?;
        let mut out = std::io::stdout().lock();
        for (id, retry) in decided {
            let action = done.iter().find(|(d, _)| *d == id).map(|(_, a)| a);
            let word = match (retry, action) {
                (Retry::Running, _) => "running (not retried)".to_owned(),
                (Retry::Resubmit, Some(Action::Created | Action::Configured)) => {
                    "resubmitted".to_owned()
                }
                (Retry::Resubmit, a) => format!("{}", a.cloned().unwrap_or(Action::Unchanged)),
            };
            writeln!(out, "{id} {word}")?;
        }
        Ok(Outcome::Success)
    })
}
