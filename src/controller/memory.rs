//! What the controller remembers of each Build between reconciles, in one plain struct (behind
//! one lock in `Ctx`): the plane serving each namespace, Builds whose build object was just
//! created, the status last written until the watch cache shows it, consecutive failures for
//! the backoff, and when a deleted Build's build object was asked to stop. Nothing here does
//! I/O (the time is an argument), so every rule is tested without a cluster.

use super::reconcile::Status;
use crate::core::conditions;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

type Key = (String, String);

fn key(ns: &str, name: &str) -> Key {
    (ns.to_owned(), name.to_owned())
}

/// Backoff after `n` consecutive failures: 1 s doubling to 60 s.
pub fn backoff(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.min(6)).min(Duration::from_secs(60))
}

/// The per-Build memory; `P` is the plane handle (an `Arc<Plane>` in the controller).
pub struct Memory<P> {
    /// Build namespace → the plane serving it, and when its Secrets were read (dropped when a
    /// BuildPlane changes).
    by_namespace: HashMap<(String, Option<String>), (P, Instant)>,
    /// Builds whose build object was just created and not yet seen by the plane's watch, with
    /// the spec hash it was created for (an object of another spec in the store is older).
    awaiting: HashMap<Key, String>,
    /// The status last written per Build, until the watch cache shows it.
    written: HashMap<Key, Status>,
    /// A status not written yet (a build just submitted), and by when it must be.
    deferred: HashMap<Key, (Status, Instant)>,
    /// Builds this process added the finalizer to, until the watch cache shows it.
    finalized: HashSet<Key>,
    /// Consecutive failures per Build with the same reason.
    failures: HashMap<Key, (String, u32)>,
    /// When a deleted Build's build object was first seen asked to stop.
    stopping: HashMap<Key, Instant>,
    /// The leadership term all of this was learnt in.
    term: u64,
}

impl<P> Default for Memory<P> {
    fn default() -> Self {
        Memory {
            by_namespace: HashMap::new(),
            awaiting: HashMap::new(),
            written: HashMap::new(),
            deferred: HashMap::new(),
            finalized: HashSet::new(),
            failures: HashMap::new(),
            stopping: HashMap::new(),
            term: 0,
        }
    }
}

impl<P: Clone> Memory<P> {
    /// Leading in `term`: what an earlier term remembered is dropped (another leader may have
    /// written statuses and build objects since).
    pub fn begin_term(&mut self, term: u64) {
        if self.term != term {
            *self = Memory {
                term,
                ..Memory::default()
            };
        }
    }

    /// The plane remembered for Builds of `ns` naming BuildPlane `wanted` (or none), with
    /// when its Secrets were read.
    pub fn plane_of_namespace(&self, ns: &str, wanted: Option<&str>) -> Option<(P, Instant)> {
        self.by_namespace
            .get(&(ns.to_owned(), wanted.map(str::to_owned)))
            .cloned()
    }

    /// The plane for `ns`/`wanted`, its Secrets read at `read`.
    pub fn remember_plane(&mut self, ns: &str, wanted: Option<&str>, plane: P, read: Instant) {
        self.by_namespace
            .insert((ns.to_owned(), wanted.map(str::to_owned)), (plane, read));
    }

    /// Whether the Build's last attempt failed (its retry reads the plane's Secrets again).
    pub fn failing(&self, ns: &str, name: &str) -> bool {
        self.failures.contains_key(&key(ns, name))
    }

    /// A BuildPlane of `ns` changed: its Builds look it up again (whichever they name).
    pub fn forget_plane(&mut self, ns: &str) {
        self.by_namespace.retain(|(n, _), _| n != ns);
    }

    /// A build object for `spec_hash` was just created.
    pub fn expect_build_object(&mut self, ns: &str, name: &str, spec_hash: &str) {
        self.awaiting.insert(key(ns, name), spec_hash.to_owned());
    }

    /// The spec hash of the build object just created, until the plane's watch shows it.
    pub fn awaiting(&self, ns: &str, name: &str) -> Option<String> {
        self.awaiting.get(&key(ns, name)).cloned()
    }

    /// The plane's watch has the Build's build object.
    pub fn seen(&mut self, ns: &str, name: &str) {
        self.awaiting.remove(&key(ns, name));
    }

    pub fn remember_written(&mut self, ns: &str, name: &str, status: Status) {
        self.written.insert(key(ns, name), status);
    }

