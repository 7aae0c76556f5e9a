//! `buildplane controller`: reconcile Build custom resources of the control plane onto their
//! build planes until SIGTERM or SIGINT.

use super::Outcome;
use super::connect::{ClientArgs, parse_duration};
use crate::controller::{self, ControllerSettings};
use crate::kube::policy::KubeconfigPolicy;
use crate::serve::{self, Metrics};
use crate::signal::Shutdown;
use clap::Args;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// The control plane's connection (where Builds, BuildPlanes and Workloads live).
    #[command(flatten)]
    pub client: ClientArgs,
    /// Reconciles in flight at once.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub concurrency: u16,
    /// Timeout of each request to a build plane.
    #[arg(long = "build-plane-request-timeout", value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    pub plane_request_timeout: Duration,
    /// Serve /healthz and Prometheus /metrics on this address (off when absent).
    #[arg(long = "metrics-addr", value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Allow `exec` credential plugins in BuildPlane kubeconfig Secrets. The command a Secret
    /// names then runs inside the controller, with its ServiceAccount: allow it only when
    /// whoever writes those Secrets may run code as the controller. Other plugins and file
    /// paths stay refused.
    #[arg(long = "insecure-kubeconfig-exec")]
    pub insecure_kubeconfig_exec: bool,
    /// Allow a BuildPlane to name a kubeconfig Secret in another namespace. The controller reads
    /// Secrets in every namespace: with this, whoever may create a BuildPlane may use any
    /// namespace's kubeconfig Secret.
    #[arg(long = "allow-cross-namespace-refs")]
    pub allow_cross_namespace_refs: bool,
}

pub fn run(args: ControllerArgs) -> anyhow::Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let settings = ControllerSettings {
        control_plane: args.client.settings(),
        concurrency: args.concurrency.max(1),
        plane_request_timeout: args.plane_request_timeout,
        kubeconfig_policy: KubeconfigPolicy {
            allow_exec: args.insecure_kubeconfig_exec,
        },
        allow_cross_namespace_refs: args.allow_cross_namespace_refs,
    };
    let metrics = Arc::new(Metrics::default());
    runtime.block_on(async {
        let shutdown = Shutdown::install()?;
        if let Some(addr) = args.metrics_addr {
            serve::serve(addr, metrics.clone()).await?;
        }
        controller::run(settings, metrics, shutdown.wait()).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(Outcome::Success)
}
