//! What a completed build object produced for its build: phase, image, commit, and the validated
//! Workload or why there is none. The engine reads its own object; the Workload is checked here
//! against the Build that asked for it.

use super::Target;
use super::outcome::{BuildOutcome, Harvest};
use crate::core::progress::Phase;
use crate::core::workload;
use serde_json::Value;

/// Harvests `live`, the build object of `t` (emits are left to the caller).
pub fn harvest(t: &Target, live: &Value) -> BuildOutcome {
    let status = t.engine.status(live);
    let mut o = BuildOutcome {
        build: t.label(),
        workflow: t.object_ref(),
        phase: status.phase,
        message: Some(status.message).filter(|m| !m.is_empty()),
        image: None,
        revision: None,
        harvest: Harvest::NotSucceeded,
        emits: Vec::new(),
    };
    if o.phase != Phase::Succeeded {
        return o;
    }
    let artifacts = match t.engine.artifacts(live) {
        Ok(a) => a,
        Err(e) => {
            o.harvest = Harvest::Unusable(e.to_string());
            return o;
        }
    };
    o.image = artifacts.image;
    o.revision = artifacts.revision;
    let Some(yaml) = artifacts.workload_cr else {
        o.harvest = Harvest::NoOutput;
        return o;
    };
    let build = &t.build.build;
    let owner = &build.spec.owner;
    let parsed = workload::parse_workload_cr(&yaml).and_then(|w| {
        workload::canonical(
            w,
            build.organization(),
            Some((&owner.project_name, &owner.component_name)),
        )
    });
    o.harvest = match parsed {
        Ok(w) => Harvest::Workload(w),
        Err(e) => Harvest::Unusable(e.to_string()),
    };
    o
}
