//! Connection flags shared by every command that talks to a cluster, as kubectl spells them.

use crate::kube::ClientSettings;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// Parses durations written like `90s`, `10m`, `1h30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration like 90s or 10m ({e})"))
}

#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Timeout of each request, e.g. 30s.
    #[arg(long = "request-timeout", value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    pub request_timeout: Duration,
}

impl ClientArgs {
    pub fn settings(&self) -> ClientSettings {
        ClientSettings {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            request_timeout: Some(self.request_timeout),
        }
    }
}

/// The builds a command acts on (logs, watch): files or directories of Build documents.
#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// Build files or directories.
    #[arg(value_name = "BUILD", required = true)]
    pub builds: Vec<PathBuf>,
    /// Organization (namespace) of the Builds that name none.
    #[arg(
        short = 'n',
        long = "namespace",
        value_name = "ORG",
        default_value = super::flags::DEFAULT_ORGANIZATION
    )]
    pub namespace: String,
}

impl BuildArgs {
    /// The Builds, read and validated; `-n` is checked first.
    pub fn load(&self) -> anyhow::Result<Vec<crate::pipeline::LoadedBuild>> {
        let org = super::flags::organization(Some(&self.namespace))?;
        Ok(crate::pipeline::load_builds(&self.builds, Some(org))?)
    }
}

/// Inventory flags shared by diff and apply.
#[derive(Debug, Clone, Args)]
pub struct InventoryArgs {
    /// Inventory of the build objects (the bundle's is always `build-plane`).
    #[arg(long, value_name = "NAME", default_value = crate::core::plan::BUILDS_INVENTORY)]
    pub inventory: String,
    /// Namespace of the inventory ConfigMaps (`buildplane-inventory-<name>`).
    #[arg(
        long = "inventory-namespace",
        value_name = "NS",
        default_value = "default"
    )]
    pub inventory_namespace: String,
    /// Delete (apply) or show (diff) objects recorded earlier and no longer rendered.
    #[arg(long)]
    pub prune: bool,
    /// Requests in flight at once.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub concurrency: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert!(
            parse_duration("ten")
                .unwrap_err()
                .contains("not a duration")
        );
    }
}
