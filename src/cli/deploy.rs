//! `buildplane diff` and `buildplane apply`: like `kubectl diff` and `kubectl apply
//! --server-side`, for the rendered build plane and builds.

use super::Outcome;
use super::connect::{ClientArgs, InventoryArgs};
use super::flags::FlagError;
use super::render::{RenderInputs, VALUES_HELP};
use crate::core::diff::{self, Change, Summary};
use crate::core::manifest::{self, Manifest, ObjectId};
use crate::core::render::Chart;
use crate::kube::Kube;
use crate::pipeline::{self, deploy};
use clap::{Args, ValueEnum};
use serde_json::Value;
use std::io::{IsTerminal, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffOutput {
    Text,
    Json,
}

/// `apply --dry-run=MODE`, kubectl's three strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DryRun {
    /// Apply.
    None,
    /// Render and validate locally; send no request at all.
    Client,
    /// Ask the server what would happen; change nothing.
    Server,
}

impl DryRun {
    fn flag(self) -> &'static str {
        match self {
            DryRun::None => "--dry-run=none",
            DryRun::Client => "--dry-run=client",
            DryRun::Server => "--dry-run=server",
        }
    }
}

/// `apply -o`: kubectl's forms. Without it: one line per object and a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApplyOutput {
    /// `kind.group/name`, one line per object acted on.
    Name,
    /// The objects, as a YAML stream.
    Yaml,
    /// The objects, as a `v1` `List`.
    Json,
}

impl ApplyOutput {
    fn flag(self) -> &'static str {
        match self {
            ApplyOutput::Name => "-o name",
            ApplyOutput::Yaml => "-o yaml",
            ApplyOutput::Json => "-o json",
        }
    }
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
        let req = self.inputs.request()?;
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
#[command(after_help = VALUES_HELP)]
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
#[command(after_help = VALUES_HELP)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// `server`: the server says what would happen, nothing is changed; `client`: render and
    /// validate locally, send no request at all; `none`: apply. A bare --dry-run is `server`
    /// (as before; kubectl's deprecated bare --dry-run means client).
    #[arg(long = "dry-run", value_enum, value_name = "MODE", num_args = 0..=1,
          require_equals = true, default_value = "none", default_missing_value = "server")]
    pub dry_run: DryRun,
    /// `name`: kubectl's `kind.group/name` per object; `yaml`, `json`: the objects as the
    /// server returned them (without managedFields; with --dry-run=client, as they would be
    /// sent), a YAML stream or a `v1` `List`. Default: one line per object
    /// (`Kind/ns/name created`) and a count.
    #[arg(short = 'o', long = "output", value_enum, value_name = "FORMAT")]
    pub output: Option<ApplyOutput>,
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

