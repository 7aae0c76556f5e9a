//! Leader election on a `coordination.k8s.io/v1` Lease, with client-go's rules
//! (`k8s.io/client-go/tools/leaderelection`): a candidate takes the Lease when it is free or
//! when its holder has not renewed it for `lease_duration`, measured on the candidate's own
//! clock from when it saw the last renewal (never by comparing clocks); the leader renews every
//! `retry_period` and **steps down when it could not renew for `renew_deadline`**, which is
//! shorter than `lease_duration`: a leader cut off from the API server stops reconciling before
//! any other replica may take the Lease. On shutdown the leader releases the Lease at once (an
//! empty holder), so a standby takes over on its next try instead of after `lease_duration`.
//!
//! Written here rather than taken from kube-lease-manager (which tracks kube 5 and applies the
//! Lease server-side): when its renewals fail it logs and retries, and the process goes on
//! believing it leads until the API server answers again; the step-down at `renew_deadline` is
//! the property a controller that submits builds needs. Every write is a replace carrying the
//! resourceVersion read, so two candidates can never both succeed on the same Lease version.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How the election runs.
#[derive(Debug, Clone)]
pub struct ElectionSettings {
    pub namespace: String,
    pub name: String,
    /// This process, as the Lease's `holderIdentity` names it.
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// The settings could not work together.
#[derive(Debug, thiserror::Error)]
pub enum ElectionError {
    #[error(
        "--leader-election-renew-deadline ({renew:?}) must be shorter than --leader-election-lease-duration ({lease:?}), and --leader-election-retry-period ({retry:?}) shorter than the renew deadline"
    )]
    Timing {
        lease: Duration,
        renew: Duration,
        retry: Duration,
    },
}

impl ElectionSettings {
    /// client-go's rule: retry < renew deadline < lease duration.
    pub fn check(&self) -> Result<(), ElectionError> {
        if self.retry_period.is_zero()
            || self.retry_period >= self.renew_deadline
            || self.renew_deadline >= self.lease_duration
        {
            return Err(ElectionError::Timing {
                lease: self.lease_duration,
                renew: self.renew_deadline,
                retry: self.retry_period,
            });
        }
        Ok(())
    }
}

/// The last renewal seen of someone else's Lease: who, which renewTime, and when it was seen.
struct Observed {
    holder: String,
    renew_time: Option<String>,
    at: Instant,
}

/// One candidate.
pub struct Elector {
    api: Api<Lease>,
    s: ElectionSettings,
    observed: Option<Observed>,
}

/// What an attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// This process holds the Lease now.
    Holding,
    /// Another holds it (or won the race for it).
    HeldElsewhere,
}

impl Elector {
    pub fn new(client: kube::Client, s: ElectionSettings) -> Elector {
        Elector {
            api: Api::namespaced(client, &s.namespace),
            s,
            observed: None,
        }
    }

    /// Campaigns until `stop` turns true: sends `true` on `leading` when this process leads and
    /// `false` when it stops leading (lost, could not renew within the deadline, or stopping).
    /// At `stop` a held Lease is released before this returns.
    pub async fn run(mut self, leading: watch::Sender<bool>, mut stop: watch::Receiver<bool>) {
        let mut renewed: Option<Instant> = None;
        loop {
            if *stop.borrow() {
                break;
            }
            let started = Instant::now();
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Holding) => {
                    if renewed.is_none() {
                        tracing::info!(
                            event = "leader_elected",
                            lease = %format!("{}/{}", self.s.namespace, self.s.name),
                            identity = %self.s.identity,
                            "leading"
                        );
                        let _ = leading.send(true);
                    }
                    renewed = Some(started);
                }
                Ok(Attempt::HeldElsewhere) => {
                    if renewed.take().is_some() {
                        tracing::warn!(event = "leader_lost", "another replica holds the Lease");
                        let _ = leading.send(false);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "leader election: the Lease could not be read or written");
                }
            }
            // A leader that could not renew within the deadline stops before the Lease expires
            // for the others.
            if let Some(at) = renewed
                && at.elapsed() >= self.s.renew_deadline
            {
                tracing::warn!(
                    event = "leader_lost",
                    "the Lease could not be renewed within the renew deadline; standing by"
                );
                renewed = None;
                let _ = leading.send(false);
            }
            tokio::select! {
                _ = tokio::time::sleep(self.s.retry_period) => {}
                _ = stop.changed() => {}
            }
        }
        if renewed.is_some() {
            let _ = leading.send(false);
            match self.release().await {
                Ok(()) => tracing::info!(event = "leader_released", "the Lease was released"),
                Err(e) => tracing::warn!(error = %e, "releasing the Lease failed; it expires"),
            }
        }
    }

    async fn try_acquire_or_renew(&mut self) -> Result<Attempt, kube::Error> {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let duration = i32::try_from(self.s.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let Some(mut lease) = self.api.get_opt(&self.s.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.s.name.clone()),
                    namespace: Some(self.s.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.s.identity.clone()),
                    lease_duration_seconds: Some(duration),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Holding),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::HeldElsewhere),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let renew_time = spec
            .renew_time
            .as_ref()
            .map(|t| t.0.to_string())
            .filter(|_| !holder.is_empty());
        let changed = self
            .observed
            .as_ref()
            .is_none_or(|o| o.holder != holder || o.renew_time != renew_time);
        if changed {
            self.observed = Some(Observed {
                holder: holder.clone(),
                renew_time,
                at: Instant::now(),
            });
        }
        let theirs = !holder.is_empty() && holder != self.s.identity;
        if theirs {
            let valid_for = spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map_or(self.s.lease_duration, Duration::from_secs);
            let seen = self.observed.as_ref().map_or_else(Instant::now, |o| o.at);
            if seen.elapsed() < valid_for {
                return Ok(Attempt::HeldElsewhere);
            }
        }
        let ours = holder == self.s.identity;
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(self.s.identity.clone()),
            lease_duration_seconds: Some(duration),
            acquire_time: if ours {
                spec.acquire_time.clone()
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(
                spec.lease_transitions.unwrap_or(0) + i32::from(!ours && !holder.is_empty()),
            ),
            ..spec
        });
        // The resourceVersion read makes this a compare-and-swap: of two candidates, one wins.
        match self
            .api
            .replace(&self.s.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Attempt::Holding),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::HeldElsewhere),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up (an empty holder), if this process still holds it.
    async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.s.name).await? else {
            return Ok(());
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.s.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::now()));
        lease.spec = Some(spec);
        self.api
            .replace(&self.s.name, &PostParams::default(), &lease)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(lease: u64, renew: u64, retry: u64) -> ElectionSettings {
        ElectionSettings {
            namespace: "ns".into(),
            name: "l".into(),
            identity: "me".into(),
            lease_duration: Duration::from_secs(lease),
            renew_deadline: Duration::from_secs(renew),
            retry_period: Duration::from_secs(retry),
        }
    }

    #[test]
    fn the_renew_deadline_is_shorter_than_the_lease_and_longer_than_a_retry() {
        assert!(settings(15, 10, 2).check().is_ok());
        for (l, r, t) in [(10, 10, 2), (10, 15, 2), (15, 10, 10), (15, 10, 0)] {
            let e = settings(l, r, t).check().unwrap_err().to_string();
            assert!(e.contains("--leader-election-renew-deadline"), "{e}");
        }
    }
}