    /// The status to start from: `observed` (the object's), unless the watch cache has not
    /// caught up with the status written last — then that one (conditions only move forward,
    /// and acting on the stale copy would submit or emit twice).
    pub fn current_status(&mut self, ns: &str, name: &str, observed: Status) -> Status {
        let k = key(ns, name);
        let Some(written) = self.written.get(&k) else {
            return observed;
        };
        let caught_up = written.image == observed.image
            && written.spec_hash == observed.spec_hash
            && written.workload == observed.workload
            && written.plane == observed.plane
            && written.conditions.iter().all(|w| {
                conditions::find_condition(&observed.conditions, &w.type_)
                    .is_some_and(|o| o.status == w.status && o.reason == w.reason)
            });
        if caught_up {
            self.written.remove(&k);
            observed
        } else {
            written.clone()
        }
    }

    /// Keeps `status` unwritten until `by` at the latest (the next reconcile takes it up).
    pub fn defer_status(&mut self, ns: &str, name: &str, status: Status, by: Instant) {
        self.deferred.insert(key(ns, name), (status, by));
    }

    /// The status kept unwritten, and by when it must be written; a reconcile takes it, and
    /// writes it or keeps it again.
    pub fn take_deferred(&mut self, ns: &str, name: &str) -> Option<(Status, Instant)> {
        self.deferred.remove(&key(ns, name))
    }

    /// This process added the Build's finalizer.
    pub fn remember_finalizer(&mut self, ns: &str, name: &str) {
        self.finalized.insert(key(ns, name));
    }

    /// Whether this process added the Build's finalizer and the cache has not shown it yet.
    pub fn finalizer_added(&self, ns: &str, name: &str) -> bool {
        self.finalized.contains(&key(ns, name))
    }

    /// The cache shows the Build's finalizer.
    pub fn finalizer_seen(&mut self, ns: &str, name: &str) {
        self.finalized.remove(&key(ns, name));
    }

    /// One more failure with `reason`; the wait before the next attempt. The backoff grows
    /// while the same failure repeats; a different one starts it over.
    pub fn failed(&mut self, ns: &str, name: &str, reason: &str) -> Duration {
        let entry = self
            .failures
            .entry(key(ns, name))
            .or_insert_with(|| (reason.to_owned(), 0));
        if entry.0 != reason {
            *entry = (reason.to_owned(), 0);
        }
        entry.1 += 1;
        backoff(entry.1 - 1)
    }

    /// The Build made progress: its backoff starts over.
    pub fn reset_backoff(&mut self, ns: &str, name: &str) {
        self.failures.remove(&key(ns, name));
    }

    /// The Build is done: its waits and backoff go. The status written last stays until the
    /// cache shows it — a stale copy of the Build must not make it run or emit again.
    pub fn forget(&mut self, ns: &str, name: &str) {
        let k = key(ns, name);
        self.awaiting.remove(&k);
        self.failures.remove(&k);
    }

    /// How long ago (at `now`) the deleted Build's build object was first seen asked to stop;
    /// the first call starts the clock.
    pub fn stop_waited(&mut self, ns: &str, name: &str, now: Instant) -> Duration {
        let since = *self.stopping.entry(key(ns, name)).or_insert(now);
        now.saturating_duration_since(since)
    }

    /// The Build is gone (its finalizer removed): nothing is kept for it.
    pub fn gone(&mut self, ns: &str, name: &str) {
        let k = key(ns, name);
        self.awaiting.remove(&k);
        self.written.remove(&k);
        self.deferred.remove(&k);
        self.finalized.remove(&k);
        self.failures.remove(&k);
        self.stopping.remove(&k);
    }

