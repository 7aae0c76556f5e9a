//! The pure core: no I/O, no clock, no environment. Everything here is a function of its
//! arguments, which is what makes renders byte-stable and testable without a cluster.

pub mod buildplane;
pub mod builds;
pub mod catalog;
pub mod cleanup;
pub mod conditions;
pub mod control_plane;
pub mod crd;
pub mod diff;
pub mod lint;
pub mod manifest;
pub mod naming;
pub mod par;
pub mod plan;
pub mod progress;
pub mod provenance;
pub mod render;
pub mod spec;
pub mod templates;
pub mod text;
pub mod values;
pub mod workload;
