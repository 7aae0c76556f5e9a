//! `buildplane watch BUILD...`: follow builds to the end, harvest their Workloads and emit them.

use super::Outcome;
use super::board::Board;
use super::connect::{ClientArgs, parse_duration};
pub use super::emit::EmitArgs;
use crate::core::progress::Phase;
use crate::core::text::{escape_controls, escape_controls_keep_lines};
use crate::emit::Emitter;
use crate::kube::Kube;
use crate::lifecycle::{BuildOutcome, Event, Target, watch};
use crate::pipeline::LoadedBuild;
use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WatchOutput {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub targets: super::connect::TargetArgs,
    /// Give up after this long (exit code 2), e.g. 90s, 10m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Plain lines, or one JSON event per line.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    pub output: WatchOutput,
    #[command(flatten)]
    pub emit: EmitArgs,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Follows `targets`, printing each step change and each result (with its conditions) and
/// emitting Workloads; returns how many builds did not succeed (the outcome's one verdict).
pub async fn follow(
    kube: &Kube,
    client: &ClientArgs,
    emit: &EmitArgs,
    targets: Vec<Target>,
    timeout: Option<Duration>,
    json: bool,
) -> anyhow::Result<usize> {
    let by_label: BTreeMap<String, LoadedBuild> = targets
        .iter()
        .map(|t| (t.label(), t.build.clone()))
        .collect();
    let rows: Vec<(String, &'static [&'static str])> = targets
        .iter()
        .map(|t| (t.label(), t.engine.step_names()))
        .collect();
    let emitter = Emitter::connect(emit.settings(client)).await?;
    let handle = tokio::runtime::Handle::current();
    let mut out = std::io::stdout().lock();
    // A live board on a terminal; plain lines (or JSON) otherwise.
    let mut board = (!json && out.is_terminal()).then(|| Board::new(rows));
    if let Some(b) = &mut board {
        b.resize(terminal_size());
        let _ = write!(out, "{}", b.redraw(None));
    }
    let mut failed = 0usize;
    watch::watch(kube, targets, timeout, |event| {
        let line = match event {
            Event::Step { build, step, phase } => {
                if let Some(b) = &mut board {
                    b.step(build, &escape_controls(step), *phase);
                    b.resize(terminal_size());
                    let _ = write!(out, "{}", b.redraw(None));
                    let _ = out.flush();
                    return;
                }
                if json {
                    json_step(build, step, *phase)
                } else {
                    format!("{build} {step} {phase}")
                }
            }
            Event::Finished(o) => {
                let mut o = o.clone();
                if let Some(build) = by_label.get(&o.build) {
                    tokio::task::block_in_place(|| {
                        handle.block_on(emitter.emit(&mut o, &build.build))
                    });
                }
                if !o.succeeded() {
                    failed += 1;
                }
                if json {
                    json_finished(&o)
                } else {
                    report_text(&o)
                }
            }
        };
        // Step names, messages and refusals came from the cluster or the build: a terminal
        // gets no control sequence from them (JSON lines are escaped by the encoder).
        let line = escape_controls_keep_lines(&line).into_owned();
        match &mut board {
            Some(b) => {
                if let Event::Finished(o) = event {
                    b.finish(&o.build);
                }
                b.resize(terminal_size());
                let _ = write!(out, "{}", b.redraw(Some(&line)));
            }
            None => {
                let _ = writeln!(out, "{line}");
            }
        }
        let _ = out.flush();
    })
    .await?;
    Ok(failed)
}

fn json_step(build: &str, step: &str, phase: Phase) -> String {
    json!({"event": "step", "build": build, "step": step, "phase": phase}).to_string()
}

/// One JSON line per finished build: the outcome, its conditions and each target's line.
fn json_finished(o: &BuildOutcome) -> String {
    let mut v = json!({
        "event": "finished",
        "build": o.build,
        "workflow": o.workflow,
        "phase": o.phase,
        "result": o.verdict().as_str(),
        "conditions": o.conditions(None),
        "emitted": o.notes(),
    });
    let optional = [
        ("message", o.message.clone().map(Value::String)),
        ("image", o.image.clone().map(Value::String)),
        ("workload", o.workload().cloned()),
        ("workloadError", o.workload_error().map(Value::String)),
        ("revision", o.revision.clone().map(Value::String)),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            v[key] = value;
        }
    }
    v.to_string()
}

fn report_text(o: &BuildOutcome) -> String {
    let mut s = format!("{} {}", o.build, o.phase);
    if let Some(m) = &o.message {
        s.push_str(&format!(": {m}"));
    }
    if let Some(i) = &o.image {
        s.push_str(&format!("\n  image {i}"));
    }
    if let Some(e) = o.workload_error() {
        s.push_str(&format!("\n  no Workload: {e}"));
    }
    for n in o.notes() {
        s.push_str(&format!("\n  {n}"));
    }
    for c in o.conditions(None) {
        s.push_str(&format!(
            "\n  {} {} {} {}",
            c.type_, c.status, c.reason, c.message
        ));
    }
    s
}

pub fn run(args: WatchArgs) -> anyhow::Result<Outcome> {
    let (builds, names) = args.targets.split()?;
    args.emit.settings(&args.client).check()?;
    let mut targets = builds
        .iter()
        .map(Target::of)
        .collect::<Result<Vec<_>, _>>()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let failed = runtime.block_on(async {
        let kube = Kube::connect(&args.client.settings()).await?;
        targets.extend(named_targets(&kube, &names).await?);
        // A name and a file of the same build follow its build object once.
        let mut seen = std::collections::BTreeSet::new();
        targets.retain(|t| seen.insert(t.object_ref()));
        let json = args.output == WatchOutput::Json;
        follow(&kube, &args.client, &args.emit, targets, args.timeout, json).await
    })?;
    Ok(if failed > 0 {
        Outcome::Differences
    } else {
        Outcome::Success
    })
}

/// The terminal's columns and rows, read at every redraw so a resized window is followed.
fn terminal_size() -> Option<(u16, u16)> {
    crossterm::terminal::size().ok()
}

/// The targets of builds named `ORG/BUILD`: their build objects found by labels, each Build
/// read back from its object (which carries everything harvest and emit need).
async fn named_targets(
    kube: &Kube,
    names: &[crate::core::builds::BuildRef],
) -> anyhow::Result<Vec<Target>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let found = crate::lifecycle::find::resolve(kube, names).await?;
    let targets = found
        .iter()
        .zip(names)
        .map(|(f, n)| f.target(n))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(targets)
}