    /// How many Builds anything is kept for (a bound the tests check).
    pub fn len(&self) -> usize {
        let mut keys: HashSet<&Key> = self.awaiting.keys().collect();
        keys.extend(self.written.keys());
        keys.extend(self.deferred.keys());
        keys.extend(self.finalized.iter());
        keys.extend(self.failures.keys());
        keys.extend(self.stopping.keys());
        keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::conditions::Condition;

    fn status(conditions: Vec<Condition>, image: &str) -> Status {
        Status {
            conditions,
            image: image.into(),
            spec_hash: Some("s".into()),
            ..Status::default()
        }
    }

    #[test]
    fn backoff_doubles_to_a_minute() {
        let waits: Vec<u64> = (0..9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn the_same_failure_backs_off_and_another_starts_over() {
        let mut m = Memory::<()>::default();
        let waits: Vec<u64> = (0..3)
            .map(|_| m.failed("ns", "b", "PrerequisitesFailed").as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4]);
        assert_eq!(m.failed("ns", "b", "WorkflowCreateFailed").as_secs(), 1);
        assert_eq!(m.failed("ns", "other", "PrerequisitesFailed").as_secs(), 1);
        m.reset_backoff("ns", "b");
        assert_eq!(m.failed("ns", "b", "WorkflowCreateFailed").as_secs(), 1);
    }

    #[test]
    fn a_stale_cache_is_overruled_by_the_status_written_last() {
        let mut m = Memory::<()>::default();
        let old = status(vec![Condition::build_initiated(None)], "");
        let written = status(
            vec![
                Condition::build_initiated(None),
                Condition::build_triggered(None),
            ],
            "",
        );
        m.remember_written("ns", "b", written.clone());
        // The cache still shows the older status: the written one counts.
        assert_eq!(m.current_status("ns", "b", old.clone()), written);
        assert_eq!(m.len(), 1);
        // Once the cache shows it, the memory lets go.
        assert_eq!(m.current_status("ns", "b", written.clone()), written);
        assert!(m.is_empty());
        assert_eq!(m.current_status("ns", "b", old.clone()), old);
    }

    #[test]
    fn a_new_leadership_term_starts_from_nothing() {
        let mut m = Memory::<u8>::default();
        m.begin_term(1);
        m.remember_written("ns", "b", status(vec![], "i"));
        m.remember_plane("ns", None, 7, Instant::now());
        m.begin_term(1);
        assert_eq!(m.len(), 1, "the same term keeps what it learnt");
        m.begin_term(2);
        assert!(m.is_empty());
        assert_eq!(m.plane_of_namespace("ns", None), None);
    }

    #[test]
    fn awaiting_and_forgetting() {
        let mut m = Memory::<u8>::default();
        m.expect_build_object("ns", "b", "h");
        assert_eq!(m.awaiting("ns", "b").as_deref(), Some("h"));
        m.seen("ns", "b");
        assert_eq!(m.awaiting("ns", "b"), None);
        m.expect_build_object("ns", "b", "h");
        m.failed("ns", "b", "x");
        m.remember_written("ns", "b", status(vec![], "i"));
        m.forget("ns", "b");
        assert_eq!(m.awaiting("ns", "b"), None);
        assert_eq!(m.len(), 1, "the written status outlives forget");
        assert_eq!(m.current_status("ns", "b", status(vec![], "i")).image, "i");
        assert!(m.is_empty());
        m.expect_build_object("ns", "b", "h");
        m.remember_written("ns", "b", status(vec![], "i"));
        let t0 = Instant::now();
        assert_eq!(m.stop_waited("ns", "b", t0), Duration::ZERO);
        let later = t0 + Duration::from_secs(12);
        assert_eq!(m.stop_waited("ns", "b", later), Duration::from_secs(12));
        m.remember_finalizer("ns", "b");
        assert!(m.finalizer_added("ns", "b"));
        m.gone("ns", "b");
        assert!(m.is_empty(), "a deleted Build leaves nothing behind");
        assert!(!m.finalizer_added("ns", "b"));
        m.remember_finalizer("ns", "b");
        m.finalizer_seen("ns", "b");
        assert!(m.is_empty(), "the cache shows it: nothing kept");
        assert_eq!(m.stop_waited("ns", "b", later), Duration::ZERO);
        m.gone("ns", "b");
        let read = Instant::now();
        m.remember_plane("ns", None, 7, read);
        m.remember_plane("ns", Some("gpu"), 8, read);
        assert_eq!(m.plane_of_namespace("ns", None), Some((7, read)));
        assert_eq!(m.plane_of_namespace("ns", Some("gpu")), Some((8, read)));
        assert!(!m.failing("ns", "b"));
        m.failed("ns", "b", "x");
        assert!(m.failing("ns", "b"));
        m.reset_backoff("ns", "b");
        assert!(!m.failing("ns", "b"));
        m.forget_plane("ns");
        assert_eq!(m.plane_of_namespace("ns", None), None);
        assert_eq!(m.plane_of_namespace("ns", Some("gpu")), None);
    }
}
