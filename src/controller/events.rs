//! Kubernetes Events on Builds: each one plain create of an `events.k8s.io/v1` Event,
//! reporting controller `buildplane`, named as client-go names them: the object's name and the
//! time in nanoseconds, in hexadecimal (`generateName` cannot end in the `.` that separates
//! them).
//!
//! Not kube-runtime's `Recorder`: it keeps every Event it published for six minutes to count
//! repeats into a series, and scans that whole cache under a lock on every publish. A Build's
//! transitions do not repeat (each status write that moves a condition is one Event), so a
//! series would never form: at 10,000 Builds the cache held 40,000 Events and the scans were
//! a large part of the controller's CPU time. A cleanup step that is retried may say the same
//! thing twice; that is two Events, as two tries are.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};

/// The reporting controller every Event names.
pub const REPORTING_CONTROLLER: &str = "buildplane";

/// The longest Event note the API server takes (events.k8s.io/v1: 1 kB).
pub const MAX_NOTE: usize = 1024;

/// An Event's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

/// Publishes Events as one controller instance.
#[derive(Clone)]
pub struct Publisher {
    client: kube::Client,
    controller: String,
    /// `reportingInstance`: the pod's name when it has one.
    instance: String,
}

impl Publisher {
    pub fn new(client: kube::Client, controller: &str, instance: Option<String>) -> Publisher {
        Publisher {
            client,
            controller: controller.to_owned(),
            instance: instance_of(controller, instance),
        }
    }

    /// Creates Event `reason`/`note` (note escaped and bounded) for `action` on the object
    /// `regarding` names, in its namespace.
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: &str,
    ) -> Result<(), kube::Error> {
        let namespace = regarding.namespace.clone().unwrap_or_default();
        let event = event(
            regarding,
            type_,
            reason,
            action,
            note,
            &self.controller,
            &self.instance,
        );
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        api.create(&PostParams::default(), &event).await.map(drop)
    }
}

/// `reportingInstance`: the pod's name, else the controller's (the API server requires one).
fn instance_of(controller: &str, instance: Option<String>) -> String {
    instance
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| controller.to_owned())
}

/// A name for an Event on object `name`, unique within this process.
fn event_name(name: &str) -> String {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // At most 253 bytes: a DNS subdomain, as the object's own name is (ASCII).
    let mut end = name.len().min(253 - 34);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let base = &name[..end];
    format!("{base}.{nanos:x}.{seq:x}")
}

/// The Event itself (no I/O).
fn event(
    regarding: &ObjectReference,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
    controller: &str,
    instance: &str,
) -> Event {
    let name = regarding.name.clone().unwrap_or_default();
    Event {
        metadata: ObjectMeta {
            name: Some(event_name(&name)),
            namespace: regarding.namespace.clone(),
            ..Default::default()
        },
        event_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
        type_: Some(
            match type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .to_owned(),
        ),
        reason: Some(reason.to_owned()),
        action: Some(action.to_owned()),
        note: Some(bounded_note(note)),
        regarding: Some(regarding.clone()),
        reporting_controller: Some(controller.to_owned()),
        reporting_instance: Some(instance.to_owned()),
        ..Default::default()
    }
}

/// An Event note as the API server takes it: control characters escaped, at most [`MAX_NOTE`]
/// bytes.
pub fn bounded_note(note: &str) -> String {
    let mut note = crate::core::text::escape_controls(note).into_owned();
    if note.len() > MAX_NOTE {
        let mut end = MAX_NOTE - 3;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
        note.push_str("...");
    }
    note
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_names_its_object_controller_and_instance_and_bounds_its_note() {
        let regarding = ObjectReference {
            api_version: Some("openchoreo.dev/v1alpha1".into()),
            kind: Some("Build".into()),
            namespace: Some("acme".into()),
            name: Some("cart-1".into()),
            uid: Some("u-1".into()),
            ..Default::default()
        };
        let long = "é".repeat(MAX_NOTE);
        let e = event(
            &regarding,
            EventType::Warning,
            "BuildFailed",
            "BuildCompleted",
            &format!("line\n{long}"),
            "buildplane",
            "buildplane-0",
        );
        let name = e.metadata.name.clone().unwrap();
        assert!(name.starts_with("cart-1."), "{name}");
        assert_ne!(event_name("cart-1"), event_name("cart-1"), "unique");
        assert!(event_name(&"a".repeat(253)).len() <= 253);
        assert_eq!(e.metadata.namespace.as_deref(), Some("acme"));
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!(
            (e.reason.as_deref(), e.action.as_deref()),
            (Some("BuildFailed"), Some("BuildCompleted"))
        );
        assert_eq!(e.regarding.as_ref(), Some(&regarding));
        assert_eq!(e.reporting_controller.as_deref(), Some("buildplane"));
        assert_eq!(e.reporting_instance.as_deref(), Some("buildplane-0"));
        let note = e.note.unwrap();
        assert!(
            note.len() <= MAX_NOTE && note.ends_with("..."),
            "{}",
            note.len()
        );
        assert!(note.starts_with("line\\n"), "{note}");
        assert!(e.event_time.is_some());
        // Without a pod name, the instance is the controller's name (the field is required).
        assert_eq!(instance_of("buildplane", None), "buildplane");
        assert_eq!(instance_of("buildplane", Some(String::new())), "buildplane");
        assert_eq!(instance_of("buildplane", Some("pod-1".into())), "pod-1");
    }
}
