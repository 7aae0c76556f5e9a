//! What a completed build object produced for its build: phase, image, commit, and the validated
//! Workload or why there is none. The engine reads its own object; the Workload is checked here
//! against the Build that asked for it. Text taken from the object (its message, the reason a
//! Workload is refused, which names the output's own keys) has its control characters escaped
//! here, once, for every report and condition.

use super::Target;
use super::outcome::{BuildOutcome, Harvest};
use crate::core::progress::Phase;
use crate::core::provenance::Provenance;
use crate::core::text::escape_controls;
use crate::core::workload;
use serde_json::Value;

/// Harvests `live`, the build object of `t` (emits are left to the caller).
pub fn harvest(t: &Target, live: &Value) -> BuildOutcome {
    let status = t.engine.status(live);
    let mut o = BuildOutcome {
        build: t.label(),
        workflow: t.object_ref(),
        phase: status.phase,
        message: Some(escape_controls(&status.message).into_owned()).filter(|m| !m.is_empty()),
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
            o.harvest = Harvest::Unusable(escape_controls(&e.to_string()).into_owned());
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
        Ok(mut w) => {
            let from = Provenance::of(&o.build, &o.workflow, live, o.revision.as_deref());
            from.stamp(&mut w);
            Harvest::Workload(w)
        }
        Err(e) => Harvest::Unusable(escape_controls(&e.to_string()).into_owned()),
    };
    o
}
