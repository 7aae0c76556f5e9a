//! `buildplane check`: the preflight's flags and its report, one line per finding.

use super::Outcome;
use super::connect::ClientArgs;
use super::render::RenderInputs;
use crate::core::render::Chart;
use crate::kube::Kube;
use crate::pipeline;
use crate::pipeline::check::{self, Expected, Finding, Status};
use clap::{ArgAction, Args, ValueEnum};
use std::io::Write as _;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckOutput {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Values the bundle was installed with (repeatable; later files win).
    #[arg(short = 'f', long = "values", value_name = "FILE", action = ArgAction::Append)]
    pub values: Vec<PathBuf>,
    /// Set a value as at install: a.b=c, list items a[0]=x, lists a={x,y}.
    #[arg(long = "set", value_name = "EXPR", action = ArgAction::Append)]
    pub set: Vec<String>,
    /// Set a value as at install, always as a string.
    #[arg(long = "set-string", value_name = "EXPR", action = ArgAction::Append)]
    pub set_string: Vec<String>,
    /// Set a value to the content of a file, as at install.
    #[arg(long = "set-file", value_name = "KEY=PATH", action = ArgAction::Append)]
    pub set_file: Vec<String>,
    /// Set values from JSON, as at install.
    #[arg(long = "set-json", value_name = "KEY=JSON", action = ArgAction::Append)]
    pub set_json: Vec<String>,
    /// Values buildplane accepts but does not apply are an error, not a warning.
    #[arg(long)]
    pub strict: bool,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    pub output: CheckOutput,
    #[command(flatten)]
    pub client: ClientArgs,
}

impl CheckArgs {
    /// The bundle alone, with these values, read in Helm's order as `render --install` reads them.
    fn inputs(&self) -> RenderInputs {
        RenderInputs {
            builds: Vec::new(),
            values: self.values.clone(),
            set: self.set.clone(),
            set_string: self.set_string.clone(),
            set_file: self.set_file.clone(),
            set_json: self.set_json.clone(),
            install: true,
            control_plane: false,
            controller_image: String::new(),
            namespace: None,
            strict: self.strict,
            templates: None,
        }
    }
}

/// Text: `STATUS  CHECK  message`, then a count.
fn text(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        out.push_str(&format!(
            "{:<4}  {:<16}  {}\n",
            f.status, f.check, f.message
        ));
    }
    let count = |s: Status| findings.iter().filter(|f| f.status == s).count();
    out.push_str(&format!(
        "{} ok, {} warnings, {} failed\n",
        count(Status::Ok),
        count(Status::Warn),
        count(Status::Fail)
    ));
    out
}

/// Exit code 0 when nothing failed (warnings allowed), 1 when a check failed; errors (bad
/// values, an unreachable API server) are 2 as everywhere.
pub fn run(args: CheckArgs) -> anyhow::Result<Outcome> {
    let chart = Chart::builtin();
    let req = args.inputs().request()?;
    // The values and the bundle are checked before the first request.
    let values = pipeline::merged_values(&chart, &req)?.values;
    let rendered = pipeline::render_parts(&chart, &req)?;
    super::warn_not_applicable(&rendered.not_applicable);
    let bundle = rendered.bundle;
    let findings = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let kube = Kube::connect(&args.client.settings()).await?;
            let expected = Expected {
                bundle: &bundle,
                values: &values,
            };
            Ok::<_, anyhow::Error>(check::check(&kube, &expected).await?)
        })?;
    let shown = match args.output {
        CheckOutput::Json => {
            let v = serde_json::json!({"findings": findings});
            format!("{}\n", serde_json::to_string_pretty(&v)?)
        }
        CheckOutput::Text => text(&findings),
    };
    // Messages hold names read from the cluster: no control sequence reaches the terminal.
    let shown = crate::core::text::escape_controls_keep_lines(&shown).into_owned();
    std::io::stdout().lock().write_all(shown.as_bytes())?;
    Ok(if findings.iter().any(|f| f.status == Status::Fail) {
        Outcome::Differences
    } else {
        Outcome::Success
    })
}
