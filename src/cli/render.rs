//! `buildplane render`: like `helm template`, with no cluster.

use super::Outcome;
use super::flags::FlagError;
use crate::core::manifest::{self, Manifest};
use crate::core::render::Chart;
use crate::core::values::SetKind;
use crate::pipeline::{self, RenderRequest};
use anyhow::Context;
use clap::{ArgAction, Args, ValueEnum};
use std::io::Write;
use std::path::PathBuf;

/// How values reach the bundle, for the `--help` of every command that renders.
pub const VALUES_HELP: &str = "Values, as Helm merges them: the chart's defaults < -f files \
(in order) < --set-json < --set < --set-string < --set-file (Helm's order, whatever the order \
on the command line; a later flag of the same kind wins). Maps merge, scalars and lists \
replace, null deletes a default. -f - and --set-file key=- read stdin (once); files and stdin \
hold at most 4 MiB.";

/// Flags shared by every command that renders (render, diff and apply).
#[derive(Debug, Clone, Args)]
pub struct RenderInputs {
    /// Build files or directories of `kind: Build` documents (multi-document files allowed).
    /// With none, the build-plane bundle is rendered.
    #[arg(value_name = "BUILD")]
    pub builds: Vec<PathBuf>,
    /// Values file; `-` reads stdin (repeatable; later files win).
    #[arg(short = 'f', long = "values", value_name = "FILE", action = ArgAction::Append)]
    pub values: Vec<PathBuf>,
    /// Set a value: a.b=c, list items a[0]=x, lists a={x,y}; typed (true, 1, null).
    #[arg(long = "set", value_name = "EXPR", action = ArgAction::Append)]
    pub set: Vec<String>,
    /// Set a value, always as a string.
    #[arg(long = "set-string", value_name = "EXPR", action = ArgAction::Append)]
    pub set_string: Vec<String>,
    /// Set a value to the content of a file (a string); `key=-` reads stdin.
    #[arg(long = "set-file", value_name = "KEY=PATH", action = ArgAction::Append)]
    pub set_file: Vec<String>,
    /// Set values from JSON: key=<json>[,key2=<json>], or a whole JSON object.
    #[arg(long = "set-json", value_name = "KEY=JSON", action = ArgAction::Append)]
    pub set_json: Vec<String>,
    /// Put the build-plane bundle in front of the build manifests.
    #[arg(long)]
    pub install: bool,
    /// Also render the control plane: the Build, BuildPlane and Workload CRDs and the
    /// controller with its RBAC (alone when no builds and no --install are given).
    #[arg(long = "control-plane")]
    pub control_plane: bool,
    /// Image of the controller's Deployment (with --control-plane).
    #[arg(long = "controller-image", value_name = "IMAGE", default_value = concat!("ghcr.io/openchoreo/buildplane:", env!("CARGO_PKG_VERSION")))]
    pub controller_image: String,
    /// Organization (namespace) of the Builds that name none [default: default]. Applies to
    /// Builds only: the bundle's namespace is the value `namespace` (--set namespace=NS), and
    /// -n without a BUILD is an error.
    #[arg(short = 'n', long = "namespace", value_name = "ORG")]
    pub namespace: Option<String>,
    /// Values buildplane accepts but does not apply (upstream's fluentBit, …) are an error,
    /// not a warning.
    #[arg(long)]
    pub strict: bool,
    /// Per-build templates laid over the built-in ones (`templates/`): each `*.yaml` file of
    /// DIR replaces the template of its name (`prerequisites.yaml`, `workflow.yaml`). The
    /// values' `buildTemplates` are laid over these.
    #[arg(long = "templates", value_name = "DIR")]
    pub templates: Option<PathBuf>,
}

impl RenderInputs {
    /// The pipeline request; `-n` is checked first.
    pub fn request(&self) -> Result<RenderRequest, FlagError> {
        Ok(RenderRequest {
            values_files: self.values.clone(),
            sets: self.sets(),
            builds: self.builds.clone(),
            install: self.install,
            default_namespace: Some(self.organization()?.to_owned()),
            control_plane: self.control_plane.then(|| {
                crate::core::control_plane::ControlPlaneSettings::new(self.controller_image.clone())
            }),
            strict: self.strict,
            templates_dir: self.templates.clone(),
        })
    }

    /// The organization of Builds that name none: `-n` as typed (or refused), else `default`.
    /// `-n` with no BUILD is refused: it would change nothing, and the bundle's namespace is a
    /// value.
    pub fn organization(&self) -> Result<&str, FlagError> {
        let org = super::flags::organization(self.namespace.as_deref())?;
        match &self.namespace {
            Some(given) if self.builds.is_empty() => {
                Err(FlagError::OrganizationWithoutBuilds(given.clone()))
            }
            _ => Ok(org),
        }
    }

