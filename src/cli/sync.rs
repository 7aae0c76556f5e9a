//! `buildplane sync`: the GitOps loop's flags, resolved into `SyncSettings` before anything is
//! read or contacted.

use super::Outcome;
use super::connect::{ClientArgs, parse_duration};
use super::watch::EmitArgs;
use crate::pipeline::deploy::DeployOptions;
use crate::sync::{SourceSettings, SyncSettings};
use clap::{ArgGroup, Args};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A flag's value is unusable (exit code 2, nothing read or contacted).
#[derive(Debug, thiserror::Error)]
pub enum SyncArgsError {
    /// `--path` must stay inside the repository.
    #[error("--path {0:?}: expected a relative directory inside the repository, without '..'")]
    Path(String),
    /// A flag of the Git source was given with --dir.
    #[error("{0} needs --repo (it means nothing for --dir)")]
    GitOnly(&'static str),
    /// A zero interval would fetch in a busy loop.
    #[error("--interval must be longer than 0s")]
    Interval,
    /// `-n` is not a valid organization.
    #[error(transparent)]
    Flag(#[from] super::flags::FlagError),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["repo", "dir"])))]
pub struct SyncArgs {
    /// Git repository to read Build specs from (any URL git understands, or a path).
    #[arg(long, value_name = "URL|PATH")]
    pub repo: Option<String>,
    /// Local directory to read Build specs from, watched for changes.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Branch of --repo [default: main].
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,
    /// Directory inside --repo holding the Build files (default: the repository root).
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// How often --repo is fetched; how soon a failed round is tried again.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    pub interval: Duration,
    /// Bare clone cache of --repo (default: a temporary directory).
    #[arg(long = "cache-dir", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Organization (namespace) of the Builds that name none.
    #[arg(
        short = 'n',
        long = "namespace",
        value_name = "ORG",
        default_value = super::flags::DEFAULT_ORGANIZATION
    )]
    pub namespace: String,
    /// Inventory of the synced build objects.
    #[arg(long, value_name = "NAME", default_value = "sync")]
    pub inventory: String,
    /// Namespace of the inventory ConfigMap.
    #[arg(
        long = "inventory-namespace",
        value_name = "NS",
        default_value = "default"
    )]
    pub inventory_namespace: String,
    /// Delete the objects of specs removed from the source (a running build is never stopped
    /// by a removed spec without it).
    #[arg(long)]
    pub prune: bool,
    /// Requests in flight at once.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub concurrency: usize,
    /// Serve /healthz and /metrics on this address, e.g. 127.0.0.1:9090 (default: off).
    #[arg(long = "metrics-addr", value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// How long in-flight emits may take after SIGTERM/SIGINT.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    pub grace: Duration,
    #[command(flatten)]
    pub emit: EmitArgs,
    #[command(flatten)]
    pub client: ClientArgs,
}

impl SyncArgs {
    /// The loop's settings; every flag is checked here, before any read.
    pub fn settings(&self) -> Result<SyncSettings, SyncArgsError> {
        if self.interval.is_zero() {
            return Err(SyncArgsError::Interval);
        }
        let source = match (&self.repo, &self.dir) {
            (Some(url), _) => {
                let path = match self.path.as_deref().map(|p| p.trim_matches('/')) {
                    Some(p) if p.split('/').any(|c| c == ".." || c.is_empty()) => {
                        return Err(SyncArgsError::Path(p.to_owned()));
                    }
                    Some(p) if p.is_empty() || p == "." => None,
                    other => other.map(str::to_owned),
                };
                SourceSettings::Git {
                    url: url.clone(),
                    branch: self.branch.clone().unwrap_or_else(|| "main".to_owned()),
                    path,
                    cache_dir: self.cache_dir.clone(),
                }
            }
            (None, Some(dir)) => {
                for (given, flag) in [
                    (self.branch.is_some(), "--branch"),
                    (self.path.is_some(), "--path"),
                    (self.cache_dir.is_some(), "--cache-dir"),
                ] {
                    if given {
                        return Err(SyncArgsError::GitOnly(flag));
                    }
                }
                SourceSettings::Dir { dir: dir.clone() }
            }
            (None, None) => unreachable!("clap requires --repo or --dir"),
        };
        Ok(SyncSettings {
            source,
            interval: self.interval,
            debounce: Duration::from_millis(500),
            default_namespace: super::flags::organization(Some(&self.namespace))?.to_owned(),
            deploy: DeployOptions {
                inventory: self.inventory.clone(),
                inventory_namespace: self.inventory_namespace.clone(),
                prune: self.prune,
                concurrency: self.concurrency.max(1),
                ..Default::default()
            },
            emit: self.emit.settings(&self.client),
            client: self.client.settings(),
            metrics_addr: self.metrics_addr,
            grace: self.grace,
        })
    }
}

pub fn run(args: SyncArgs) -> anyhow::Result<Outcome> {
    let settings = args.settings()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(crate::sync::run(settings));
    // The loop has drained within --grace; a read or push still running on a blocking thread
    // is not waited for (a restart reads and pushes again).
    runtime.shutdown_background();
    result?;
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SyncArgs,
    }

    fn parse(args: &[&str]) -> Result<SyncArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("sync").chain(args.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn exactly_one_source() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["--repo", "x", "--dir", "y"]).is_err());
        let e = parse(&["--dir", "y", "--branch", "dev"])
            .unwrap()
            .settings();
        assert!(matches!(e, Err(SyncArgsError::GitOnly("--branch"))));
        assert!(parse(&["--dir", "y"]).is_ok());
    }

    #[test]
    fn paths_stay_inside_the_repository() {
        let s = parse(&["--repo", "x", "--path", "/builds/"])
            .unwrap()
            .settings()
            .unwrap();
        assert!(matches!(s.source, SourceSettings::Git { path: Some(p), .. } if p == "builds"));
        for bad in ["../x", "a/../b", "a//b"] {
            let e = parse(&["--repo", "x", "--path", bad])
                .unwrap()
                .settings()
                .unwrap_err();
            assert!(matches!(e, SyncArgsError::Path(_)), "{bad}");
        }
        let e = parse(&["--repo", "x", "--interval", "0s"])
            .unwrap()
            .settings()
            .unwrap_err();
        assert!(matches!(e, SyncArgsError::Interval));
    }
}
