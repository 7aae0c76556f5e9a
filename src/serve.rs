//! The health and metrics endpoint of the long-running commands (`sync`, `controller`):
//! `/healthz` answers `ok` while the process runs, `/readyz` `ok` once it can work (503
//! before), `/metrics` serves the registry in the
//! Prometheus text format. HTTP/1 only, no TLS: it is meant for a loopback or a pod port.

use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

type Body = http_body_util::Full<Bytes>;

/// The endpoint could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address is taken or not ours to bind.
    #[error("--metrics-addr {addr}: cannot listen")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The labels of a finished build: `result` (`succeeded`, `failed`), `reason` (the outcome's
/// verdict: `succeeded`, `build-failed`, `no-workload`, `invalid-workload`, `emit-failed`,
/// `workload-conflict`) and `plane` (the BuildPlane `namespace/name`; empty for `sync`). Every
/// value comes from a bounded set: the verdicts, and the BuildPlanes that exist.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FinishedLabels {
    pub result: &'static str,
    pub reason: &'static str,
    pub plane: String,
}

/// The labels of the HTTP requests a process sent: `cluster` (`control-plane`, `build-plane`:
/// every build plane's client together) and `kind` (`read`, `write` other than an Event,
/// `event`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    pub cluster: &'static str,
    pub kind: &'static str,
}

/// The label of a failed reconcile: its condition reason (controller) or its kind (sync).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

