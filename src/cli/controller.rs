//! `buildplane controller`: reconcile Build custom resources of the control plane onto their
//! build planes until SIGTERM or SIGINT.

use super::Outcome;
use super::connect::{ClientArgs, parse_duration};
use crate::controller::leader::ElectionSettings;
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
    /// Run several replicas: only the one holding the Lease reconciles; the others keep their
    /// caches warm and take over when it stops renewing.
    #[arg(long = "enable-leader-election")]
    pub enable_leader_election: bool,
    /// Reconcile only the Builds and BuildPlanes whose labels match (a Kubernetes label
    /// selector, e.g. `sharding.buildplane.openchoreo.dev/key=a` or
    /// `!sharding.buildplane.openchoreo.dev/key`): several controllers split a fleet, Flux-style.
    #[arg(long = "watch-label-selector", value_name = "SELECTOR")]
    pub watch_label_selector: Option<String>,
    /// The Lease's name [default: buildplane-controller; with --watch-label-selector,
    /// buildplane-controller-<hash of the selector>, so each shard elects its own leader].
    #[arg(long = "leader-election-id", value_name = "NAME")]
    pub leader_election_id: Option<String>,
    /// The Lease's namespace [default: $POD_NAMESPACE, else `default`].
    #[arg(long = "leader-election-namespace", value_name = "NS")]
    pub leader_election_namespace: Option<String>,
    /// How long the others wait, after the last renewal they saw, before taking the Lease.
    #[arg(long = "leader-election-lease-duration", value_name = "DURATION", value_parser = parse_duration, default_value = "15s")]
    pub lease_duration: Duration,
    /// How long the leader keeps leading without renewing; shorter than the lease duration,
    /// so it stops before anyone else may start.
    #[arg(long = "leader-election-renew-deadline", value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub renew_deadline: Duration,
    /// How often candidates try, and the leader renews.
    #[arg(long = "leader-election-retry-period", value_name = "DURATION", value_parser = parse_duration, default_value = "2s")]
    pub retry_period: Duration,
}

/// This process as a Lease holder: `$POD_NAME` (else the host name), the process id and the
/// start time, so a restarted container is a new candidate.
fn identity() -> String {
    let name = std::env::var("POD_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "buildplane".to_owned());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{name}_{}_{started:x}", std::process::id())
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
        watch_label_selector: args.watch_label_selector.clone(),
        election: args.enable_leader_election.then(|| ElectionSettings {
            namespace: args.leader_election_namespace.clone().unwrap_or_else(|| {
                std::env::var("POD_NAMESPACE")
                    .ok()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "default".to_owned())
            }),
            name: args.leader_election_id.clone().unwrap_or_else(|| {
                crate::core::control_plane::lease_name(args.watch_label_selector.as_deref())
            }),
            identity: identity(),
            lease_duration: args.lease_duration,
            renew_deadline: args.renew_deadline,
            retry_period: args.retry_period,
        }),
    };
    if let Some(e) = &settings.election {
        e.check()?;
    }
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
