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
//! the property a controller that submits builds needs. kube-runtime 5 has no elector. Every
//! write is a replace carrying the resourceVersion read, so two candidates can never both
//! succeed on the same Lease version.
//!
//! [`Candidate`] holds the rules as a plain struct (the time is an argument, tested without a
//! cluster); [`Elector`] is its thin async adapter (read the Lease, write what the candidate
//! planned, report the outcome).

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
    /// client-go's rule, which keeps a cut-off leader from overlapping the next one.
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
    /// client-go's rule: 0 < retry < renew deadline < lease duration.
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

    /// `namespace/name`, for logs.
    fn lease(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The lease duration as the Lease records it: whole seconds, rounded up.
    fn lease_seconds(&self) -> i32 {
        let secs = self.lease_duration.as_secs_f64().ceil().max(1.0);
        i32::try_from(secs as i64).unwrap_or(i32::MAX)
    }
}

/// Whether this process leads. Each time it takes the lead a new term starts: what it
/// remembered of an earlier term may have been overtaken by another leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leadership {
    Standby,
    Leading(u64),
}

/// How far the process has got in stopping (SIGTERM): first it steps down, which stops the
/// reconciles in flight at their next request, then, once they have stopped, the Lease is
/// released for a standby to take at its next try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopping {
    No,
    StepDown,
    Release,
}

/// The last change seen of the Lease: who held it, which renewTime, and when (our clock).
#[derive(Debug, Clone)]
struct Observed {
    holder: String,
    renew_time: Option<MicroTime>,
    at: Instant,
}

/// What to do with the Lease just read.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// There is no Lease: create it, held by this process.
    Create(LeaseSpec),
    /// Write this spec over the version read (take or renew).
    Update(LeaseSpec),
    /// Another process holds a Lease that has not expired.
    Wait,
}

/// One candidate's knowledge and rules. Pure: times are arguments.
#[derive(Debug)]
pub struct Candidate {
    s: ElectionSettings,
    observed: Option<Observed>,
    /// When the last successful write started, while this process leads.
    renewed: Option<Instant>,
    term: u64,
}

impl Candidate {
    pub fn new(s: ElectionSettings) -> Candidate {
        Candidate {
            s,
            observed: None,
            renewed: None,
            term: 0,
        }
    }

    pub fn leadership(&self) -> Leadership {
        match self.renewed {
            Some(_) => Leadership::Leading(self.term),
            None => Leadership::Standby,
        }
    }