impl ApplyArgs {
    /// Combinations that mean nothing, refused before anything is read.
    fn check(&self) -> Result<(), FlagError> {
        let conflict = |first, second, why| FlagError::Conflict { first, second, why };
        if self.wait && self.dry_run != DryRun::None {
            let why = "a dry run submits no build to follow";
            return Err(conflict("--wait", self.dry_run.flag(), why));
        }
        if let (true, Some(o)) = (self.wait, self.output) {
            let why = "--wait prints the builds' progress on stdout";
            return Err(conflict("--wait", o.flag(), why));
        }
        if self.dry_run == DryRun::Client && self.target.inventory.prune {
            let why = "what to prune is read from the cluster's inventory (use --dry-run=server)";
            return Err(conflict("--prune", "--dry-run=client", why));
        }
        Ok(())
    }
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
    args.check()?;
    let rendered = args.target.render()?;
    let mut opts = args.target.options();
    if let Some(t) = args.timeout {
        opts.crd_timeout = t;
    }
    if args.dry_run == DryRun::Client {
        client_dry_run(&rendered, &opts, args.output)?;
        return Ok(Outcome::Success);
    }
    // With --wait, the builds to follow (read again: render keeps objects, not Builds).
    let waited = if args.wait && !args.target.inputs.builds.is_empty() {
        pipeline::load_builds(
            &args.target.inputs.builds,
            Some(args.target.inputs.organization()?),
            None,
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
        if args.dry_run == DryRun::Server {
            let previews = deploy::preview(&kube, &prepared, &opts).await?;
            server_dry_run(&previews, args.output)?;
            return Ok(Outcome::Success);
        }
        let mut out = std::io::stdout().lock();
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        let mut write_err = None;
        let mut objects = Vec::new();
        deploy::apply_observed(&kube, &prepared, &opts, |id, action, after| {
            let word = action.to_string();
            *counts
                .entry(word.split(' ').next().unwrap_or("").to_owned())
                .or_default() += 1;
            let line = match args.output {
                None => format!("{id} {word}\n"),
                Some(ApplyOutput::Name) => super::render::names(std::iter::once(id)),
                Some(ApplyOutput::Yaml | ApplyOutput::Json) => {
                    objects.extend(after.map(|v| shown(id, v)));
                    return;
                }
            };
            if let Err(e) = out.write_all(line.as_bytes()) {
                write_err.get_or_insert(e);
            }
        })
        .await?;
        if let Some(e) = write_err {
            return Err(e.into());
        }
        match args.output {
            None => writeln!(out, "{}", count_line(&counts))?,
            Some(ApplyOutput::Name) => {}
            Some(format) => print_objects(&mut out, format, &objects)?,
        }
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

/// `created 3, configured 1, …` in a fixed order, or that there was nothing to apply.
fn count_line(counts: &std::collections::BTreeMap<String, usize>) -> String {
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
    if line.is_empty() {
        "nothing to apply".to_owned()
    } else {
        line.join(", ")
    }
}

/// An object as printed by `-o yaml|json`: as the server returned it, without managedFields.
fn shown(id: &ObjectId, object: &Value) -> Manifest {
    Manifest {
        id: id.clone(),
        object: manifest::without_managed_fields(object.clone()),
    }
}

fn print_objects(
    out: &mut impl Write,
    format: ApplyOutput,
    objects: &[Manifest],
) -> anyhow::Result<()> {
    let text = match format {
        ApplyOutput::Json => manifest::to_json_list(objects),
        ApplyOutput::Yaml => manifest::to_yaml_stream(objects)?,
        ApplyOutput::Name => super::render::names(objects.iter().map(|m| &m.id)),
    };
    out.write_all(text.as_bytes())?;
    Ok(())
}

/// `--dry-run=server`: what the server answered for each object (see `deploy::preview`).
fn server_dry_run(previews: &[deploy::Preview], output: Option<ApplyOutput>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let Some(format) = output else {
        let mut summary = Summary::default();
        for p in previews {
            summary.add(p.change);
            let word = match p.change {
                Change::Create => "created",
                Change::Update => "configured",
                Change::Unchanged => "unchanged",
                Change::Delete => "pruned",
            };
            writeln!(out, "{} {word} (server dry run)", p.id)?;
        }
        writeln!(out, "{summary} (server dry run)")?;
        return Ok(());
    };
    if format == ApplyOutput::Name {
        // Every object acted on, the pruned ones too, as kubectl lists them.
        let names = super::render::names(previews.iter().map(|p| &p.id));
        out.write_all(names.as_bytes())?;
        return Ok(());
    }
    let objects: Vec<Manifest> = (previews.iter())
        .filter_map(|p| p.object.as_ref().map(|o| shown(&p.id, o)))
        .collect();
    print_objects(&mut out, format, &objects)
}

/// `--dry-run=client`: the objects as apply would send them, from the render alone: no
/// kubeconfig is read and no request is sent.
fn client_dry_run(
    rendered: &pipeline::Rendered,
    opts: &deploy::DeployOptions,
    output: Option<ApplyOutput>,
) -> anyhow::Result<()> {
    let objects = deploy::to_send(rendered, opts);
    let mut out = std::io::stdout().lock();
    match output {
        Some(format) => print_objects(&mut out, format, &objects)?,
        None => {
            for m in &objects {
                writeln!(out, "{} rendered (client dry run)", m.id)?;
            }
            let n = objects.len();
            let s = if n == 1 { "" } else { "s" };
            writeln!(
                out,
                "{n} object{s} rendered and validated, nothing sent (client dry run)"
            )?;
        }
    }
    Ok(())
}