/// The counters and histograms a build loop keeps, registered under `buildplane_`.
pub struct Metrics {
    pub registry: Registry,
    pub builds_started: Counter,
    pub builds_succeeded: Counter,
    pub builds_failed: Counter,
    /// Every finished build, by result, reason and plane.
    pub builds_finished: Family<FinishedLabels, Counter>,
    pub reconcile_errors: Counter,
    /// The failed reconciles by reason.
    pub reconcile_errors_by_reason: Family<ReasonLabel, Counter>,
    /// Builds whose Workload was not emitted because a target holds another component's.
    pub workload_conflicts: Counter,
    /// Seconds from a Workflow seen completed to its Workload emitted.
    pub emit_latency: Histogram,
    /// Seconds each reconcile of a Build took (controller).
    pub reconcile_duration: Histogram,
    /// Reconciles running now (controller): at most `--concurrency`.
    pub reconciles_in_flight: Gauge,
    /// Builds a change triggered that no reconcile has started on yet (controller).
    pub queue_depth: Gauge,
    /// HTTP requests sent to API servers, by cluster and kind (controller).
    pub api_requests: Family<ApiLabels, Counter>,
    /// 1 while this process leads (reconciles), 0 while it stands by.
    pub leader: Gauge,
    /// What `/readyz` answers: set once the process can do its work (the controller: its
    /// caches listed, whether it leads or stands by).
    pub ready: std::sync::atomic::AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        // The standard process metrics, unprefixed, as every Prometheus client names them.
        registry.register_collector(Box::new(ProcessCollector));
        let r = registry.sub_registry_with_prefix("buildplane");
        let m = Metrics {
            builds_started: Counter::default(),
            builds_succeeded: Counter::default(),
            builds_failed: Counter::default(),
            builds_finished: Family::default(),
            reconcile_errors: Counter::default(),
            reconcile_errors_by_reason: Family::default(),
            workload_conflicts: Counter::default(),
            // 1 ms … ~33 s: a directory write is milliseconds, a contended Git push seconds.
            emit_latency: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            // 1 ms … ~33 s: a reconcile is a few requests, a slow plane up to its timeout.
            reconcile_duration: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            reconciles_in_flight: Gauge::default(),
            queue_depth: Gauge::default(),
            api_requests: Family::default(),
            leader: Gauge::default(),
            ready: Default::default(),
            registry: Registry::default(),
        };
        r.register(
            "builds_started",
            "Workflows submitted",
            m.builds_started.clone(),
        );
        r.register(
            "builds_succeeded",
            "Builds that succeeded with a valid Workload that every emit target took",
            m.builds_succeeded.clone(),
        );
        r.register(
            "builds_failed",
            "Builds that failed, produced no valid Workload, or whose Workload a target refused",
            m.builds_failed.clone(),
        );
        r.register(
            "builds_finished",
            "Finished builds by result (succeeded, failed), reason (the outcome's verdict) and \
             plane (the BuildPlane; empty for sync)",
            m.builds_finished.clone(),
        );
        r.register(
            "reconcile_errors",
            "Rounds that could not read, render or apply",
            m.reconcile_errors.clone(),
        );
        r.register(
            "reconcile_errors_by_reason",
            "Rounds that could not read, render or apply, by reason (the condition's reason, or \
             the kind of failure for sync)",
            m.reconcile_errors_by_reason.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "Time each reconcile of a Build took (controller)",
            m.reconcile_duration.clone(),
        );
        r.register(
            "reconciles_in_flight",
            "Reconciles running now (controller; at most --concurrency)",
            m.reconciles_in_flight.clone(),
        );
        r.register(
            "reconcile_queue_depth",
            "Builds a change triggered (the Build, its BuildPlane or its build object) that no \
             reconcile has started on yet (controller; a delayed retry counts once it starts)",
            m.queue_depth.clone(),
        );
        r.register(
            "api_requests",
            "HTTP requests sent to API servers (controller), counted at the wire, by cluster \
             (control-plane, build-plane) and kind (read, write, event: a write that publishes \
             an Event)",
            m.api_requests.clone(),
        );
        r.register(
            "leader",
            "1 while this process reconciles (leads), 0 while it stands by",
            m.leader.clone(),
        );
        r.register(
            "workload_conflicts",
            "Builds whose Workload was not emitted: a target holds another component's Workload \
             of that name (also counted in builds_failed)",
            m.workload_conflicts.clone(),
        );
        r.register(
            "emit_latency_seconds",
            "Time from a Workflow seen completed to its Workload emitted",
            m.emit_latency.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// Counters for the requests of the clients of `cluster` (`control-plane`, `build-plane`).
    pub fn api_counts(&self, cluster: &'static str) -> crate::kube::count::Counts {
        let counter = |kind| {
            self.api_requests
                .get_or_create(&ApiLabels { cluster, kind })
                .clone()
        };
        crate::kube::count::Counts::into_counters(
            counter("read"),
            counter("write"),
            counter("event"),
        )
    }

    /// The registry in the text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Records one emit's latency.
    pub fn observe_emit(&self, latency: Duration) {
        self.emit_latency.observe(latency.as_secs_f64());
    }

    /// Counts a failed reconcile, by `reason`.
    pub fn reconcile_error(&self, reason: &str) {
        self.reconcile_errors.inc();
        self.reconcile_errors_by_reason
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts a finished build by its one verdict, on `plane` (`""` when there is none);
    /// `emit_latency` is recorded when there was a Workload to emit (time from the build seen
    /// finished to its emits done).
    pub fn finished(
        &self,
        outcome: &crate::lifecycle::BuildOutcome,
        emit_latency: Duration,
        plane: &str,
    ) {
        if outcome.workload().is_some() {
            self.observe_emit(emit_latency);
        }
        let result = if outcome.succeeded() {
            self.builds_succeeded.inc();
            "succeeded"
        } else {
            self.builds_failed.inc();
            "failed"
        };
        self.builds_finished
            .get_or_create(&FinishedLabels {
                result,
                reason: outcome.verdict().as_str(),
                plane: plane.to_owned(),
            })
            .inc();
        if outcome.verdict() == crate::lifecycle::Verdict::WorkloadConflict {
            self.workload_conflicts.inc();
        }
    }
}

/// The standard `process_*` metrics of this process (read with metrics-process at each scrape:
/// CPU seconds, resident and virtual memory, open and maximum file descriptors, threads, start
/// time). A value the platform does not give is left out.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let p = metrics_process::collector::collect();
        if let Some(v) = p.cpu_seconds_total {
            let c = ConstCounter::new(v);
            let help = "Total user and system CPU time spent in seconds.";
            c.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                help,
                None,
                c.metric_type(),
            )?)?;
        }
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                p.resident_memory_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                p.virtual_memory_bytes,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                p.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                p.max_fds,
            ),
            (
                "process_threads",
                "Number of OS threads in the process.",
                p.threads,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds.",
                p.start_time_seconds,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(v) = value {
                let g = ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX));
                g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
            }
        }
        Ok(())
    }
}

/// How long a client has to send its request headers (a slow or silent client is closed).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a connection may stay open in all (keep-alive included).
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);

/// Connections served at once (fewer when the process may open few files: a quarter of its
/// limit). One more closes the oldest, so a flood of slow clients cannot keep a probe out: the
/// newest connection is always served, and the process never runs out of file handles here.
pub const MAX_CONNECTIONS: usize = 256;

/// [`MAX_CONNECTIONS`], or a quarter of the soft open-files limit when that is lower.
fn connection_cap() -> usize {
    let limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|soft| soft.parse::<usize>().ok())
        });
    limit.map_or(MAX_CONNECTIONS, |l| (l / 4).clamp(4, MAX_CONNECTIONS))
}

/// The open connections, oldest first.
struct Open {
    cap: usize,
    next: u64,
    conns: std::collections::VecDeque<(u64, tokio::task::AbortHandle)>,
}