    /// The Lease as read at `now` (`wall`: the same instant on the wall clock, for the Lease's
    /// times) → what to write. A Lease held by another is taken only once `now` is
    /// its `leaseDurationSeconds` past the moment this candidate first saw its current renewal.
    pub fn plan(&mut self, lease: Option<&LeaseSpec>, now: Instant, wall: &MicroTime) -> Plan {
        let Some(spec) = lease else {
            return Plan::Create(LeaseSpec {
                holder_identity: Some(self.s.identity.clone()),
                lease_duration_seconds: Some(self.s.lease_seconds()),
                acquire_time: Some(wall.clone()),
                renew_time: Some(wall.clone()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            });
        };
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let renew_time = spec.renew_time.clone();
        let changed = self
            .observed
            .as_ref()
            .is_none_or(|o| o.holder != holder || o.renew_time != renew_time);
        if changed {
            self.observed = Some(Observed {
                holder: holder.clone(),
                renew_time,
                at: now,
            });
        }
        let ours = holder == self.s.identity;
        if !holder.is_empty() && !ours {
            let valid_for = spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map_or(self.s.lease_duration, Duration::from_secs);
            let seen = self.observed.as_ref().map_or(now, |o| o.at);
            if now.saturating_duration_since(seen) < valid_for {
                return Plan::Wait;
            }
        }
        Plan::Update(LeaseSpec {
            holder_identity: Some(self.s.identity.clone()),
            lease_duration_seconds: Some(self.s.lease_seconds()),
            acquire_time: if ours {
                spec.acquire_time.clone()
            } else {
                Some(wall.clone())
            },
            renew_time: Some(wall.clone()),
            lease_transitions: Some(
                spec.lease_transitions.unwrap_or(0) + i32::from(!ours && !holder.is_empty()),
            ),
            ..spec.clone()
        })
    }

    /// A write that started at `started` succeeded: this process leads (a new term if it did
    /// not already).
    pub fn held(&mut self, started: Instant) {
        if self.renewed.is_none() {
            self.term += 1;
        }
        self.renewed = Some(started);
    }

    /// Another process holds the Lease (or won the race for it).
    pub fn held_elsewhere(&mut self) {
        self.renewed = None;
    }

    /// A leader that has not renewed for the renew deadline at `now` steps down.
    pub fn check_deadline(&mut self, now: Instant) {
        if self
            .renewed
            .is_some_and(|at| now.saturating_duration_since(at) >= self.s.renew_deadline)
        {
            self.renewed = None;
        }
    }

    /// How long the next attempt (read and write) may take at `now`: a leader only until its
    /// renew deadline, so a hung request cannot keep it leading past it.
    pub fn attempt_budget(&self, now: Instant) -> Duration {
        match self.renewed {
            Some(at) => self
                .s
                .renew_deadline
                .saturating_sub(now.saturating_duration_since(at)),
            None => self.s.renew_deadline,
        }
    }
}

/// The Lease spec that gives the Lease up (an empty holder, expiring at once), when `spec`
/// is still held by `identity`.
pub fn released(spec: &LeaseSpec, identity: &str, wall: &MicroTime) -> Option<LeaseSpec> {
    if spec.holder_identity.as_deref() != Some(identity) {
        return None;
    }
    Some(LeaseSpec {
        holder_identity: None,
        lease_duration_seconds: Some(1),
        renew_time: Some(wall.clone()),
        ..spec.clone()
    })
}

fn wall_now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

/// The async adapter: reads and writes the Lease for its [`Candidate`].
pub struct Elector {
    api: Api<Lease>,
    candidate: Candidate,
    s: ElectionSettings,
}

/// A failed read or write of the Lease.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    /// The API server answered with an error or could not be reached.
    #[error(transparent)]
    Kube(#[from] kube::Error),
    /// No answer within the attempt's budget.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

impl Elector {
    pub fn new(client: kube::Client, s: ElectionSettings) -> Elector {
        Elector {
            api: Api::namespaced(client, &s.namespace),
            candidate: Candidate::new(s.clone()),
            s,
        }
    }

    /// Campaigns until `stop` reaches [`Stopping::StepDown`], publishing each change of
    /// [`Leadership`] on `leading`. A leader then publishes [`Leadership::Standby`] (the
    /// reconciles in flight stop) and releases the Lease once `stop` says
    /// [`Stopping::Release`] (they have stopped), before this returns.
    pub async fn run(
        mut self,
        leading: watch::Sender<Leadership>,
        mut stop: watch::Receiver<Stopping>,
    ) {
        loop {
            if *stop.borrow() != Stopping::No {
                break;
            }
            let started = Instant::now();
            let budget = self.candidate.attempt_budget(started);
            let attempt = tokio::time::timeout(budget, self.attempt(started));
            match attempt.await.unwrap_or(Err(AttemptError::Timeout(budget))) {
                Ok(true) => self.candidate.held(started),
                Ok(false) => self.candidate.held_elsewhere(),
                Err(e) => tracing::warn!(
                    lease = %self.s.lease(),
                    error = %e,
                    "leader election: the Lease could not be read or written"
                ),
            }
            self.candidate.check_deadline(Instant::now());
            self.publish(&leading);
            tokio::select! {
                _ = tokio::time::sleep(self.s.retry_period) => {}
                _ = stop.changed() => {}
            }
        }
        if let Leadership::Leading(_) = self.candidate.leadership() {
            self.candidate.held_elsewhere();
            self.publish(&leading);
            let _ = stop.wait_for(|s| *s == Stopping::Release).await;
            let release = tokio::time::timeout(self.s.renew_deadline, self.release());
            match release.await {
                Ok(Ok(())) => tracing::info!(
                    event = "leader_released",
                    lease = %self.s.lease(),
                    "the Lease was released"
                ),
                Ok(Err(e)) => tracing::warn!(error = %e, "releasing the Lease failed; it expires"),
                Err(_) => tracing::warn!("releasing the Lease timed out; it expires"),
            }
        }
    }

    /// Sends the candidate's leadership when it changed, and logs the change.
    fn publish(&self, leading: &watch::Sender<Leadership>) {
        let now = self.candidate.leadership();
        leading.send_if_modified(|was| {
            if *was == now {
                return false;
            }
            match now {
                Leadership::Leading(term) => tracing::info!(
                    event = "leader_elected",
                    lease = %self.s.lease(),
                    identity = %self.s.identity,
                    term,
                    "leading"
                ),
                Leadership::Standby => tracing::warn!(
                    event = "leader_lost",
                    lease = %self.s.lease(),
                    "no longer leading (another replica holds the Lease, or it could not be renewed within the renew deadline); standing by"
                ),
            }
            *was = now;
            true
        });
    }

    /// One read and, when the candidate plans one, one write: whether this process holds the
    /// Lease afterwards.
    async fn attempt(&mut self, started: Instant) -> Result<bool, AttemptError> {
        let lease = self.api.get_opt(&self.s.name).await?;
        let wall = wall_now();
        let plan =
            self.candidate
                .plan(lease.as_ref().and_then(|l| l.spec.as_ref()), started, &wall);
        let written = match (plan, lease) {
            (Plan::Wait, _) => return Ok(false),
            (Plan::Create(spec), _) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.s.name.clone()),
                        namespace: Some(self.s.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            (Plan::Update(spec), Some(mut lease)) => {
                lease.spec = Some(spec);
                // The resourceVersion read makes this a compare-and-swap: of two candidates,
                // one wins.
                let pp = PostParams::default();
                self.api.replace(&self.s.name, &pp, &lease).await
            }
            (Plan::Update(_), None) => return Ok(false),
        };
        match written {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Gives the Lease up, if this process still holds it.
    async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.s.name).await? else {
            return Ok(());
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let Some(spec) = released(&spec, &self.s.identity, &wall_now()) else {
            return Ok(());
        };
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

    fn wall(secs: i64) -> MicroTime {
        MicroTime(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap())
    }

    fn held_by(holder: &str, renewed: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            acquire_time: Some(wall(0)),
            renew_time: Some(wall(renewed)),
            lease_transitions: Some(3),
            ..LeaseSpec::default()
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

    #[test]
    fn no_lease_is_created_held_by_this_process() {
        let mut c = Candidate::new(settings(15, 10, 2));
        let Plan::Create(spec) = c.plan(None, Instant::now(), &wall(100)) else {
            panic!("a Lease to create");
        };
        assert_eq!(spec.holder_identity.as_deref(), Some("me"));
        assert_eq!(spec.lease_duration_seconds, Some(15));
        assert_eq!(spec.renew_time, Some(wall(100)));
    }

    #[test]
    fn another_holder_is_waited_out_on_this_clock_from_its_last_renewal_seen() {
        let mut c = Candidate::new(settings(15, 10, 2));
        let t0 = Instant::now();
        let lease = held_by("other", 50);
        assert_eq!(c.plan(Some(&lease), t0, &wall(1000)), Plan::Wait);
        // The holder's renewTime is far in the past by the wall clock: no matter, our own
        // clock counts from when we saw it.
        let t14 = t0 + Duration::from_secs(14);
        assert_eq!(c.plan(Some(&lease), t14, &wall(1014)), Plan::Wait);
        // A renewal seen restarts the wait.
        let renewed = held_by("other", 60);
        assert_eq!(c.plan(Some(&renewed), t14, &wall(1014)), Plan::Wait);
        let t28 = t0 + Duration::from_secs(28);
        assert_eq!(c.plan(Some(&renewed), t28, &wall(1028)), Plan::Wait);
        let t29 = t0 + Duration::from_secs(29);
        let Plan::Update(taken) = c.plan(Some(&renewed), t29, &wall(1029)) else {
            panic!("an expired Lease is taken");
        };
        assert_eq!(taken.holder_identity.as_deref(), Some("me"));
        assert_eq!(taken.acquire_time, Some(wall(1029)));
        assert_eq!(taken.lease_transitions, Some(4));
    }

    #[test]
    fn a_released_lease_is_taken_at_once_and_a_renewal_keeps_the_acquire_time() {
        let mut c = Candidate::new(settings(15, 10, 2));
        let t0 = Instant::now();
        let free = released(&held_by("other", 50), "other", &wall(60)).unwrap();
        assert_eq!(free.holder_identity, None);
        assert_eq!(free.lease_duration_seconds, Some(1));
        assert!(released(&held_by("other", 50), "me", &wall(60)).is_none());
        let Plan::Update(taken) = c.plan(Some(&free), t0, &wall(61)) else {
            panic!("a free Lease is taken");
        };
        assert_eq!(taken.lease_transitions, Some(3), "no holder, no transition");
        let Plan::Update(renewal) = c.plan(Some(&held_by("me", 61)), t0, &wall(63)) else {
            panic!("our own Lease is renewed");
        };
        assert_eq!(renewal.acquire_time, Some(wall(0)));
        assert_eq!(renewal.renew_time, Some(wall(63)));
    }

    #[test]
    fn a_leader_steps_down_at_the_renew_deadline_and_a_new_lead_is_a_new_term() {
        let mut c = Candidate::new(settings(15, 10, 2));
        let t0 = Instant::now();
        assert_eq!(c.leadership(), Leadership::Standby);
        c.held(t0);
        assert_eq!(c.leadership(), Leadership::Leading(1));
        c.held(t0 + Duration::from_secs(2));
        assert_eq!(
            c.leadership(),
            Leadership::Leading(1),
            "a renewal, same term"
        );
        assert_eq!(
            c.attempt_budget(t0 + Duration::from_secs(9)),
            Duration::from_secs(3)
        );
        c.check_deadline(t0 + Duration::from_secs(11));
        assert_eq!(c.leadership(), Leadership::Leading(1));
        c.check_deadline(t0 + Duration::from_secs(12));
        assert_eq!(c.leadership(), Leadership::Standby);
        assert_eq!(
            c.attempt_budget(t0 + Duration::from_secs(12)),
            Duration::from_secs(10)
        );
        c.held(t0 + Duration::from_secs(13));
        assert_eq!(c.leadership(), Leadership::Leading(2));
        c.held_elsewhere();
        assert_eq!(c.leadership(), Leadership::Standby);
    }
}
