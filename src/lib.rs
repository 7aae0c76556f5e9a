//! buildplane: render, diff, apply and watch an OpenChoreo build plane.
#![forbid(unsafe_code)]

pub mod cli;
pub mod controller;
pub mod core;
pub mod emit;
pub mod engine;
pub mod git;
pub mod kube;
pub mod pipeline;
pub mod serve;
pub mod source;
pub mod sync;