    /// The `--set` family, each kind in command-line order (the pipeline applies the kinds in
    /// Helm's order).
    pub fn sets(&self) -> Vec<(SetKind, String)> {
        [
            (SetKind::Json, &self.set_json),
            (SetKind::Typed, &self.set),
            (SetKind::String, &self.set_string),
            (SetKind::File, &self.set_file),
        ]
        .into_iter()
        .flat_map(|(kind, exprs)| exprs.iter().map(move |e| (kind, e.clone())))
        .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A YAML stream, each document starting with `---`.
    Yaml,
    /// A `v1` `List`.
    Json,
    /// kubectl's `kind.group/name`, one line per object.
    Name,
}

#[derive(Debug, Args)]
#[command(after_help = VALUES_HELP)]
pub struct RenderArgs {
    #[command(flatten)]
    pub inputs: RenderInputs,
    /// Output format: a YAML stream, a JSON `v1` `List`, or kubectl's `kind.group/name` lines.
    #[arg(
        short = 'o',
        long = "output",
        value_enum,
        value_name = "FORMAT",
        default_value = "yaml"
    )]
    pub output: OutputFormat,
    /// Write one file per object into DIR (named in apply order) instead of stdout.
    #[arg(long = "out-dir", value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

pub fn run(args: RenderArgs) -> anyhow::Result<Outcome> {
    if args.out_dir.is_some() && args.output == OutputFormat::Name {
        return Err(FlagError::Conflict {
            first: "-o name",
            second: "--out-dir",
            why: "--out-dir writes whole objects (-o yaml or -o json)",
        }
        .into());
    }
    let chart = Chart::builtin();
    let req = args.inputs.request()?;
    if args.out_dir.is_none() && args.output != OutputFormat::Json {
        return streamed(&chart, &req, args.output);
    }
    let rendered = pipeline::render_parts(&chart, &req)?;
    super::warn_not_applicable(&rendered.not_applicable);
    let manifests = rendered.all();
    if let Some(dir) = &args.out_dir {
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
        for (i, m) in manifests.iter().enumerate() {
            let path = dir.join(manifest::file_name(i, &m.id));
            let text = match args.output {
                OutputFormat::Yaml | OutputFormat::Name => manifest::to_yaml(m)?,
                OutputFormat::Json => {
                    let mut s = serde_json::to_string_pretty(&m.object)?;
                    s.push('\n');
                    s
                }
            };
            let path = if args.output == OutputFormat::Json {
                path.with_extension("json")
            } else {
                path
            };
            std::fs::write(&path, text).with_context(|| path.display().to_string())?;
        }
        return Ok(Outcome::Success);
    }
    let text = match args.output {
        OutputFormat::Yaml => manifest::to_yaml_stream(&manifests)?,
        OutputFormat::Json => manifest::to_json_list(&manifests),
        OutputFormat::Name => names(manifests.iter().map(|m| &m.id)),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing the manifests to stdout")?;
    Ok(Outcome::Success)
}

/// YAML or `-o name` on stdout, written as it is rendered (`pipeline::render_streamed`): the
/// same bytes as a whole render, in a fraction of the memory.
fn streamed(
    chart: &Chart,
    req: &pipeline::RenderRequest,
    output: OutputFormat,
) -> anyhow::Result<Outcome> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let warn = |n: &[crate::core::values::NotApplicable]| super::warn_not_applicable(n);
    pipeline::render_streamed(chart, req, warn, |objects: &[Manifest]| {
        let text = match output {
            OutputFormat::Name => names(objects.iter().map(|m| &m.id)),
            _ => manifest::to_yaml_stream(objects)?,
        };
        out.write_all(text.as_bytes())
            .context("writing the manifests to stdout")
    })?;
    out.flush().context("writing the manifests to stdout")?;
    Ok(Outcome::Success)
}

/// kubectl's `-o name` lines (`kind.group/name`).
pub fn names<'a>(ids: impl Iterator<Item = &'a crate::core::manifest::ObjectId>) -> String {
    ids.map(|id| {
        let mut line = crate::core::text::escape_controls(&id.kubectl_name()).into_owned();
        line.push('\n');
        line
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cmd {
        #[command(flatten)]
        inputs: RenderInputs,
    }

    fn inputs(args: &[&str]) -> RenderInputs {
        Cmd::try_parse_from(std::iter::once("bp").chain(args.iter().copied()))
            .unwrap()
            .inputs
    }

    #[test]
    fn the_set_family_goes_to_the_pipeline_by_kind_in_command_line_order() {
        let got = inputs(&[
            "--set-file=f=p",
            "--set",
            "a=1",
            "--set-string=b=2",
            "--set-json",
            "j=1",
            "--set=c=3",
        ])
        .sets();
        let kinds: Vec<(SetKind, &str)> = got.iter().map(|(k, e)| (*k, e.as_str())).collect();
        assert_eq!(
            kinds,
            [
                (SetKind::Json, "j=1"),
                (SetKind::Typed, "a=1"),
                (SetKind::Typed, "c=3"),
                (SetKind::String, "b=2"),
                (SetKind::File, "f=p"),
            ]
        );
    }

    #[test]
    fn namespace_is_for_builds_only() {
        assert_eq!(inputs(&[]).organization(), Ok("default"));
        assert_eq!(inputs(&["b.yaml", "-n", "acme"]).organization(), Ok("acme"));
        assert_eq!(
            inputs(&["-n", "argo"]).organization(),
            Err(FlagError::OrganizationWithoutBuilds("argo".into()))
        );
        assert_eq!(
            inputs(&["--install", "-n", "Bad Org"]).organization(),
            Err(FlagError::Organization("Bad Org".into()))
        );
    }
}
