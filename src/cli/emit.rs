//! The emit flags shared by `watch`, `apply --wait` and `sync`: where Workloads go.

use super::connect::{ClientArgs, parse_duration};
use crate::emit::{self, DEFAULT_MESSAGE, EmitSettings, GitSettings};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// Where Workloads go (shared by watch, apply --wait and sync).
#[derive(Debug, Clone, Args)]
pub struct EmitArgs {
    /// Write each Workload under DIR (atomically).
    #[arg(long = "emit-dir", value_name = "DIR")]
    pub emit_dir: Option<PathBuf>,
    /// Path of a Workload under the directory or repository: {org}, {project}, {component},
    /// {build}.
    #[arg(long = "emit-path", value_name = "TEMPLATE", default_value = emit::DEFAULT_PATH_TEMPLATE)]
    pub emit_path: String,
    /// Commit each Workload into a Git repository (URL or path) and push.
    #[arg(long = "emit-git", value_name = "REPO")]
    pub emit_git: Option<String>,
    /// Branch of --emit-git (created when missing).
    #[arg(long = "emit-branch", value_name = "BRANCH", default_value = "main")]
    pub emit_branch: String,
    /// Author and committer of --emit-git commits.
    #[arg(
        long = "emit-author",
        value_name = "NAME <EMAIL>",
        default_value = "buildplane <buildplane@openchoreo.dev>"
    )]
    pub emit_author: String,
    /// Commit message: {build}, {org}, {project}, {component}, {image}, {commit}.
    #[arg(long = "emit-message", value_name = "TEMPLATE", default_value = DEFAULT_MESSAGE)]
    pub emit_message: String,
    /// How long --emit-git keeps retrying a push that others' pushes reject.
    #[arg(long = "emit-git-timeout", value_name = "DURATION", value_parser = parse_duration, default_value = "2m")]
    pub emit_git_timeout: Duration,
    /// Server-side apply each Workload into the control-plane cluster (field manager
    /// build-controller, forced, in the Build's namespace).
    #[arg(long = "emit-cluster")]
    pub emit_cluster: bool,
    /// Kubeconfig of the control plane (default: the build plane's).
    #[arg(long = "control-plane-kubeconfig", value_name = "FILE")]
    pub control_plane_kubeconfig: Option<PathBuf>,
    /// Context of the control plane.
    #[arg(long = "control-plane-context", value_name = "NAME")]
    pub control_plane_context: Option<String>,
    /// The envelope of every emitted Workload (a minijinja template like
    /// templates/workload.yaml): add labels or annotations; name, namespace, spec and the
    /// provenance stay.
    #[arg(long = "emit-template", value_name = "FILE")]
    pub emit_template: Option<PathBuf>,
}

impl EmitArgs {
    /// The emit targets; the control plane defaults to the build plane's connection.
    pub fn settings(&self, client: &ClientArgs) -> EmitSettings {
        let cluster = self.emit_cluster.then(|| {
            let mut settings = client.settings();
            if let Some(k) = &self.control_plane_kubeconfig {
                settings.kubeconfig = Some(k.clone());
                settings.context = None;
            }
            if let Some(c) = &self.control_plane_context {
                settings.context = Some(c.clone());
            }
            settings
        });
        EmitSettings {
            dir: self.emit_dir.clone(),
            path_template: self.emit_path.clone(),
            git: self.emit_git.as_ref().map(|url| GitSettings {
                url: url.clone(),
                branch: self.emit_branch.clone(),
                author: self.emit_author.clone(),
                message: self.emit_message.clone(),
                deadline: self.emit_git_timeout,
            }),
            cluster,
            template: self.emit_template.clone(),
        }
    }
}
