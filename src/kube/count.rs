//! Counts every HTTP request a client sends — reads, writes, discovery, watches — at the wire,
//! so request figures (`buildplane controller`'s, the benchmarks') cannot miss a call path.

use prometheus_client::metrics::counter::Counter;
use std::task::{Context, Poll};

/// Shared counters: every request, and those that change something (not GET/HEAD, not a
/// `dryRun` request, not an access review: a SelfSubjectAccessReview is a POST that only asks).
/// Kept as three disjoint Prometheus counters (reads, writes other than Events, Events), so a
/// process can expose them as they are (`buildplane_api_requests_total`).
#[derive(Debug, Clone, Default)]
pub struct Counts {
    reads: Counter,
    writes: Counter,
    events: Counter,
}

impl Counts {
    /// Counts into `reads`, `writes` (other than Events) and `events`: counters a metrics
    /// registry holds (several clients may share them).
    pub fn into_counters(reads: Counter, writes: Counter, events: Counter) -> Counts {
        Counts {
            reads,
            writes,
            events,
        }
    }

    pub fn requests(&self) -> usize {
        (self.reads.get() + self.writes.get() + self.events.get()) as usize
    }

    pub fn writes(&self) -> usize {
        (self.writes.get() + self.events.get()) as usize
    }

    /// The writes that publish Events (events.k8s.io or core `events`): part of `writes`,
    /// counted apart too, since they report and change no object.
    pub fn events(&self) -> usize {
        self.events.get() as usize
    }

    fn record<B>(&self, req: &http::Request<B>) {
        let read = matches!(*req.method(), http::Method::GET | http::Method::HEAD);
        let dry = req.uri().query().is_some_and(|q| q.contains("dryRun="));
        let review = req.uri().path().starts_with("/apis/authorization.k8s.io/");
        if read || dry || review {
            self.reads.inc();
            return;
        }
        let path = req.uri().path();
        let core_event =
            path.starts_with("/api/v1/") && path.split('/').nth(5).is_some_and(|r| r == "events");
        if path.starts_with("/apis/events.k8s.io/") || core_event {
            self.events.inc();
        } else {
            self.writes.inc();
        }
    }
}

impl<S> tower::Layer<S> for Counts {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            counts: self.clone(),
        }
    }
}

/// A service that counts what passes through it.
#[derive(Debug, Clone)]
pub struct Counted<S> {
    inner: S,
    counts: Counts,
}

impl<S, B> tower::Service<http::Request<B>> for Counted<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        self.counts.record(&req);
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, uri: &str) -> http::Request<()> {
        http::Request::builder()
            .method(method)
            .uri(uri)
            .body(())
            .unwrap()
    }

    #[test]
    fn writes_are_what_changes_state() {
        let c = Counts::default();
        for (method, uri) in [
            ("GET", "/api/v1/namespaces"),
            ("PATCH", "/api/v1/namespaces/a?fieldManager=x&dryRun=All"),
            (
                "POST",
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            ),
            ("PATCH", "/api/v1/namespaces/a?fieldManager=x"),
            ("DELETE", "/api/v1/namespaces/a"),
        ] {
            c.record(&request(method, uri));
        }
        assert_eq!((c.requests(), c.writes()), (5, 2));
        assert_eq!(c.events(), 0);
        for (method, uri) in [
            ("POST", "/apis/events.k8s.io/v1/namespaces/a/events"),
            ("PATCH", "/apis/events.k8s.io/v1/namespaces/a/events/e.1"),
            ("POST", "/api/v1/namespaces/a/events"),
            ("GET", "/apis/events.k8s.io/v1/namespaces/a/events"),
            // A namespace named "events" is not an Event.
            ("PATCH", "/api/v1/namespaces/events"),
        ] {
            c.record(&request(method, uri));
        }
        assert_eq!((c.writes(), c.events()), (6, 3));
        // Shared counters: a second client counts into the same ones.
        let (r, w, e) = (Counter::default(), Counter::default(), Counter::default());
        let a = Counts::into_counters(r.clone(), w.clone(), e.clone());
        let b = Counts::into_counters(r.clone(), w.clone(), e.clone());
        a.record(&request("GET", "/api/v1/namespaces"));
        b.record(&request("PATCH", "/api/v1/namespaces/a"));
        b.record(&request("POST", "/api/v1/namespaces/a/events"));
        assert_eq!((r.get(), w.get(), e.get()), (1, 1, 1));
        assert_eq!((a.requests(), a.writes(), a.events()), (3, 2, 1));
    }
}
