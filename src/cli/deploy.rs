//! `buildplane diff` and `buildplane apply`: like `kubectl diff` and `kubectl apply
//! --server-side`, for the rendered build plane and builds.

use super::Outcome;
use super::connect::{ClientArgs, InventoryArgs};
use super::render::RenderInputs;
use crate::core::diff::{self, Change};
use crate::core::render::Chart;
use crate::kube::Kube;
use crate::pipeline::{self, deploy};
use clap::{Args, ValueEnum};
use std::io::{IsTerminal, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffOutput {
    Text,
    Json,
}

/// What diff and apply both take: the render inputs, the cluster, the inventory.
#[derive(Debug, Args)]
pub struct TargetArgs {
    #[command(flatten)]
    pub inputs: RenderInputs,
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Take over fields other managers own.
    #[arg(long = "force-conflicts")]
    pub force_conflicts: bool,
}

impl TargetArgs {
    fn render(&self) -> anyhow::Result<pipeline::Rendered> {
        // Everything is rendered and validated before the first request.
        let req = self.inputs.request(&self.inputs.sets_in_order());
        let rendered = pipeline::render_parts(&Chart::builtin(), &req)?;
        super::warn_not_applicable(&rendered.not_applicable);
        Ok(rendered)
    }

    fn options(&self) -> deploy::DeployOptions {
        deploy::DeployOptions {
            inventory: self.inventory.inventory.clone(),
            inventory_namespace: self.inventory.inventory_namespace.clone(),
            prune: self.inventory.prune,
            force_conflicts: self.force_conflicts,
            concurrency: self.inventory.concurrency.max(1),
            ..Default::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Text (a unified diff per object and a summary) or a JSON plan.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    pub output: DiffOutput,
    /// No colours (also when NO_COLOR is set, or stdout is not a terminal).
    #[arg(long = "no-color")]
    pub no_color: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Ask the server what would happen; change nothing.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// After applying, follow the builds to the end like `watch` (exit 1 if any failed).
    #[arg(long)]
    pub wait: bool,
    /// How long to wait: for CRDs to be Established (default 60s) and, with --wait, for the
    /// builds (default: no limit).
    #[arg(long = "timeout", value_name = "DURATION", value_parser = super::connect::parse_duration)]
    pub timeout: Option<std::time::Duration>,
    #[command(flatten)]
    pub emit: super::watch::EmitArgs,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub fn run_diff(args: DiffArgs) -> anyhow::Result<Outcome> {
    let rendered = args.target.render()?;
    let opts = args.target.options();
    let color = diff::use_color(
        args.no_color,
        std::env::var_os("NO_COLOR").as_deref(),
        std::io::stdout().is_terminal(),
    );
    let (entries, summary) = runtime()?.block_on(async {
        let kube = Kube::connect(&args.target.client.settings()).await?;
        let prepared = deploy::prepare(&kube, &rendered, &opts).await?;
        Ok::<_, anyhow::Error>(deploy::diff(&kube, &prepared, &opts, color).await?)
    })?;
    let mut out = std::io::stdout().lock();
    match args.output {
        DiffOutput::Json => {
            let plan: Vec<_> = entries.iter().map(|(e, _)| e.clone()).collect();
            let mut text = serde_json::to_string_pretty(&diff::plan_json(&plan, &summary))?;
            text.push('\n');
            out.write_all(text.as_bytes())?;
        }
        DiffOutput::Text => {
            for (entry, shown) in &entries {
                if entry.change != Change::Unchanged {
                    out.write_all(shown.as_bytes())?;
                }
            }
            writeln!(out, "{summary}")?;
        }
    }
    Ok(if summary.has_differences() {
        Outcome::Differences
    } else {
        Outcome::Success
    })
}

pub fn run_apply(args: ApplyArgs) -> anyhow::Result<Outcome> {
    let rendered = args.target.render()?;
    let mut opts = args.target.options();
    if let Some(t) = args.timeout {
        opts.crd_timeout = t;
    }
    let dry_run = args.dry_run;
    // With --wait, the builds to follow (read again: render keeps objects, not Builds).
    let waited = if args.wait && !dry_run && !args.target.inputs.builds.is_empty() {
        pipeline::load_builds(
            &args.target.inputs.builds,
            Some(&args.target.inputs.namespace),
        )?
    } else {
        Vec::new()
    };
    if !waited.is_empty() {
        args.emit.settings(&args.target.client).check()?;
    }
    runtime()?.block_on(async {
        let kube = Kube::connect(&args.target.client.settings()).await?;
        let prepared = deploy::prepare(&kube, &rendered, &opts).await?;
        let mut out = std::io::stdout().lock();
        if dry_run {
            let (entries, summary) = deploy::diff(&kube, &prepared, &opts, false).await?;
            for (e, _) in &entries {
                let word = match e.change {
                    Change::Create => "created",
                    Change::Update => "configured",
                    Change::Unchanged => "unchanged",
                    Change::Delete => "pruned",
                };
                writeln!(out, "{} {word} (server dry run)", e.id)?;
            }
            writeln!(out, "{summary} (server dry run)")?;
            return Ok(Outcome::Success);
        }
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        let mut write_err = None;
        deploy::apply(&kube, &prepared, &opts, |id, action| {
            let word = action.to_string();
            *counts
                .entry(word.split(' ').next().unwrap_or("").to_owned())
                .or_default() += 1;
            if let Err(e) = writeln!(out, "{id} {word}") {
                write_err.get_or_insert(e);
            }
        })
        .await?;
        if let Some(e) = write_err {
            return Err(e.into());
        }
        let line: Vec<String> = [
            "created",
            "configured",
            "unchanged",
            "pruned",
            "kept",
            "skipped",
        ]
        .iter()
        .filter_map(|w| counts.get(*w).map(|n| format!("{n} {w}")))
        .collect();
        writeln!(
            out,
            "{}",
            if line.is_empty() {
                "nothing to apply".to_owned()
            } else {
                line.join(", ")
            }
        )?;
        drop(out);
        if waited.is_empty() {
            return Ok(Outcome::Success);
        }
        let targets = waited
            .iter()
            .map(crate::lifecycle::Target::of)
            .collect::<Result<Vec<_>, _>>()?;
        let failed = super::watch::follow(
            &kube,
            &args.target.client,
            &args.emit,
            targets,
            args.timeout,
            false,
        )
        .await?;
        Ok(if failed > 0 {
            Outcome::Differences
        } else {
            Outcome::Success
        })
    })
}
