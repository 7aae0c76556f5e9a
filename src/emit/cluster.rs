//! `--emit-cluster` (and the controller): the Workload server-side applied into the control
//! plane as upstream's `build-controller`, forced — but never over a Workload of that name that
//! another component owns (upstream overwrites it). A Workload this apply creates is marked
//! as buildplane's (`core::cleanup::CREATED_BY_ANNOTATION`), which is what lets the controller
//! delete it with its last Build.

use super::EmitFailure;
use crate::core::cleanup;
use crate::core::manifest::Manifest;
use crate::core::workload;
use crate::kube::{Kube, KubeError};
use serde_json::Value;

/// The field manager upstream's controller applies Workloads with.
pub const WORKLOAD_FIELD_MANAGER: &str = "build-controller";

/// What a watch of Workloads knows of one, before it is applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Known {
    /// Nothing to go by (the watch has not listed yet, or lags behind an apply of ours): the
    /// Workload is read first.
    Unknown,
    /// Not there when the watch last looked.
    Absent,
    /// As the watch shows it: at least its name, namespace, resourceVersion, annotations
    /// and `spec.owner`.
    Present(Value),
}

/// A watch of the control plane's Workloads, which saves the read before each apply.
pub trait WorkloadView: Send + Sync {
    /// What is known of Workload `namespace/name`.
    fn known(&self, namespace: &str, name: &str) -> Known;
    /// The Workload as an apply just returned it (newer than the watch may show yet).
    fn applied(&self, workload: &Value);
}

/// Applies `workload` of build `creator` (`org/build`); the line says `applied` or `unchanged`
/// (same resourceVersion). With `view`, the Workload is read from it instead of the server:
/// one request, the apply. A Workload the view shows is applied with its resourceVersion as a
/// precondition, so a view that lagged behind a change is refused (409) and the apply is done
/// again after a read. A Workload the view does not have is applied as when a read finds
/// none: a create by another writer within the view's lag (a watch event, milliseconds) is
/// the same race a read and an apply have.
pub async fn apply(
    cp: &Kube,
    workload: &Value,
    creator: &str,
    view: Option<&dyn WorkloadView>,
) -> Result<String, EmitFailure> {
    let m = Manifest::new(workload.clone())?;
    let known = match view {
        Some(v) => v.known(m.id.namespace.as_deref().unwrap_or_default(), &m.id.name),
        None => Known::Unknown,
    };
    let read = known == Known::Unknown;
    let r = match apply_known(cp, m.clone(), creator, known).await {
        // The view was behind: read, and apply once more.
        Err(EmitFailure::Cluster(KubeError::Api { code: 409, .. })) if !read => {
            apply_known(cp, m, creator, Known::Unknown).await
        }
        r => r,
    };
    let (line, after) = r?;
    if let Some(v) = view {
        v.applied(&after);
    }
    Ok(line)
}

/// One apply of `m`, reading the Workload first when nothing is `known` of it.
async fn apply_known(
    cp: &Kube,
    mut m: Manifest,
    creator: &str,
    known: Known,
) -> Result<(String, Value), EmitFailure> {
    let r = cp
        .resource(workload::API_VERSION, workload::KIND)
        .await?
        .ok_or(EmitFailure::NoWorkloadApi)?;
    let before = match known {
        Known::Unknown => cp.get(&r, &m.id).await?,
        Known::Absent => None,
        Known::Present(v) => Some(v),
    };
    cleanup::mark_creator(&mut m.object, before.as_ref(), creator);
    if let Some(b) = &before {
        if let Some(why) = workload::foreign_owner(b, &m.object) {
            return Err(EmitFailure::OwnedElsewhere(why));
        }
        // Forced, but only over the object just read as ours: if it changed hands since, the
        // server refuses the apply (a resourceVersion in an apply is a precondition).
        if let Some(rv) = b.pointer("/metadata/resourceVersion") {
            m.object["metadata"]["resourceVersion"] = rv.clone();
        }
    }
    let after = cp
        .apply_as(WORKLOAD_FIELD_MANAGER, &r, &m, false, true)
        .await?;
    let rv = |v: &Value| v.pointer("/metadata/resourceVersion").cloned();
    let line = match before {
        Some(b) if rv(&b) == rv(&after) => format!("unchanged {}", m.id),
        _ => format!("applied {}", m.id),
    };
    Ok((line, after))
}
