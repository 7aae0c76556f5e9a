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
            counts: None,
        }
    }
}

/// The builds `retry` acts on: files or directories of Build documents (it applies them, so a
/// name alone would not do).
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
        Ok(crate::pipeline::load_builds(&self.builds, Some(org), None)?)
    }
}

/// The builds `watch` and `logs` act on: Build files or directories, or builds on the build
/// plane named `ORG/BUILD` (as the Argo CLI names workflows).
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Build files or directories, or ORG/BUILD: a build on the build plane, found by its labels
    /// (an argument that exists as a path is always a file).
    #[arg(value_name = "BUILD", required = true)]
    pub builds: Vec<PathBuf>,
    /// Organization of Builds in files that name none.
    #[arg(
        short = 'n',
        long = "namespace",
        value_name = "ORG",
        default_value = super::flags::DEFAULT_ORGANIZATION
    )]
    pub namespace: String,
}

/// What one argument names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildArg {
    /// A file or directory of Build documents.
    File(PathBuf),
    /// A build on the build plane.
    Name(crate::core::builds::BuildRef),
}

/// An argument that exists as a path (even a dangling link) is a file, as it always was; one
/// that does not and reads `ORG/BUILD` is a name; anything else is a file, whose error says it
/// does not exist.
pub fn classify(arg: &std::path::Path) -> BuildArg {
    if std::fs::symlink_metadata(arg).is_ok() {
        return BuildArg::File(arg.to_path_buf());
    }
    match arg
        .to_str()
        .and_then(|s| crate::core::builds::BuildRef::parse(s).ok())
    {
        Some(name) => BuildArg::Name(name),
        None => BuildArg::File(arg.to_path_buf()),
    }
}

impl TargetArgs {
    /// The Builds of the files (validated: bad input stops here, before any request) and the
    /// names, each once, in the order given; `-n` is checked first.
    pub fn split(
        &self,
    ) -> anyhow::Result<(
        Vec<crate::pipeline::LoadedBuild>,
        Vec<crate::core::builds::BuildRef>,
    )> {
        let org = super::flags::organization(Some(&self.namespace))?;
        let mut files = Vec::new();
        let mut names = Vec::new();
        for arg in &self.builds {
            match classify(arg) {
                BuildArg::File(f) => files.push(f),
                BuildArg::Name(n) if !names.contains(&n) => names.push(n),
                BuildArg::Name(_) => {}
            }
        }
        let builds = if files.is_empty() {
            Vec::new()
        } else {
            crate::pipeline::load_builds(&files, Some(org), None)?
        };
        Ok((builds, names))
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
    fn an_existing_path_is_a_file_and_org_slash_build_otherwise_a_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("acme");
        std::fs::create_dir(&file).unwrap();
        std::fs::write(file.join("b"), "").unwrap();
        let existing = file.join("b");
        assert_eq!(classify(&existing), BuildArg::File(existing.clone()));
        let name = classify(std::path::Path::new("acme-x/greeter-build"));
        assert!(
            matches!(&name, BuildArg::Name(n) if n.to_string() == "acme-x/greeter-build"),
            "{name:?}"
        );
        // Neither a path nor ORG/BUILD: a file, so the error stays "No such file".
        for arg in ["missing.yaml", "Acme/x", "a/b/c"] {
            let p = std::path::Path::new(arg);
            assert_eq!(classify(p), BuildArg::File(p.to_path_buf()), "{arg}");
        }
        // A dangling link is a path.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &link).unwrap();
        assert_eq!(classify(&link), BuildArg::File(link.clone()));
    }

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
