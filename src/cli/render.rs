//! `buildplane render`: like `helm template`, with no cluster.

use super::Outcome;
use crate::core::manifest;
use crate::core::render::Chart;
use crate::core::values::SetKind;
use crate::pipeline::{self, RenderRequest};
use anyhow::Context;
use clap::{ArgAction, Args, ValueEnum};
use std::io::Write;
use std::path::PathBuf;

/// Flags shared by every command that renders (render, and later diff and apply).
#[derive(Debug, Clone, Args)]
pub struct RenderInputs {
    /// Build files or directories of `kind: Build` documents (multi-document files allowed).
    /// With none, the build-plane bundle is rendered.
    #[arg(value_name = "BUILD")]
    pub builds: Vec<PathBuf>,
    /// Values file (repeatable; later files win).
    #[arg(short = 'f', long = "values", value_name = "FILE", action = ArgAction::Append)]
    pub values: Vec<PathBuf>,
    /// Set a value: a.b=c, list items a[0]=x, lists a={x,y}; typed (true, 1, null).
    #[arg(long = "set", value_name = "EXPR", action = ArgAction::Append)]
    pub set: Vec<String>,
    /// Set a value, always as a string.
    #[arg(long = "set-string", value_name = "EXPR", action = ArgAction::Append)]
    pub set_string: Vec<String>,
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
    /// Organization (Build namespace) for Builds that name none.
    #[arg(
        short = 'n',
        long = "namespace",
        value_name = "ORG",
        default_value = "default"
    )]
    pub namespace: String,
    /// Values buildplane accepts but does not apply (upstream's fluentBit, …) are an error,
    /// not a warning.
    #[arg(long)]
    pub strict: bool,
}

impl RenderInputs {
    /// The request for the bundle alone, with these values (what `check` compares with).
    pub fn bundle_request(
        values_files: Vec<PathBuf>,
        sets: Vec<(SetKind, String)>,
    ) -> RenderRequest {
        RenderRequest {
            values_files,
            sets,
            builds: Vec::new(),
            install: true,
            default_namespace: None,
            control_plane: None,
            strict: false,
        }
    }

    /// The pipeline request, with `--set` and `--set-string` in command-line order.
    pub fn request(&self, matches_order: &[(SetKind, String)]) -> RenderRequest {
        RenderRequest {
            values_files: self.values.clone(),
            sets: matches_order.to_vec(),
            builds: self.builds.clone(),
            install: self.install,
            default_namespace: Some(self.namespace.clone()),
            control_plane: self.control_plane.then(|| {
                crate::core::control_plane::ControlPlaneSettings {
                    image: self.controller_image.clone(),
                }
            }),
            strict: self.strict,
        }
    }

    /// `--set` and `--set-string` in the order they were given on the command line.
    pub fn sets_in_order(&self) -> Vec<(SetKind, String)> {
        let argv: Vec<String> = std::env::args().collect();
        order_sets(&argv, &self.set, &self.set_string)
    }
}

/// Interleaves `--set` and `--set-string` values by their position in `argv` (clap keeps each
/// flag's values apart; Helm applies them in command-line order).
pub fn order_sets(
    argv: &[String],
    set: &[String],
    set_string: &[String],
) -> Vec<(SetKind, String)> {
    let mut typed = set.iter();
    let mut strings = set_string.iter();
    let mut out = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        let a = &argv[i];
        let (kind, inline) = if a == "--set" {
            (SetKind::Typed, None)
        } else if a == "--set-string" {
            (SetKind::String, None)
        } else if let Some(v) = a.strip_prefix("--set=") {
            (SetKind::Typed, Some(v))
        } else if let Some(v) = a.strip_prefix("--set-string=") {
            (SetKind::String, Some(v))
        } else {
            i += 1;
            continue;
        };
        if inline.is_none() {
            i += 1;
        }
        let next = match kind {
            SetKind::Typed => typed.next(),
            SetKind::String => strings.next(),
        };
        if let Some(v) = next {
            out.push((kind, v.clone()));
        }
        i += 1;
    }
    // Anything clap saw that the scan missed keeps its own relative order at the end.
    out.extend(typed.map(|v| (SetKind::Typed, v.clone())));
    out.extend(strings.map(|v| (SetKind::String, v.clone())));
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Yaml,
    Json,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub inputs: RenderInputs,
    /// Output format: a YAML stream, or a JSON `List`.
    #[arg(short = 'o', long = "output", value_enum, default_value = "yaml")]
    pub output: OutputFormat,
    /// Write one file per object into DIR (named in apply order) instead of stdout.
    #[arg(long = "out-dir", value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

pub fn run(args: RenderArgs) -> anyhow::Result<Outcome> {
    let chart = Chart::builtin();
    let req = args.inputs.request(&args.inputs.sets_in_order());
    let rendered = pipeline::render_parts(&chart, &req)?;
    super::warn_not_applicable(&rendered.not_applicable);
    let manifests = rendered.all();
    if let Some(dir) = &args.out_dir {
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
        for (i, m) in manifests.iter().enumerate() {
            let path = dir.join(manifest::file_name(i, &m.id));
            let text = match args.output {
                OutputFormat::Yaml => manifest::to_yaml(m)?,
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
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing the manifests to stdout")?;
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_keep_command_line_order() {
        let argv: Vec<String> = [
            "bp",
            "render",
            "--set",
            "a=1",
            "--set-string=b=2",
            "--set=c=3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let got = order_sets(&argv, &["a=1".into(), "c=3".into()], &["b=2".into()]);
        assert_eq!(
            got,
            vec![
                (SetKind::Typed, "a=1".to_string()),
                (SetKind::String, "b=2".to_string()),
                (SetKind::Typed, "c=3".to_string())
            ]
        );
    }
}
