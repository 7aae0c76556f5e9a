//! `--emit-cluster` (and the controller): the Workload server-side applied into the control
//! plane as upstream's `build-controller`, forced — but never over a Workload of that name that
//! another component owns (upstream overwrites it). A Workload this apply creates is marked
//! as buildplane's (`core::cleanup::CREATED_BY_ANNOTATION`), which is what lets the controller
//! delete it with its last Build.

use super::EmitFailure;
use crate::core::cleanup;
use crate::core::manifest::Manifest;
use crate::core::workload;
use crate::kube::Kube;
use serde_json::Value;

/// The field manager upstream's controller applies Workloads with.
pub const WORKLOAD_FIELD_MANAGER: &str = "build-controller";

/// Applies `workload` of build `creator` (`org/build`); the line says `applied` or `unchanged`
/// (same resourceVersion).
pub async fn apply(cp: &Kube, workload: &Value, creator: &str) -> Result<String, EmitFailure> {
    let m = Manifest::new(workload.clone())?;
    let r = cp
        .resource(workload::API_VERSION, workload::KIND)
        .await?
        .ok_or(EmitFailure::NoWorkloadApi)?;
    let before = cp.get(&r, &m.id).await?;
    let mut m = m;
    cleanup::mark_creator(&mut m.object, before.as_ref(), creator);
    if let Some(b) = &before {
        if let Some(why) = workload::foreign_owner(b, workload) {
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
    Ok(match before {
        Some(b) if rv(&b) == rv(&after) => format!("unchanged {}", m.id),
        _ => format!("applied {}", m.id),
    })
}