impl Open {
    /// Makes room for one more connection: the oldest beyond the cap are closed.
    fn admit(&mut self) -> u64 {
        while self.conns.len() >= self.cap {
            if let Some((_, oldest)) = self.conns.pop_front() {
                oldest.abort();
            }
        }
        self.next += 1;
        self.next
    }

    fn forget(&mut self, id: u64) {
        self.conns.retain(|(c, _)| *c != id);
    }
}

/// Binds `addr` (so a taken port is an error at start, not later) and serves in the
/// background until the runtime stops or the handle is aborted. Every connection has
/// [`HEADER_READ_TIMEOUT`] to send its headers and [`CONNECTION_LIFETIME`] in all; at most
/// [`MAX_CONNECTIONS`] are open (the oldest is closed for a new one); a failing `accept` (out of
/// file handles) is retried with backoff, not in a loop.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
) -> Result<tokio::task::JoinHandle<()>, ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    tracing::info!(%addr, "serving /healthz and /metrics");
    let open = Arc::new(std::sync::Mutex::new(Open {
        cap: connection_cap(),
        next: 0,
        conns: Default::default(),
    }));
    Ok(tokio::spawn(async move {
        let mut backoff = Duration::from_millis(10);
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => {
                    backoff = Duration::from_millis(10);
                    stream
                }
                Err(e) => {
                    tracing::warn!(error = %e, wait = ?backoff, "accepting a metrics connection failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            let id = match open.lock() {
                Ok(mut o) => o.admit(),
                Err(_) => continue,
            };
            let task = tokio::spawn(connection(stream, metrics.clone(), open.clone(), id));
            if let Ok(mut o) = open.lock()
                && !task.is_finished()
            {
                o.conns.push_back((id, task.abort_handle()));
            }
        }
    }))
}

/// Serves one connection within its deadlines, then leaves the open set.
async fn connection(
    stream: tokio::net::TcpStream,
    metrics: Arc<Metrics>,
    open: Arc<std::sync::Mutex<Open>>,
    id: u64,
) {
    let service = hyper::service::service_fn(move |req| {
        let metrics = metrics.clone();
        async move { Ok::<_, std::convert::Infallible>(respond(&req, &metrics)) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(16 * 1024)
        .serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(CONNECTION_LIFETIME, conn).await {
        Ok(Err(e)) => tracing::debug!(error = %e, "metrics connection ended"),
        Err(_) => tracing::debug!("metrics connection closed at its lifetime"),
        Ok(Ok(())) => {}
    }
    if let Ok(mut o) = open.lock() {
        o.forget(id);
    }
}

fn respond(req: &Request<Incoming>, metrics: &Metrics) -> Response<Body> {
    let (status, content_type, body) = match req.uri().path() {
        "/healthz" => (StatusCode::OK, "text/plain; charset=utf-8", "ok".to_owned()),
        "/readyz" if metrics.ready.load(std::sync::atomic::Ordering::Relaxed) => {
            (StatusCode::OK, "text/plain; charset=utf-8", "ok".to_owned())
        }
        "/readyz" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            "not ready".to_owned(),
        ),
        "/metrics" => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found".to_owned(),
        ),
    };
    let mut response = Response::new(Body::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_taken_address_is_named_once_with_its_cause_as_source() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let e = serve(addr, Arc::new(Metrics::default())).await.unwrap_err();
        let cause = std::error::Error::source(&e).unwrap().to_string();
        assert_eq!(
            e.to_string(),
            format!("--metrics-addr {addr}: cannot listen")
        );
        assert!(!e.to_string().contains(&cause), "{e}");
    }

    #[test]
    fn counters_and_histogram_are_named_as_documented() {
        let m = Metrics::default();
        m.builds_started.inc();
        m.observe_emit(Duration::from_millis(3));
        let text = m.encode();
        assert!(text.contains("buildplane_builds_started_total 1"), "{text}");
        assert!(text.contains("buildplane_builds_failed_total 0"), "{text}");
        assert!(
            text.contains("buildplane_reconcile_errors_total 0"),
            "{text}"
        );
        assert!(
            text.contains("buildplane_emit_latency_seconds_count 1"),
            "{text}"
        );
        m.reconcile_error("CredentialsInvalid");
        m.reconcile_error("CredentialsInvalid");
        let text = m.encode();
        assert!(
            text.contains("buildplane_reconcile_errors_total 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "buildplane_reconcile_errors_by_reason_total{reason=\"CredentialsInvalid\"} 2"
            ),
            "{text}"
        );
        // The process metrics, unprefixed, as every Prometheus client names them.
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_start_time_seconds ",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(name)),
                "{name} in {text}"
            );
        }
        assert!(!text.contains("buildplane_process_"), "{text}");
    }
}
