//! What installing the binary needs: `version` (with the commit and date it was built from),
//! `completion SHELL` and `man`, all generated from the one command definition.

use super::{Cli, Outcome};
use clap::{Args, CommandFactory, ValueEnum};
use std::io::Write as _;
use std::path::PathBuf;

/// The commit the binary was built from (`unknown` outside a Git checkout).
pub const COMMIT: &str = env!("BUILDPLANE_COMMIT");
/// When it was built (UTC, RFC 3339; `SOURCE_DATE_EPOCH` when set, for reproducible builds).
pub const BUILD_DATE: &str = env!("BUILDPLANE_BUILD_DATE");

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VersionFormat {
    Text,
    Json,
    Yaml,
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    pub output: VersionFormat,
}

/// The version, commit and build date as one object.
pub fn version_info() -> serde_json::Value {
    serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "commit": COMMIT,
        "buildDate": BUILD_DATE,
        "target": format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
    })
}

pub fn run_version(args: VersionArgs) -> anyhow::Result<Outcome> {
    let info = version_info();
    let text = match args.output {
        VersionFormat::Text => format!(
            "buildplane {} (commit {}, built {}, {})\n",
            info["version"].as_str().unwrap_or_default(),
            COMMIT,
            BUILD_DATE,
            info["target"].as_str().unwrap_or_default()
        ),
        VersionFormat::Json => format!("{}\n", serde_json::to_string_pretty(&info)?),
        VersionFormat::Yaml => serde_saphyr::to_string(&info)?,
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(Outcome::Success)
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell, e.g. `source <(buildplane completion bash)`.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub fn run_completion(args: CompletionArgs) -> anyhow::Result<Outcome> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "buildplane", &mut out);
    out.flush()?;
    Ok(Outcome::Success)
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write `buildplane.1` and one page per subcommand (`buildplane-apply.1`, …) into DIR
    /// instead of `buildplane.1` to stdout.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn run_man(args: ManArgs) -> anyhow::Result<Outcome> {
    let cmd = Cli::command();
    match args.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| anyhow::anyhow!("--dir {}: {e}", dir.display()))?;
            clap_mangen::generate_to(cmd, &dir)
                .map_err(|e| anyhow::anyhow!("--dir {}: {e}", dir.display()))?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(cmd).render(&mut out)?;
            out.flush()?;
        }
    }
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_names_a_commit_and_a_date() {
        let info = version_info();
        assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
        assert!(
            COMMIT == "unknown"
                || (COMMIT.len() == 12 && COMMIT.chars().all(|c| c.is_ascii_hexdigit())),
            "{COMMIT}"
        );
        assert!(humantime::parse_rfc3339(BUILD_DATE).is_ok(), "{BUILD_DATE}");
    }
}
