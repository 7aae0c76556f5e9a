//! buildplane: render, diff, apply and watch an OpenChoreo build plane.
#![forbid(unsafe_code)]

pub mod cli;
pub mod controller;
pub mod core;
pub mod emit;
pub mod engine;
pub mod git;
pub mod kube;
pub mod lifecycle;
pub mod pipeline;
pub mod report;
pub mod serve;
pub mod signal;
pub mod source;
pub mod sync;
